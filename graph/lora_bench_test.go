package graph

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// One training step (forward + backward, no optimizer) of GPT-2's c_attn at
// the shape of a small model: x [16·128, 128] → [16·128, 384], LoRA rank 8,
// float32. "dx" runs the layer in the middle of a network (x needs a
// gradient); "no-dx" runs it as the first trainable layer (x is an input).
//
//	go test ./graph -run XXX -bench LoRA -benchmem -benchtime 20x
const (
	loraBenchN, loraBenchIn, loraBenchOut, loraBenchRank = 16 * 128, 128, 384, 8
	loraBenchScale                                       = 16.0 / loraBenchRank // α = 16
)

func loraBenchValues(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((2*rng.Float64() - 1) * scale)
	}
	return v
}

func BenchmarkLoRALinearStep(b *testing.B) {
	for _, dx := range []bool{true, false} {
		suffix := "no-dx"
		if dx {
			suffix = "dx"
		}
		b.Run("fused-LoRA/"+suffix, func(b *testing.B) { loraBenchGraphStep(b, true, dx) })
		b.Run("full-Linear/"+suffix, func(b *testing.B) { loraBenchGraphStep(b, false, dx) })
		b.Run("composite-LoRA/"+suffix, func(b *testing.B) { loraBenchCompositeStep(b, dx) })
	}
}

// loraBenchGraphStep times Program.Run of LoRALinear with W and b frozen, or of
// Linear with W and b trainable (full fine-tuning), under loss Σ y ⊙ R.
func loraBenchGraphStep(b *testing.B, lora, dx bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	param := func(name string, scale float64, train bool, shape ...int) *Param {
		n := 1
		for _, s := range shape {
			n *= s
		}
		p, err := NewParamFrom(name, loraBenchValues(rng, n, scale), shape...)
		if err != nil {
			b.Fatal(err)
		}
		p.Trainable = train
		return p
	}
	g := NewBuilder(Float32, 1)
	var x *Node
	if dx {
		x = g.Param(param("x", 1, true, loraBenchN, loraBenchIn))
	} else {
		x = g.Input("x", loraBenchN, loraBenchIn)
	}
	w := g.Param(param("W", 0.1, !lora, loraBenchIn, loraBenchOut))
	bias := g.Param(param("b", 0.1, !lora, loraBenchOut))
	var y *Node
	if lora {
		a := g.Param(param("A", 0.1, true, loraBenchIn, loraBenchRank))
		bm := g.Param(param("B", 0.1, true, loraBenchRank, loraBenchOut))
		y = LoRALinear(x, x, w, bias, a, bm, loraBenchScale)
	} else {
		y = Linear(x, w, bias)
	}
	r := make([]float64, loraBenchN*loraBenchOut)
	for i := range r {
		r[i] = rng.Float64()
	}
	prog, err := g.Compile(Sum(Mul(y, g.Constant("R", r, loraBenchN, loraBenchOut))))
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Close()
	if !dx {
		if err := prog.SetInput(x, loraBenchValues(rng, loraBenchN*loraBenchIn, 1)); err != nil {
			b.Fatal(err)
		}
	}
	if err := prog.Run(); err != nil { // warm-up: allocates the op buffers
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := prog.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// loraBenchCompositeStep times the same LoRA step built from Gorgonia's own ops,
// with W and b outside the wrt set and only the nodes the loss and the
// gradients need compiled (ExactSubgraphRoots, as Program does).
func loraBenchCompositeStep(b *testing.B, dx bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	g := G.NewGraph()
	node := func(name string, scale float64, shape ...int) *G.Node {
		n := 1
		for _, s := range shape {
			n *= s
		}
		v := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(loraBenchValues(rng, n, scale)))
		return G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(v))
	}
	x := node("x", 1, loraBenchN, loraBenchIn)
	w := node("W", 0.1, loraBenchIn, loraBenchOut)
	bias := node("b", 0.1, loraBenchOut)
	a := node("A", 0.1, loraBenchIn, loraBenchRank)
	bm := node("B", 0.1, loraBenchRank, loraBenchOut)
	r := node("R", 1, loraBenchN, loraBenchOut)
	s := G.NewConstant(float32(loraBenchScale), G.In(g))

	base := G.Must(G.BroadcastAdd(G.Must(G.Mul(x, w)), bias, nil, []byte{0}))    // x·W + b  [N, out]
	delta := G.Must(G.Mul(G.Must(G.Mul(G.Must(G.Mul(x, a)), bm)), s))            // s·(x·A)·B
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(G.Must(G.Add(base, delta)), r)))) // Σ y ⊙ R
	wrt := []*G.Node{a, bm}
	if dx {
		wrt = append(wrt, x)
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(g.ExactSubgraphRoots(append([]*G.Node{loss}, grads...)...))
	defer vm.Close()
	step := func() {
		if err := vm.RunAll(); err != nil {
			b.Fatal(err)
		}
		vm.Reset()
	}
	step()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
}

// The composite benchmark must compute the same step: its gradients of x, A
// and B agree with the fused op's (float64, small shape).
func TestLoRABenchCompositeAgrees(t *testing.T) {
	l := loraLayout{n: 6, in: 5, out: 7, shared: true, bias: true, ranks: []int{2}, scale: 0.5}
	ps := makeParams(l.specs(), Float64, 3) // x, W, b, A, B
	rng := rand.New(rand.NewPCG(4, 5))
	rv := make([]float64, l.n*l.out)
	for i := range rv {
		rv[i] = 2*rng.Float64() - 1
	}

	fb := NewBuilder(Float64, 1)
	fnodes := make([]*Node, len(ps))
	for i, p := range ps {
		fnodes[i] = fb.Param(p)
	}
	prog, err := fb.Compile(Sum(Mul(l.build(fb, fnodes), fb.Constant("R", rv, l.n, l.out))))
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}

	g := G.NewGraph()
	nodes := make([]*G.Node, len(ps))
	for i, p := range ps {
		v := tensor.New(tensor.WithShape(p.Shape()...), tensor.WithBacking(p.Values()))
		nodes[i] = G.NewTensor(g, tensor.Float64, len(p.Shape()), G.WithShape(p.Shape()...), G.WithName(p.Name), G.WithValue(v))
	}
	x, w, bias, a, bm := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
	r := G.NewTensor(g, tensor.Float64, 2, G.WithShape(l.n, l.out), G.WithName("R"),
		G.WithValue(tensor.New(tensor.WithShape(l.n, l.out), tensor.WithBacking(rv))))
	base := G.Must(G.BroadcastAdd(G.Must(G.Mul(x, w)), bias, nil, []byte{0}))
	delta := G.Must(G.Mul(G.Must(G.Mul(G.Must(G.Mul(x, a)), bm)), G.NewConstant(l.scale, G.In(g))))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(G.Must(G.Add(base, delta)), r))))
	grads, err := G.Grad(loss, x, a, bm)
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]G.Value, len(grads))
	roots := []*G.Node{loss}
	for i, gn := range grads {
		roots = append(roots, G.Read(gn, &vals[i]))
	}
	vm := G.NewTapeMachine(g.ExactSubgraphRoots(roots...))
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*Param{ps[0], ps[3], ps[4]} {
		want, ok := prog.Grad(p)
		if !ok {
			t.Fatalf("no fused gradient for %s", p.Name)
		}
		compareRel(t, "composite grad "+p.Name, vals[i].Data().([]float64), want.Values(), 1e-12)
	}
}
