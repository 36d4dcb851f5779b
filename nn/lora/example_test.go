package lora_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"gonum.org/v1/gonum/mat"
)

// The examples use tinyGPT (host_test.go): a two-block GPT of width 8 with
// a fused c_attn [8, 24] (q | k | v) per block that implements nn.Host.

func ExampleInject() {
	host := newTiny(graph.Float32, 2, 1)
	m, err := lora.Inject(host, lora.PaperGPT2()) // r = 4, α = 32 on q and v
	if err != nil {
		fmt.Println(err)
		return
	}
	paths, _ := m.Paths(lora.DefaultAdapter)
	fmt.Println(paths)
	ad, _ := m.Adapter("h.0.attn.c_attn", lora.DefaultAdapter)
	for _, s := range ad.Slices {
		fmt.Printf("%s: columns [%d, %d), A %v, B %v, scale %v\n", s.Part, s.Offset, s.Offset+s.Width, s.A.Shape(), s.B.Shape(), ad.Scale)
	}
	// Output:
	// [h.0.attn.c_attn h.1.attn.c_attn]
	// q: columns [0, 8), A [8 4], B [4 8], scale 8
	// v: columns [16, 24), A [8 4], B [4 8], scale 8
}

func ExampleModel_Report() {
	m, _ := lora.Inject(newTiny(graph.Float32, 2, 1), lora.PaperGPT2())
	// 2 blocks × (q, v) × (A [8, 4] + B [4, 8]) = 256 trainable parameters
	fmt.Println(m.Report())
	// Output:
	// trainable params: 256 || all params: 2,104 || trainable%: 12.1673
}

func ExampleParamReport() {
	// PEFT's line for GPT-2 small with r = 8 on c_attn.
	fmt.Println(lora.ParamReport{Trainable: 294912, All: 124734720})
	// Output:
	// trainable params: 294,912 || all params: 124,734,720 || trainable%: 0.2364
}

func ExampleModel_Merge() {
	host := newTiny(graph.Float64, 2, 1)
	m, _ := lora.Inject(host, lora.Config{R: 2, Alpha: 4, Targets: []string{"q", "v"}})
	if _, err := host.train(3, 0.5); err != nil { // a few SGD steps so that B ≠ 0
		fmt.Println(err)
		return
	}
	unmerged, _ := host.forward(false)

	if err := m.Merge(); err != nil { // W ← W + s·A·B
		fmt.Println(err)
		return
	}
	merged, _ := host.forward(false)
	fmt.Printf("merged = unmerged: %v\n", maxRel(merged, unmerged) < 1e-12)
	fmt.Println(m.Merge())
	fmt.Println(m.Unmerge(), m.Unmerge())
	// Output:
	// merged = unmerged: true
	// lora: merge: an adapter is already merged into the base weights
	// <nil> lora: unmerge: no adapter is merged
}

func ExampleModel_Save() {
	host := newTiny(graph.Float32, 2, 1)
	m, _ := lora.Inject(host, lora.PaperGPT2())
	dir, _ := os.MkdirTemp("", "adapter")
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "qv")
	if err := m.Save(out, lora.DefaultAdapter); err != nil {
		fmt.Println(err)
		return
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// A fresh copy of the base model takes the adapter back.
	m2, err := lora.Load(newTiny(graph.Float32, 2, 1), out)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, _ := m2.Config(lora.DefaultAdapter)
	fmt.Println(cfg.Targets, cfg.R, cfg.Alpha, m2.Report().Trainable)
	// Output:
	// adapter_config.json
	// adapter_model.safetensors
	// [q v] 4 32 256
}

func ExampleRowIndices() {
	// 3 sequences of 4 tokens: the first and last use adapter "b", the
	// middle one the base model.
	idx, _ := lora.RowIndices([]string{"a", "b"}, []string{"b", "", "b"}, 4)
	fmt.Println(idx)
	// Output:
	// [1 1 1 1 -1 -1 -1 -1 1 1 1 1]
}

func ExampleSubspaceSimilarity() {
	// golora's A is [in, r]: here in = 3, r = 2 and r = 1.
	a1 := mat.NewDense(3, 2, []float64{
		1, 0,
		0, 1,
		0, 0})
	a2 := mat.NewDense(3, 1, []float64{1, 0, 1}) // (e₁ + e₃)/√2 direction
	phi, _ := lora.SubspaceSimilarity(a1, a2, 2, 1)
	fmt.Printf("φ = %.2f\n", phi) // ‖U₁ᵀu₂‖² / min(2, 1) = (1/√2)² = 0.5
	self, _ := lora.SubspaceSimilarity(a1, a1, 2, 2)
	fmt.Printf("φ(A, A) = %.2f\n", self)
	// Output:
	// φ = 0.50
	// φ(A, A) = 1.00
}

func ExampleAmplification() {
	w := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
	deltaW := mat.NewDense(2, 2, []float64{1, 1, 1, 1}) // 2·uvᵀ, u = v = (1, 1)/√2
	f, _ := lora.Amplification(w, deltaW, 1)
	fmt.Printf("‖ΔW‖_F / ‖uᵀWv‖ = 2 / 5 = %.1f\n", f)
	// Output:
	// ‖ΔW‖_F / ‖uᵀWv‖ = 2 / 5 = 0.4
}

func ExampleSpectrum() {
	// A rank-1 update s·A·B, A [3, 1], B [1, 2], s = 2.
	a := mat.NewDense(3, 1, []float64{1, 2, 2})
	b := mat.NewDense(1, 2, []float64{3, 4})
	var dw mat.Dense
	dw.Mul(a, b)
	dw.Scale(2, &dw)
	s, _ := lora.Spectrum(&dw)
	for i := range s {
		s[i] = math.Round(s[i]*1e9) / 1e9
	}
	fmt.Println(s) // 2·‖a‖·‖b‖ = 2·3·5
	// Output:
	// [30 0]
}

// A DoRA adapter (Config.DoRA) trains a magnitude per output column beside
// A and B; it starts equal to the column norms of W, so the model is
// unchanged until it trains.
func ExampleInject_dora() {
	lin := nn.NewLinear("proj", graph.Float64, 2, 2, false)
	_ = lin.Weight.SetValues([]float64{3, 0, 4, 1})                        // columns (3, 4) and (0, 1)
	host := &listHost{layers: []nn.NamedLayer{{Path: "proj", Layer: lin}}} // (config_test.go)
	m, err := lora.Inject(host, lora.Config{R: 1, DoRA: true, Targets: []string{"proj"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ad, _ := m.Adapter("proj", lora.DefaultAdapter)
	fmt.Println(ad.Magnitude.Name, ad.Magnitude.Values())
	fmt.Println(m.Report())
	// Output:
	// proj.lora_magnitude_vector.default.weight [5 1]
	// trainable params: 6 || all params: 10 || trainable%: 60.0000
}
