package graph

import (
	"fmt"
	"math"
	"runtime"

	"gorgonia.org/tensor"
)

// CachedGroupedQueryAttention is GroupedQueryAttention for incremental
// decoding, as CachedSelfAttention is for GPT-2: the keys and values of
// earlier positions are read from a cache and those of the new tokens are
// written into it. q [R·T, H·hd] holds the queries and k, v [R·T, KV·hd]
// the keys and values of T new tokens for each of R rows (row r's token t
// at row r·T + t; rotary embeddings already applied to q and k); kCache and
// vCache [R·C, KV·hd] hold C positions per row; pos is an integer node
// [R, T] (or [R] when T = 1) with each new token's cache position, −1 for a
// token to skip. The result is [R·T, H·hd].
//
// For every token with p = pos[r, t] ≥ 0, first
//
//	kCache[r·C + p] = k(r, t),  vCache[r·C + p] = v(r, t)
//
// for all tokens of the call, then for each query head h, reading
// key/value head g = h/(H/KV) (hd columns each),
//
//	s_j = q_h(r, t)·kCache_g[r·C + j]/√hd       j = 0 … p
//	y_h(r, t) = Σ_{j ≤ p} softmax(s)_j · vCache_g[r·C + j]
//
// with a per-row max in the softmax. A skipped token writes nothing and gets
// a zero output row. As with CachedSelfAttention, positions 0 … p−1 not
// written by this call must hold what earlier calls wrote; the non-negative
// positions of a row must increase strictly and stay below C (a violation
// is a run error naming pos); kCache and vCache must be two different
// frozen parameters, bound by pointer; and the op has no gradient.
func CachedGroupedQueryAttention(q, k, v, kCache, vCache, pos *Node, heads, kvHeads int) *Node {
	const name = "CachedGroupedQueryAttention"
	b, bad := check(name, q, k, v, kCache, vCache, pos)
	if bad != nil {
		return bad
	}
	fail := func(format string, args ...interface{}) *Node {
		return b.fail(fmt.Errorf("graph: %s: %s", name, fmt.Sprintf(format, args...)))
	}
	qs, ks, vs, cs, ps := q.n.Shape(), k.n.Shape(), v.n.Shape(), kCache.n.Shape(), pos.n.Shape()
	if err := checkGrouped(q, k, v, heads, kvHeads, "R·T"); err != nil {
		return fail("%v", err)
	}
	switch {
	case ks.Dims() != 2 || ks[0] != qs[0] || ks[1] != kvHeads*(qs[1]/heads):
		return fail("k %s has shape %v, want [%d, %d] (%d key/value heads of width %d)", k.Name(), []int(ks), qs[0], kvHeads*(qs[1]/heads), kvHeads, qs[1]/heads)
	case !vs.Eq(ks):
		return fail("v %s has shape %v, want k's %v", v.Name(), []int(vs), []int(ks))
	case !pos.isInt:
		return fail("pos %s is not an integer input", pos.Name())
	case ps.Dims() != 1 && ps.Dims() != 2:
		return fail("pos %s has shape %v, want [R, T] or [R]", pos.Name(), []int(ps))
	}
	if err := checkCaches(kCache, vCache); err != nil {
		return fail("%v", err)
	}
	kr := &gqaCachedKernel{heads: heads, kv: kvHeads, pos: pos.Name()}
	if _, err := kr.geom([]tensor.Shape{qs, ks, vs, cs, vCache.n.Shape(), ps}); err != nil {
		return fail("%v", err)
	}
	gn, _, err := b.apply(kr, []bool{false, false, false, false, false, false}, nil, q.n, k.n, v.n, kCache.n, vCache.n, pos.n)
	return b.wrap(gn, err, name, q, k, v, kCache, vCache, pos)
}

// gqaCachedGeom is the geometry of one cached grouped-query attention call.
type gqaCachedGeom struct {
	kvGeom         // R, T, C (d and heads unused)
	H, KV, rep, hd int
	qw, kw         int // row widths of q (and the output) and of k, v, caches
	scale          float64
}

// gqaCachedKernel: (q, k, v, kCache, vCache, pos) → [R·T, H·hd], writing
// the new keys and values into the caches.
type gqaCachedKernel struct {
	heads, kv int
	pos       string      // the pos input's name, for errors
	state     interface{} // *kvScratch[T]
}

func (k *gqaCachedKernel) String() string {
	return fmt.Sprintf("CachedGroupedQueryAttention(heads=%d,kv=%d)", k.heads, k.kv)
}

func (k *gqaCachedKernel) geom(in []tensor.Shape) (gqaCachedGeom, error) {
	qs, ks, cs, vcs, ps := in[0], in[1], in[3], in[4], in[5]
	if qs.Dims() != 2 || qs[1]%k.heads != 0 {
		return gqaCachedGeom{}, fmt.Errorf("q shape %v does not fit %d heads", []int(qs), k.heads)
	}
	g := gqaCachedGeom{H: k.heads, KV: k.kv, rep: k.heads / k.kv, hd: qs[1] / k.heads, qw: qs[1]}
	g.kw = g.KV * g.hd
	g.scale = 1 / math.Sqrt(float64(g.hd))
	if ps.Dims() != 1 && ps.Dims() != 2 {
		return g, fmt.Errorf("pos shape %v, want [R, T] or [R]", []int(ps))
	}
	g.R, g.T = ps[0], 1
	if ps.Dims() == 2 {
		g.T = ps[1]
	}
	switch {
	case g.R <= 0 || g.T <= 0:
		return g, fmt.Errorf("pos shape %v has a zero size", []int(ps))
	case qs[0] != g.R*g.T:
		return g, fmt.Errorf("q has %d rows, want R·T = %d·%d from pos", qs[0], g.R, g.T)
	case ks.Dims() != 2 || ks[0] != qs[0] || ks[1] != g.kw || !in[2].Eq(ks):
		return g, fmt.Errorf("k shape %v and v shape %v, want [%d, %d]", []int(ks), []int(in[2]), qs[0], g.kw)
	case cs.Dims() != 2 || cs[1] != g.kw:
		return g, fmt.Errorf("kCache shape %v, want [R·C, %d]", []int(cs), g.kw)
	case !cs.Eq(vcs):
		return g, fmt.Errorf("kCache shape %v and vCache shape %v differ", []int(cs), []int(vcs))
	case cs[0]%g.R != 0 || cs[0] == 0:
		return g, fmt.Errorf("kCache has %d rows, not a positive multiple of R = %d", cs[0], g.R)
	}
	g.C = cs[0] / g.R
	return g, nil
}

func (k *gqaCachedKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	g, err := k.geom(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{g.R * g.T, g.qw}, nil
}

func (k *gqaCachedKernel) forward(out tval, in []tval) error {
	shapes := make([]tensor.Shape, len(in))
	for i, v := range in {
		shapes[i] = v.shape
	}
	g, err := k.geom(shapes)
	if err != nil {
		return err
	}
	if err := checkPositions(k.pos, in[5].ints, g.kvGeom); err != nil {
		return err
	}
	if out.f32 != nil {
		gqaCachedForward(k, g, out.f32, in[0].f32, in[1].f32, in[2].f32, in[3].f32, in[4].f32, in[5].ints)
	} else {
		gqaCachedForward(k, g, out.f64, in[0].f64, in[1].f64, in[2].f64, in[3].f64, in[4].f64, in[5].ints)
	}
	return nil
}

func gqaCachedForward[T floatT](k *gqaCachedKernel, g gqaCachedGeom, y, q, kn, vn, kc, vc []T, pos []int) {
	// Write every new key and value first: a token then sees the tokens of
	// the same call at earlier positions.
	for i, p := range pos {
		if p < 0 {
			continue
		}
		dst := ((i/g.T)*g.C + p) * g.kw
		copy(kc[dst:dst+g.kw], kn[i*g.kw:(i+1)*g.kw])
		copy(vc[dst:dst+g.kw], vn[i*g.kw:(i+1)*g.kw])
	}
	// The largest position of each row bounds the keys it reads; the work
	// of a (row, head) unit is about T·(pmax+1)·hd multiply-adds.
	work := 0
	for r := 0; r < g.R; r++ {
		work += g.T * (rowMaxPos(pos[r*g.T:(r+1)*g.T]) + 1) * g.hd * g.H
	}
	n := g.R * g.H
	w := min(runtime.GOMAXPROCS(0), n, max(1, work/(1<<14)))
	st, _ := k.state.(*kvScratch[T])
	if st == nil {
		st = &kvScratch[T]{}
		k.state = st
	}
	for len(st.scores) < w {
		st.scores = append(st.scores, nil)
	}
	for i := range st.scores[:w] {
		st.scores[i] = sizedBuf(st.scores[i], g.T*g.C)
	}
	view := cachedView{T: g.T, C: g.C, hd: g.hd, scale: g.scale, qs: g.qw, cs: g.kw, ys: g.qw}
	forUnits(n, w, func(worker, i int) {
		r, h := i/g.H, i%g.H
		c := r*g.C*g.kw + (h/g.rep)*g.hd
		o := r*g.T*g.qw + h*g.hd
		cachedHead(view, st.scores[worker], pos[r*g.T:(r+1)*g.T], q[o:], kc[c:], vc[c:], y[o:])
	})
}
