package graph

import (
	"errors"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LoRAAdapter is one adapter of LoRALinearMulti or LoRAEmbedding: its
// low-rank updates, their scale and the input they read.
type LoRAAdapter struct {
	// X is the input after this adapter's LoRA dropout, [N, in] like the op's
	// x, or nil for x itself. LoRAEmbedding ignores it.
	X *Node
	// Slices are the adapter's updates: A [in, r] ([V, r] for LoRAEmbedding)
	// and B [r, w] add Scale·(X·A)·B to the output columns [Offset,
	// Offset+w). An adapter without slices adds nothing.
	Slices []LoRASlice
	// Scale multiplies every update of the adapter (α/r, or α/√r).
	Scale float64
}

// LoRALinearMulti is a linear layer with several LoRA adapters, each of them
// applied to all rows or to the rows routed to it:
//
//	y = x·W + b + Σ_k Σ_j  m_k ⊙ s_k·(X_k·A_kj)·B_kj      [N, in] → [N, out]
//
// where update j of adapter k adds into its slice's columns, and m_k is the
// row mask of adapter k: every row when rows is nil (the adapters' updates
// add up), else the rows i with rows[i] = k. rows is an integer node [N]
// holding, per row of x, the index of its adapter in adapters, or −1 for the
// base layer alone; a value outside [−1, len(adapters)) is a run error. A
// row routed to adapter k is computed exactly as if it ran alone through
// LoRALinear with that adapter.
//
// Gradients, with dyB_kj = m_k ⊙ s_k·dy_j·B_kjᵀ [N, r] (dy_j the slice's
// columns of dy):
//
//	dX_k = Σ_j dyB_kj·A_kjᵀ   dA_kj = X_kᵀ·dyB_kj   dB_kj = s_k·(m_k ⊙ X_k·A_kj)ᵀ·dy_j
//	dx = dy·Wᵀ (+ the dX_k of adapters whose X is nil)   dW = xᵀ·dy   db = Σ_rows dy
//
// Slices may overlap (their updates add). bias may be nil.
func LoRALinearMulti(x, w, bias *Node, adapters []LoRAAdapter, rows *Node) *Node {
	return loraMulti("LoRALinearMulti", false, x, w, bias, adapters, rows)
}

// LoRAEmbedding is an embedding lookup with LoRA adapters (loralib's
// Embedding): the low-rank factor A is looked up by id like the table,
//
//	y = table[ids] + Σ_k Σ_j  m_k ⊙ s_k·A_kj[ids]·B_kj      ids [N] → [N, d]
//
// for table [V, d], A_kj [V, r] and B_kj [r, w] adding into output columns
// [Offset, Offset+w), with the row masks m_k of LoRALinearMulti (rows nil:
// every adapter on every row). Gradients, with dyB_kj = m_k ⊙ s_k·dy_j·B_kjᵀ:
//
//	dtable[v] = Σ_{i: ids[i]=v} dy[i]   dA_kj[v] = Σ_{i: ids[i]=v} dyB_kj[i]   dB_kj = s_k·(m_k ⊙ A_kj[ids])ᵀ·dy_j
//
// An id outside [0, V) is a run error, as in Embedding.
func LoRAEmbedding(table, ids *Node, adapters []LoRAAdapter, rows *Node) *Node {
	return loraMulti("LoRAEmbedding", true, table, ids, nil, adapters, rows)
}

// multiGeom is the static layout of a multi-adapter LoRA op. Its inputs are,
// in order: x (or the table), W (or the ids), the bias if any, rows if any,
// the distinct adapter inputs X_k that are not x (linear only), then A_s and
// B_s for every slice s, adapters' slices in order.
type multiGeom struct {
	op                string
	embed             bool
	n, in, out        int // linear: x [n, in], W [in, out]; embed: table [in=V, out=d], ids [n]
	bias, hasRows     bool
	iBias, iRows      int
	adapters          int
	xds               []int // input index of each distinct X_k ≠ x
	iA0               int   // input index of slice 0's A
	adapter, xin      []int // per slice: its adapter and the input index of its X (0 for x)
	offs, widths      []int
	ranks, cols       []int
	scales            []float64
	rank              int // R = Σ ranks: width of the [n, R] stashes
	rowsName, idsName string
}

func (g *multiGeom) ia(s int) int { return g.iA0 + 2*s }
func (g *multiGeom) ib(s int) int { return g.iA0 + 2*s + 1 }

func loraMulti(op string, embed bool, x, w, bias *Node, adapters []LoRAAdapter, rows *Node) *Node {
	nodes := []*Node{x, w}
	if bias != nil {
		nodes = append(nodes, bias)
	}
	if rows != nil {
		nodes = append(nodes, rows)
	}
	for _, a := range adapters {
		if a.X != nil && !embed {
			nodes = append(nodes, a.X)
		}
		for _, s := range a.Slices {
			nodes = append(nodes, s.A, s.B)
		}
	}
	b, bad := check(op, nodes...)
	if bad != nil {
		return bad
	}
	g, ins, err := planMulti(op, embed, x, w, bias, adapters, rows)
	if err != nil {
		return b.fail(fmt.Errorf("graph: %s: %w", op, err))
	}
	k := &multiKernel{g: g}
	diff := make([]bool, len(ins))
	for i := range diff {
		diff[i] = !ins[i].isInt
	}
	gn, _, err := b.apply(k, diff, b.multiGrads(k), gnodes(ins...)...)
	return b.wrap(gn, err, op, ins...)
}

// planMulti checks the inputs and lays them out (see multiGeom).
func planMulti(op string, embed bool, x, w, bias *Node, adapters []LoRAAdapter, rows *Node) (*multiGeom, []*Node, error) {
	g := &multiGeom{op: op, embed: embed, adapters: len(adapters)}
	ins := []*Node{x, w}
	xs, ws := x.n.Shape(), w.n.Shape()
	if embed {
		if x.isInt || xs.Dims() != 2 {
			return nil, nil, fmt.Errorf("table %s has shape %v, want a float [V, d]", x.Name(), xs)
		}
		if !w.isInt || ws.Dims() != 1 {
			return nil, nil, fmt.Errorf("ids %s must be an integer node [N], got shape %v", w.Name(), ws)
		}
		g.n, g.in, g.out, g.idsName = ws[0], xs[0], xs[1], w.Name()
	} else {
		if x.isInt || xs.Dims() != 2 {
			return nil, nil, fmt.Errorf("x has shape %v, want a float [N, in]", xs)
		}
		if w.isInt || ws.Dims() != 2 || ws[0] != xs[1] {
			return nil, nil, fmt.Errorf("W has shape %v, want [%d, out] (x is %v)", ws, xs[1], xs)
		}
		g.n, g.in, g.out = xs[0], ws[0], ws[1]
	}
	if bias != nil {
		if bs := bias.n.Shape(); bias.isInt || bs.Dims() != 1 || bs[0] != g.out {
			return nil, nil, fmt.Errorf("bias has shape %v, want [%d]", bs, g.out)
		}
		g.bias, g.iBias = true, len(ins)
		ins = append(ins, bias)
	}
	if rows != nil {
		if rs := rows.n.Shape(); !rows.isInt || rs.Dims() != 1 || rs[0] != g.n {
			return nil, nil, fmt.Errorf("rows %s must be an integer node [%d], got shape %v", rows.Name(), g.n, rs)
		}
		g.hasRows, g.iRows, g.rowsName = true, len(ins), rows.Name()
		ins = append(ins, rows)
	}
	xIndex := map[*Node]int{x: 0}
	var slices []LoRASlice
	for k, a := range adapters {
		if math.IsNaN(a.Scale) || math.IsInf(a.Scale, 0) {
			return nil, nil, fmt.Errorf("adapter %d: scale %v is not finite", k, a.Scale)
		}
		xi := 0
		if a.X != nil && !embed && len(a.Slices) > 0 {
			i, ok := xIndex[a.X]
			if !ok {
				if xd := a.X.n.Shape(); a.X.isInt || !xd.Eq(xs) {
					return nil, nil, fmt.Errorf("adapter %d: X has shape %v, x has %v", k, xd, xs)
				}
				i = len(ins)
				xIndex[a.X] = i
				g.xds = append(g.xds, i)
				ins = append(ins, a.X)
			}
			xi = i
		}
		for j, s := range a.Slices {
			if s.A == nil || s.B == nil {
				return nil, nil, fmt.Errorf("adapter %d slice %d: A or B is nil", k, j)
			}
			as, bs := s.A.n.Shape(), s.B.n.Shape()
			if as.Dims() != 2 || as[0] != g.in || as[1] < 1 || s.A.isInt {
				return nil, nil, fmt.Errorf("adapter %d slice %d: A has shape %v, want [%d, r ≥ 1]", k, j, as, g.in)
			}
			if bs.Dims() != 2 || bs[0] != as[1] || s.B.isInt {
				return nil, nil, fmt.Errorf("adapter %d slice %d: B has shape %v, want [%d, width] to follow A %v", k, j, bs, as[1], as)
			}
			if s.Offset < 0 || s.Offset+bs[1] > g.out {
				return nil, nil, fmt.Errorf("adapter %d slice %d covers columns [%d, %d), outside [0, %d)", k, j, s.Offset, s.Offset+bs[1], g.out)
			}
			g.adapter = append(g.adapter, k)
			g.xin = append(g.xin, xi)
			g.offs = append(g.offs, s.Offset)
			g.widths = append(g.widths, bs[1])
			g.ranks = append(g.ranks, as[1])
			g.cols = append(g.cols, g.rank)
			g.scales = append(g.scales, a.Scale)
			g.rank += as[1]
			slices = append(slices, s)
		}
	}
	if len(slices) == 0 {
		return nil, nil, errors.New("no LoRA slices in any adapter")
	}
	g.iA0 = len(ins)
	for _, s := range slices {
		ins = append(ins, s.A, s.B)
	}
	return g, ins, nil
}

// outShape checks the run-time shapes against the plan: [n, out].
func (g *multiGeom) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if len(in) != g.iA0+2*len(g.ranks) {
		return nil, fmt.Errorf("%d inputs, want %d", len(in), g.iA0+2*len(g.ranks))
	}
	for s, r := range g.ranks {
		if !in[g.ia(s)].Eq(tensor.Shape{g.in, r}) || !in[g.ib(s)].Eq(tensor.Shape{r, g.widths[s]}) {
			return nil, fmt.Errorf("slice %d: A %v and B %v, want [%d, %d] and [%d, %d]", s, in[g.ia(s)], in[g.ib(s)], g.in, r, r, g.widths[s])
		}
	}
	return tensor.Shape{g.n, g.out}, nil
}

// checkRows reports the first routing index outside [−1, adapters).
func (g *multiGeom) checkRows(in []tval) error {
	if !g.hasRows {
		return nil
	}
	for i, k := range in[g.iRows].ints {
		if k < -1 || k >= g.adapters {
			return fmt.Errorf("%s: row %d is routed to adapter %d, want −1 (none) or 0…%d", g.rowsName, i, k, g.adapters-1)
		}
	}
	return nil
}

// rowRun is a run of consecutive rows [lo, hi) routed to one adapter.
type rowRun struct{ lo, hi, k int }

// multiKernel is the forward op. It keeps X_s·A_s (or A_s[ids]) of every
// slice side by side in an [n, R] stash for the dB ops, and the runs of
// rows each adapter applies to: every low-rank product, forward and
// backward, is computed on those rows only, so routing k adapters costs
// one adapter's work rather than k.
type multiKernel struct {
	g      *multiGeom
	xa32   []float32
	xa64   []float64
	runs   []rowRun // the last forward run's row runs; k = −2: every adapter
	filled bool
}

// eachRun calls f for every run of rows adapter k applies to.
func (k *multiKernel) eachRun(adapter int, f func(lo, hi int)) {
	for _, r := range k.runs {
		if r.k == adapter || r.k == -2 {
			f(r.lo, r.hi)
		}
	}
}

func (k *multiKernel) String() string { return k.g.op }

func (k *multiKernel) outShape(in []tensor.Shape) (tensor.Shape, error) { return k.g.outShape(in) }

func (k *multiKernel) forward(out tval, in []tval) error {
	g := k.g
	if err := g.checkRows(in); err != nil {
		return err
	}
	if g.embed {
		if err := checkIDs(g.idsName, in[1].ints, g.in); err != nil {
			return err
		}
	}
	k.runs = k.runs[:0]
	if !g.hasRows {
		k.runs = append(k.runs, rowRun{0, g.n, -2})
	} else {
		for i, a := range in[g.iRows].ints {
			if last := len(k.runs) - 1; last >= 0 && k.runs[last].k == a {
				k.runs[last].hi = i + 1
			} else {
				k.runs = append(k.runs, rowRun{i, i + 1, a})
			}
		}
	}
	k.filled = true
	if out.f32 != nil {
		k.xa32 = sizedBuf(k.xa32, g.n*g.rank)
		multiForward(k, out.f32, k.xa32, in)
		return nil
	}
	k.xa64 = sizedBuf(k.xa64, g.n*g.rank)
	multiForward(k, out.f64, k.xa64, in)
	return nil
}

func multiForward[T floatT](k *multiKernel, y, xa []T, in []tval) {
	g, R := k.g, k.g.rank
	if g.embed {
		gatherRows(y, data[T](in[0]), in[1].ints, g.out) // y = table[ids]
	} else {
		var beta T
		if g.bias {
			bias := data[T](in[g.iBias])
			for i := 0; i < g.n; i++ {
				copy(y[i*g.out:(i+1)*g.out], bias)
			}
			beta = 1
		}
		gemm(false, false, g.n, g.out, g.in, 1, data[T](in[0]), g.in, data[T](in[1]), g.out, beta, y, g.out) // y = x·W (+b)
	}
	for s, r := range g.ranks {
		a, bm, xas, w := data[T](in[g.ia(s)]), data[T](in[g.ib(s)]), xa[g.cols[s]:], g.widths[s]
		k.eachRun(g.adapter[s], func(lo, hi int) {
			if g.embed {
				for i, id := range in[1].ints[lo:hi] { // xa_s = A_s[ids]  [n, r]
					copy(xas[(lo+i)*R:(lo+i)*R+r], a[id*r:(id+1)*r])
				}
			} else {
				gemm(false, false, hi-lo, r, g.in, 1, data[T](in[g.xin[s]])[lo*g.in:], g.in, a, r, 0, xas[lo*R:], R) // xa_s = X_s·A_s
			}
			gemm(false, false, hi-lo, w, r, T(g.scales[s]), xas[lo*R:], R, bm, w, 1, y[lo*g.out+g.offs[s]:], g.out) // y_s += s·xa_s·B_s
		})
	}
}

// multiGrads builds the gradient ops (see LoRALinearMulti).
func (b *Builder) multiGrads(k *multiKernel) gradFunc {
	g := k.g
	return func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		gs := make([]*G.Node, len(in))
		var err error
		dybIns := []*G.Node{dy}
		for s := range g.ranks {
			dybIns = append(dybIns, in[g.ib(s)])
		}
		dyb, _, err := b.gradNode(&multiDYBKernel{k}, dybIns...) // [n, R]
		if err != nil {
			return nil, err
		}
		if g.embed {
			if gs[0], _, err = b.gradNode(&embedGradKernel{v: g.in, ids: g.idsName}, dy, in[1]); err != nil {
				return nil, err
			}
		} else {
			for _, t := range append([]int{0}, g.xds...) {
				dxIns := []*G.Node{dyb}
				for s := range g.ranks {
					if g.xin[s] == t {
						dxIns = append(dxIns, in[g.ia(s)])
					}
				}
				if t == 0 {
					dxIns = append(dxIns, dy, in[1])
				}
				if gs[t], _, err = b.gradNode(&multiDXKernel{fwd: k, target: t}, dxIns...); err != nil {
					return nil, err
				}
			}
			if gs[1], _, err = b.gradNode(newMM(g.op+".dW", true, false), in[0], dy); err != nil {
				return nil, err
			}
		}
		if g.bias {
			if gs[g.iBias], _, err = b.gradNode(colSumKernel{}, dy); err != nil {
				return nil, err
			}
		}
		for s := range g.ranks {
			src := in[1] // ids
			if !g.embed {
				src = in[g.xin[s]]
			}
			if gs[g.ia(s)], _, err = b.gradNode(&multiDAKernel{k, s}, src, dyb); err != nil {
				return nil, err
			}
			// out is not read: it orders dB after the forward op whose stash it reads
			if gs[g.ib(s)], _, err = b.gradNode(&multiDBKernel{k, s}, dy, out); err != nil {
				return nil, err
			}
		}
		return gs, nil
	}
}

func (g *multiGeom) checkDY(dy tensor.Shape) error {
	if !dy.Eq(tensor.Shape{g.n, g.out}) {
		return fmt.Errorf("dy has shape %v, want [%d, %d]", dy, g.n, g.out)
	}
	return nil
}

// checkFilled reports a gradient op run before its forward op.
func (k *multiKernel) checkFilled() error {
	if !k.filled {
		return errors.New("the forward pass has not run")
	}
	return nil
}

// multiDYBKernel: (dy, B_0 … B_S) → dyB [n, R] with dyB_s = s_s·dy_s·B_sᵀ on
// the rows of slice s's adapter (other rows are not read).
type multiDYBKernel struct{ fwd *multiKernel }

func (k *multiDYBKernel) String() string { return k.fwd.g.op + ".dyB" }

func (k *multiDYBKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if err := k.fwd.g.checkDY(in[0]); err != nil {
		return nil, err
	}
	return tensor.Shape{k.fwd.g.n, k.fwd.g.rank}, nil
}

func (k *multiDYBKernel) forward(out tval, in []tval) error {
	if err := k.fwd.checkFilled(); err != nil {
		return err
	}
	if out.f32 != nil {
		multiDYB[float32](k.fwd, out, in)
	} else {
		multiDYB[float64](k.fwd, out, in)
	}
	return nil
}

func multiDYB[T floatT](k *multiKernel, out tval, in []tval) {
	g, dy, dyb := k.g, data[T](in[0]), data[T](out)
	for s, r := range g.ranks {
		bm, w := data[T](in[1+s]), g.widths[s]
		k.eachRun(g.adapter[s], func(lo, hi int) {
			gemm(false, true, hi-lo, r, w, T(g.scales[s]), dy[lo*g.out+g.offs[s]:], g.out, bm, w, 0, dyb[lo*g.rank+g.cols[s]:], g.rank)
		})
	}
}

// multiDXKernel: (dyB, the A_s of the slices reading input target[, dy, W])
// → Σ_s dyB_s·A_sᵀ [n, in] (on each slice's rows), plus dy·Wᵀ for x itself
// (target 0).
type multiDXKernel struct {
	fwd    *multiKernel
	target int
}

func (k *multiDXKernel) String() string { return fmt.Sprintf("%s.dX%d", k.fwd.g.op, k.target) }

func (k *multiDXKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	g := k.fwd.g
	if !in[0].Eq(tensor.Shape{g.n, g.rank}) {
		return nil, fmt.Errorf("dyB has shape %v, want [%d, %d]", in[0], g.n, g.rank)
	}
	return tensor.Shape{g.n, g.in}, nil
}

func (k *multiDXKernel) forward(out tval, in []tval) error {
	if err := k.fwd.checkFilled(); err != nil {
		return err
	}
	if out.f32 != nil {
		multiDX[float32](k, out, in)
	} else {
		multiDX[float64](k, out, in)
	}
	return nil
}

func multiDX[T floatT](k *multiDXKernel, out tval, in []tval) {
	g, dyb, dx := k.fwd.g, data[T](in[0]), data[T](out)
	if k.target == 0 {
		m := len(in)
		gemm(false, true, g.n, g.in, g.out, 1, data[T](in[m-2]), g.out, data[T](in[m-1]), g.out, 0, dx, g.in) // dx = dy·Wᵀ
	} else {
		clear(dx)
	}
	j := 1
	for s, r := range g.ranks {
		if g.xin[s] != k.target {
			continue
		}
		a := data[T](in[j])
		k.fwd.eachRun(g.adapter[s], func(lo, hi int) {
			gemm(false, true, hi-lo, g.in, r, 1, dyb[lo*g.rank+g.cols[s]:], g.rank, a, r, 1, dx[lo*g.in:], g.in) // dX += dyB_s·A_sᵀ
		})
		j++
	}
}

// multiDAKernel: (X_s, dyB) → dA_s = X_sᵀ·dyB_s [in, r] over the slice's
// rows, or for an embedding (ids, dyB) → dyB_s rows scatter-added by id
// [V, r].
type multiDAKernel struct {
	fwd *multiKernel
	s   int
}

func (k *multiDAKernel) String() string { return fmt.Sprintf("%s.dA%d", k.fwd.g.op, k.s) }

func (k *multiDAKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	g := k.fwd.g
	if !in[1].Eq(tensor.Shape{g.n, g.rank}) {
		return nil, fmt.Errorf("dyB has shape %v, want [%d, %d]", in[1], g.n, g.rank)
	}
	return tensor.Shape{g.in, g.ranks[k.s]}, nil
}

func (k *multiDAKernel) forward(out tval, in []tval) error {
	if err := k.fwd.checkFilled(); err != nil {
		return err
	}
	if out.f32 != nil {
		return multiDA[float32](k, out, in)
	}
	return multiDA[float64](k, out, in)
}

func multiDA[T floatT](k *multiDAKernel, out tval, in []tval) error {
	g, s := k.fwd.g, k.s
	r, da, dyb := g.ranks[s], data[T](out), data[T](in[1])[g.cols[s]:]
	clear(da)
	if g.embed {
		if err := checkIDs(g.idsName, in[0].ints, g.in); err != nil {
			return err
		}
	}
	k.fwd.eachRun(g.adapter[s], func(lo, hi int) {
		if !g.embed {
			gemm(true, false, g.in, r, hi-lo, 1, data[T](in[0])[lo*g.in:], g.in, dyb[lo*g.rank:], g.rank, 1, da, r)
			return
		}
		for i, id := range in[0].ints[lo:hi] {
			dst, src := da[id*r:(id+1)*r], dyb[(lo+i)*g.rank:(lo+i)*g.rank+r]
			for j, v := range src {
				dst[j] += v
			}
		}
	})
	return nil
}

// multiDBKernel: (dy, y) → dB_s = s_s·xa_sᵀ·dy_s [r, w] over the slice's
// rows, with xa_s read from the forward op's stash (y only orders this op
// after it).
type multiDBKernel struct {
	fwd *multiKernel
	s   int
}

func (k *multiDBKernel) String() string { return fmt.Sprintf("%s.dB%d", k.fwd.g.op, k.s) }

func (k *multiDBKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if err := k.fwd.g.checkDY(in[0]); err != nil {
		return nil, err
	}
	return tensor.Shape{k.fwd.g.ranks[k.s], k.fwd.g.widths[k.s]}, nil
}

func (k *multiDBKernel) forward(out tval, in []tval) error {
	if err := k.fwd.checkFilled(); err != nil {
		return err
	}
	if out.f32 != nil {
		multiDB(k, out.f32, k.fwd.xa32, data[float32](in[0]))
	} else {
		multiDB(k, out.f64, k.fwd.xa64, data[float64](in[0]))
	}
	return nil
}

func multiDB[T floatT](k *multiDBKernel, db, xa, dy []T) {
	g, s := k.fwd.g, k.s
	clear(db)
	k.fwd.eachRun(g.adapter[s], func(lo, hi int) {
		gemm(true, false, g.ranks[s], g.widths[s], hi-lo, T(g.scales[s]), xa[lo*g.rank+g.cols[s]:], g.rank, dy[lo*g.out+g.offs[s]:], g.out, 1, db, g.widths[s])
	})
}
