package graph

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Dropout zeroes each element of x with probability p and scales the kept
// ones by 1/(1−p), so the expected value is unchanged (inverted dropout):
//
//	y = x ⊙ m,  m_i = 0 with probability p, else 1/(1−p)
//
// A new mask is drawn on every run from the builder's random source, seeded
// by NewBuilder (see Program.RNGState to save and restore it). While training
// is off (Program.SetTraining(false)) y is a copy of x and no random numbers
// are drawn. The gradient applies the mask of the same run: dx = dy ⊙ m.
//
// p = 0 returns x itself; p outside [0, 1) is a build error. p is applied
// to 32-bit precision (an element is dropped when a 32-bit draw is below
// p·2³²). Any shape.
func Dropout(x *Node, p float64) *Node {
	b, bad := check("Dropout", x)
	if bad != nil {
		return bad
	}
	if !(p >= 0 && p < 1) {
		return b.fail(fmt.Errorf("graph: Dropout on %s: p %v, want 0 ≤ p < 1", x.Name(), p))
	}
	if p == 0 {
		return x
	}
	k := &dropoutKernel{
		p:     p,
		thr:   uint64(math.Round(p * (1 << 32))),
		scale: 1 / (1 - p),
		rng:   b.rng,
		mode:  b.mode,
	}
	grads := func(_ []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		// out is a child only so that the forward pass (which draws the
		// mask) runs before this node.
		dx, _, err := b.gradNode(&dropoutGradKernel{fwd: k}, out, dy)
		return []*G.Node{dx}, err
	}
	gn, _, err := b.apply(k, []bool{true}, grads, x.n)
	return b.wrap(gn, err, "Dropout", x)
}

// dropoutKernel draws a mask of 0 and 1/(1−p) values and multiplies x by
// it, or copies x when training is off.
type dropoutKernel struct {
	p     float64
	thr   uint64 // an element is dropped when a uniform 32-bit draw is < thr
	scale float64
	rng   *rand.PCG
	mode  *runMode

	on  bool      // whether the last run applied a mask
	m32 []float32 // the mask of the last run, by dtype
	m64 []float64
}

func (k *dropoutKernel) String() string { return fmt.Sprintf("Dropout(%g)", k.p) }

func (*dropoutKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}

func (k *dropoutKernel) forward(out tval, in []tval) error {
	k.on = k.mode.training
	if out.f32 != nil {
		if !k.on {
			copy(out.f32, in[0].f32)
			return nil
		}
		k.m32 = sizedBuf(k.m32, len(out.f32))
		drawMask(k.m32, k.rng, k.thr, float32(k.scale))
		mulTo(out.f32, in[0].f32, k.m32)
		return nil
	}
	if !k.on {
		copy(out.f64, in[0].f64)
		return nil
	}
	k.m64 = sizedBuf(k.m64, len(out.f64))
	drawMask(k.m64, k.rng, k.thr, k.scale)
	mulTo(out.f64, in[0].f64, k.m64)
	return nil
}

// drawMask fills m with 0 (probability thr/2³²) or scale, using each 64-bit
// draw for two elements.
func drawMask[T floatT](m []T, rng *rand.PCG, thr uint64, scale T) {
	for i := 0; i < len(m); i += 2 {
		u := rng.Uint64()
		m[i] = scale * T(keepBit(u&0xffffffff, thr))
		if i+1 < len(m) {
			m[i+1] = scale * T(keepBit(u>>32, thr))
		}
	}
}

// keepBit is 1 when u ≥ thr and 0 when u < thr, for u < 2³² and thr ≤ 2³²,
// without a branch (a random branch is mispredicted often): thr − 1 − u
// wraps around to a number with its top bit set exactly when u ≥ thr.
func keepBit(u, thr uint64) int64 {
	return int64((thr - 1 - u) >> 63)
}

// dropoutGradKernel computes dx = dy ⊙ m with the forward kernel's mask, or
// copies dy when that run had training off. Its inputs are (y, dy); y is
// not read.
type dropoutGradKernel struct{ fwd *dropoutKernel }

func (k *dropoutGradKernel) String() string { return k.fwd.String() + ".dx" }

// orderOnly: input 0, the forward output, only orders this after the forward pass.
func (*dropoutGradKernel) orderOnly() []int { return []int{0} }

func (*dropoutGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[1].Clone(), nil
}

func (k *dropoutGradKernel) forward(out tval, in []tval) error {
	if n := out.shape.TotalSize(); k.fwd.on && len(k.fwd.m32)+len(k.fwd.m64) != n {
		return fmt.Errorf("forward pass kept a mask of %d values, want %d", len(k.fwd.m32)+len(k.fwd.m64), n)
	}
	if out.f32 != nil {
		if k.fwd.on {
			mulTo(out.f32, in[1].f32, k.fwd.m32)
		} else {
			copy(out.f32, in[1].f32)
		}
		return nil
	}
	if k.fwd.on {
		mulTo(out.f64, in[1].f64, k.fwd.m64)
	} else {
		copy(out.f64, in[1].f64)
	}
	return nil
}
