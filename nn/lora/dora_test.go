package lora_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// randomize gives every parameter of ps values uniform in ±scale (positive
// in [0.5, 1.5]·scale for DoRA's magnitudes, which act as column norms).
func randomize(ps []*graph.Param, seed uint64, scale float64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, p := range ps {
		v := make([]float64, p.Len())
		for i := range v {
			v[i] = (2*rng.Float64() - 1) * scale
			if strings.Contains(p.Name, "lora_magnitude_vector") {
				v[i] = (1 + rng.Float64()) * scale
			}
		}
		_ = p.SetValues(v)
	}
}

// TestDoRAStartsAsBase: m starts at the column norms of W + s·A·B (of E for
// an embedding), so g = 1 and the injected model computes the base model's
// outputs (to rounding: the bias is added after the product), on plain,
// fused and embedding layers.
func TestDoRAStartsAsBase(t *testing.T) {
	for _, dt := range dtypes {
		for _, cfg := range []lora.Config{
			{R: 2, DoRA: true, Targets: []string{"c_fc", "mlp.c_proj"}, Seed: 1},
			{R: 2, DoRA: true, Dropout: 0.3, Targets: []string{"q", "v", "wte"}, Seed: 2},
			{R: 2, DoRA: true, Targets: []string{"c_attn[q]"}, Init: lora.InitPiSSA},
		} {
			h := newTiny(dt, 2, 1)
			base := forward(t, h, false)
			m, err := lora.Inject(h, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := forward(t, h, false); maxRel(got, base) > mergeTol(dt) {
				t.Errorf("%v %v: fresh DoRA adapter moves the logits by %.3g", dt, cfg.Targets, maxRel(got, base))
			}
			for _, path := range mustPaths(t, m, lora.DefaultAdapter) {
				ad, _ := m.Adapter(path, lora.DefaultAdapter)
				if ad.Magnitude == nil {
					t.Fatalf("%s: no magnitude", path)
				}
				var w *graph.Param
				switch l := m.Layer(path).(type) {
				case *lora.Linear:
					w = l.Base.Weight
				case *lora.Embedding:
					w = l.Base.Weight
				}
				shape := w.Shape()
				vals := w.Values()
				dw, _ := m.DeltaW(path, lora.DefaultAdapter)
				for j, mj := range ad.Magnitude.Values() {
					var s float64
					for i := range shape[0] {
						v := vals[i*shape[1]+j] + dw.At(i, j)
						s += v * v
					}
					if math.Abs(mj-math.Sqrt(s)) > 1e-6*math.Sqrt(s) {
						t.Fatalf("%s: m[%d] = %v, the column norm is %v", path, j, mj, math.Sqrt(s))
					}
				}
			}
		}
	}
}

// oneLayer is a host with one fused [in, 3w] projection "h.0.attn.c_attn"
// (q | k | v) and one embedding "wte".
func oneLayer(dt graph.DType, in, w int) (*listHost, *nn.Linear, *nn.Embedding) {
	lin := nn.NewLinear("h.0.attn.c_attn", dt, in, 3*w, true)
	emb := nn.NewEmbedding("wte", dt, 7, 3*w)
	rng := graph.NewRand(4)
	lin.Init(rng, 0.5)
	graph.InitNormal(lin.Bias, rng, 0.2)
	emb.Init(rng, 0.5)
	return &listHost{layers: []nn.NamedLayer{{Path: "wte", Layer: emb}, {Path: "h.0.attn.c_attn", Layer: lin}}}, lin, emb
}

// TestDoRAFormula checks a DoRA layer's outputs against loops over PEFT's
// formulas, for a whole layer, for q and v of a fused one (m and g over all
// its columns), for an embedding, and with LoRA dropout in training, where
// PEFT computes x·W + b + (g − 1) ⊙ xd·W + g ⊙ s·(xd·A)·B; the dropout mask
// is the builder's first draw, reproduced with a Dropout of ones.
func TestDoRAFormula(t *testing.T) {
	const n, in, w, p = 5, 4, 3, 0.4
	cases := []struct {
		name    string
		targets []string
		dropout float64
	}{
		{"whole", []string{"c_attn"}, 0},
		{"q,v", []string{"c_attn[q,v]"}, 0},
		{"embedding", []string{"wte"}, 0},
		{"whole with dropout", []string{"c_attn"}, p},
		{"q,v with dropout", []string{"c_attn[q,v]"}, p},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, lin, emb := oneLayer(graph.Float64, in, w)
			m, err := lora.Inject(h, lora.Config{R: 2, Alpha: 3, DoRA: true, Dropout: c.dropout, Targets: c.targets})
			if err != nil {
				t.Fatal(err)
			}
			layerPath := "h.0.attn.c_attn"
			wt, rows, cols := lin.Weight, in, 3*w
			if c.targets[0] == "wte" {
				layerPath, wt, rows, cols = "wte", emb.Weight, 7, 3*w
			}
			ad, err := m.Adapter(layerPath, lora.DefaultAdapter)
			if err != nil {
				t.Fatal(err)
			}
			randomize([]*graph.Param{ad.Magnitude}, 5, 1)
			var ab []*graph.Param
			for _, s := range ad.Slices {
				ab = append(ab, s.A, s.B)
			}
			randomize(ab, 6, 0.7)
			dw, _ := m.DeltaW(layerPath, lora.DefaultAdapter) // s·A·B [rows, cols]
			W, mag := wt.Values(), ad.Magnitude.Values()
			g := make([]float64, cols)
			for j := range cols {
				var s float64
				for i := range rows {
					v := W[i*cols+j] + dw.At(i, j)
					s += v * v
				}
				g[j] = mag[j] / math.Sqrt(s)
			}
			b := graph.NewBuilder(graph.Float64, 9)
			var x []float64
			var out *graph.Node
			ids := []int{3, 0, 6, 3, 1}
			if layerPath == "wte" {
				out = m.Layer("wte").Forward(b.IntConstant("ids", ids, n))
			} else {
				x = make([]float64, n*in)
				for i := range x {
					x[i] = math.Sin(float64(3*i + 1))
				}
				out = m.Layer(layerPath).Forward(b.Constant("x", x, n, in))
			}
			got := run1(t, b, out)
			mask := make([]float64, n*in)
			for i := range mask {
				mask[i] = 1
			}
			if c.dropout > 0 { // the same builder seed draws the same first mask
				mb := graph.NewBuilder(graph.Float64, 9)
				mask = run1(t, mb, graph.Dropout(mb.Constant("ones", mask, n, in), c.dropout))
			}
			want := make([]float64, n*cols)
			for r := range n {
				for j := range cols {
					if layerPath == "wte" { // g ⊙ (E[ids] + ΔE[ids])
						want[r*cols+j] = g[j] * (W[ids[r]*cols+j] + dw.At(ids[r], j))
						continue
					}
					var xw, xdw, xdd float64 // x·W, xd·W, xd·ΔW
					for i := range in {
						xd := x[r*in+i] * mask[r*in+i]
						xw += x[r*in+i] * W[i*cols+j]
						xdw += xd * W[i*cols+j]
						xdd += xd * dw.At(i, j)
					}
					want[r*cols+j] = xw + lin.Bias.Values()[j] + (g[j]-1)*xdw + g[j]*xdd
				}
			}
			if e := maxRel(got, want); e > 1e-13 {
				t.Errorf("DoRA output differs from the formula by %.3g", e)
			}
		})
	}
}

// run1 compiles out, runs it once in training mode and returns its values.
func run1(t testing.TB, b *graph.Builder, out *graph.Node) []float64 {
	t.Helper()
	prog, err := b.Compile(nil, out)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	o, err := prog.Output(out)
	if err != nil {
		t.Fatal(err)
	}
	return o.Values()
}

// TestDoRAMergeUnmerge: merging gives W' = g ⊙ (W + ΔW), whose outputs equal
// the unmerged layer's; unmerging restores W; in both dtypes, on plain,
// fused and (untied) embedding layers.
func TestDoRAMergeUnmerge(t *testing.T) {
	for _, dt := range dtypes {
		h, m := mustInject(t, dt, lora.Config{R: 2, Alpha: 4, DoRA: true, Targets: []string{"q", "v", "c_fc", "wte"}, Seed: 3})
		train(t, h, 3, 0.5)
		unmerged := forward(t, h, false)
		before := snap(m.Params())
		if err := m.Merge(); err != nil {
			t.Fatal(err)
		}
		if e := maxRel(forward(t, h, false), unmerged); e > mergeTol(dt) {
			t.Errorf("%v: merged DoRA logits differ from unmerged by %.3g", dt, e)
		}
		if len(m.TrainableParams()) != 0 {
			t.Errorf("%v: %d parameters trainable while merged", dt, len(m.TrainableParams()))
		}
		if err := m.Unmerge(); err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params() {
			if e := maxRel(p.Values(), before[p].vals); e > mergeTol(dt) {
				t.Errorf("%v: %s after Unmerge(Merge(W)) differs by %.3g", dt, p.Name, e)
			}
		}
	}
}

// TestDoRARoutedRowsEqualAlone: rows routed to a DoRA adapter, to a plain
// one and to none get what they get alone.
func TestDoRARoutedRowsEqualAlone(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, DoRA: true, Targets: []string{"q", "v", "wte", "c_fc"}, Seed: 1})
	train(t, h, 2, 0.5)
	if err := m.AddAdapter("plain", lora.Config{R: 3, Targets: []string{"c_attn", "c_fc"}, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	_ = m.SetActive("plain")
	train(t, h, 2, 0.5)
	seqs := [][]int{{1, 4, 2, 9, 3}, {7, 7, 0, 5, 10}, {2, 2, 8, 1, 6}}
	items := []string{lora.DefaultAdapter, "", "plain"}
	var all []int
	var alone []float64
	for i, s := range seqs {
		if items[i] == "" {
			_ = m.Disable()
		} else {
			_ = m.Enable()
			_ = m.SetActive(items[i])
		}
		alone = append(alone, runIDs(t, h, s, 1)...)
		all = append(all, s...)
	}
	_ = m.Enable()
	names := []string{lora.DefaultAdapter, "plain"}
	b := graph.NewBuilder(graph.Float64, 7)
	idx, _ := lora.RowIndices(names, items, 5)
	if err := m.SetRowAdapters(b.IntConstant("rows", idx, len(idx)), names); err != nil {
		t.Fatal(err)
	}
	got := run1(t, b, h.logits(b, b.IntConstant("ids", all, len(all)), len(seqs)))
	m.ClearRowAdapters()
	if e := maxRel(got, alone); e > 1e-12 {
		t.Errorf("routed logits differ from each row alone by %.3g", e)
	}
}

// TestDoRAFiles: a DoRA adapter is saved as PEFT saves one ("use_dora":
// true, each layer's magnitude under "….lora_magnitude_vector", beside
// lora_A and lora_B; [out] for a fused layer in block form, [d] for an
// embedding) and loads back to the same outputs; PEFT's in-model spelling
// "….lora_magnitude_vector.weight" loads too; both at once are an error.
func TestDoRAFiles(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Alpha: 4, DoRA: true, Targets: []string{"q", "v", "c_fc", "wte"}, Seed: 3})
	train(t, h, 3, 0.5)
	want := forward(t, h, false)
	dir := filepath.Join(t.TempDir(), "dora")
	if err := m.Save(dir, lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	cfg := readJSON(t, filepath.Join(dir, lora.ConfigFile))
	if cfg["use_dora"] != true {
		t.Errorf("use_dora = %v", cfg["use_dora"])
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, lora.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	root := "base_model.model.transformer."
	for key, shape := range map[string][]int{
		"h.0.attn.c_attn.lora_magnitude_vector": {24}, "h.1.mlp.c_fc.lora_magnitude_vector": {32}, "wte.lora_magnitude_vector": {8},
	} {
		_, got, err := f.Float64s(root + key)
		if err != nil || len(got) != 1 || got[0] != shape[0] {
			t.Errorf("%s: shape %v, err %v; want %v", key, got, err, shape)
		}
	}
	ad, _ := m.Adapter("h.1.mlp.c_fc", lora.DefaultAdapter)
	if v, _, _ := f.Float64s(root + "h.1.mlp.c_fc.lora_magnitude_vector"); maxRel(v, ad.Magnitude.Values()) != 0 {
		t.Error("the saved magnitude is not the adapter's")
	}
	load := func(dir string) ([]float64, error) {
		h2 := newTiny(graph.Float64, 2, 1).untie()
		if _, err := lora.Load(h2, dir); err != nil {
			return nil, err
		}
		return h2.forward(false)
	}
	got, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bitEqual(got, want) {
		t.Errorf("reloaded DoRA adapter: logits differ by %.3g", maxRel(got, want))
	}
	// PEFT's in-model spelling of the key.
	suffixed := copyDir(t, dir)
	rewrite(t, filepath.Join(suffixed, lora.WeightsFile), func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i := range ts {
			if strings.HasSuffix(ts[i].Name, ".lora_magnitude_vector") {
				ts[i].Name += ".weight"
			}
		}
		return ts
	})
	if got, err := load(suffixed); err != nil || !bitEqual(got, want) {
		t.Errorf("magnitudes under ….lora_magnitude_vector.weight: err %v", err)
	}
	both := copyDir(t, dir)
	rewrite(t, filepath.Join(both, lora.WeightsFile), func(ts []safetensors.Tensor) []safetensors.Tensor {
		for _, tn := range ts {
			if strings.HasSuffix(tn.Name, "wte.lora_magnitude_vector") {
				tn.Name += ".weight"
				return append(ts, tn)
			}
		}
		return ts
	})
	if _, err := load(both); err == nil || !strings.Contains(err.Error(), "are the same magnitude vector") {
		t.Errorf("both spellings: err %v", err)
	}
	// A plain LoRA config over DoRA tensors is refused: unexpected tensors.
	plain := copyDir(t, dir)
	c := readJSON(t, filepath.Join(plain, lora.ConfigFile))
	c["use_dora"] = false
	writeJSON(t, filepath.Join(plain, lora.ConfigFile), c)
	if _, err := load(plain); err == nil || !strings.Contains(err.Error(), "lora_magnitude_vector") {
		t.Errorf("use_dora false with magnitudes: err %v", err)
	}
	raw, _ := json.Marshal(cfg)
	if !strings.Contains(string(raw), `"use_dora":true`) {
		t.Errorf("config %s", raw)
	}
	if _, err := os.Stat(filepath.Join(dir, lora.WeightsFile)); err != nil {
		t.Fatal(err)
	}
}

// TestDoRACannotBeCombined: a weighted combination of DoRA adapters is
// refused (their magnitudes do not combine linearly).
func TestDoRACannotBeCombined(t *testing.T) {
	_, m := mustInject(t, graph.Float64, lora.Config{R: 2, DoRA: true, Targets: []string{"c_fc"}})
	err := m.AddWeightedAdapter("w", []string{lora.DefaultAdapter}, []float64{1}, lora.CombineCat)
	if err == nil || !strings.Contains(err.Error(), "DoRA") {
		t.Errorf("combining a DoRA adapter: err %v", err)
	}
}
