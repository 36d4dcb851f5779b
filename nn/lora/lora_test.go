package lora_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"gonum.org/v1/gonum/mat"
)

// configCase is an adapter configuration the model-level tests run over.
type configCase struct {
	name string
	cfg  lora.Config
}

func configCases() []configCase {
	peft := lora.PEFTDefault()
	peft.R = 2
	paper := lora.PaperGPT2()
	paper.R = 2
	return []configCase{
		{"whole c_attn (PEFT default)", peft},
		{"q,v of c_attn (paper)", paper},
		{"embedding", lora.Config{R: 3, Alpha: 6, Targets: []string{"wte"}, Seed: 5}},
		{"all-linear rslora bias+ln_f", lora.Config{R: 2, Alpha: 4, RSLoRA: true, Dropout: 0.2, Targets: []string{lora.AllLinear},
			Bias: lora.BiasLoRAOnly, ModulesToSave: []string{"ln_f"}, Seed: 9}},
		{"c_fc gaussian", lora.Config{R: 2, Targets: []string{"c_fc"}, Init: lora.InitGaussian, Seed: 2}},
		{"c_attn[q,v] pissa", lora.Config{R: 2, Alpha: 4, Targets: []string{"c_attn[q,v]"}, Init: lora.InitPiSSA}},
		{"layers and patterns", lora.Config{R: 2, Targets: []string{"c_fc", "mlp.c_proj", "v"}, Layers: []int{1},
			RankPattern: map[string]int{"c_fc": 3}, AlphaPattern: map[string]float64{`mlp\.c_proj`: 5}, Seed: 4}},
	}
}

// TestInjectIsIdentity: with B = 0 (A = 0 for embeddings) a freshly
// injected model computes bit for bit what the base model computes, with
// dropout on or off.
func TestInjectIsIdentity(t *testing.T) {
	for _, dt := range dtypes {
		for _, c := range configCases() {
			if c.cfg.Init == lora.InitPiSSA {
				continue // moves the top-r part of W into A·B: equal up to rounding (TestPiSSA)
			}
			t.Run(dt.String()+"/"+c.name, func(t *testing.T) {
				h := newTiny(dt, 2, 1)
				want := forward(t, h, false)
				m, err := lora.Inject(h, c.cfg)
				if err != nil {
					t.Fatal(err)
				}
				for _, path := range mustPaths(t, m, lora.DefaultAdapter) { // ΔW = s·A·B = 0 at step 0
					dw, err := m.DeltaW(path, lora.DefaultAdapter)
					if err != nil {
						t.Fatal(err)
					}
					if n := mat.Norm(dw, 1); n != 0 {
						t.Errorf("%s: ΔW has norm %g at step 0", path, n)
					}
				}
				for _, training := range []bool{false, true} {
					if got := forward(t, h, training); !bitEqual(got, want) {
						t.Errorf("training=%v: injected logits differ from the base model's (max rel %.3g)", training, maxRel(got, want))
					}
				}
			})
		}
	}
}

// TestPiSSA: A·B holds the top-r SVD part of W, the base keeps the rest, so
// the model is unchanged up to rounding; and s·A·B + W_res = W.
func TestPiSSA(t *testing.T) {
	h := newTiny(graph.Float64, 2, 1)
	want := forward(t, h, false)
	w0 := h.attn[0].CAttn.(*nn.Linear).Weight.Values()
	cfg := lora.Config{R: 2, Alpha: 4, Targets: []string{"c_attn[q,v]", "c_fc"}, Init: lora.InitPiSSA}
	m, err := lora.Inject(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := forward(t, h, false); maxRel(got, want) > 1e-12 {
		t.Errorf("PiSSA model differs from the base by %.3g", maxRel(got, want))
	}
	wres := h.attn[0].CAttn.(*lora.Linear).Base.Weight.Values()
	dw, err := m.DeltaW("h.0.attn.c_attn", lora.DefaultAdapter)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w0 {
		if d := math.Abs(wres[i] + dw.RawMatrix().Data[i] - w0[i]); d > 1e-13 {
			t.Fatalf("W_res + ΔW differs from W by %g at %d", d, i)
		}
	}
	// The k block is untouched; the q block lost its top-2 singular part,
	// so its largest singular value is the third of the original block.
	for i := 0; i < 8; i++ {
		for j := 8; j < 16; j++ {
			if wres[i*24+j] != w0[i*24+j] {
				t.Fatalf("k block changed at [%d, %d]", i, j)
			}
		}
	}
	if _, err := lora.Inject(newTiny(graph.Float64, 1, 1), lora.Config{R: 9, Targets: []string{"c_attn[q]"}, Init: lora.InitPiSSA}); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("PiSSA rank 9 on an 8×8 block: err %v", err)
	}
	if _, err := lora.Inject(newTiny(graph.Float64, 1, 1), lora.Config{R: 2, Targets: []string{"wte"}, Init: lora.InitPiSSA}); err == nil || !strings.Contains(err.Error(), "linear layers") {
		t.Errorf("PiSSA on the embedding: err %v", err)
	}
}

// TestTrainingFreezesBase trains a few SGD steps: every frozen parameter
// stays bit-identical, the program differentiates exactly the model's
// trainable parameters, and those move.
func TestTrainingFreezesBase(t *testing.T) {
	for _, dt := range dtypes {
		for _, c := range configCases() {
			t.Run(dt.String()+"/"+c.name, func(t *testing.T) {
				h, m := mustInject(t, dt, c.cfg)
				before := snap(m.Params())
				trained := train(t, h, 3, 0.5)
				want := m.TrainableParams()
				if len(trained) != len(want) {
					t.Fatalf("program trains %d parameters, model marks %d", len(trained), len(want))
				}
				isTrained := map[*graph.Param]bool{}
				for i, p := range trained {
					if p != want[i] {
						t.Fatalf("trainable %d: program %s, model %s", i, p.Name, want[i].Name)
					}
					isTrained[p] = true
				}
				for _, p := range m.Params() {
					old := before[p].vals
					changed := !bitEqual(p.Values(), old)
					if !isTrained[p] && changed {
						t.Errorf("frozen %s changed", p.Name)
					}
					if isTrained[p] && !changed {
						t.Errorf("trainable %s did not move", p.Name)
					}
				}
				for _, path := range mustPaths(t, m, lora.DefaultAdapter) {
					l := m.Layer(path)
					var w *graph.Param
					switch x := l.(type) {
					case *lora.Linear:
						w = x.Base.Weight
					case *lora.Embedding:
						w = x.Base.Weight
					}
					if w.Trainable || isTrained[w] {
						t.Errorf("base weight %s is trainable", w.Name)
					}
				}
			})
		}
	}
}

func mustPaths(t testing.TB, m *lora.Model, name string) []string {
	t.Helper()
	p, err := m.Paths(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGradientsFiniteDifference checks the gradients of every A and B (and
// every extra) of the active adapter against central differences through
// the whole model, after training has made B non-zero, for every wrapper
// (Linear, fused q,v, Embedding) and initialisation (PiSSA applies to
// linear layers only). LoRA dropout is on; CheckGradients fixes its masks.
func TestGradientsFiniteDifference(t *testing.T) {
	cases := []configCase{
		{"Linear default", lora.Config{R: 2, Alpha: 3, Dropout: 0.1, Targets: []string{"c_fc", "c_proj"}, Seed: 1}},
		{"Linear gaussian", lora.Config{R: 2, Dropout: 0.1, Targets: []string{"mlp.c_proj"}, Init: lora.InitGaussian, Seed: 2}},
		{"Linear pissa", lora.Config{R: 2, Dropout: 0.1, Targets: []string{"c_fc"}, Init: lora.InitPiSSA}},
		{"fused q,v default", lora.Config{R: 2, Alpha: 4, Dropout: 0.1, Targets: []string{"q", "v"}, Seed: 3}},
		{"fused q,v gaussian", lora.Config{R: 2, Dropout: 0.1, Targets: []string{"c_attn[q,v]"}, Init: lora.InitGaussian, Seed: 4}},
		{"fused q,v pissa", lora.Config{R: 2, Targets: []string{"q", "v"}, Init: lora.InitPiSSA}},
		{"Embedding default", lora.Config{R: 2, Targets: []string{"wte"}, Seed: 5}},
		{"Embedding gaussian", lora.Config{R: 3, Targets: []string{"wte"}, Init: lora.InitGaussian, Seed: 6}},
		{"mixed with bias and ln_f", lora.Config{R: 2, Targets: []string{"wte", "q", "v", "c_fc"}, Bias: lora.BiasAll, ModulesToSave: []string{"ln_f"}, Seed: 7}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, m := mustInject(t, graph.Float64, c.cfg)
			train(t, h, 2, 0.3)
			params := m.TrainableParams()
			res, err := graph.CheckGradients(func(b *graph.Builder) (*graph.Node, error) {
				loss, _ := h.lossGraph(b)
				return loss, b.Err()
			}, params, graph.GradCheckOptions{MaxElems: 24, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for _, r := range res {
				if !r.OK(1e-7, 1e-5) {
					t.Errorf("gradient mismatch: %v", r)
				}
				if strings.Contains(r.Param, ".lora_") {
					checked++
					if r.MaxAbs == 0 && r.Symbolic == 0 && r.Numeric == 0 {
						t.Errorf("%s: all checked gradients are 0, the check proves nothing", r.Param)
					}
				}
			}
			if checked == 0 {
				t.Error("no LoRA parameter was checked")
			}
		})
	}
}

// TestMergeUnmerge: merged outputs equal unmerged ones, Unmerge restores W,
// and the merged flag guards both calls, for every wrapper.
func TestMergeUnmerge(t *testing.T) {
	for _, dt := range dtypes {
		for _, c := range configCases() {
			t.Run(dt.String()+"/"+c.name, func(t *testing.T) {
				h, m := mustInject(t, dt, c.cfg)
				train(t, h, 3, 0.5)
				unmerged := forward(t, h, false)
				before := snap(m.Params())
				if err := m.Merge(); err != nil {
					t.Fatal(err)
				}
				if !m.Merged() {
					t.Error("Merged() is false after Merge")
				}
				merged := forward(t, h, false)
				if e := maxRel(merged, unmerged); e > mergeTol(dt) {
					t.Errorf("merged logits differ from unmerged by %.3g (tol %g)", e, mergeTol(dt))
				}
				if err := m.Merge(); !errors.Is(err, lora.ErrAlreadyMerged) {
					t.Errorf("second Merge: err %v, want ErrAlreadyMerged", err)
				}
				if err := m.Unmerge(); err != nil {
					t.Fatal(err)
				}
				if err := m.Unmerge(); !errors.Is(err, lora.ErrNotMerged) {
					t.Errorf("second Unmerge: err %v, want ErrNotMerged", err)
				}
				for _, p := range m.Params() {
					if e := maxRel(p.Values(), before[p].vals); e > mergeTol(dt) {
						t.Errorf("%s after Unmerge(Merge(W)) differs by %.3g", p.Name, e)
					}
				}
				if e := maxRel(forward(t, h, false), unmerged); e > mergeTol(dt) {
					t.Errorf("logits after unmerge differ by %.3g", e)
				}
			})
		}
	}
}

// TestMergedGraphSkipsLoRA: a merged model's graph runs the base layers
// alone (no A or B in it), and merge-time guards refuse what would corrupt
// the weights.
func TestMergedGraphSkipsLoRA(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.PaperGPT2())
	if err := m.Merge(); err != nil {
		t.Fatal(err)
	}
	b := graph.NewBuilder(graph.Float64, 1)
	loss, _ := h.lossGraph(b)
	if _, err := b.Compile(loss); err != nil {
		t.Fatal(err)
	}
	for _, p := range b.Params() {
		if strings.Contains(p.Name, "lora_") {
			t.Errorf("merged graph uses %s", p.Name)
		}
	}
	for name, op := range map[string]func() error{
		"Disable":     m.Disable,
		"AddAdapter":  func() error { return m.AddAdapter("b", lora.PEFTDefault()) },
		"SetActive":   func() error { return m.AddWeightedAdapter("c", []string{"default"}, []float64{1}, "cat") },
		"Delete":      func() error { return m.DeleteAdapter(lora.DefaultAdapter) },
		"SetRows":     func() error { return m.SetRowAdapters(b.IntInput("rows", 10), []string{lora.DefaultAdapter}) },
		"LoadAdapter": func() error { return m.LoadAdapter(t.TempDir(), "x") },
	} {
		if err := op(); !errors.Is(err, lora.ErrAlreadyMerged) {
			t.Errorf("%s while merged: err %v, want ErrAlreadyMerged", name, err)
		}
	}
}

// TestDisableEnable: disabled adapters give the base model's outputs bit
// for bit (fully trained biases and modules back at their base values),
// and Enable gives the adapted outputs back.
func TestDisableEnable(t *testing.T) {
	for _, c := range configCases() {
		t.Run(c.name, func(t *testing.T) {
			h := newTiny(graph.Float64, 2, 1)
			base := forward(t, h, false)
			m, err := lora.Inject(h, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			train(t, h, 3, 0.5)
			adapted := forward(t, h, false)
			if bitEqual(adapted, base) {
				t.Fatal("training changed nothing")
			}
			if err := m.Disable(); err != nil {
				t.Fatal(err)
			}
			if len(m.TrainableParams()) != 0 {
				t.Errorf("%d parameters trainable while disabled", len(m.TrainableParams()))
			}
			got := forward(t, h, false)
			if c.cfg.Init == lora.InitPiSSA {
				// the base is W_res: disabled gives W_res's outputs, as PEFT
				if bitEqual(got, base) {
					t.Error("disabled PiSSA model equals the original base")
				}
			} else if !bitEqual(got, base) {
				t.Errorf("disabled logits differ from base by %.3g", maxRel(got, base))
			}
			if err := m.Enable(); err != nil {
				t.Fatal(err)
			}
			if got := forward(t, h, false); !bitEqual(got, adapted) {
				t.Errorf("re-enabled logits differ by %.3g", maxRel(got, adapted))
			}
		})
	}
}

// TestNamedAdapters: add, switch, delete; each adapter keeps its own copy
// of fully trained parameters.
func TestNamedAdapters(t *testing.T) {
	h := newTiny(graph.Float64, 2, 1)
	base := forward(t, h, false)
	m, err := lora.Inject(h, lora.Config{R: 2, Targets: []string{"q", "v"}, ModulesToSave: []string{"ln_f"}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	train(t, h, 3, 0.5)
	outA := forward(t, h, false)
	if err := m.AddAdapter("b", lora.Config{R: 3, Targets: []string{"c_fc", "wte"}, ModulesToSave: []string{"ln_f"}, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	if m.Active() != lora.DefaultAdapter {
		t.Fatalf("active %q after AddAdapter, want default", m.Active())
	}
	if got := forward(t, h, false); !bitEqual(got, outA) {
		t.Error("adding an inactive adapter changed the outputs")
	}
	if err := m.SetActive("b"); err != nil {
		t.Fatal(err)
	}
	if got := forward(t, h, false); !bitEqual(got, base) {
		t.Errorf("fresh adapter b: logits differ from base by %.3g", maxRel(got, base))
	}
	for _, p := range m.TrainableParams() {
		if strings.Contains(p.Name, ".default") {
			t.Errorf("%s trainable while b is active", p.Name)
		}
	}
	train(t, h, 3, 0.5)
	outB := forward(t, h, false)
	if err := m.SetActive(lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	if got := forward(t, h, false); !bitEqual(got, outA) {
		t.Errorf("back to default: logits differ by %.3g", maxRel(got, outA))
	}
	if err := m.SetActive("b"); err != nil {
		t.Fatal(err)
	}
	if got := forward(t, h, false); !bitEqual(got, outB) {
		t.Errorf("back to b: logits differ by %.3g", maxRel(got, outB))
	}
	if err := m.SetActive("nope"); !errors.Is(err, lora.ErrUnknownAdapter) {
		t.Errorf("SetActive(nope): %v", err)
	}
	if err := m.AddAdapter("b", lora.PEFTDefault()); err == nil {
		t.Error("a second adapter b was accepted")
	}
	if err := m.DeleteAdapter("b"); err != nil {
		t.Fatal(err)
	}
	if m.Active() != "" {
		t.Errorf("active %q after deleting it", m.Active())
	}
	if got := forward(t, h, false); !bitEqual(got, base) {
		t.Errorf("no active adapter: logits differ from base by %.3g", maxRel(got, base))
	}
	if fmt.Sprint(m.Adapters()) != "[default]" {
		t.Errorf("adapters %v", m.Adapters())
	}
	for _, p := range m.Params() {
		if strings.Contains(p.Name, ".b.") || strings.HasSuffix(p.Name, ".b") {
			t.Errorf("deleted adapter's %s still listed", p.Name)
		}
	}
	if err := m.SetActive(lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	if got := forward(t, h, false); !bitEqual(got, outA) {
		t.Errorf("default after deleting b: logits differ by %.3g", maxRel(got, outA))
	}
}

// TestUnload: Unload gives back the base model exactly; MergeAndUnload a
// plain model computing the adapted outputs.
func TestUnload(t *testing.T) {
	cfg := lora.Config{R: 2, Targets: []string{"q", "v", "wte"}, Bias: lora.BiasLoRAOnly, Seed: 3}
	h := newTiny(graph.Float64, 2, 1)
	layers := layersOf(h)
	base, before := forward(t, h, false), snap(h.Params())
	m, err := lora.Inject(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	train(t, h, 3, 0.5)
	adapted := forward(t, h, false)
	if err := m.Unload(); err != nil {
		t.Fatal(err)
	}
	if !sameLayers(layers, layersOf(h)) {
		t.Error("Unload did not restore the base layers")
	}
	if d := before.diff(h.Params()); d != "" {
		t.Errorf("after Unload: %s", d)
	}
	if got := forward(t, h, false); !bitEqual(got, base) {
		t.Error("unloaded logits differ from base")
	}
	if err := m.Merge(); !errors.Is(err, lora.ErrUnloaded) {
		t.Errorf("Merge after Unload: %v", err)
	}

	h2 := newTiny(graph.Float64, 2, 1)
	m2, err := lora.Inject(h2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	train(t, h2, 3, 0.5)
	if err := m2.MergeAndUnload(); err == nil || !strings.Contains(err.Error(), "MergeEmbeddings") {
		t.Fatalf("merging an adapter on the tied embedding: err %v", err)
	}
	m2.MergeEmbeddings = true // wrong for this tied model: the head changes too
	if err := m2.Merge(); err != nil {
		t.Fatal(err)
	}
	if e := maxRel(forward(t, h2, false), adapted); e < 1e-3 {
		t.Errorf("merging into a tied table left the logits unchanged (%.3g): the test model is not tied?", e)
	}
	if err := m2.Unmerge(); err != nil {
		t.Fatal(err)
	}
	cfg.Targets = []string{"q", "v"} // without the embedding
	h2 = newTiny(graph.Float64, 2, 1)
	if m2, err = lora.Inject(h2, cfg); err != nil {
		t.Fatal(err)
	}
	train(t, h2, 3, 0.5)
	adapted = forward(t, h2, false)
	if err := m2.MergeAndUnload(); err != nil {
		t.Fatal(err)
	}
	for path, l := range layersOf(h2) {
		if _, ok := l.(*nn.Linear); !ok && path != "wte" {
			t.Errorf("MergeAndUnload left a %T at %s", l, path)
		}
	}
	if len(h2.Params()) != len(h.Params()) {
		t.Error("MergeAndUnload left LoRA parameters in the host")
	}
	if e := maxRel(forward(t, h2, false), adapted); e > 1e-12 {
		t.Errorf("merged-and-unloaded logits differ from adapted by %.3g", e)
	}
}

// TestWeightedAdapters: "linear" with weights [1, 0] is the first adapter;
// "cat" is exactly Σ w_k·ΔW_k.
func TestWeightedAdapters(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Alpha: 5, Targets: []string{"q", "v", "c_fc", "wte"}, Seed: 1})
	train(t, h, 3, 0.5)
	outA := forward(t, h, false)
	if err := m.AddAdapter("b", lora.Config{R: 2, Alpha: 3, RSLoRA: true, Targets: []string{"q", "v", "c_fc"}, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	if err := m.SetActive("b"); err != nil {
		t.Fatal(err)
	}
	train(t, h, 3, 0.5)
	ab := []string{lora.DefaultAdapter, "b"}
	if err := m.AddWeightedAdapter("lin", ab, []float64{1, 0}, lora.CombineLinear); err != nil {
		t.Fatal(err)
	}
	if err := m.AddWeightedAdapter("cat", ab, []float64{0.7, -1.3}, lora.CombineCat); err != nil {
		t.Fatal(err)
	}
	for _, path := range mustPaths(t, m, lora.DefaultAdapter) {
		da, _ := m.DeltaW(path, lora.DefaultAdapter)
		lin, err := m.DeltaW(path, "lin")
		if err != nil {
			t.Fatal(err)
		}
		if e := maxRel(lin.RawMatrix().Data, da.RawMatrix().Data); e > 1e-13 {
			t.Errorf("%s: linear [1,0] ΔW differs from the first adapter's by %.3g", path, e)
		}
		want := data(da).scaled(0.7)
		if db, err := m.DeltaW(path, "b"); err == nil {
			want = want.plus(data(db).scaled(-1.3))
		}
		cat, _ := m.DeltaW(path, "cat")
		if e := maxRel(cat.RawMatrix().Data, want); e > 1e-13 {
			t.Errorf("%s: cat ΔW differs from 0.7·ΔW_a − 1.3·ΔW_b by %.3g", path, e)
		}
		ad, _ := m.Adapter(path, "cat")
		if path != "wte" && ad.Rank != 4 {
			t.Errorf("%s: cat rank %d, want 4", path, ad.Rank)
		}
	}
	if err := m.SetActive("lin"); err != nil {
		t.Fatal(err)
	}
	if e := maxRel(forward(t, h, false), outA); e > 1e-12 {
		t.Errorf("linear [1,0] logits differ from the first adapter's by %.3g", e)
	}
	// errors
	if err := m.AddAdapter("r3", lora.Config{R: 3, Targets: []string{"c_fc"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ads  []string
		ws   []float64
		kind string
		want string
	}{
		{[]string{"b", "r3"}, []float64{1, 1}, "linear", "equal ranks"},
		{ab, []float64{1, -1}, "linear", "w·s ≥ 0"},
		{ab, []float64{1}, "cat", "weights"},
		{ab, []float64{1, 1}, "svd", "combination"},
		{[]string{"zz"}, []float64{1}, "cat", "no such adapter"},
		{ab, []float64{1, math.NaN()}, "cat", "finite"},
	} {
		if err := m.AddWeightedAdapter("w", c.ads, c.ws, c.kind); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v %s: err %v, want %q", c.ads, c.ws, c.kind, err, c.want)
		}
	}
}

// vec is a small helper for ΔW arithmetic in tests.
type vec []float64

func data(d *mat.Dense) vec { return append(vec(nil), d.RawMatrix().Data...) }

func (v vec) scaled(s float64) vec {
	out := make(vec, len(v))
	for i, x := range v {
		out[i] = s * x
	}
	return out
}

func (v vec) plus(w vec) vec {
	out := make(vec, len(v))
	for i := range v {
		out[i] = v[i] + w[i]
	}
	return out
}

// TestRowAdapters: each sequence of a batch routed to its own adapter (or
// to none) gets exactly the logits it gets alone with that adapter active.
func TestRowAdapters(t *testing.T) {
	for _, dt := range dtypes {
		t.Run(dt.String(), func(t *testing.T) {
			h, m := mustInject(t, dt, lora.Config{R: 2, Targets: []string{"q", "v", "wte"}, Seed: 1})
			train(t, h, 2, 0.5)
			if err := m.AddAdapter("b", lora.Config{R: 3, Alpha: 2, Targets: []string{"c_attn", "c_fc"}, Seed: 2}); err != nil {
				t.Fatal(err)
			}
			_ = m.SetActive("b")
			train(t, h, 2, 0.5)
			seqs := [][]int{{1, 4, 2, 9, 3}, {7, 7, 0, 5, 10}, {2, 2, 8, 1, 6}, {3, 9, 9, 4, 0}}
			items := []string{"b", lora.DefaultAdapter, "", "b"}
			const T = 5
			// alone: each sequence with its adapter active (disabled for "")
			var want []float64
			for i, s := range seqs {
				if items[i] == "" {
					_ = m.Disable()
				} else {
					_ = m.Enable()
					_ = m.SetActive(items[i])
				}
				want = append(want, runIDs(t, h, s, 1)...)
			}
			_ = m.Enable()
			// routed: one batch
			b := graph.NewBuilder(dt, 7)
			rows := b.IntInput("rows", len(seqs)*T)
			if err := m.SetRowAdapters(rows, []string{lora.DefaultAdapter, "b"}); err != nil {
				t.Fatal(err)
			}
			var all []int
			for _, s := range seqs {
				all = append(all, s...)
			}
			out := h.logits(b, b.IntConstant("ids", all, len(all)), len(seqs))
			prog, err := b.Compile(nil, out)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := lora.RowIndices([]string{lora.DefaultAdapter, "b"}, items, T)
			if err != nil {
				t.Fatal(err)
			}
			if err := prog.SetInts(rows, idx); err != nil {
				t.Fatal(err)
			}
			if err := prog.Forward(); err != nil {
				t.Fatal(err)
			}
			got, _ := prog.Output(out)
			if e := maxRel(got.Values(), want); e > mergeTol(dt)/10 {
				t.Errorf("routed logits differ from each row alone by %.3g", e)
			}
			// the same program, routed differently
			idx, _ = lora.RowIndices([]string{lora.DefaultAdapter, "b"}, []string{"", "", "", ""}, T)
			_ = prog.SetInts(rows, idx)
			_ = prog.Forward()
			_ = m.Disable()
			base := runIDs(t, h, all, len(seqs))
			got, _ = prog.Output(out)
			if e := maxRel(got.Values(), base); e > mergeTol(dt)/10 {
				t.Errorf("all rows routed to −1 differ from the base by %.3g", e)
			}
			_ = m.Enable()
			m.ClearRowAdapters()
		})
	}
}

func runIDs(t *testing.T, h *tinyGPT, ids []int, batch int) []float64 {
	t.Helper()
	b := graph.NewBuilder(h.dt, 7)
	out := h.logits(b, b.IntConstant("ids", ids, len(ids)), batch)
	prog, err := b.Compile(nil, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	o, _ := prog.Output(out)
	return o.Values()
}

func TestRowAdapterErrors(t *testing.T) {
	_, m := mustInject(t, graph.Float64, lora.Config{R: 2, Targets: []string{"c_fc"}, Bias: lora.BiasLoRAOnly})
	b := graph.NewBuilder(graph.Float64, 1)
	rows := b.IntInput("rows", 10)
	if err := m.SetRowAdapters(rows, []string{lora.DefaultAdapter}); err == nil || !strings.Contains(err.Error(), "biases") {
		t.Errorf("routing an adapter that trains biases: %v", err)
	}
	if err := m.SetRowAdapters(rows, []string{"x"}); !errors.Is(err, lora.ErrUnknownAdapter) {
		t.Errorf("routing an unknown adapter: %v", err)
	}
	if err := m.SetRowAdapters(nil, []string{lora.DefaultAdapter}); err == nil {
		t.Error("nil rows accepted")
	}
	if _, err := lora.RowIndices([]string{"a"}, []string{"a", "b"}, 2); err == nil {
		t.Error("RowIndices with an unknown name")
	}
	if idx, _ := lora.RowIndices([]string{"a", "b"}, []string{"b", ""}, 2); fmt.Sprint(idx) != "[1 1 -1 -1]" {
		t.Errorf("RowIndices = %v", idx)
	}
}
