package nn_test

// Examples of package nn's entry points, as used in docs/guide.md.

import (
	"fmt"
	"log"
	"math"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
)

// guideRun compiles an inference program for y, runs it and returns y's
// values rounded to 4 decimals.
func guideRun(b *graph.Builder, y *graph.Node) []float64 {
	prog, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Forward(); err != nil {
		log.Fatal(err)
	}
	out, err := prog.Output(y)
	if err != nil {
		log.Fatal(err)
	}
	v := out.Values()
	for i := range v {
		v[i] = math.Round(v[i]*1e4) / 1e4
	}
	return v
}

// A Linear layer owns its weight [in, out] and bias [out], named after its
// path; New gives zeros and Init draws the weight from a seeded source.
func ExampleNewLinear() {
	fc := nn.NewLinear("h.0.mlp.c_fc", graph.Float64, 2, 3, true)
	fmt.Println(fc.Params(), fc.In(), fc.Out())
	fc.Init(graph.NewRand(1), 0.02) // GPT-2's std; the bias stays 0
	if err := fc.Weight.SetValues([]float64{1, 0, 1, 0, 1, 1}); err != nil {
		log.Fatal(err)
	}
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{2, 3}, 1, 2)
	fmt.Println(guideRun(b, fc.Forward(x))) // x·W + b
	// Output:
	// [h.0.mlp.c_fc.weight [2 3] float64 h.0.mlp.c_fc.bias [3] float64] 2 3
	// [2 3 5]
}

func ExampleNewEmbedding() {
	wte := nn.NewEmbedding("wte", graph.Float32, 5, 2) // 5 tokens of width 2
	if err := wte.Weight.SetValues([]float64{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}); err != nil {
		log.Fatal(err)
	}
	b := graph.NewBuilder(graph.Float32, 1)
	ids := b.IntConstant("ids", []int{4, 1}, 2)
	fmt.Println(wte.Params(), guideRun(b, wte.Forward(ids)))
	// Output: [wte.weight [5 2] float32] [4 4 1 1]
}

func ExampleNewLayerNorm() {
	ln := nn.NewLayerNorm("ln_f", graph.Float64, 4, 1e-5) // γ = 1, β = 0
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 1, 3, 3}, 1, 4) // μ = 2, σ = 1
	fmt.Println(ln.Weight.Values(), guideRun(b, ln.Forward(x)))
	// Output: [1 1 1 1] [-1 -1 1 1]
}

// An MLP is GPT-2's feed-forward block: c_proj(GELU(c_fc(x))). Its
// projections are nn.Layer values, which LoRA can replace.
func ExampleNewMLP() {
	mlp := nn.NewMLP("h.0.mlp", graph.Float32, 8, 32, 0)
	for _, p := range mlp.Params() {
		fmt.Println(p)
	}
	_, isLinear := mlp.CFc.(*nn.Linear)
	fmt.Println(isLinear)
	// Output:
	// h.0.mlp.c_fc.weight [8 32] float32
	// h.0.mlp.c_fc.bias [32] float32
	// h.0.mlp.c_proj.weight [32 8] float32
	// h.0.mlp.c_proj.bias [8] float32
	// true
}

// CausalSelfAttention is c_proj(attention(c_attn(x))) over batch sequences
// laid out row by row. Its first position only sees itself.
func ExampleNewCausalSelfAttention() {
	attn := nn.NewCausalSelfAttention("h.0.attn", graph.Float64, 4, 2, 0, 0)
	fmt.Println(nn.Collect(attn)[0], attn.Heads)
	rng := graph.NewRand(1)
	attn.CAttn.(*nn.Linear).Init(rng, 0.5)
	attn.CProj.(*nn.Linear).Init(rng, 0.5)

	// Two sequences of 3 tokens; the second sequence starts like the first.
	x := []float64{
		1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,
		1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1}
	b := graph.NewBuilder(graph.Float64, 1)
	y := guideRun(b, attn.Forward(b.Constant("x", x, 6, 4), 2)) // [2·3, 4]
	same := func(r1, r2 int) bool { return fmt.Sprint(y[4*r1:4*r1+4]) == fmt.Sprint(y[4*r2:4*r2+4]) }
	fmt.Println("first positions equal:", same(0, 3), " second positions equal:", same(1, 4))
	// Output:
	// h.0.attn.c_attn.weight [4 12] float64 2
	// first positions equal: true  second positions equal: false
}

// Dropout is only active while a program is training.
func ExampleDropout() {
	drop := &nn.Dropout{P: 0.5}
	b := graph.NewBuilder(graph.Float64, 3)
	y := drop.Forward(b.Constant("x", []float64{1, 1, 1, 1}, 4))
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
	fmt.Println(drop.Params(), out.F64)
	// Output: [] [1 1 1 1]
}

func ExampleCollect() {
	ln := nn.NewLayerNorm("ln_1", graph.Float32, 4, 1e-5)
	fc := nn.NewLinear("fc", graph.Float32, 4, 4, false)
	ps := nn.Collect(ln, fc)
	fmt.Println(len(ps), ps[2], graph.CountParams(ps))
	// Output: 3 fc.weight [4 4] float32 24
}

func ExampleSetTrainable() {
	fc := nn.NewLinear("fc", graph.Float32, 4, 4, true)
	nn.SetTrainable(fc.Params(), false) // freeze the layer
	fmt.Println(fc.Weight.Trainable, fc.Bias.Trainable)
	// Output: false false
}

func ExampleParamMap() {
	fc := nn.NewLinear("fc", graph.Float32, 4, 4, true)
	m, err := nn.ParamMap(fc.Params())
	fmt.Println(m["fc.bias"], err)
	_, err = nn.ParamMap(append(fc.Params(), fc.Weight))
	fmt.Println(err != nil)
	// Output:
	// fc.bias [4] float32 <nil>
	// true
}

// guideNet is a model with two replaceable projections: the smallest
// nn.Host. LoRA (package lora) injects adapters through Layers and SetLayer.
type guideNet struct {
	fc1, fc2 nn.Layer
}

func (m *guideNet) Params() []*graph.Param { return nn.Collect(m.fc1, m.fc2) }

func (m *guideNet) Layers() []nn.NamedLayer {
	return []nn.NamedLayer{{Path: "fc1", Layer: m.fc1}, {Path: "fc2", Layer: m.fc2}}
}

func (m *guideNet) SetLayer(path string, l nn.Layer) error {
	switch path {
	case "fc1":
		m.fc1 = l
	case "fc2":
		m.fc2 = l
	default:
		return fmt.Errorf("guideNet: no layer %q", path)
	}
	return nil
}

// Forward is fc2(GELU(fc1(x))).
func (m *guideNet) Forward(x *graph.Node) *graph.Node {
	return m.fc2.Forward(graph.GELU(m.fc1.Forward(x)))
}

// A Host lists its replaceable layers by path and lets them be swapped.
func ExampleHost() {
	var host nn.Host = &guideNet{
		fc1: nn.NewLinear("fc1", graph.Float32, 4, 8, true),
		fc2: nn.NewLinear("fc2", graph.Float32, 8, 2, true),
	}
	for _, l := range host.Layers() {
		fmt.Println(l.Path, l.Layer.Params()[0].Shape())
	}
	fmt.Println(host.SetLayer("fc3", nil))
	// Output:
	// fc1 [4 8]
	// fc2 [8 2]
	// guideNet: no layer "fc3"
}
