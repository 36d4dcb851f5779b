package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CausalSelfAttention is GPT-2's masked multi-head attention on the output of
// its c_attn projection: [B·T, 3d] → [B·T, d].
//
// Rows are batch-major (row b·T + t is token t of sequence b, T = rows/batch).
// Columns [0, d) hold the queries, [d, 2d) the keys and [2d, 3d) the values;
// head h uses columns h·hd … (h+1)·hd − 1 of each block, hd = d/heads. For
// every sequence b and head h, with Q, K, V its [T, hd] blocks,
//
//	S = Q·Kᵀ/√hd                       [T, T]
//	P = softmax(S) over keys j ≤ i     (per-row max; entries j > i are 0)
//	Y = drop(P)·V                      [T, hd]
//
// and Y is written back to columns h·hd … of the output, the heads merged in
// the same order, ready for c_proj. drop zeroes each probability with
// probability dropout (to 32-bit precision, like Dropout) and scales the rest
// by 1/(1−dropout), with a mask drawn from the builder's seeded source on
// every run while the program is training; dropout = 0 turns it off. The
// backward pass reuses the probabilities and mask of the forward pass and
// returns one [B·T, 3d] gradient for qkv. Matrix products run per causal row
// block through gemm with strides into qkv (no head split or merge copies);
// the (sequence, head) pairs are spread over GOMAXPROCS goroutines.
//
// batch and heads must divide the rows and d; dropout must be in [0, 1).
func CausalSelfAttention(qkv *Node, batch, heads int, dropout float64) *Node {
	const name = "CausalSelfAttention"
	b, bad := check(name, qkv)
	if bad != nil {
		return bad
	}
	fail := func(format string, args ...interface{}) *Node {
		return b.fail(fmt.Errorf("graph: %s: qkv %q: %s", name, qkv.Name(), fmt.Sprintf(format, args...)))
	}
	s := qkv.n.Shape()
	switch {
	case qkv.isInt:
		return fail("is an integer input")
	case s.Dims() != 2:
		return fail("shape %v, want [B·T, 3d]", s)
	case batch <= 0 || s[0]%batch != 0:
		return fail("%d rows do not split into batch %d", s[0], batch)
	case s[1]%3 != 0:
		return fail("%d columns are not 3·d", s[1])
	case heads <= 0 || (s[1]/3)%heads != 0:
		return fail("d = %d does not split into %d heads", s[1]/3, heads)
	case !(dropout >= 0 && dropout < 1):
		return fail("attention dropout %v outside [0, 1)", dropout)
	}
	k := &attnKernel{batch: batch, heads: heads, p: dropout, rng: b.rng, mode: b.mode}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		// out orders the gradient after the forward pass, whose
		// probabilities it reads from k.
		g, _, err := b.gradNode(&attnGradKernel{fwd: k}, in[0], out, dy)
		return []*G.Node{g}, err
	}
	gn, _, err := b.apply(k, []bool{true}, grads, qkv.n)
	return b.wrap(gn, err, name, qkv)
}

// attnDims is the geometry of one attention call.
type attnDims struct {
	B, T, H  int // sequences, tokens per sequence, heads
	d, hd    int // model width, head width
	d3       int // 3·d, the row stride of qkv
	scale    float64
	nPerHead int // T·T, the size of one head's probability matrix
}

// qkvOff is the offset in qkv (or its gradient) of head h's queries for
// sequence b; its keys follow d and its values 2d columns later.
func (a attnDims) qkvOff(b, h int) int { return b*a.T*a.d3 + h*a.hd }

// yOff is the offset of head h of sequence b in the [B·T, d] output.
func (a attnDims) yOff(b, h int) int { return b*a.T*a.d + h*a.hd }

// attnKernel: qkv [B·T, 3d] → y [B·T, d]. It keeps P (and drop(P)) for the
// gradient, in buffers reused across runs.
type attnKernel struct {
	batch, heads int
	p            float64
	rng          *rand.PCG
	mode         *runMode

	state   interface{} // *attnState[T]
	dropped bool        // the last forward pass applied dropout
}

// attnState holds a kernel's buffers for element type T.
type attnState[T floatT] struct {
	probs   []T   // P, [B, H, T, T]; zeros above the diagonal
	drop    []T   // drop(P), [B, H, T, T], when dropout is on
	scratch [][]T // one [T, T] matrix per worker, for the backward pass
}

func (k *attnKernel) String() string {
	return fmt.Sprintf("CausalSelfAttention(batch=%d,heads=%d,p=%g)", k.batch, k.heads, k.p)
}

func (k *attnKernel) dims(s tensor.Shape) (attnDims, error) {
	if s.Dims() != 2 || s[0]%k.batch != 0 || s[1]%3 != 0 || (s[1]/3)%k.heads != 0 {
		return attnDims{}, fmt.Errorf("qkv shape %v does not fit batch %d and %d heads", s, k.batch, k.heads)
	}
	a := attnDims{B: k.batch, T: s[0] / k.batch, H: k.heads, d: s[1] / 3, d3: s[1]}
	a.hd = a.d / a.H
	a.scale = 1 / math.Sqrt(float64(a.hd))
	a.nPerHead = a.T * a.T
	return a, nil
}

func (k *attnKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	a, err := k.dims(in[0])
	if err != nil {
		return nil, err
	}
	return tensor.Shape{in[0][0], a.d}, nil
}

func (k *attnKernel) forward(out tval, in []tval) error {
	a, err := k.dims(in[0].shape)
	if err != nil {
		return err
	}
	if out.f32 != nil {
		attnForward(k, a, out.f32, in[0].f32)
	} else {
		attnForward(k, a, out.f64, in[0].f64)
	}
	return nil
}

// stateFor returns k's buffers for T, (re)allocated when the geometry changed.
func stateFor[T floatT](k *attnKernel, a attnDims) *attnState[T] {
	n := a.B * a.H * a.nPerHead
	st, _ := k.state.(*attnState[T])
	if st == nil || len(st.probs) != n {
		st = &attnState[T]{probs: make([]T, n)}
		k.state = st
	}
	return st
}

// forHeads runs f(worker, b, h) for every (sequence, head) pair on up to
// GOMAXPROCS goroutines (see forUnits); worker indexes per-goroutine
// scratch.
func forHeads(a attnDims, f func(worker, b, h int)) {
	forUnits(a.B*a.H, runtime.GOMAXPROCS(0), func(w, i int) { f(w, i/a.H, i%a.H) })
}

// view is the head geometry of the strided head kernels: q, k and v rows
// of qkv (stride 3d), output rows of width d.
func (a attnDims) view() headView {
	return headView{T: a.T, hd: a.hd, scale: a.scale, qs: a.d3, ks: a.d3, vs: a.d3, ys: a.d}
}

func attnForward[T floatT](k *attnKernel, a attnDims, y, qkv []T) {
	st := stateFor[T](k, a)
	k.dropped = k.p > 0 && k.mode.training
	if k.dropped {
		// The mask is drawn in one fixed order before the parallel part, so
		// it depends only on the seed: one 32-bit half of a 64-bit draw per
		// causal entry, dropped when below p·2³². drop holds 1/(1−p) or 0
		// for now and becomes drop(P) in headForward.
		if len(st.drop) != len(st.probs) {
			st.drop = make([]T, len(st.probs))
		}
		keep := T(1 / (1 - k.p))
		thr := uint64(math.Round(k.p * (1 << 32)))
		var bits uint64
		fresh := false
		for o := 0; o < len(st.drop); o += a.T {
			row := st.drop[o : o+a.T]
			i := (o / a.T) % a.T // query position: keys 0..i are drawn
			for j := range row[:i+1] {
				if fresh = !fresh; fresh {
					bits = k.rng.Uint64()
				} else {
					bits >>= 32
				}
				// thr − 1 − u wraps to a number with the top bit set exactly
				// when u ≥ thr (kept), for u < 2³²: no unpredictable branch.
				row[j] = keep * T((thr-1-(bits&0xffffffff))>>63)
			}
			clear(row[i+1:])
		}
	}
	forHeads(a, func(_, b, h int) {
		o := (b*a.H + h) * a.nPerHead
		var drop []T
		if k.dropped {
			drop = st.drop[o : o+a.nPerHead]
		}
		headForward(a, st.probs[o:o+a.nPerHead], drop, qkv[a.qkvOff(b, h):], y[a.yOff(b, h):])
	})
}

// attnBlock is the row-block size of the causal products: a block of query
// rows [i0, i1) only meets keys [0, i1), so blocking skips most of the masked
// upper triangle (at T = 128, 5/8 of the full products' work remains).
const attnBlock = 32

// headForward computes one head: p [T, T] gets P, drop (nil without
// dropout) holds the mask scales and gets drop(P), q is the head's queries
// inside qkv (keys d and values 2d columns on) and y its output block.
func headForward[T floatT](a attnDims, p, drop, q, y []T) {
	causalHeadForward(a.view(), p, drop, q, q[a.d:], q[2*a.d:], y)
}

// attnGradKernel: (qkv, y, dy [B·T, d]) → dqkv [B·T, 3d], reading the
// probabilities its forward kernel kept during the same run.
type attnGradKernel struct{ fwd *attnKernel }

func (k *attnGradKernel) String() string { return k.fwd.String() + ".dqkv" }

// orderOnly: input 1, the forward output, only orders this after the forward pass.
func (*attnGradKernel) orderOnly() []int { return []int{1} }

func (k *attnGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if _, err := k.fwd.dims(in[0]); err != nil {
		return nil, err
	}
	if !in[1].Eq(in[2]) {
		return nil, fmt.Errorf("output shape %v and gradient shape %v differ", in[1], in[2])
	}
	return in[0].Clone(), nil
}

func (k *attnGradKernel) forward(out tval, in []tval) error {
	a, err := k.fwd.dims(in[0].shape)
	if err != nil {
		return err
	}
	if out.f32 != nil {
		return attnBackward(k.fwd, a, out.f32, in[0].f32, in[2].f32)
	}
	return attnBackward(k.fwd, a, out.f64, in[0].f64, in[2].f64)
}

// attnBackward computes, per sequence and head, with A = drop(P):
//
//	dV = Aᵀ·dY,  dA = dY·Vᵀ,
//	dS = A ⊙ dA − P ⊙ rowsum(A ⊙ dA)   (softmax backward through the dropout)
//	dQ = dS·K/√hd,  dK = dSᵀ·Q/√hd.
func attnBackward[T floatT](k *attnKernel, a attnDims, dqkv, qkv, dy []T) error {
	st, _ := k.state.(*attnState[T])
	if st == nil || len(st.probs) != a.B*a.H*a.nPerHead {
		return fmt.Errorf("no forward pass of this shape to differentiate")
	}
	w := min(runtime.GOMAXPROCS(0), a.B*a.H)
	if len(st.scratch) < w {
		st.scratch = make([][]T, w)
	}
	for i := range st.scratch {
		if len(st.scratch[i]) != a.nPerHead {
			st.scratch[i] = make([]T, a.nPerHead)
		}
	}
	forHeads(a, func(worker, b, h int) {
		o := (b*a.H + h) * a.nPerHead
		p := st.probs[o : o+a.nPerHead]
		use := p
		if k.dropped {
			use = st.drop[o : o+a.nPerHead]
		}
		off := a.qkvOff(b, h)
		headBackward(a, p, use, st.scratch[worker], qkv[off:], dy[a.yOff(b, h):], dqkv[off:])
	})
	return nil
}

// headBackward computes one head's part of dqkv (dq points at its query
// gradient, like q in headForward), using ds [T, T] as scratch for dA, then dS.
func headBackward[T floatT](a attnDims, p, use, ds, q, dy, dq []T) {
	causalHeadBackward(a.view(), p, use, ds, q, q[a.d:], q[2*a.d:], dy, dq, dq[a.d:], dq[2*a.d:], false)
}
