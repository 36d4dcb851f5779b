package graph

import (
	"fmt"

	"gorgonia.org/tensor"
)

// SiLU returns the sigmoid linear unit (swish) elementwise on any shape,
// the activation of Llama's MLP (transformers' "silu"):
//
//	y = x·σ(x),  σ(x) = 1/(1 + e^(−x))
//
// The forward pass keeps σ(x) for the backward pass, which then needs no
// exponential:
//
//	dy/dx = σ(x)·(1 + x·(1 − σ(x)))
//
// Llama's gated MLP is down(SiLU(gate(x)) ⊙ up(x)): SiLU followed by Mul.
func SiLU(x *Node) *Node {
	k := newSiLUKernel()
	return activation("SiLU", x, k, &siluGradKernel{fwd: k})
}

// siluKernel computes y = SiLU(x) and keeps σ(x) of the last run.
type siluKernel struct{ saving }

func newSiLUKernel() *siluKernel {
	return &siluKernel{saving{f32: siluForward[float32], f64: siluForward[float64]}}
}

func (*siluKernel) String() string { return "SiLU" }

// siluForward writes y = x·σ(x) and s = σ(x). For float32 the exponential
// is exp32 (within one unit in the last place), eight lanes at a time on
// AVX2 (vmath_amd64.s); e^(−x) overflowing to +Inf gives σ = 0 and y = −0,
// the limit.
func siluForward[T floatT](y, s, x []T) {
	s = s[:len(x)]
	y = y[:len(x)]
	i := 0
	if y32, ok := any(y).([]float32); ok {
		i = siluVec(y32, any(s).([]float32), any(x).([]float32))
	}
	for ; i < len(x); i++ {
		v := x[i]
		sg := 1 / (1 + expT(-v))
		s[i] = sg
		y[i] = v * sg
	}
}

// siluGradKernel computes dx from x, the forward output (unused: an ordering
// edge) and dy, reading σ(x) from the forward kernel.
type siluGradKernel struct{ fwd *siluKernel }

func (*siluGradKernel) String() string { return "SiLU.dx" }

// orderOnly: input 1, the forward output, only orders this after the forward pass.
func (*siluGradKernel) orderOnly() []int { return []int{1} }

func (*siluGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}

func (k *siluGradKernel) forward(out tval, in []tval) error {
	n := out.shape.TotalSize()
	if len(k.fwd.s32)+len(k.fwd.s64) != n {
		return fmt.Errorf("forward pass kept %d values, want %d", len(k.fwd.s32)+len(k.fwd.s64), n)
	}
	if rowWorkers(n, 1) == 1 {
		k.span(out, in, 0, n)
	} else {
		forSpans(n, func(lo, hi int) { k.span(out, in, lo, hi) })
	}
	return nil
}

// span computes elements [lo, hi).
func (k *siluGradKernel) span(out tval, in []tval, lo, hi int) {
	if out.f32 != nil {
		siluBackward(out.f32[lo:hi], in[0].f32[lo:hi], k.fwd.s32[lo:hi], in[2].f32[lo:hi])
	} else {
		siluBackward(out.f64[lo:hi], in[0].f64[lo:hi], k.fwd.s64[lo:hi], in[2].f64[lo:hi])
	}
}

// siluBackward writes dx = dy·σ·(1 + x·(1 − σ)). Where σ has saturated to 0
// the bracket is multiplied by 0, and where it is exactly 1 the second term
// vanishes, so a huge |x| gives no 0·∞.
func siluBackward[T floatT](dx, x, s, dy []T) {
	x = x[:len(dx)]
	s = s[:len(dx)]
	dy = dy[:len(dx)]
	for i, v := range x {
		sg := s[i]
		g := sg
		if c := 1 - sg; c != 0 && sg != 0 {
			g = sg * (1 + v*c)
		}
		dx[i] = dy[i] * g
	}
}
