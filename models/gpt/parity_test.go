package gpt

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// Parity with tools/gpt2_reference.py, a GPT-2 and LoRA written
// independently in PyTorch. The script's header says how to regenerate the
// files under testdata/.

// parityNanoDir is the nano model both sides read.
const parityNanoDir = "testdata/parity_nano"

// parityNanoModel builds the nano parity model: the "nano" preset (no
// dropout) in float32 with every parameter drawn, in BaseParams order, from
// U(−0.35, 0.35) (std ≈ 0.2, so attention and GELU are far from linear),
// except the LayerNorm scales, from U(0.8, 1.2); the source is
// graph.NewRand(20240501).
func parityNanoModel(t testing.TB) *Model {
	t.Helper()
	cfg, err := Preset("nano")
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	rng := graph.NewRand(20240501)
	for _, p := range m.BaseParams() {
		if isLNScale(p.Name) {
			graph.InitUniform(p, rng, 0.8, 1.2)
		} else {
			graph.InitUniform(p, rng, -0.35, 0.35)
		}
	}
	return m
}

// TestParityNanoModel checks that testdata/parity_nano holds the recipe's
// model; with GOLORA_WRITE_PARITY=1 it writes the folder instead.
func TestParityNanoModel(t *testing.T) {
	m := parityNanoModel(t)
	if os.Getenv("GOLORA_WRITE_PARITY") == "1" {
		if err := m.Save(parityNanoDir); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", parityNanoDir)
		return
	}
	got, err := Load(parityNanoDir, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config() != m.Config() {
		t.Errorf("config %+v, want %+v", got.Config(), m.Config())
	}
	for i, p := range got.BaseParams() {
		if !slices.Equal(p.Float32s(), m.BaseParams()[i].Float32s()) {
			t.Errorf("%s differs from the recipe", p.Name)
		}
	}
}

// hashUniform is tools/gpt2_reference.py's hash_uniform: element j of
// parameter k is fmix64(k·2⁴⁰ + j + 0x9E3779B97F4A7C15) scaled to [0, 1).
func hashUniform(k, j uint64) float64 {
	x := k<<40 + j + 0x9E3779B97F4A7C15
	x ^= x >> 33
	x *= 0xFF51AFD7ED558CCD
	x ^= x >> 33
	x *= 0xC4CEB9FE1A85EC53
	x ^= x >> 33
	return float64(x>>11) * 0x1p-53
}

// hashWeights fills m as tools/gpt2_reference.py's hash_weights does:
// parameter k (BaseParams order) gets (2u − 1)·a + c, with (a, c) from
// hashScale. Each operation is rounded on its own, as numpy does, so the
// float64 values are bit-identical to the script's.
func hashWeights(m *Model) {
	for k, p := range m.BaseParams() {
		a, c := hashScale(p.Name)
		f32, f64 := p.Float32s(), p.Float64s()
		for j := 0; j < p.Len(); j++ {
			u := hashUniform(uint64(k), uint64(j))
			v := float64((2*u-1)*a) + c // float64(…) forbids a fused multiply-add
			if f64 != nil {
				f64[j] = v
			} else {
				f32[j] = float32(v)
			}
		}
	}
}

// hashScale is (0.2, 1) for LayerNorm scales, (0.05, 0) for LayerNorm
// shifts, (0.02, 0) for the other biases and (0.04, 0) for the weight
// matrices and embeddings.
func hashScale(name string) (a, c float64) {
	isLN := strings.HasPrefix(name, "ln_f.") || strings.Contains(name, ".ln_")
	switch {
	case isLN && strings.HasSuffix(name, ".weight"):
		return 0.2, 1
	case isLN:
		return 0.05, 0
	case strings.HasSuffix(name, ".bias"):
		return 0.02, 0
	}
	return 0.04, 0
}

// parityRef is one reference file of tools/gpt2_reference.py.
type parityRef struct {
	f                       *safetensors.File
	batch, ctx, rank, every int
	alpha, smoothing        float64
	ids, targets            []int
	mask                    []float64
}

func readParityRef(t testing.TB, name string) *parityRef {
	t.Helper()
	f, err := safetensors.ReadFile(filepath.Join("testdata", "parity_"+name+"_ref.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	r := &parityRef{f: f}
	for key, dst := range map[string]*int{"batch": &r.batch, "ctx": &r.ctx, "rank": &r.rank, "columns_every": &r.every} {
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
	return r
}

func (r *parityRef) floats(t testing.TB, name string) []float64 {
	t.Helper()
	v, _, err := r.f.Float64s(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (r *parityRef) ints(t testing.TB, name string) []int {
	t.Helper()
	tn, ok := r.f.Tensor(name)
	if !ok || tn.DType != "I64" {
		t.Fatalf("reference has no I64 tensor %s", name)
	}
	out := make([]int, len(tn.Data)/8)
	for i := range out {
		out[i] = int(int64(binary.LittleEndian.Uint64(tn.Data[8*i:])))
	}
	return out
}

// parityTol is the bound on max|golang − PyTorch| / max|PyTorch| per tensor:
// float64 agrees to rounding (≈ 1e-13 measured), float32 to its own
// precision accumulated over the layers.
var parityTol = map[graph.DType]float64{graph.Float64: 1e-9, graph.Float32: 1e-4}

// checkParity runs m on the reference's batch, without LoRA and then with
// LoRA on q and v (package lora, the reference's A and B), and compares the
// logits, the loss and the LoRA gradients with the reference.
func checkParity(t *testing.T, m *Model, r *parityRef) {
	tol := parityTol[m.DType()]
	n, v := r.batch*r.ctx, m.VocabSize()
	worst := map[string]float64{}
	compare := func(what string, got, want []float64) {
		t.Helper()
		checkClose(t, what, got, want, tol)
		key := what
		if len(key) > 5 && key[:5] == "grad " {
			key = "LoRA gradients"
		}
		worst[key] = math.Max(worst[key], maxRelErr(got, want))
	}
	compareLogits := func(what string, logits []float64) {
		t.Helper()
		var cols, lse []float64
		for i := 0; i < n; i++ {
			row := logits[i*v : (i+1)*v]
			for j := 0; j < v; j += r.every {
				cols = append(cols, row[j])
			}
			mx := slices.Max(row)
			var z float64
			for _, l := range row {
				z += math.Exp(l - mx)
			}
			lse = append(lse, mx+math.Log(z))
		}
		compare(what, cols, r.floats(t, what))
		compare(what+"_lse", lse, r.floats(t, what+"_lse"))
	}

	compareLogits("logits_base", runLogits(t, m, r.ids, r.batch, r.ctx))

	lm, err := lora.Inject(m, lora.Config{R: r.rank, Alpha: r.alpha, Targets: []string{"q", "v"}})
	if err != nil {
		t.Fatal(err)
	}
	type ab struct {
		name string
		p    *graph.Param
	}
	var abs []ab
	for i := range m.H {
		path := fmt.Sprintf("h.%d.attn.c_attn", i)
		ad, err := lm.Adapter(path, lora.DefaultAdapter)
		if err != nil {
			t.Fatal(err)
		}
		if len(ad.Slices) != 2 {
			t.Fatalf("%s: %d LoRA slices, want q and v", path, len(ad.Slices))
		}
		for _, s := range ad.Slices {
			key := path + "." + s.Part
			// PEFT's layout, A [r, in] and B [out, r], is golora's transposed.
			setTransposed(t, s.A, r.floats(t, key+".lora_A"))
			setTransposed(t, s.B, r.floats(t, key+".lora_B"))
			abs = append(abs, ab{key + ".lora_A", s.A}, ab{key + ".lora_B", s.B})
		}
	}

	b := graph.NewBuilder(m.DType(), 1)
	ids := b.IntConstant("ids", r.ids, n)
	logits := m.Logits(ids, r.batch, r.ctx)
	loss := graph.SoftmaxCrossEntropy(logits, b.IntConstant("targets", r.targets, n), b.Constant("mask", r.mask, n), r.smoothing)
	prog, err := b.Compile(loss, logits)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	prog.SetTraining(false)
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	if got := len(prog.Trainable()); got != len(abs) {
		t.Errorf("%d trainable parameters, want the %d LoRA matrices", got, len(abs))
	}
	out, _ := prog.Output(logits)
	compareLogits("logits", out.Values())
	compare("loss", []float64{prog.Loss()}, r.floats(t, "loss"))
	for _, x := range abs {
		g, ok := prog.Grad(x.p)
		if !ok {
			t.Fatalf("no gradient for %s", x.name)
		}
		compare("grad "+x.name, transpose(g.Values(), x.p.Shape()), r.floats(t, "grad."+x.name))
	}
	keys := make([]string, 0, len(worst))
	for k := range worst {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Logf("%v %-16s max relative error %.2e (tolerance %.0e)", m.DType(), k, worst[k], tol)
	}
}

// setTransposed sets p [a, b] from v holding p's transpose [b, a].
func setTransposed(t testing.TB, p *graph.Param, v []float64) {
	t.Helper()
	if err := p.SetValues(transpose(v, []int{p.Shape()[1], p.Shape()[0]})); err != nil {
		t.Fatal(err)
	}
}

// transpose returns the transpose of v, a row-major [rows, cols] matrix.
func transpose(v []float64, shape []int) []float64 {
	rows, cols := shape[0], shape[1]
	out := make([]float64, len(v))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			out[j*rows+i] = v[i*cols+j]
		}
	}
	return out
}

// TestParityNano compares the nano model, loaded from the folder the
// reference read, with PyTorch: every logit, the loss, and the gradients
// of all 12 LoRA matrices.
func TestParityNano(t *testing.T) {
	r := readParityRef(t, "nano")
	for _, dt := range []graph.DType{graph.Float64, graph.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			m, err := Load(parityNanoDir, dt)
			if err != nil {
				t.Fatal(err)
			}
			checkParity(t, m, r)
		})
	}
}

// TestParityGPT2 compares a GPT-2-small-shaped model (124M parameters, the
// hash weights) with PyTorch on 2 sequences of 8 tokens.
func TestParityGPT2(t *testing.T) {
	if testing.Short() {
		t.Skip("GPT-2 small parity needs ~2 GB and tens of seconds")
	}
	r := readParityRef(t, "gpt2")
	cfg, _ := Preset("gpt2")
	cfg.EmbdDropout, cfg.ResidDropout, cfg.AttnDropout = 0, 0, 0
	for _, dt := range []graph.DType{graph.Float64, graph.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			m, err := New(cfg, dt)
			if err != nil {
				t.Fatal(err)
			}
			hashWeights(m)
			checkParity(t, m, r)
		})
	}
}

// TestHashWeights pins values of the shared recipe computed by
// tools/gpt2_reference.py, so a change to either side's formula shows up
// here rather than as a vague parity failure.
func TestHashWeights(t *testing.T) {
	// hash_uniform(k, n)[j] and hash_weights(cfg)[name].flat[j] in the script.
	for _, c := range []struct {
		k, j uint64
		want float64
	}{{0, 0, 0.6118225421857174}, {1, 1, 0.33951845783138823}, {3, 12345, 0.5161010032399108}, {200, 38597375, 0.0745739225744333}, {1048576, 7, 0.4510039683988528}} {
		if got := hashUniform(c.k, c.j); got != c.want {
			t.Errorf("hashUniform(%d, %d) = %v, want %v", c.k, c.j, got, c.want)
		}
	}
	cfg := tinyConfig()
	m, err := New(cfg, graph.Float64)
	if err != nil {
		t.Fatal(err)
	}
	hashWeights(m)
	ps := map[string]*graph.Param{}
	for _, p := range m.BaseParams() {
		ps[p.Name] = p
	}
	for _, c := range []struct {
		name string
		j    int
		want float64
	}{{"wte.weight", 5, -0.006165675665119182}, {"wpe.weight", 47, -0.002018056419414087}, {"h.0.ln_1.weight", 3, 1.171102519814403}, {"h.1.ln_2.bias", 7, -0.007357907683553189}, {"h.0.attn.c_attn.bias", 20, 0.011313880421715617}, {"h.1.mlp.c_proj.weight", 100, 0.03550351467013795}, {"ln_f.weight", 0, 1.0095483337097253}, {"ln_f.bias", 1, -0.0040604601900398945}} {
		if got := ps[c.name].Float64s()[c.j]; got != c.want {
			t.Errorf("%s[%d] = %v, want %v", c.name, c.j, got, c.want)
		}
	}
}
