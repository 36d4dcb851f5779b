package nn_test

import (
	"fmt"
	"log"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
)

// An RMSNorm starts with weight 1: each row is divided by its root mean
// square.
func ExampleNewRMSNorm() {
	norm := nn.NewRMSNorm("model.norm", graph.Float64, 2, 1e-9)
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{3, 4}, 1, 2) // mean x² = 12.5
	fmt.Println(norm.Params(), guideRun(b, norm.Forward(x)))
	// Output: [model.norm.weight [2] float64] [0.8485 1.1314]
}

// The gated MLP computes down(SiLU(gate(x)) ⊙ up(x)).
func ExampleNewGatedMLP() {
	mlp := nn.NewGatedMLP("model.layers.0.mlp", graph.Float64, 1, 1, false)
	for _, p := range mlp.Params() {
		if err := p.SetValues([]float64{1}); err != nil { // every weight 1
			log.Fatal(err)
		}
	}
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{2}, 1, 1)
	fmt.Println(len(mlp.Params()), guideRun(b, mlp.Forward(x))) // SiLU(2)·2 = 2·2/(1+e⁻²)
	// Output: 3 [3.5232]
}

// A grouped-query attention block: 4 query heads share 2 key/value heads,
// queries and keys are rotated by their positions (and, here, normalised
// per head as in Qwen3) before the causal attention.
func ExampleNewGroupedAttention() {
	a := nn.NewGroupedAttention("model.layers.0.self_attn", graph.Float32, 16, nn.AttentionConfig{
		Heads: 4, KVHeads: 2, HeadDim: 4, QKNorm: true, NormEps: 1e-6, RoPE: graph.RoPEConfig{Theta: 10000}})
	for _, p := range a.Params() {
		fmt.Println(p.Name, p.Shape())
	}
	rng := graph.NewRand(1)
	for _, l := range []nn.Layer{a.QProj, a.KProj, a.VProj, a.OProj} {
		l.(*nn.Linear).Init(rng, 0.2)
	}
	b := graph.NewBuilder(graph.Float32, 1)
	x := b.Constant("x", make([]float64, 3*16), 3, 16)   // one sequence of 3 tokens
	pos := b.IntConstant("positions", []int{0, 1, 2}, 3) // their rotary positions
	y := a.Forward(x, pos, 1)
	fmt.Println(y.Shape())
	// Output:
	// model.layers.0.self_attn.q_proj.weight [16 16]
	// model.layers.0.self_attn.k_proj.weight [16 8]
	// model.layers.0.self_attn.v_proj.weight [16 8]
	// model.layers.0.self_attn.o_proj.weight [16 16]
	// model.layers.0.self_attn.q_norm.weight [4]
	// model.layers.0.self_attn.k_norm.weight [4]
	// [3 16]
}
