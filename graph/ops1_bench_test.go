package graph

import (
	"math/rand/v2"
	"testing"

	"github.com/chewxy/math32"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Forward + backward of LayerNorm, GELU, Dropout and Embedding at a GPT-ish
// shape (16 sequences of 128 tokens, d = 128) in float32: the fused op
// against the same maths built from Gorgonia's own ops. Both graphs end in
// Σ y ⊙ R so that every output element has its own upstream gradient, and
// both differentiate with respect to every float input.

const ops1N, ops1D = 16 * 128, 128

func ops1Values(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*rng.Float64() - 1)
	}
	return v
}

// ops1Fused compiles loss Σ build(...) ⊙ R over float32 parameters of the
// given shapes and times Program.Run.
func ops1Fused(b *testing.B, shapes [][]int, build func(bl *Builder, p []*Node) *Node) {
	bl := NewBuilder(Float32, 1)
	nodes := make([]*Node, len(shapes))
	for i, s := range shapes {
		p := NewParam("p", Float32, s...)
		copy(p.Float32s(), ops1Values(p.Len(), uint64(i)))
		nodes[i] = bl.Param(p)
	}
	out := build(bl, nodes)
	r := make([]float64, 0, ops1N*ops1D)
	for _, v := range ops1Values(cap(r), 9) {
		r = append(r, float64(v))
	}
	prog, err := bl.Compile(Sum(Mul(out, bl.Constant("R", r, out.Shape()...))))
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Close()
	ops1Run(b, prog.Run)
}

func ops1Run(b *testing.B, run func() error) {
	if err := run(); err != nil { // first run sizes the buffers
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := run(); err != nil {
			b.Fatal(err)
		}
	}
}

// ops1Composite is a graph of Gorgonia's own ops and its float inputs, which
// are all differentiated.
type ops1Composite struct {
	g      *G.ExprGraph
	inputs []*G.Node
}

func (gb *ops1Composite) matrix(shape ...int) *G.Node {
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(ops1Values(tensor.Shape(shape).TotalSize(), uint64(len(gb.inputs)))))
	n := G.NewTensor(gb.g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithValue(t), G.WithName(string(rune('a'+len(gb.inputs)))))
	gb.inputs = append(gb.inputs, n)
	return n
}

func (gb *ops1Composite) scalar(v float32) *G.Node { return G.NewConstant(v, G.In(gb.g)) }

// run differentiates Σ out ⊙ R with respect to every input made by matrix
// and times one RunAll + Reset per iteration; before, if not nil, refills
// per-run data. Like Program, it runs only the nodes the loss and the
// gradients need (not the gradient of R).
func (gb *ops1Composite) run(b *testing.B, out *G.Node, before func()) {
	rt := tensor.New(tensor.WithShape(out.Shape()...), tensor.WithBacking(ops1Values(out.Shape().TotalSize(), 9)))
	r := G.NewTensor(gb.g, tensor.Float32, out.Dims(), G.WithShape(out.Shape()...), G.WithValue(rt), G.WithName("R"))
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(out, r))))
	grads, err := G.Grad(loss, gb.inputs...)
	if err != nil {
		b.Fatal(err)
	}
	vm := G.NewTapeMachine(gb.g.ExactSubgraphRoots(append(grads, loss)...))
	defer vm.Close()
	ops1Run(b, func() error {
		if before != nil {
			before()
		}
		err := vm.RunAll()
		vm.Reset()
		return err
	})
}

func BenchmarkLayerNorm(b *testing.B) {
	b.Run("fused", func(b *testing.B) {
		ops1Fused(b, [][]int{{ops1N, ops1D}, {ops1D}, {ops1D}}, func(bl *Builder, p []*Node) *Node {
			return LayerNorm(p[0], p[1], p[2], 1e-5)
		})
	})
	b.Run("gorgonia", func(b *testing.B) {
		gb := &ops1Composite{g: G.NewGraph()}
		x, gamma, beta := gb.matrix(ops1N, ops1D), gb.matrix(ops1D), gb.matrix(ops1D)
		mean := G.Must(G.Mean(x, 1))                                      // [N]
		xc := G.Must(G.BroadcastSub(x, mean, nil, []byte{1}))             // [N, d]
		variance := G.Must(G.Mean(G.Must(G.Square(xc)), 1))               // [N]
		std := G.Must(G.Sqrt(G.Must(G.Add(variance, gb.scalar(1e-5)))))   // [N]
		xhat := G.Must(G.BroadcastHadamardDiv(xc, std, nil, []byte{1}))   // [N, d]
		y := G.Must(G.BroadcastHadamardProd(xhat, gamma, nil, []byte{0})) // [N, d]
		gb.run(b, G.Must(G.BroadcastAdd(y, beta, nil, []byte{0})), nil)
	})
}

func BenchmarkGELU(b *testing.B) {
	b.Run("fused", func(b *testing.B) {
		ops1Fused(b, [][]int{{ops1N, ops1D}}, func(bl *Builder, p []*Node) *Node { return GELU(p[0]) })
	})
	b.Run("gorgonia", func(b *testing.B) {
		gb := &ops1Composite{g: G.NewGraph()}
		x := gb.matrix(ops1N, ops1D)
		inner := G.Must(G.Add(x, G.Must(G.Mul(G.Must(G.Cube(x)), gb.scalar(geluA))))) // x + a·x³
		t := G.Must(G.Tanh(G.Must(G.Mul(inner, gb.scalar(geluC)))))                   // tanh(u)
		y := G.Must(G.HadamardProd(x, G.Must(G.Add(t, gb.scalar(1)))))                // x·(1 + t)
		gb.run(b, G.Must(G.Mul(y, gb.scalar(0.5))), nil)
	})
}

// BenchmarkGELUTanh compares tanh32 with math32.Tanh on the arguments GELU
// gives it for x uniform in [−3, 3].
func BenchmarkGELUTanh(b *testing.B) {
	u := ops1Values(ops1N*ops1D, 5)
	for i, v := range u {
		x := 3 * v
		u[i] = geluC * (x + geluA*x*x*x)
	}
	for _, f := range []struct {
		name string
		tanh func(float32) float32
	}{{"tanh32", tanh32}, {"math32", math32.Tanh}} {
		b.Run(f.name, func(b *testing.B) {
			var s float32
			for i := 0; i < b.N; i++ {
				for _, v := range u {
					s += f.tanh(v)
				}
			}
			if s == 42 {
				b.Log(s) // keeps the sum live
			}
		})
	}
}

func BenchmarkDropout(b *testing.B) {
	const p = 0.1
	b.Run("fused", func(b *testing.B) {
		ops1Fused(b, [][]int{{ops1N, ops1D}}, func(bl *Builder, nodes []*Node) *Node { return Dropout(nodes[0], p) })
	})
	b.Run("gorgonia", func(b *testing.B) {
		// x ⊙ mask, the mask refilled before each run from a seeded PCG
		gb := &ops1Composite{g: G.NewGraph()}
		x := gb.matrix(ops1N, ops1D)
		mt := tensor.New(tensor.WithShape(ops1N, ops1D), tensor.WithBacking(make([]float32, ops1N*ops1D)))
		mask := G.NewTensor(gb.g, tensor.Float32, 2, G.WithShape(ops1N, ops1D), G.WithValue(mt), G.WithName("mask"))
		rng := rand.New(rand.NewPCG(1, 2))
		m := mt.Data().([]float32)
		refill := func() {
			for i := range m {
				m[i] = 0
				if rng.Float64() >= p {
					m[i] = 1 / (1 - p)
				}
			}
		}
		gb.run(b, G.Must(G.HadamardProd(x, mask)), refill)
	})
}

func BenchmarkEmbedding(b *testing.B) {
	for _, v := range []struct {
		name string
		v    int
	}{{"V96", 96}, {"V50257", 50257}} {
		ids := make([]int, ops1N)
		rng := rand.New(rand.NewPCG(4, 5))
		for i := range ids {
			ids[i] = rng.IntN(v.v)
		}
		b.Run(v.name+"/fused", func(b *testing.B) {
			ops1Fused(b, [][]int{{v.v, ops1D}}, func(bl *Builder, p []*Node) *Node {
				return Embedding(p[0], constIDs(bl, "ids", ids))
			})
		})
		b.Run(v.name+"/gorgonia", func(b *testing.B) {
			gb := &ops1Composite{g: G.NewGraph()}
			table := gb.matrix(v.v, ops1D)
			it := tensor.New(tensor.WithShape(ops1N), tensor.WithBacking(append([]int(nil), ids...)))
			idn := G.NewTensor(gb.g, tensor.Int, 1, G.WithShape(ops1N), G.WithValue(it), G.WithName("ids"))
			gb.run(b, G.Must(G.ByIndices(table, idn, 0)), nil)
		})
	}
}
