package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// These benchmarks time one forward + backward pass of Softmax,
// CausalSelfAttention and SoftmaxCrossEntropy (float32) against the same
// maths built from Gorgonia's own ops, run on a TapeMachine:
//
//	go test ./graph -run XXX -bench 'Attention|Softmax|CrossEntropy' -benchmem -benchtime 10x
//
// TestGorgoniaBaselines checks that both versions compute the same loss and
// gradient, so the comparison is between equal work.

// composite is a Gorgonia graph with its machine, loss and the gradient of
// its one input x.
type composite struct {
	vm         G.VM
	loss, grad *G.Node
}

func (c *composite) run() error {
	err := c.vm.RunAll()
	c.vm.Reset()
	return err
}

func (c *composite) values() (float64, []float64) {
	l := c.loss.Value().Data()
	var loss float64
	switch v := l.(type) {
	case float32:
		loss = float64(v)
	case float64:
		loss = v
	}
	var g []float64
	switch d := c.grad.Value().Data().(type) {
	case []float32:
		for _, v := range d {
			g = append(g, float64(v))
		}
	case []float64:
		g = append(g, d...)
	}
	return loss, g
}

func gDense(dt DType, shape []int, vals []float64) *tensor.Dense {
	t := newDense(dt, tensor.Shape(shape))
	switch d := t.Data().(type) {
	case []float32:
		for i, v := range vals {
			d[i] = float32(v)
		}
	case []float64:
		copy(d, vals)
	}
	return t
}

func gInput(g *G.ExprGraph, dt DType, name string, shape []int, vals []float64) *G.Node {
	return G.NewTensor(g, dt.tensorDtype(), len(shape), G.WithShape(shape...), G.WithName(name), G.WithValue(gDense(dt, shape, vals)))
}

// gSoftmax is a per-row-max softmax over the last axis of a 2-D or 3-D node.
func gSoftmax(x *G.Node) *G.Node {
	ax := x.Dims() - 1
	mx := G.Must(G.Max(x, ax))
	e := G.Must(G.Exp(G.Must(G.BroadcastSub(x, mx, nil, []byte{byte(ax)}))))
	return G.Must(G.BroadcastHadamardDiv(e, G.Must(G.Sum(e, ax)), nil, []byte{byte(ax)}))
}

// finish adds loss = Σ y ⊙ R (or y itself when r is nil), its gradient with
// respect to x and a TapeMachine.
func finish(g *G.ExprGraph, dt DType, x, y *G.Node, r []float64) (*composite, error) {
	loss := y
	if r != nil {
		rn := gInput(g, dt, "R", y.Shape(), r)
		loss = G.Must(G.Sum(G.Must(G.HadamardProd(y, rn))))
	}
	grads, err := G.Grad(loss, x)
	if err != nil {
		return nil, err
	}
	return &composite{vm: G.NewTapeMachine(g), loss: loss, grad: grads[0]}, nil
}

func gorgoniaSoftmax(dt DType, n, v int, x, r []float64) (*composite, error) {
	g := G.NewGraph()
	xn := gInput(g, dt, "x", []int{n, v}, x)
	return finish(g, dt, xn, gSoftmax(xn), r)
}

// gorgoniaAttention splits heads with Reshape/Transpose/Slice, then
// BatchedMatMul, a causal mask added as −1e9, softmax, BatchedMatMul and the
// inverse transpose.
func gorgoniaAttention(dt DType, batch, tt, d, heads int, qkv, r []float64) (*composite, error) {
	g := G.NewGraph()
	hd, bh := d/heads, batch*heads
	x := gInput(g, dt, "qkv", []int{batch * tt, 3 * d}, qkv)
	split := G.Must(G.Reshape(x, tensor.Shape{batch, tt, 3, heads, hd}))
	split = G.Must(G.Transpose(split, 2, 0, 3, 1, 4))              // [3, B, H, T, hd]
	split = G.Must(G.Reshape(split, tensor.Shape{3 * bh, tt, hd})) // [3·B·H, T, hd]
	q := G.Must(G.Slice(split, G.S(0, bh)))                        // [B·H, T, hd]
	k := G.Must(G.Slice(split, G.S(bh, 2*bh)))                     // [B·H, T, hd]
	v := G.Must(G.Slice(split, G.S(2*bh, 3*bh)))                   // [B·H, T, hd]
	s := G.Must(G.BatchedMatMul(q, k, false, true))                // [B·H, T, T]
	s = G.Must(G.Mul(s, G.NewScalar(g, dt.tensorDtype(), G.WithValue(scalarOf(dt, 1/math.Sqrt(float64(hd)))))))
	maskVals := make([]float64, tt*tt)
	for i := 0; i < tt; i++ {
		for j := i + 1; j < tt; j++ {
			maskVals[i*tt+j] = -1e9
		}
	}
	mask := gInput(g, dt, "mask", []int{tt, tt}, maskVals)
	p := gSoftmax(G.Must(G.BroadcastAdd(s, mask, nil, []byte{0})))
	y := G.Must(G.BatchedMatMul(p, v)) // [B·H, T, hd]
	y = G.Must(G.Reshape(y, tensor.Shape{batch, heads, tt, hd}))
	y = G.Must(G.Transpose(y, 0, 2, 1, 3)) // [B, T, H, hd]
	y = G.Must(G.Reshape(y, tensor.Shape{batch * tt, d}))
	return finish(g, dt, x, y, r)
}

func scalarOf(dt DType, v float64) G.Value {
	if dt == Float64 {
		return G.NewF64(v)
	}
	return G.NewF32(float32(v))
}

// gorgoniaXent computes −Σ (log softmax(x)) ⊙ W with the constant weights
// W_{i,v} = m_i·((1−ε)·[v = t_i] + ε/V)/Σm, which is the masked, smoothed
// mean cross-entropy (selection by one-hot weights avoids ByIndices, whose
// gradient is wrong on the inner axis).
func gorgoniaXent(dt DType, n, v int, x []float64, ids []int, mask []float64, eps float64) (*composite, error) {
	g := G.NewGraph()
	xn := gInput(g, dt, "logits", []int{n, v}, x)
	var msum float64
	for _, m := range mask {
		msum += m
	}
	w := make([]float64, n*v)
	for i, t := range ids {
		for j := 0; j < v; j++ {
			w[i*v+j] = mask[i] * eps / float64(v) / msum
		}
		w[i*v+t] += mask[i] * (1 - eps) / msum
	}
	wn := gInput(g, dt, "W", []int{n, v}, w)
	mx := G.Must(G.Max(xn, 1))
	xs := G.Must(G.BroadcastSub(xn, mx, nil, []byte{1}))
	lse := G.Must(G.Log(G.Must(G.Sum(G.Must(G.Exp(xs)), 1))))
	logp := G.Must(G.BroadcastSub(xs, lse, nil, []byte{1}))
	loss := G.Must(G.Neg(G.Must(G.Sum(G.Must(G.HadamardProd(logp, wn))))))
	return finish(g, dt, xn, loss, nil)
}

// fused is a golora program with its one trainable input.
type fused struct {
	prog *Program
	x    *Param
}

func (f *fused) run() error { return f.prog.Run() }

func (f *fused) values() (float64, []float64) {
	g, _ := f.prog.Grad(f.x)
	return f.prog.Loss(), g.Values()
}

func fusedOf(dt DType, name string, shape []int, vals []float64, build func(b *Builder, x *Node) (*Node, error)) (*fused, error) {
	p, err := NewParamFrom(name, vals, shape...)
	if err != nil {
		return nil, err
	}
	p = p.Convert(dt)
	b := NewBuilder(dt, 1)
	loss, err := build(b, b.Param(p))
	if err != nil {
		return nil, err
	}
	prog, err := b.Compile(loss)
	if err != nil {
		return nil, err
	}
	return &fused{prog: prog, x: p}, nil
}

// weightedSum is Σ y ⊙ R for fixed values r.
func weightedSum(b *Builder, y *Node, r []float64) *Node {
	return Sum(Mul(y, b.Constant("R", r, y.Shape()...)))
}

func fusedSoftmax(dt DType, n, v int, x, r []float64) (*fused, error) {
	return fusedOf(dt, "x", []int{n, v}, x, func(b *Builder, x *Node) (*Node, error) {
		return weightedSum(b, Softmax(x), r), b.Err()
	})
}

func fusedAttention(dt DType, batch, tt, d, heads int, p float64, qkv, r []float64) (*fused, error) {
	return fusedOf(dt, "qkv", []int{batch * tt, 3 * d}, qkv, func(b *Builder, x *Node) (*Node, error) {
		return weightedSum(b, CausalSelfAttention(x, batch, heads, p), r), b.Err()
	})
}

func fusedXent(dt DType, n, v int, x []float64, ids []int, mask []float64, eps float64) (*fused, error) {
	return fusedOf(dt, "logits", []int{n, v}, x, func(b *Builder, x *Node) (*Node, error) {
		return SoftmaxCrossEntropy(x, intConst(b, "targets", ids), b.Constant("mask", mask, n), eps), b.Err()
	})
}

func uniform(n int, scale float64, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]float64, n)
	for i := range out {
		out[i] = (2*rng.Float64() - 1) * scale
	}
	return out
}

// xentData returns targets and a mask with every fifth row off.
func xentData(n, v int) ([]int, []float64) {
	ids, mask := make([]int, n), make([]float64, n)
	for i := range ids {
		ids[i] = (i * 7919) % v
		if i%5 != 4 {
			mask[i] = 1
		}
	}
	return ids, mask
}

type runner interface {
	run() error
	values() (float64, []float64)
}

// TestGorgoniaBaselines checks the benchmarks' composite Gorgonia versions
// against the fused ops in float64, so both sides compute the same thing.
func TestGorgoniaBaselines(t *testing.T) {
	pair := func(name string, f runner, ferr error, c runner, cerr error) {
		t.Run(name, func(t *testing.T) {
			if ferr != nil || cerr != nil {
				t.Fatal(ferr, cerr)
			}
			for _, r := range []runner{f, c} {
				if err := r.run(); err != nil {
					t.Fatal(err)
				}
			}
			fl, fg := f.values()
			cl, cg := c.values()
			var norm float64
			for _, g := range cg {
				norm += g * g
			}
			if cl == 0 || norm == 0 || len(fg) != len(cg) {
				t.Fatalf("Gorgonia loss %v, gradient norm² %v over %d values: nothing to compare", cl, norm, len(cg))
			}
			if math.Abs(fl-cl) > 1e-12*math.Max(1, math.Abs(cl)) {
				t.Errorf("loss %v, Gorgonia %v", fl, cl)
			}
			compareRel(t, "gradient", fg, cg, 1e-12)
		})
	}
	const n, v = 6, 5
	x, r := uniform(n*v, 3, 1), uniform(n*v, 1, 2)
	f, ferr := fusedSoftmax(Float64, n, v, x, r)
	c, cerr := gorgoniaSoftmax(Float64, n, v, x, r)
	pair("softmax", f, ferr, c, cerr)

	const batch, tt, d, heads = 2, 5, 8, 2
	qkv, ry := uniform(batch*tt*3*d, 1, 3), uniform(batch*tt*d, 1, 4)
	fa, ferr := fusedAttention(Float64, batch, tt, d, heads, 0, qkv, ry)
	ca, cerr := gorgoniaAttention(Float64, batch, tt, d, heads, qkv, ry)
	pair("attention", fa, ferr, ca, cerr)

	ids, mask := xentData(n, v)
	fx, ferr := fusedXent(Float64, n, v, x, ids, mask, 0.1)
	cx, cerr := gorgoniaXent(Float64, n, v, x, ids, mask, 0.1)
	pair("cross-entropy", fx, ferr, cx, cerr)
}

func benchRun(b *testing.B, r runner, err error) {
	if err != nil {
		b.Fatal(err)
	}
	if err := r.run(); err != nil { // warm-up: buffers are allocated on the first run
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := r.run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSoftmax: [2048, 96] (16 sequences of 128 tokens, a byte-level vocabulary).
func BenchmarkSoftmax(b *testing.B) {
	const n, v = 16 * 128, 96
	x, r := uniform(n*v, 3, 1), uniform(n*v, 1, 2)
	b.Run("fused", func(b *testing.B) {
		f, err := fusedSoftmax(Float32, n, v, x, r)
		benchRun(b, f, err)
	})
	b.Run("gorgonia", func(b *testing.B) {
		c, err := gorgoniaSoftmax(Float32, n, v, x, r)
		benchRun(b, c, err)
	})
}

// BenchmarkAttention: B=16, T=128, d=128, 4 heads (the "small" GPT shape).
func BenchmarkAttention(b *testing.B) {
	const batch, tt, d, heads = 16, 128, 128, 4
	qkv, r := uniform(batch*tt*3*d, 1, 1), uniform(batch*tt*d, 1, 2)
	for _, p := range []float64{0, 0.1} {
		b.Run(fmt.Sprintf("fused/p=%g", p), func(b *testing.B) {
			f, err := fusedAttention(Float32, batch, tt, d, heads, p, qkv, r)
			benchRun(b, f, err)
		})
	}
	b.Run("gorgonia/p=0", func(b *testing.B) {
		c, err := gorgoniaAttention(Float32, batch, tt, d, heads, qkv, r)
		benchRun(b, c, err)
	})
}

// BenchmarkCrossEntropy: a byte-level vocabulary at N = 16·128 and GPT-2's
// vocabulary at N = 256 (one context of GPT-2 small), label smoothing 0.1.
func BenchmarkCrossEntropy(b *testing.B) {
	for _, s := range []struct{ n, v int }{{16 * 128, 96}, {256, 50257}} {
		x := uniform(s.n*s.v, 3, 1)
		ids, mask := xentData(s.n, s.v)
		b.Run(fmt.Sprintf("N=%d,V=%d/fused", s.n, s.v), func(b *testing.B) {
			f, err := fusedXent(Float32, s.n, s.v, x, ids, mask, 0.1)
			benchRun(b, f, err)
		})
		b.Run(fmt.Sprintf("N=%d,V=%d/gorgonia", s.n, s.v), func(b *testing.B) {
			c, err := gorgoniaXent(Float32, s.n, s.v, x, ids, mask, 0.1)
			benchRun(b, c, err)
		})
	}
}
