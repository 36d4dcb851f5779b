package graph

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"gorgonia.org/tensor"
)

// CachedSelfAttention is GPT-2's masked multi-head attention for incremental
// decoding: the keys and values of earlier positions are read from a cache
// instead of being recomputed, and those of the new tokens are written into
// it. qkv [R·T, 3d] is the c_attn output of T new tokens for each of R rows
// (row r's token t at qkv row r·T + t, columns q | k | v as in
// CausalSelfAttention); kCache and vCache [R·C, d] hold C positions per row
// (row r's position j at cache row r·C + j); pos is an integer node [R, T]
// (or [R] when T = 1) with the position of each new token, −1 for a token to
// skip (padding, or a row with nothing to do). The result is [R·T, d].
//
// For every token with p = pos[r, t] ≥ 0, first
//
//	kCache[r·C + p] = k(r, t),  vCache[r·C + p] = v(r, t)
//
// for all tokens of the call, then for each head h (hd = d/heads columns)
//
//	s_j = q(r, t)·kCache[r·C + j]/√hd       j = 0 … p
//	y(r, t) = Σ_{j ≤ p} softmax(s)_j · vCache[r·C + j]
//
// with a per-row max in the softmax. A skipped token writes nothing and gets
// a zero output row. Positions 0 … p−1 that are not written by this call must
// hold what earlier calls wrote there: the op cannot tell a stale entry from
// a fresh one, so the caller (a key/value cache) tracks how many positions of
// each row are valid. The non-negative positions of a row must increase
// strictly, and each must be below C; a violation is a run error naming pos.
//
// kCache and vCache must be two different non-trainable parameters. Their
// storage is bound by pointer, so the op writes into the parameters
// themselves: nothing is copied from run to run, and Program.BindParam
// switches a compiled program to another cache of the same shape.
//
// The op is forward-only: it has no gradient (DiffWRT is false for every
// input), so use it in inference programs compiled with a nil loss.
func CachedSelfAttention(qkv, kCache, vCache, pos *Node, heads int) *Node {
	const name = "CachedSelfAttention"
	b, bad := check(name, qkv, kCache, vCache, pos)
	if bad != nil {
		return bad
	}
	fail := func(format string, args ...interface{}) *Node {
		return b.fail(fmt.Errorf("graph: %s: %s", name, fmt.Sprintf(format, args...)))
	}
	qs, ks, vs, ps := qkv.n.Shape(), kCache.n.Shape(), vCache.n.Shape(), pos.n.Shape()
	switch {
	case qkv.isInt:
		return fail("qkv %s is an integer input", qkv.Name())
	case qs.Dims() != 2 || qs[1]%3 != 0:
		return fail("qkv %s has shape %v, want [R·T, 3d]", qkv.Name(), []int(qs))
	case heads <= 0 || (qs[1]/3)%heads != 0:
		return fail("qkv %s: d = %d does not split into %d heads", qkv.Name(), qs[1]/3, heads)
	case !pos.isInt:
		return fail("pos %s is not an integer input", pos.Name())
	case ps.Dims() != 1 && ps.Dims() != 2:
		return fail("pos %s has shape %v, want [R, T] or [R]", pos.Name(), []int(ps))
	}
	if err := checkCaches(kCache, vCache); err != nil {
		return fail("%v", err)
	}
	g := kvGeom{d: qs[1] / 3, heads: heads}
	if err := g.fit(qs, ks, vs, ps); err != nil {
		return fail("%v", err)
	}
	k := &kvAttnKernel{heads: heads, pos: pos.Name()}
	gn, _, err := b.apply(k, []bool{false, false, false, false}, nil, qkv.n, kCache.n, vCache.n, pos.n)
	return b.wrap(gn, err, name, qkv, kCache, vCache, pos)
}

// kvGeom is the geometry of one cached attention call.
type kvGeom struct {
	R, T, C  int // rows, new tokens per row, cache positions per row
	d, heads int
	hd, d3   int // head width, qkv row stride
	scale    float64
}

// fit checks the shapes of qkv, the caches and pos against one another and
// fills in the sizes.
func (g *kvGeom) fit(qs, ks, vs, ps tensor.Shape) error {
	g.R, g.T = ps[0], 1
	if ps.Dims() == 2 {
		g.T = ps[1]
	}
	switch {
	case g.R <= 0 || g.T <= 0:
		return fmt.Errorf("pos shape %v has a zero size", []int(ps))
	case qs[0] != g.R*g.T:
		return fmt.Errorf("qkv has %d rows, want R·T = %d·%d from pos", qs[0], g.R, g.T)
	case ks.Dims() != 2 || ks[1] != g.d:
		return fmt.Errorf("kCache shape %v, want [R·C, %d]", []int(ks), g.d)
	case !ks.Eq(vs):
		return fmt.Errorf("kCache shape %v and vCache shape %v differ", []int(ks), []int(vs))
	case ks[0]%g.R != 0 || ks[0] == 0:
		return fmt.Errorf("kCache has %d rows, not a positive multiple of R = %d", ks[0], g.R)
	}
	g.C = ks[0] / g.R
	g.hd = g.d / g.heads
	g.d3 = 3 * g.d
	g.scale = 1 / math.Sqrt(float64(g.hd))
	return nil
}

// kvAttnKernel: (qkv [R·T, 3d], kCache, vCache [R·C, d], pos [R, T]) → [R·T, d],
// writing the new keys and values into the caches.
type kvAttnKernel struct {
	heads int
	pos   string      // the pos input's name, for errors
	state interface{} // *kvScratch[T]
}

// kvScratch holds one [T, C] score matrix per worker, reused across runs.
type kvScratch[T floatT] struct {
	scores [][]T
}

func (k *kvAttnKernel) String() string { return fmt.Sprintf("CachedSelfAttention(heads=%d)", k.heads) }

func (k *kvAttnKernel) geom(in []tensor.Shape) (kvGeom, error) {
	qs := in[0]
	if qs.Dims() != 2 || qs[1]%3 != 0 || (qs[1]/3)%k.heads != 0 {
		return kvGeom{}, fmt.Errorf("qkv shape %v does not fit %d heads", []int(qs), k.heads)
	}
	if ps := in[3]; ps.Dims() != 1 && ps.Dims() != 2 {
		return kvGeom{}, fmt.Errorf("pos shape %v, want [R, T] or [R]", []int(ps))
	}
	g := kvGeom{d: qs[1] / 3, heads: k.heads}
	return g, g.fit(qs, in[1], in[2], in[3])
}

func (k *kvAttnKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	g, err := k.geom(in)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{g.R * g.T, g.d}, nil
}

func (k *kvAttnKernel) forward(out tval, in []tval) error {
	g, err := k.geom([]tensor.Shape{in[0].shape, in[1].shape, in[2].shape, in[3].shape})
	if err != nil {
		return err
	}
	if err := checkPositions(k.pos, in[3].ints, g); err != nil {
		return err
	}
	if out.f32 != nil {
		kvForward(k, g, out.f32, in[0].f32, in[1].f32, in[2].f32, in[3].ints)
	} else {
		kvForward(k, g, out.f64, in[0].f64, in[1].f64, in[2].f64, in[3].ints)
	}
	return nil
}

// checkPositions reports the first entry of pos that is below −1 or not
// below C, or that does not increase along its row.
func checkPositions(name string, pos []int, g kvGeom) error {
	for r := 0; r < g.R; r++ {
		last := -1
		for t, p := range pos[r*g.T : (r+1)*g.T] {
			switch {
			case p < -1 || p >= g.C:
				return fmt.Errorf("%s[%d, %d] = %d is outside [−1, %d) (−1 skips a token; the cache holds %d positions per row)", name, r, t, p, g.C, g.C)
			case p >= 0 && p <= last:
				return fmt.Errorf("%s[%d, %d] = %d does not increase along row %d (previous position %d)", name, r, t, p, r, last)
			case p >= 0:
				last = p
			}
		}
	}
	return nil
}

func kvForward[T floatT](k *kvAttnKernel, g kvGeom, y, qkv, kc, vc []T, pos []int) {
	// Write every new key and value first: a token then sees the tokens of
	// the same call at earlier positions.
	for i, p := range pos {
		if p < 0 {
			continue
		}
		dst := ((i/g.T)*g.C + p) * g.d
		src := qkv[i*g.d3:]
		copy(kc[dst:dst+g.d], src[g.d:2*g.d])
		copy(vc[dst:dst+g.d], src[2*g.d:3*g.d])
	}
	// The largest position of each row bounds the keys it reads; the
	// work of a (row, head) unit is about T·(pmax+1)·hd multiply-adds.
	work := 0
	for r := 0; r < g.R; r++ {
		work += g.T * (rowMaxPos(pos[r*g.T:(r+1)*g.T]) + 1) * g.hd
	}
	n := g.R * g.heads
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
		if len(st.scores[i]) != g.T*g.C {
			st.scores[i] = make([]T, g.T*g.C)
		}
	}
	unit := func(worker, i int) {
		r, h := i/g.heads, i%g.heads
		kvHead(g, st.scores[worker], pos[r*g.T:(r+1)*g.T],
			qkv[r*g.T*g.d3+h*g.hd:], kc[r*g.C*g.d+h*g.hd:], vc[r*g.C*g.d+h*g.hd:], y[r*g.T*g.d+h*g.hd:])
	}
	if w <= 1 {
		for i := range n {
			unit(0, i)
		}
		return
	}
	var wg sync.WaitGroup
	for t := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := t; i < n; i += w {
				unit(t, i)
			}
		}()
	}
	wg.Wait()
}

// rowMaxPos is the largest entry of one row of pos (−1 when all are skipped).
func rowMaxPos(pos []int) int {
	m := -1
	for _, p := range pos {
		m = max(m, p)
	}
	return m
}

// kvHead computes one head of one row: pos holds the row's T positions, q
// its queries inside qkv (row stride 3d), kc and vc its cache block (row
// stride d) and y its output block (row stride d); s is [T, C] scratch.
func kvHead[T floatT](g kvGeom, s []T, pos []int, q, kc, vc, y []T) {
	cachedHead(cachedView{T: g.T, C: g.C, hd: g.hd, scale: g.scale, qs: g.d3, cs: g.d, ys: g.d}, s, pos, q, kc, vc, y)
}

// cachedView is the geometry of one head of one row in cached attention:
// T new tokens, C cache positions, head width hd, scale 1/√hd, and the row
// strides of the queries (qs), the caches (cs) and the output (ys).
type cachedView struct {
	T, C, hd   int
	scale      float64
	qs, cs, ys int
}

// cachedHead computes one head of one row: pos holds the row's T
// positions, q its first query, kc and vc its first cached key and value,
// y its first output; s is [T, C] scratch.
func cachedHead[T floatT](g cachedView, s []T, pos []int, q, kc, vc, y []T) {
	n := rowMaxPos(pos) + 1 // keys 0 … pmax
	if n == 0 {
		for t := 0; t < g.T; t++ {
			clear(y[t*g.ys : t*g.ys+g.hd])
		}
		return
	}
	// S[t, :n] = Q[t]·K[:n]ᵀ/√hd                    [T, n]
	gemm(false, true, g.T, n, g.hd, T(g.scale), q, g.qs, kc, g.cs, 0, s, g.C)
	for t, p := range pos {
		row := s[t*g.C : t*g.C+n]
		if p < 0 {
			clear(row) // a skipped token: a zero output row
			continue
		}
		softmaxRow(row[:p+1], row[:p+1])
		clear(row[p+1:]) // keys after p are masked
	}
	// Y[t] = P[t, :n]·V[:n]                          [T, hd]
	gemm(false, false, g.T, g.hd, n, 1, s, g.C, vc, g.cs, 0, y, g.ys)
}

// checkCaches reports why kCache and vCache cannot be the caches of a cached
// attention op: each must be a frozen parameter node (the op writes into
// it), and they must be different parameters.
func checkCaches(kCache, vCache *Node) error {
	for _, c := range []*Node{kCache, vCache} {
		switch {
		case c.param == nil:
			return fmt.Errorf("cache %s is not a parameter node", c.Name())
		case c.param.Trainable:
			return fmt.Errorf("cache %s is trainable; the op writes into it, so it must be frozen", c.Name())
		}
	}
	if kCache.param == vCache.param {
		return fmt.Errorf("kCache and vCache are the same parameter %s", kCache.Name())
	}
	return nil
}
