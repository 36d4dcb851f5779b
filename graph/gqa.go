package graph

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// GroupedQueryAttention is the causal multi-head attention of Llama-family
// models, with grouped-query attention (GQA): q [B·T, H·hd] holds H query
// heads and k, v [B·T, KV·hd] hold KV key/value heads of the same width hd,
// and query head h reads key/value head h/(H/KV) (transformers' repeat_kv:
// each key/value head serves H/KV consecutive query heads; KV = H is plain
// multi-head attention, KV = 1 multi-query attention). Rows are batch-major
// (row b·T + t is token t of sequence b, T = rows/batch). For every
// sequence b and query head h, with Q [T, hd] its block of q and K, V the
// blocks of its key/value head,
//
//	S = Q·Kᵀ/√hd                       [T, T]
//	P = softmax(S) over keys j ≤ i     (per-row max; entries j > i are 0)
//	Y = P·V                            [T, hd]
//
// and Y is written to columns h·hd … of the output [B·T, H·hd], heads in
// order, ready for o_proj. Rotary embeddings are applied to q and k before
// (see RoPE). There is no attention dropout (Llama-family checkpoints
// train without it).
//
// The backward pass reuses the forward pass's probabilities and gives dq,
// dk and dv; the gradients of a key/value head sum over the query heads
// that read it. Matrix products run per causal row block through gemm with
// strides (no head split, repeat or merge copies); (sequence, head) pairs
// run on up to GOMAXPROCS goroutines.
//
// batch must divide the rows, heads the columns of q, and kvHeads the
// heads; k and v must be [B·T, kvHeads·hd].
func GroupedQueryAttention(q, k, v *Node, batch, heads, kvHeads int) *Node {
	const name = "GroupedQueryAttention"
	b, bad := check(name, q, k, v)
	if bad != nil {
		return bad
	}
	fail := func(format string, args ...interface{}) *Node {
		return b.fail(fmt.Errorf("graph: %s: %s", name, fmt.Sprintf(format, args...)))
	}
	qs, ks, vs := q.n.Shape(), k.n.Shape(), v.n.Shape()
	if err := checkGrouped(q, k, v, heads, kvHeads, "B·T"); err != nil {
		return fail("%v", err)
	}
	switch {
	case batch <= 0 || qs[0]%batch != 0:
		return fail("q %s: %d rows do not split into batch %d", q.Name(), qs[0], batch)
	case ks.Dims() != 2 || ks[0] != qs[0] || ks[1] != kvHeads*(qs[1]/heads):
		return fail("k %s has shape %v, want [%d, %d] (%d key/value heads of width %d)", k.Name(), []int(ks), qs[0], kvHeads*(qs[1]/heads), kvHeads, qs[1]/heads)
	case !vs.Eq(ks):
		return fail("v %s has shape %v, want k's %v", v.Name(), []int(vs), []int(ks))
	}
	kr := &gqaKernel{batch: batch, heads: heads, kv: kvHeads}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		// The core computes dq and keeps dk and dv; out orders it after the
		// forward pass, whose probabilities it reads.
		core := &gqaGradKernel{fwd: kr}
		dq, _, err := b.gradNode(core, in[0], in[1], in[2], out, dy)
		if err != nil {
			return nil, err
		}
		dk, _, err := b.gradNode(&gqaReadKernel{core: core}, dq, in[1])
		if err != nil {
			return nil, err
		}
		dv, _, err := b.gradNode(&gqaReadKernel{core: core, v: true}, dq, in[2])
		if err != nil {
			return nil, err
		}
		return []*G.Node{dq, dk, dv}, nil
	}
	gn, _, err := b.apply(kr, []bool{true, true, true}, grads, q.n, k.n, v.n)
	return b.wrap(gn, err, name, q, k, v)
}

// gqaDims is the geometry of one grouped-query attention call.
type gqaDims struct {
	B, T, H, KV, rep int // sequences, tokens, query heads, key/value heads, H/KV
	hd, qw, kw       int // head width, q (and output) row width H·hd, k/v row width KV·hd
	scale            float64
}

// view is the head geometry of the strided head kernels.
func (a gqaDims) view() headView {
	return headView{T: a.T, hd: a.hd, scale: a.scale, qs: a.qw, ks: a.kw, vs: a.kw, ys: a.qw}
}

func (a gqaDims) qOff(b, h int) int  { return b*a.T*a.qw + h*a.hd }
func (a gqaDims) kvOff(b, g int) int { return b*a.T*a.kw + g*a.hd }

// gqaKernel: (q, k, v) → y [B·T, H·hd], keeping P for the gradient.
type gqaKernel struct {
	batch, heads, kv int
	state            interface{} // *gqaState[T]
}

type gqaState[T floatT] struct {
	probs   []T   // P, [B, H, T, T]; zeros above the diagonal
	scratch [][]T // one [T, T] matrix per worker, for the backward pass
	dk, dv  []T   // the gradients of k and v of the last backward pass
}

func (k *gqaKernel) String() string {
	return fmt.Sprintf("GroupedQueryAttention(batch=%d,heads=%d,kv=%d)", k.batch, k.heads, k.kv)
}

func (k *gqaKernel) dims(q, kk tensor.Shape) (gqaDims, error) {
	if q.Dims() != 2 || q[0]%k.batch != 0 || q[1]%k.heads != 0 || kk.Dims() != 2 || kk[0] != q[0] || kk[1] != k.kv*(q[1]/k.heads) {
		return gqaDims{}, fmt.Errorf("q shape %v and k shape %v do not fit batch %d, %d heads and %d key/value heads", q, kk, k.batch, k.heads, k.kv)
	}
	a := gqaDims{B: k.batch, T: q[0] / k.batch, H: k.heads, KV: k.kv, rep: k.heads / k.kv, qw: q[1], kw: kk[1]}
	a.hd = a.qw / a.H
	a.scale = 1 / math.Sqrt(float64(a.hd))
	return a, nil
}

func (k *gqaKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if _, err := k.dims(in[0], in[1]); err != nil {
		return nil, err
	}
	if !in[2].Eq(in[1]) {
		return nil, fmt.Errorf("v shape %v, want k's %v", in[2], in[1])
	}
	return in[0].Clone(), nil
}

func (k *gqaKernel) forward(out tval, in []tval) error {
	a, err := k.dims(in[0].shape, in[1].shape)
	if err != nil {
		return err
	}
	if out.f32 != nil {
		gqaForward(k, a, out.f32, in[0].f32, in[1].f32, in[2].f32)
	} else {
		gqaForward(k, a, out.f64, in[0].f64, in[1].f64, in[2].f64)
	}
	return nil
}

func gqaForward[T floatT](k *gqaKernel, a gqaDims, y, q, kk, v []T) {
	n := a.B * a.H * a.T * a.T
	st, _ := k.state.(*gqaState[T])
	if st == nil || len(st.probs) != n {
		st = &gqaState[T]{probs: make([]T, n)}
		k.state = st
	}
	view := a.view()
	forUnits(a.B*a.H, runtime.GOMAXPROCS(0), func(_, i int) {
		b, h := i/a.H, i%a.H
		g := h / a.rep
		p := st.probs[i*a.T*a.T : (i+1)*a.T*a.T]
		causalHeadForward(view, p, nil, q[a.qOff(b, h):], kk[a.kvOff(b, g):], v[a.kvOff(b, g):], y[a.qOff(b, h):])
	})
}

// gqaGradKernel: (q, k, v, y, dy) → dq, with dk and dv kept in the forward
// kernel's state for gqaReadKernel. y is not read.
type gqaGradKernel struct{ fwd *gqaKernel }

func (k *gqaGradKernel) String() string { return k.fwd.String() + ".dq" }

// orderOnly: input 3, the forward output, only orders this after the forward pass.
func (*gqaGradKernel) orderOnly() []int { return []int{3} }

func (k *gqaGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if _, err := k.fwd.dims(in[0], in[1]); err != nil {
		return nil, err
	}
	if !in[3].Eq(in[4]) {
		return nil, fmt.Errorf("output shape %v and gradient shape %v differ", in[3], in[4])
	}
	return in[0].Clone(), nil
}

func (k *gqaGradKernel) forward(out tval, in []tval) error {
	a, err := k.fwd.dims(in[0].shape, in[1].shape)
	if err != nil {
		return err
	}
	if out.f32 != nil {
		return gqaBackward(k.fwd, a, out.f32, in[0].f32, in[1].f32, in[2].f32, in[4].f32)
	}
	return gqaBackward(k.fwd, a, out.f64, in[0].f64, in[1].f64, in[2].f64, in[4].f64)
}

// gqaBackward computes, per sequence and key/value head, for each query
// head h of its group (see causalHeadBackward):
//
//	dQ_h = dS_h·K/√hd,  dK += dS_hᵀ·Q_h/√hd,  dV += P_hᵀ·dY_h
func gqaBackward[T floatT](k *gqaKernel, a gqaDims, dq, q, kk, v, dy []T) error {
	st, _ := k.state.(*gqaState[T])
	nn := a.T * a.T
	if st == nil || len(st.probs) != a.B*a.H*nn {
		return fmt.Errorf("no forward pass of this shape to differentiate")
	}
	st.dk = sizedBuf(st.dk, len(kk))
	st.dv = sizedBuf(st.dv, len(kk))
	w := min(runtime.GOMAXPROCS(0), a.B*a.KV)
	for len(st.scratch) < w {
		st.scratch = append(st.scratch, nil)
	}
	for i := range st.scratch[:w] {
		st.scratch[i] = sizedBuf(st.scratch[i], nn)
	}
	view := a.view()
	forUnits(a.B*a.KV, w, func(worker, i int) {
		b, g := i/a.KV, i%a.KV
		ko := a.kvOff(b, g)
		for j := range a.rep {
			h := g*a.rep + j
			p := st.probs[(b*a.H+h)*nn : (b*a.H+h+1)*nn]
			qo := a.qOff(b, h)
			causalHeadBackward(view, p, p, st.scratch[worker], q[qo:], kk[ko:], v[ko:], dy[qo:], dq[qo:], st.dk[ko:], st.dv[ko:], j > 0)
		}
	})
	return nil
}

// gqaReadKernel copies dk (or dv) out of the backward pass's state. Its
// first input is the core gradient node, so it runs after it; the second
// (k or v) gives its shape.
type gqaReadKernel struct {
	core *gqaGradKernel
	v    bool
}

func (k *gqaReadKernel) String() string {
	if k.v {
		return k.core.fwd.String() + ".dv"
	}
	return k.core.fwd.String() + ".dk"
}

func (*gqaReadKernel) outShape(in []tensor.Shape) (tensor.Shape, error) { return in[1].Clone(), nil }

func (k *gqaReadKernel) forward(out tval, _ []tval) error {
	if out.f32 != nil {
		return gqaRead(k, out.f32)
	}
	return gqaRead(k, out.f64)
}

func gqaRead[T floatT](k *gqaReadKernel, out []T) error {
	st, _ := k.core.fwd.state.(*gqaState[T])
	src := []T(nil)
	if st != nil {
		src = st.dk
		if k.v {
			src = st.dv
		}
	}
	if len(src) != len(out) {
		return fmt.Errorf("backward pass kept %d values, want %d", len(src), len(out))
	}
	copy(out, src)
	return nil
}

// headView is the geometry of one attention head inside row-major
// matrices: T tokens, width hd, scale 1/√hd, and the row strides of the
// matrices holding its queries (qs), keys (ks), values (vs) and output
// (ys). Gradients are laid out like what they differentiate.
type headView struct {
	T, hd          int
	scale          float64
	qs, ks, vs, ys int
}

// causalHeadForward computes one causal head: p [T, T] gets P, drop (nil
// without dropout) holds the dropout mask scales and gets drop(P); q, k, v
// point at the head's first query, key and value, y at its output.
func causalHeadForward[T floatT](a headView, p, drop, q, k, v, y []T) {
	for i0 := 0; i0 < a.T; i0 += attnBlock {
		i1 := min(i0+attnBlock, a.T)
		// S[i0:i1, :i1] = Q[i0:i1]·K[:i1]ᵀ/√hd
		gemm(false, true, i1-i0, i1, a.hd, T(a.scale), q[i0*a.qs:], a.qs, k, a.ks, 0, p[i0*a.T:], a.T)
		for i := i0; i < i1; i++ {
			row := p[i*a.T : (i+1)*a.T]
			softmaxRow(row[:i+1], row[:i+1])
			clear(row[i+1:])
		}
		use := p
		if drop != nil {
			use = drop
			for j := i0 * a.T; j < i1*a.T; j++ {
				drop[j] *= p[j]
			}
		}
		// Y[i0:i1] = A[i0:i1, :i1]·V[:i1]
		gemm(false, false, i1-i0, a.hd, i1, 1, use[i0*a.T:], a.T, v, a.vs, 0, y[i0*a.ys:], a.ys)
	}
}

// causalHeadBackward computes one head's gradients, with A = use (drop(P),
// or P without dropout):
//
//	dV = Aᵀ·dY,  dA = dY·Vᵀ,
//	dS = A ⊙ dA − P ⊙ rowsum(A ⊙ dA)
//	dQ = dS·K/√hd,  dK = dSᵀ·Q/√hd
//
// using ds [T, T] as scratch for dA, then dS. dq is overwritten; dk and dv
// are overwritten, or added to when acc is set (a key/value head shared by
// several query heads).
func causalHeadBackward[T floatT](a headView, p, use, ds, q, k, v, dy, dq, dk, dv []T, acc bool) {
	var beta T
	if acc {
		beta = 1
	}
	for i0 := 0; i0 < a.T; i0 += attnBlock {
		i1 := min(i0+attnBlock, a.T)
		// dA[i0:i1, :i1] = dY[i0:i1]·V[:i1]ᵀ
		gemm(false, true, i1-i0, i1, a.hd, 1, dy[i0*a.ys:], a.ys, v, a.vs, 0, ds[i0*a.T:], a.T)
		for i := i0; i < i1; i++ {
			row := ds[i*a.T : (i+1)*a.T]
			softmaxBack(row[:i+1], use[i*a.T:i*a.T+i+1], p[i*a.T:i*a.T+i+1], row[:i+1])
			clear(row[i+1:])
		}
		// dQ[i0:i1] = dS[i0:i1, :i1]·K[:i1]/√hd
		gemm(false, false, i1-i0, a.hd, i1, T(a.scale), ds[i0*a.T:], a.T, k, a.ks, 0, dq[i0*a.qs:], a.qs)
	}
	for j0 := 0; j0 < a.T; j0 += attnBlock {
		j1 := min(j0+attnBlock, a.T)
		// Keys [j0, j1) are seen by queries [j0, T) only.
		// dV[j0:j1] = A[j0:, j0:j1]ᵀ·dY[j0:]
		gemm(true, false, j1-j0, a.hd, a.T-j0, 1, use[j0*a.T+j0:], a.T, dy[j0*a.ys:], a.ys, beta, dv[j0*a.vs:], a.vs)
		// dK[j0:j1] = dS[j0:, j0:j1]ᵀ·Q[j0:]/√hd
		gemm(true, false, j1-j0, a.hd, a.T-j0, T(a.scale), ds[j0*a.T+j0:], a.T, q[j0*a.qs:], a.qs, beta, dk[j0*a.ks:], a.ks)
	}
}

// forUnits runs f(worker, i) for i in [0, n) on up to w goroutines (the
// caller's alone when w ≤ 1); worker < w indexes per-goroutine scratch.
// Units are handed out one at a time, so a goroutine whose core is busy
// with other work holds up no more than one unit.
func forUnits(n, w int, f func(worker, i int)) {
	w = min(w, n)
	if w <= 1 {
		for i := range n {
			f(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for t := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(t, i)
			}
		}()
	}
	wg.Wait()
}

// checkGrouped reports why q, k and v cannot be the inputs of grouped-query
// attention with heads query heads in groups of kvHeads: an integer input, a
// q that is not [rows, heads·hd], or heads that kvHeads does not divide.
func checkGrouped(q, k, v *Node, heads, kvHeads int, rows string) error {
	for _, n := range []*Node{q, k, v} {
		if n.isInt {
			return fmt.Errorf("%s is an integer input", n.Name())
		}
	}
	qs := q.n.Shape()
	switch {
	case qs.Dims() != 2:
		return fmt.Errorf("q %s has shape %v, want [%s, heads·hd]", q.Name(), []int(qs), rows)
	case heads <= 0 || qs[1]%heads != 0:
		return fmt.Errorf("q %s: %d columns do not split into %d heads", q.Name(), qs[1], heads)
	case kvHeads <= 0 || heads%kvHeads != 0:
		return fmt.Errorf("%d query heads do not split into groups of %d key/value heads", heads, kvHeads)
	}
	return nil
}
