package graph_test

// Examples of the ops Llama-family models are built from.

import (
	"fmt"
	"log"

	"github.com/golora/golora/graph"
)

func ExampleRMSNorm() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3}, 1, 3) // mean x² = 14/3
	w := b.Constant("w", []float64{1, 1, 2}, 3)
	out := guideForward(b, graph.RMSNorm(x, w, 1e-6))
	fmt.Println(round4(out[0])) // w·x/√(14/3)
	// Output: [0.4629 0.9258 2.7775]
}

// Per-head normalisation (Qwen3's q_norm): a weight of width hd normalises
// each head of a row on its own.
func ExampleRMSNorm_perHead() {
	b := graph.NewBuilder(graph.Float64, 1)
	q := b.Constant("q", []float64{3, 4, 0, 5}, 1, 4) // two heads of width 2
	w := b.Constant("w", []float64{1, 1}, 2)
	out := guideForward(b, graph.RMSNorm(q, w, 1e-9))
	fmt.Println(round4(out[0])) // [3 4]/√12.5 and [0 5]/√12.5
	// Output: [0.8485 1.1314 0 1.4142]
}

// With a head of width 2 the only frequency is 1: position p rotates the
// pair (x₀, x₁) by p radians.
func ExampleRoPE() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 0, 1, 0, 1, 0}, 3, 2) // three tokens, one head
	pos := b.IntConstant("pos", []int{0, 1, 2}, 3)
	out := guideForward(b, graph.RoPE(x, pos, 2, graph.RoPEConfig{Theta: 10000}))
	fmt.Println(round4(out[0])) // (cos p, sin p)
	// Output: [1 0 0.5403 0.8415 -0.4161 0.9093]
}

func ExampleRoPEConfig_InvFreq() {
	plain, _ := graph.RoPEConfig{Theta: 10000}.InvFreq(4)
	linear, _ := graph.RoPEConfig{Theta: 10000, Type: "linear", Factor: 2}.InvFreq(4)
	_, err := graph.RoPEConfig{Theta: 10000, Type: "yarn", Factor: 4}.InvFreq(4)
	fmt.Println(plain, linear)
	fmt.Println(err)
	// Output:
	// [1 0.01] [0.5 0.005]
	// graph: rope: scaling rule "yarn" is not supported (golora implements default, linear and llama3)
}

func ExampleSiLU() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{-1, 0, 1, 3}, 4)
	out := guideForward(b, graph.SiLU(x))
	fmt.Println(round4(out[0])) // x/(1 + e^(−x))
	// Output: [-0.2689 0 0.7311 2.8577]
}

// Two query heads share one key/value head. Head 0's queries are zero, so
// it averages the values it may see; head 1's are large, so it picks the
// value of the largest key, the latest one.
func ExampleGroupedQueryAttention() {
	b := graph.NewBuilder(graph.Float64, 1)
	q := b.Constant("q", []float64{0, 20, 0, 20, 0, 20}, 3, 2) // [T=3, 2 heads·hd 1]
	k := b.Constant("k", []float64{1, 2, 3}, 3, 1)             // [T, 1 head·hd 1]
	v := b.Constant("v", []float64{3, 6, 0}, 3, 1)
	out := guideForward(b, graph.GroupedQueryAttention(q, k, v, 1, 2, 1))
	fmt.Println(round4(out[0])) // rows t: [mean v₀…v_t, v_t]
	// Output: [3 3 4.5 6 3 0]
}

// Incremental decoding with grouped-query attention: one token per call;
// the outputs equal GroupedQueryAttention over the whole sequence.
func ExampleCachedGroupedQueryAttention() {
	qs := []float64{0, 20, 0, 20, 0, 20}
	ks, vs := []float64{1, 2, 3}, []float64{3, 6, 0}
	kc := graph.NewParam("k_cache", graph.Float64, 4, 1) // C = 4 positions, 1 kv head of width 1
	vc := graph.NewParam("v_cache", graph.Float64, 4, 1)
	kc.Trainable, vc.Trainable = false, false

	b := graph.NewBuilder(graph.Float64, 1)
	q, k, v := b.Input("q", 1, 2), b.Input("k", 1, 1), b.Input("v", 1, 1)
	pos := b.IntInput("pos", 1)
	y := graph.CachedGroupedQueryAttention(q, k, v, b.Param(kc), b.Param(vc), pos, 2, 1)
	step, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer step.Close()
	var out []float64
	for t := range 3 {
		for _, in := range []struct {
			n *graph.Node
			v []float64
		}{{q, qs[2*t : 2*t+2]}, {k, ks[t : t+1]}, {v, vs[t : t+1]}} {
			if err := step.SetInput(in.n, in.v); err != nil {
				log.Fatal(err)
			}
		}
		if err := step.SetInts(pos, []int{t}); err != nil {
			log.Fatal(err)
		}
		if err := step.Forward(); err != nil {
			log.Fatal(err)
		}
		o, _ := step.Output(y)
		out = append(out, o.Values()...)
	}
	fmt.Println(round4(out))
	// Output: [3 3 4.5 6 3 0]
}
