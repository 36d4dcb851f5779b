package gpt

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// TestParityDoRA compares golora's DoRA with tools/dora_reference.py, an
// independent PyTorch implementation of PEFT's DoRA, on the nano model with
// DoRA on wte, every mlp.c_fc and the q and v blocks of every c_attn (one
// magnitude per c_attn column, as PEFT computes DoRA on golora's block-form
// file): the logits, the loss and the gradients of every A, B and
// magnitude. It then saves the adapter, checks the file's tensors against
// the reference's PEFT layout, and loads it into a fresh model, which must
// give the same loss. The script's header says how to regenerate the file.
func TestParityDoRA(t *testing.T) {
	f, err := safetensors.ReadFile(filepath.Join("testdata", "parity_dora_ref.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	r := &parityRef{f: f}
	for key, dst := range map[string]*int{"batch": &r.batch, "ctx": &r.ctx, "rank": &r.rank} {
		if *dst, err = strconv.Atoi(f.Metadata[key]); err != nil {
			t.Fatalf("metadata %s: %v", key, err)
		}
	}
	for key, dst := range map[string]*float64{"alpha": &r.alpha, "smoothing": &r.smoothing} {
		if *dst, err = strconv.ParseFloat(f.Metadata[key], 64); err != nil {
			t.Fatalf("metadata %s: %v", key, err)
		}
	}
	r.ids, r.targets, r.mask = r.ints(t, "ids"), r.ints(t, "targets"), r.floats(t, "mask")
	for _, dt := range []graph.DType{graph.Float64, graph.Float32} {
		t.Run(dt.String(), func(t *testing.T) { checkDoRAParity(t, dt, r) })
	}
}

// doraParams lists golora's parameters of the reference adapter with the
// reference's names ("h.0.q.A") and whether the reference stores them
// transposed (A and B: PEFT's layout).
func doraParams(t *testing.T, m *Model, lm *lora.Model) map[string]*graph.Param {
	t.Helper()
	out := map[string]*graph.Param{}
	get := func(path string) *lora.Adapter {
		ad, err := lm.Adapter(path, lora.DefaultAdapter)
		if err != nil {
			t.Fatal(err)
		}
		if ad.Magnitude == nil {
			t.Fatalf("%s: not a DoRA adapter", path)
		}
		return ad
	}
	ad := get("wte")
	out["wte.A"], out["wte.B"], out["wte.m"] = ad.Slices[0].A, ad.Slices[0].B, ad.Magnitude
	for i := range m.H {
		p := fmt.Sprintf("h.%d.", i)
		ad = get(p + "attn.c_attn")
		if len(ad.Slices) != 2 || ad.Slices[0].Part != "q" || ad.Slices[1].Part != "v" {
			t.Fatalf("%sattn.c_attn: slices %v, want q and v", p, ad.Slices)
		}
		out[p+"q.A"], out[p+"q.B"], out[p+"v.A"], out[p+"v.B"] = ad.Slices[0].A, ad.Slices[0].B, ad.Slices[1].A, ad.Slices[1].B
		out[p+"attn.m"] = ad.Magnitude
		ad = get(p + "mlp.c_fc")
		out[p+"fc.A"], out[p+"fc.B"], out[p+"fc.m"] = ad.Slices[0].A, ad.Slices[0].B, ad.Magnitude
	}
	return out
}

func checkDoRAParity(t *testing.T, dt graph.DType, r *parityRef) {
	tol := parityTol[dt]
	m, err := Load(parityNanoDir, dt)
	if err != nil {
		t.Fatal(err)
	}
	cfg := lora.Config{R: r.rank, Alpha: r.alpha, DoRA: true, Targets: []string{"wte", "c_fc", "q", "v"}}
	lm, err := lora.Inject(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	params := doraParams(t, m, lm)
	for name, p := range params {
		v := r.floats(t, "param."+name)
		if len(p.Shape()) == 2 { // A and B: PEFT's layout is golora's transposed
			setTransposed(t, p, v)
		} else if err := p.SetValues(v); err != nil {
			t.Fatal(err)
		}
	}
	n := r.batch * r.ctx
	lossOf := func(m *Model, grads bool) (float64, []float64, *graph.Program) {
		b := graph.NewBuilder(m.DType(), 1)
		logits := m.Logits(b.IntConstant("ids", r.ids, n), r.batch, r.ctx)
		loss := graph.SoftmaxCrossEntropy(logits, b.IntConstant("targets", r.targets, n), b.Constant("mask", r.mask, n), r.smoothing)
		prog, err := b.Compile(loss, logits)
		if err != nil {
			t.Fatal(err)
		}
		prog.SetTraining(false)
		run := prog.Forward
		if grads {
			run = prog.Run
		}
		if err := run(); err != nil {
			t.Fatal(err)
		}
		out, _ := prog.Output(logits)
		return prog.Loss(), out.Values(), prog
	}
	loss, logits, prog := lossOf(m, true)
	defer prog.Close()
	checkClose(t, "logits", logits, r.floats(t, "logits"), tol)
	checkClose(t, "loss", []float64{loss}, r.floats(t, "loss"), tol)
	if got := len(prog.Trainable()); got != len(params) {
		t.Errorf("%d trainable parameters, want the adapter's %d", got, len(params))
	}
	worst := 0.0
	for name, p := range params {
		g, ok := prog.Grad(p)
		if !ok {
			t.Fatalf("no gradient for %s", name)
		}
		got := g.Values()
		if len(p.Shape()) == 2 {
			got = transpose(got, p.Shape())
		}
		want := r.floats(t, "grad."+name)
		checkClose(t, "grad "+name, got, want, tol)
		worst = max(worst, maxRelErr(got, want))
	}
	t.Logf("%v: loss %.12f, worst gradient error %.2e (tolerance %.0e)", dt, loss, worst, tol)

	// The adapter's file holds the reference's tensors in PEFT's layout, and
	// loads back to the same loss.
	dir := filepath.Join(t.TempDir(), "dora")
	if err := lm.Save(dir, lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	file, err := safetensors.ReadFile(filepath.Join(dir, lora.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	fileTol := 0.0 // the reference's float64 values, transposed and placed
	if dt == graph.Float32 {
		fileTol = 1e-7 // rounded once to float32
	}
	for _, key := range file.Names() {
		got, _, err := file.Float64s(key)
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, key, got, r.floats(t, key), fileTol)
	}
	if len(file.Names()) != 3+6*len(m.H) {
		t.Errorf("%d tensors in the file, want %d", len(file.Names()), 3+6*len(m.H))
	}
	fresh, err := Load(parityNanoDir, dt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lora.Load(fresh, dir); err != nil {
		t.Fatal(err)
	}
	again, _, p2 := lossOf(fresh, false)
	defer p2.Close()
	if again != loss {
		t.Errorf("loss after Save and Load %v, before %v", again, loss)
	}
}
