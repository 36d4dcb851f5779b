package lora_test

// Examples of package lora's entry points, as used in docs/guide.md. They
// share guideHost, a minimal nn.Host defined here.

import (
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"gonum.org/v1/gonum/mat"
)

// guideHost is a tiny model: a token embedding "wte" [6, 4], a fused
// projection "h.0.attn.c_attn" [4, 12] (q | k | v, GPT-2's layout) and a
// projection "h.0.mlp.c_fc" [12, 4]:
//
//	y = c_fc(GELU(c_attn(wte[ids])))        ids [N] → [N, 4]
type guideHost struct {
	wte, attn, fc nn.Layer
}

func newGuideHost(seed uint64) *guideHost {
	rng := graph.NewRand(seed)
	wte := nn.NewEmbedding("wte", graph.Float64, 6, 4)
	wte.Init(rng, 1)
	attn := nn.NewLinear("h.0.attn.c_attn", graph.Float64, 4, 12, true)
	attn.Init(rng, 0.5)
	fc := nn.NewLinear("h.0.mlp.c_fc", graph.Float64, 12, 4, true)
	fc.Init(rng, 0.5)
	return &guideHost{wte: wte, attn: attn, fc: fc}
}

func (h *guideHost) Params() []*graph.Param { return nn.Collect(h.wte, h.attn, h.fc) }

func (h *guideHost) Layers() []nn.NamedLayer {
	return []nn.NamedLayer{{Path: "wte", Layer: h.wte}, {Path: "h.0.attn.c_attn", Layer: h.attn}, {Path: "h.0.mlp.c_fc", Layer: h.fc}}
}

func (h *guideHost) SetLayer(path string, l nn.Layer) error {
	switch path {
	case "wte":
		h.wte = l
	case "h.0.attn.c_attn":
		h.attn = l
	case "h.0.mlp.c_fc":
		h.fc = l
	default:
		return fmt.Errorf("guideHost: no layer %q", path)
	}
	return nil
}

func (h *guideHost) forward(ids *graph.Node) *graph.Node {
	return h.fc.Forward(graph.GELU(h.attn.Forward(h.wte.Forward(ids))))
}

// outputs builds a new graph (graphs read the adapter state when they are
// built) and returns the outputs for ids 0 … 5.
func (h *guideHost) outputs() []float64 {
	b := graph.NewBuilder(graph.Float64, 1)
	y := h.forward(b.IntConstant("ids", []int{0, 1, 2, 3, 4, 5}, 6))
	prog, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	prog.SetTraining(false)
	if err := prog.Forward(); err != nil {
		log.Fatal(err)
	}
	out, _ := prog.Output(y)
	return out.Values()
}

// guideTrain stands in for training: it gives every B (or, for the
// embedding, A) of the active adapter random values, so that ΔW ≠ 0.
func guideTrain(m *lora.Model, seed uint64) {
	rng := graph.NewRand(seed)
	for _, p := range m.TrainableParams() {
		graph.InitNormal(p, rng, 0.3)
	}
}

// maxDiff is the largest |a_i − b_i|.
func maxDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// NewModel prepares a host for named adapters; the first one added becomes
// active, and only the active adapter trains.
func ExampleNewModel() {
	m, err := lora.NewModel(newGuideHost(1))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("trainable before adapters:", len(m.TrainableParams()))
	for _, name := range []string{"asm", "spec"} {
		if err := m.AddAdapter(name, lora.Config{R: 2, Targets: []string{"c_fc"}}); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(m.Adapters(), "active:", m.Active())
	for _, p := range m.TrainableParams() {
		fmt.Println(p)
	}
	// Output:
	// trainable before adapters: 0
	// [asm spec] active: asm
	// h.0.mlp.c_fc.lora_A.asm.weight [12 2] float64
	// h.0.mlp.c_fc.lora_B.asm.weight [2 4] float64
}

func ExampleModel_AddAdapter() {
	m, _ := lora.NewModel(newGuideHost(1))
	err := m.AddAdapter("qv", lora.Config{R: 4, Alpha: 8, Targets: []string{"q", "v"}})
	fmt.Println(err)
	paths, _ := m.Paths("qv")
	ad, _ := m.Adapter(paths[0], "qv")
	fmt.Println(paths, ad.Rank, ad.Scale, len(ad.Slices))
	fmt.Println(m.AddAdapter("bad", lora.Config{R: 4, Targets: []string{"c_proj"}}) != nil)
	// Output:
	// <nil>
	// [h.0.attn.c_attn] 4 2 2
	// true
}

// SetActive switches adapters: the next graph uses the new one, and its A
// and B become the trainable parameters (create optimizers after switching).
func ExampleModel_SetActive() {
	host := newGuideHost(1)
	m, _ := lora.NewModel(host)
	for i, name := range []string{"a", "b"} {
		if err := m.AddAdapter(name, lora.Config{R: 2, Targets: []string{"c_fc"}}); err != nil {
			log.Fatal(err)
		}
		if err := m.SetActive(name); err != nil {
			log.Fatal(err)
		}
		guideTrain(m, uint64(i+10))
	}
	outB := host.outputs()
	if err := m.SetActive("a"); err != nil {
		log.Fatal(err)
	}
	outA := host.outputs()
	fmt.Println(m.Active(), m.TrainableParams()[0].Name, maxDiff(outA, outB) > 0)
	fmt.Println(errors.Is(m.SetActive("c"), lora.ErrUnknownAdapter))
	// Output:
	// a h.0.mlp.c_fc.lora_A.a.weight true
	// true
}

// Disable gives the base model back without touching W; Enable undoes it.
func ExampleModel_Disable() {
	host := newGuideHost(1)
	base := host.outputs()
	m, _ := lora.Inject(host, lora.Config{R: 2, Targets: []string{lora.AllLinear}})
	guideTrain(m, 2)
	adapted := host.outputs()
	if err := m.Disable(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Disabled(), maxDiff(host.outputs(), base) == 0, len(m.TrainableParams()))
	if err := m.Enable(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Disabled(), maxDiff(host.outputs(), adapted) == 0)
	// Output:
	// true true 0
	// false true
}

// DeltaW is an adapter's update s·A·B of a layer's weight, [in, out]; on a
// fused layer adapted on q and v it is zero in the k block.
func ExampleModel_DeltaW() {
	m, _ := lora.Inject(newGuideHost(1), lora.Config{R: 2, Targets: []string{"q", "v"}})
	guideTrain(m, 3)
	dw, err := m.DeltaW("h.0.attn.c_attn", lora.DefaultAdapter)
	if err != nil {
		log.Fatal(err)
	}
	r, c := dw.Dims()
	block := func(lo int) float64 { return mat.Norm(dw.Slice(0, r, lo, lo+4), 2) }
	fmt.Println(r, c, block(0) > 0, block(4) == 0, block(8) > 0)
	// Output: 4 12 true true true
}

// "cat" stacks the adapters' factors, so the combined update is exactly the
// weighted sum of the updates.
func ExampleModel_AddWeightedAdapter() {
	m, _ := lora.NewModel(newGuideHost(1))
	for i, name := range []string{"a", "b"} {
		_ = m.AddAdapter(name, lora.Config{R: 2, Targets: []string{"c_fc"}})
		_ = m.SetActive(name)
		guideTrain(m, uint64(i+20))
	}
	err := m.AddWeightedAdapter("mix", []string{"a", "b"}, []float64{0.7, 0.3}, lora.CombineCat)
	fmt.Println(err, m.Adapters())
	path := "h.0.mlp.c_fc"
	da, _ := m.DeltaW(path, "a")
	db, _ := m.DeltaW(path, "b")
	mix, _ := m.DeltaW(path, "mix")
	var want mat.Dense
	want.Scale(0.7, da)
	var part mat.Dense
	part.Scale(0.3, db)
	want.Add(&want, &part)
	ad, _ := m.Adapter(path, "mix")
	fmt.Println("rank", ad.Rank, "ΔW_mix = 0.7·ΔW_a + 0.3·ΔW_b:", mat.EqualApprox(mix, &want, 1e-12))
	// Output:
	// <nil> [a b mix]
	// rank 4 ΔW_mix = 0.7·ΔW_a + 0.3·ΔW_b: true
}

func ExampleModel_DeleteAdapter() {
	m, _ := lora.NewModel(newGuideHost(1))
	_ = m.AddAdapter("a", lora.Config{R: 2, Targets: []string{"c_fc"}})
	_ = m.AddAdapter("b", lora.Config{R: 2, Targets: []string{"c_fc"}})
	fmt.Println(m.DeleteAdapter("a"), m.Adapters(), m.Active() == "")
	// Output: <nil> [b] true
}

// Per-row adapters: one batch, each row with its own adapter (or none),
// each computed as if it ran alone.
func ExampleModel_SetRowAdapters() {
	host := newGuideHost(1)
	m, _ := lora.NewModel(host)
	alone := map[string][]float64{"": host.outputs()}
	for i, name := range []string{"a", "b"} {
		_ = m.AddAdapter(name, lora.Config{R: 2, Targets: []string{lora.AllLinear}})
		_ = m.SetActive(name)
		guideTrain(m, uint64(i+30))
		alone[name] = host.outputs()
	}

	// Six rows (ids 0 … 5), in three items of two rows: a, base, b.
	b := graph.NewBuilder(graph.Float64, 1)
	names := []string{"a", "b"}
	idx, _ := lora.RowIndices(names, []string{"a", "", "b"}, 2)
	rows := b.IntConstant("rows", idx, 6)
	if err := m.SetRowAdapters(rows, names); err != nil {
		log.Fatal(err)
	}
	y := host.forward(b.IntConstant("ids", []int{0, 1, 2, 3, 4, 5}, 6))
	defer m.ClearRowAdapters() // after which this program would be stale (graph.ErrStale)
	prog, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Forward(); err != nil {
		log.Fatal(err)
	}
	out, _ := prog.Output(y)
	got := out.Values()
	for item, name := range []string{"a", "", "b"} {
		lo, hi := 8*item, 8*item+8 // two rows of width 4
		fmt.Printf("rows %d-%d as %q alone: %v\n", 2*item, 2*item+1, name, maxDiff(got[lo:hi], alone[name][lo:hi]) < 1e-12)
	}
	// Output:
	// rows 0-1 as "a" alone: true
	// rows 2-3 as "" alone: true
	// rows 4-5 as "b" alone: true
}

// MergeAndUnload bakes the adapter into the weights and gives the host its
// plain layers back.
func ExampleModel_MergeAndUnload() {
	host := newGuideHost(1)
	m, _ := lora.Inject(host, lora.Config{R: 2, Targets: []string{"q", "v", "c_fc"}})
	guideTrain(m, 4)
	adapted := host.outputs()
	if err := m.MergeAndUnload(); err != nil {
		log.Fatal(err)
	}
	_, plain := host.attn.(*nn.Linear)
	fmt.Println(plain, maxDiff(host.outputs(), adapted) < 1e-12, len(host.Params()))
	fmt.Println(errors.Is(m.Merge(), lora.ErrUnloaded))
	// Output:
	// true true 5
	// true
}

// Unload removes every adapter and restores the base model.
func ExampleModel_Unload() {
	host := newGuideHost(1)
	base := host.outputs()
	m, _ := lora.Inject(host, lora.Config{R: 2, Targets: []string{"c_attn", "c_fc"}})
	guideTrain(m, 5)
	if err := m.Unload(); err != nil {
		log.Fatal(err)
	}
	_, plain := host.fc.(*nn.Linear)
	fmt.Println(plain, maxDiff(host.outputs(), base) == 0)
	// Output: true true
}

func ExampleModel_Unmerge() {
	host := newGuideHost(1)
	m, _ := lora.Inject(host, lora.Config{R: 2, Targets: []string{"c_fc"}})
	guideTrain(m, 6)
	w := host.Params()[3].Values() // h.0.mlp.c_fc.weight
	_ = m.Merge()
	err := m.Unmerge() // W ← W − s·A·B
	fmt.Println(err, m.Merged(), maxDiff(host.Params()[3].Values(), w) < 1e-12)
	fmt.Println(errors.Is(m.Unmerge(), lora.ErrNotMerged))
	// Output:
	// <nil> false true
	// true
}

// LoadAdapter puts saved adapters onto a model under any names.
func ExampleModel_LoadAdapter() {
	dir, err := os.MkdirTemp("", "guide-adapters")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	trained := newGuideHost(1)
	m, _ := lora.Inject(trained, lora.Config{R: 2, Targets: []string{"q", "v"}})
	guideTrain(m, 7)
	if err := m.Save(filepath.Join(dir, "qv"), lora.DefaultAdapter); err != nil {
		log.Fatal(err)
	}

	fresh := newGuideHost(1) // the same base weights
	m2, _ := lora.NewModel(fresh)
	for _, name := range []string{"first", "second"} {
		if err := m2.LoadAdapter(filepath.Join(dir, "qv"), name); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(m2.Adapters(), m2.Active(), maxDiff(fresh.outputs(), trained.outputs()) == 0)
	fmt.Println(m2.LoadAdapter(filepath.Join(dir, "missing"), "x") != nil)
	// Output:
	// [first second] first true
	// true
}

// Load is Inject from a saved adapter folder.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "guide-load")
	defer os.RemoveAll(dir)
	m, _ := lora.Inject(newGuideHost(1), lora.Config{R: 3, Alpha: 6, Targets: []string{"c_fc"}})
	_ = m.Save(dir, lora.DefaultAdapter)

	loaded, err := lora.Load(newGuideHost(1), dir)
	if err != nil {
		log.Fatal(err)
	}
	cfg, _ := loaded.Config(lora.DefaultAdapter)
	fmt.Println(loaded.Active(), cfg.R, cfg.Alpha, cfg.Targets)
	// Output: default 3 6 [c_fc]
}

func ExampleConfig() {
	cfg := lora.Config{R: 16, Alpha: 32, Targets: []string{"q", "v"}}
	fmt.Println(cfg.Validate(), cfg.Scale(16, 32)) // α/r
	cfg.RSLoRA = true
	fmt.Println(cfg.Scale(16, 32)) // α/√r
	fmt.Println(lora.Config{R: 4, Dropout: 1, Targets: []string{"q"}}.Validate() != nil)
	// Output:
	// <nil> 2
	// 8
	// true
}

func ExampleConfig_Validate() {
	fmt.Println(lora.Config{R: -1}.Validate() != nil) // rank < 1
	fmt.Println(lora.Config{}.Validate())             // the zero Config: r = 8, α = 8 on all-linear
	// Output:
	// true
	// <nil>
}

func ExamplePaperGPT2() {
	c := lora.PaperGPT2()
	fmt.Println(c.R, c.Alpha, c.Targets, c.Dropout, c.Scale(c.R, c.Alpha))
	// Output: 4 32 [q v] 0.1 8
}

func ExamplePEFTDefault() {
	c := lora.PEFTDefault()
	fmt.Println(c.R, c.Alpha, c.Targets)
	// Output: 8 8 [c_attn]
}

func ExampleGPT2FusedParts() {
	fmt.Println(lora.GPT2FusedParts())
	// Output: map[c_attn:[q k v]]
}

// Linear is the wrapper Inject puts in place of a projection.
func ExampleLinear() {
	host := newGuideHost(1)
	m, _ := lora.Inject(host, lora.Config{R: 2, Targets: []string{"q", "v"}})
	l := m.Layer("h.0.attn.c_attn").(*lora.Linear)
	fmt.Println(l.Path(), l.Parts, l.Base.Weight, l.Merged() == "")
	for _, s := range l.Adapter(lora.DefaultAdapter).Slices {
		fmt.Println(s.Part, s.Offset, s.Width, s.A.Shape(), s.B.Shape())
	}
	fmt.Println(len(l.Params()), len(l.Adapters()))
	// Output:
	// h.0.attn.c_attn [q k v] h.0.attn.c_attn.weight [4 12] float64 true
	// q 0 4 [4 2] [2 4]
	// v 8 4 [4 2] [2 4]
	// 6 1
}

// An embedding is adapted with A [V, r] looked up by id; A starts at zero.
func ExampleEmbedding() {
	host := newGuideHost(1)
	base := host.outputs()
	m, _ := lora.Inject(host, lora.Config{R: 2, Targets: []string{"wte"}})
	e := m.Layer("wte").(*lora.Embedding)
	s := e.Adapter(lora.DefaultAdapter).Slices[0]
	fmt.Println(e.Path(), s.A.Shape(), s.B.Shape(), maxDiff(host.outputs(), base) == 0)
	// Output: wte [6 2] [2 4] true
}

// PiSSA starts A and B from the top singular directions of W and keeps the
// rest as the frozen base, so the adapted model still computes the base
// model's outputs.
func ExampleInitMode() {
	host := newGuideHost(1)
	base := host.outputs()
	w := host.Params()[3].Values() // h.0.mlp.c_fc.weight
	_, err := lora.Inject(host, lora.Config{R: 2, Targets: []string{"c_fc"}, Init: lora.InitPiSSA})
	fmt.Println(err, maxDiff(host.outputs(), base) < 1e-12, maxDiff(host.Params()[3].Values(), w) > 0.01)
	// Output: <nil> true true
}

// BiasLoRAOnly trains the biases of the wrapped layers with the adapter.
func ExampleBiasMode() {
	m, _ := lora.Inject(newGuideHost(1), lora.Config{R: 2, Targets: []string{"c_fc"}, Bias: lora.BiasLoRAOnly})
	for _, p := range m.TrainableParams() {
		fmt.Println(p.Name)
	}
	// Output:
	// h.0.mlp.c_fc.bias
	// h.0.mlp.c_fc.lora_A.default.weight
	// h.0.mlp.c_fc.lora_B.default.weight
}

// The paper's Figure 3 grid: φ(A₁, A₂, i, j) for every i ≤ r₁, j ≤ r₂.
func ExampleSubspaceSimilarityGrid() {
	a1 := mat.NewDense(4, 2, []float64{ // spans e₁, e₂
		1, 0,
		0, 1,
		0, 0,
		0, 0})
	a2 := mat.NewDense(4, 3, []float64{ // spans e₁ (first), then e₃, e₄
		2, 0, 0,
		0, 0, 0,
		0, 1, 0,
		0, 0, 1})
	// Row i = 2 (e₁, e₂): j = 1 finds e₁, so φ = 1/1; j = 2, 3 add e₃, e₄,
	// orthogonal, and φ = 1/min(i, j) = 1/2.
	grid, err := lora.SubspaceSimilarityGrid(a1, a2)
	if err != nil {
		log.Fatal(err)
	}
	for _, row := range grid {
		fmt.Printf("%.2f\n", row)
	}
	// Output:
	// [1.00 1.00 1.00]
	// [1.00 0.50 0.50]
}
