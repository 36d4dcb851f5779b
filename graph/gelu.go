package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GELU constants of the tanh form: √(2/π) and the cubic coefficient.
const (
	geluC = 0.7978845608028654 // √(2/π)
	geluA = 0.044715
)

// GELU returns the tanh approximation of the Gaussian error linear unit that
// GPT-2 uses, elementwise on any shape:
//
//	y = ½·x·(1 + tanh(u)),  u = √(2/π)·(x + 0.044715·x³)
//
// The forward pass keeps tanh(u) for the backward pass, which then needs no
// transcendental function:
//
//	dy/dx = ½·(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²),  t = tanh(u)
func GELU(x *Node) *Node {
	k := newGELUKernel()
	return activation("GELU", x, k, &geluGradKernel{fwd: k})
}

// geluKernel computes y = GELU(x) and keeps t = tanh(u) of the last run.
type geluKernel struct{ saving }

func newGELUKernel() *geluKernel { return &geluKernel{saving{f32: geluForward32, f64: geluForward64}} }

func (*geluKernel) String() string { return "GELU" }

// geluForward32 writes y = GELU(x) and t = tanh(u) in float32.
func geluForward32(y, t, x []float32) {
	t = t[:len(x)]
	y = y[:len(x)]
	for i := geluVec(y, t, x); i < len(x); i++ {
		v := x[i]
		th := tanh32(geluC * (v + geluA*v*v*v))
		t[i] = th
		y[i] = 0.5 * v * (1 + th)
	}
}

// tanh32 is tanh for float32 with an absolute error below 4e-8 (one
// rounding of the result); it took about 2/3 of math32.Tanh's time in
// BenchmarkGELUTanh. For a = |u| ≤ 9.1 it computes
//
//	tanh a = 1 − 2/(e^{2a} + 1),  e^{2a} = 2^k·e^f,  k = round(2a·log₂e),  |f| ≤ ln2/2
//
// with e^f from its Taylor series to degree 7 (truncation error below 7e-9),
// in float64. Beyond 9.1, tanh a rounds to 1 in float32. Near 0 the result
// is accurate in absolute terms only (tanh of 1e-30 gives 0).
func tanh32(u float32) float32 {
	a := math.Abs(float64(u))
	if a > 9.1 {
		return float32(math.Copysign(1, float64(u)))
	}
	z := a * (2 * math.Log2E)
	k := int64(z + 0.5) // z ≥ 0, so this rounds to nearest
	f := (z - float64(k)) * math.Ln2
	ef := 1 + f*(1+f*(1.0/2+f*(1.0/6+f*(1.0/24+f*(1.0/120+f*(1.0/720+f*(1.0/5040)))))))
	e := ef * math.Float64frombits(uint64(k+1023)<<52) // · 2^k
	return float32(math.Copysign(1-2/(e+1), float64(u)))
}

// geluForward64 is geluForward32 in float64.
func geluForward64(y, t, x []float64) {
	t = t[:len(x)]
	y = y[:len(x)]
	for i, v := range x {
		th := math.Tanh(geluC * (v + geluA*v*v*v))
		t[i] = th
		y[i] = 0.5 * v * (1 + th)
	}
}

// geluGradKernel computes dx from x, the forward output (unused: an ordering
// edge) and dy, reading t from the forward kernel.
type geluGradKernel struct{ fwd *geluKernel }

func (*geluGradKernel) String() string { return "GELU.dx" }

// orderOnly: input 1, the forward output, only orders this after the forward pass.
func (*geluGradKernel) orderOnly() []int { return []int{1} }

func (*geluGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}

func (k *geluGradKernel) forward(out tval, in []tval) error {
	if n := out.shape.TotalSize(); len(k.fwd.s32)+len(k.fwd.s64) != n {
		return fmt.Errorf("forward pass kept %d values, want %d", len(k.fwd.s32)+len(k.fwd.s64), n)
	}
	if n := len(out.f32) + len(out.f64); rowWorkers(n, 1) == 1 {
		k.span(out, in, 0, n) // no goroutine, no allocation
	} else {
		forSpans(n, func(lo, hi int) { k.span(out, in, lo, hi) })
	}
	return nil
}

// span computes elements [lo, hi).
func (k *geluGradKernel) span(out tval, in []tval, lo, hi int) {
	if out.f32 != nil {
		dx, x, t, dy := out.f32[lo:hi], in[0].f32[lo:hi], k.fwd.s32[lo:hi], in[2].f32[lo:hi]
		i := geluGradVec(dx, x, t, dy)
		geluBackward(dx[i:], x[i:], t[i:], dy[i:])
	} else {
		geluBackward(out.f64[lo:hi], in[0].f64[lo:hi], k.fwd.s64[lo:hi], in[2].f64[lo:hi])
	}
}

// geluBackward writes dx = dy·GELU'(x) given t = tanh(u).
func geluBackward[T floatT](dx, x, t, dy []T) {
	x = x[:len(dx)]
	t = t[:len(dx)]
	dy = dy[:len(dx)]
	for i, v := range x {
		th := t[i]
		g := 0.5 * (1 + th)
		// where tanh has saturated to ±1 the second term is exactly 0; this
		// also keeps a huge x (whose x² overflows) from giving 0·∞ = NaN
		if s := 1 - th*th; s != 0 {
			g += 0.5 * v * s * geluC * (1 + 3*geluA*v*v)
		}
		dx[i] = dy[i] * g
	}
}

// sizedBuf returns s with length n, reusing its storage when it is large
// enough.
func sizedBuf[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// activation builds k(x) for an elementwise kernel k that keeps values of
// its forward pass for its gradient kernel g, which takes (x, y, dy): y is
// one of g's inputs only so that the forward pass runs before g.
func activation(name string, x *Node, k, g kernel) *Node {
	b, bad := checkFloat(name, x)
	if bad != nil {
		return bad
	}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		dx, _, err := b.gradNode(g, in[0], out, dy)
		return []*G.Node{dx}, err
	}
	gn, _, err := b.apply(k, []bool{true}, grads, x.n)
	return b.wrap(gn, err, name, x)
}
