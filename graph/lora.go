package graph

import (
	"fmt"
	"math"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LoRASlice is one low-rank update inside a fused projection (loralib's
// MergedLinear): A [in, r] and B [r, w] add s·(xd·A)·B to the output columns
// [Offset, Offset+w) of LoRALinearSliced. GPT-2's c_attn [d, 3d] with LoRA on
// q and v has two slices, at offsets 0 and 2d, each of width d.
type LoRASlice struct {
	A, B   *Node
	Offset int
}

// LoRALinear returns the LoRA projection (Hu et al. 2021)
//
//	y = x·W + b + s·(xd·A)·B        [N, in] → [N, out]
//
// for x [N, in], W [in, out], an optional bias b [out] (nil for none),
// A [in, r], B [r, out] and scale s (α/r, or α/√r for rsLoRA). xd is x after
// LoRA dropout, or x itself (pass the same node twice). It is one op: one gemm
// for x·W, one for the [N, r] product xd·A (kept for the backward pass) and one
// that adds s·(xd·A)·B into y; A·B is never formed.
//
// Gradients, with dyB = s·dy·Bᵀ [N, r] computed once and shared:
//
//	dx = dy·Wᵀ   dxd = dyB·Aᵀ   dA = xdᵀ·dyB   dB = s·(xd·A)ᵀ·dy
//	dW = xᵀ·dy   db = Σ_rows dy
//
// (dx + dxd in one op when xd is x). A compiled Program runs only the gradient
// ops it reads, so a frozen W costs no gradient work.
func LoRALinear(x, xd, w, bias, a, bm *Node, scale float64) *Node {
	return loraLinear("LoRALinear", true, x, xd, w, bias, []LoRASlice{{A: a, B: bm}}, scale)
}

// LoRALinearSliced is LoRALinear for a fused projection whose output columns
// hold several projections (GPT-2's c_attn: q | k | v), each with its own
// low-rank update:
//
//	y = x·W + b;  y[:, o_i : o_i+w_i] += s·(xd·A_i)·B_i       [N, in] → [N, out]
//
// for slices A_i [in, r_i], B_i [r_i, w_i] at Offset o_i. Slices must lie
// inside [0, out) and must not overlap; columns no slice covers get x·W + b
// alone. Every A_i, B_i, x, xd, W and b has a gradient, computed as in
// LoRALinear on the slice's columns (gemm strides, no copies).
func LoRALinearSliced(x, xd, w, bias *Node, slices []LoRASlice, scale float64) *Node {
	return loraLinear("LoRALinearSliced", false, x, xd, w, bias, slices, scale)
}

func loraLinear(op string, whole bool, x, xd, w, bias *Node, slices []LoRASlice, scale float64) *Node {
	shared := xd == x
	labels, nodes := []string{"x"}, []*Node{x}
	if !shared {
		labels, nodes = append(labels, "xd"), append(nodes, xd)
	}
	labels, nodes = append(labels, "W"), append(nodes, w)
	if bias != nil {
		labels, nodes = append(labels, "b"), append(nodes, bias)
	}
	for i, s := range slices {
		labels = append(labels, fmt.Sprintf("slice %d A", i), fmt.Sprintf("slice %d B", i))
		nodes = append(nodes, s.A, s.B)
	}
	var present []*Node
	for _, n := range nodes {
		if n != nil {
			present = append(present, n)
		}
	}
	b, bad := check(op, present...)
	if bad != nil {
		return bad
	}
	for i, n := range nodes {
		if n == nil {
			return b.fail(fmt.Errorf("graph: %s: %s is nil", op, labels[i]))
		}
		if n.isInt {
			return b.fail(fmt.Errorf("graph: %s: %s (%s) is an integer input", op, labels[i], n.Name()))
		}
	}
	offsets := make([]int, len(slices))
	for i, s := range slices {
		offsets[i] = s.Offset
	}
	shapes := make([]tensor.Shape, len(nodes))
	for i, n := range nodes {
		shapes[i] = n.n.Shape()
	}
	g, err := planLoRA(op, shared, bias != nil, whole, shapes, offsets, scale)
	if err != nil {
		return b.fail(fmt.Errorf("graph: %s: %w", op, err))
	}
	k := &loraKernel{g: g}
	diff := make([]bool, len(nodes))
	for i := range diff {
		diff[i] = true
	}
	gn, _, err := b.apply(k, diff, b.loraGrads(k), gnodes(nodes...)...)
	return b.wrap(gn, err, op, nodes...)
}

// loraGeom is the static layout of one LoRA op. Its inputs are, in order:
// x, xd (absent when xd is x), W, b (when there is a bias), then A_i, B_i for
// each slice. The forward pass keeps xd·A_i of every slice side by side in one
// [N, R] stash, R = Σ r_i, slice i in the columns [cols[i], cols[i]+r_i).
type loraGeom struct {
	op           string
	shared, bias bool
	scale        float64
	in, out      int
	offs, widths []int // slice i writes output columns [offs[i], offs[i]+widths[i])
	ranks, cols  []int // rank of slice i and its first column in the stash
	rank         int   // R
}

func (g *loraGeom) ixd() int {
	if g.shared {
		return 0
	}
	return 1
}
func (g *loraGeom) iw() int { return g.ixd() + 1 }
func (g *loraGeom) ib() int { return g.iw() + 1 }
func (g *loraGeom) ia(i int) int {
	j := g.iw() + 1
	if g.bias {
		j++
	}
	return j + 2*i
}
func (g *loraGeom) ibm(i int) int { return g.ia(i) + 1 }

// planLoRA reads the sizes from the input shapes and checks them and the
// slice offsets.
func planLoRA(op string, shared, bias, whole bool, shapes []tensor.Shape, offsets []int, scale float64) (*loraGeom, error) {
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("scale %v is not finite", scale)
	}
	if len(offsets) == 0 {
		return nil, fmt.Errorf("no LoRA slices")
	}
	k := len(offsets)
	g := &loraGeom{op: op, shared: shared, bias: bias, scale: scale, offs: offsets,
		widths: make([]int, k), ranks: make([]int, k), cols: make([]int, k)}
	x, w := shapes[0], shapes[g.iw()]
	if x.Dims() != 2 {
		return nil, fmt.Errorf("x has shape %v, want [N, in]", x)
	}
	if w.Dims() != 2 {
		return nil, fmt.Errorf("W has shape %v, want [in, out]", w)
	}
	g.in, g.out = x[1], w[1]
	for i := range offsets {
		a, bm := shapes[g.ia(i)], shapes[g.ibm(i)]
		if a.Dims() != 2 || bm.Dims() != 2 {
			return nil, fmt.Errorf("slice %d: A %v and B %v, want [in, r] and [r, width]", i, a, bm)
		}
		g.ranks[i], g.widths[i], g.cols[i] = a[1], bm[1], g.rank
		g.rank += a[1]
	}
	if _, err := g.outShape(shapes); err != nil {
		return nil, err
	}
	if whole && g.widths[0] != g.out {
		return nil, fmt.Errorf("B has %d columns, W has %d", g.widths[0], g.out)
	}
	order := make([]int, k)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(p, q int) bool { return offsets[order[p]] < offsets[order[q]] })
	for j, i := range order {
		if offsets[i] < 0 || offsets[i]+g.widths[i] > g.out {
			return nil, fmt.Errorf("slice %d covers columns [%d, %d), outside W's [0, %d)", i, offsets[i], offsets[i]+g.widths[i], g.out)
		}
		if j > 0 {
			p := order[j-1]
			if end := offsets[p] + g.widths[p]; end > offsets[i] {
				return nil, fmt.Errorf("slices %d [%d, %d) and %d [%d, %d) overlap", p, offsets[p], end, i, offsets[i], offsets[i]+g.widths[i])
			}
		}
	}
	return g, nil
}

// outShape checks every input shape against the layout: [N, out].
func (g *loraGeom) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x := in[0]
	if x.Dims() != 2 || x[1] != g.in {
		return nil, fmt.Errorf("x has shape %v, want [N, %d]", x, g.in)
	}
	if xd := in[g.ixd()]; !xd.Eq(x) {
		return nil, fmt.Errorf("xd has shape %v, x has %v", xd, x)
	}
	if w := in[g.iw()]; w.Dims() != 2 || w[0] != g.in || w[1] != g.out {
		return nil, fmt.Errorf("W has shape %v, want [%d, %d] (x is %v)", w, g.in, g.out, x)
	}
	if g.bias {
		if b := in[g.ib()]; b.Dims() != 1 || b[0] != g.out {
			return nil, fmt.Errorf("bias has shape %v, want [%d]", b, g.out)
		}
	}
	for i, r := range g.ranks {
		a, bm := in[g.ia(i)], in[g.ibm(i)]
		if a.Dims() != 2 || a[0] != g.in || a[1] != r || r < 1 {
			return nil, fmt.Errorf("slice %d: A has shape %v, want [%d, r ≥ 1]", i, a, g.in)
		}
		if bm.Dims() != 2 || bm[0] != r || bm[1] != g.widths[i] {
			return nil, fmt.Errorf("slice %d: B has shape %v, want [%d, width] to follow A %v", i, bm, r, a)
		}
	}
	return tensor.Shape{x[0], g.out}, nil
}

// loraKernel is the forward op: y = x·W (+b), then for each slice
// xa_i = xd·A_i into the stash and y_i += s·xa_i·B_i.
type loraKernel struct {
	g  *loraGeom
	xa tval // stash [N, R], overwritten by every run, read by the dB ops
}

func (k *loraKernel) String() string { return k.g.op }

func (k *loraKernel) outShape(in []tensor.Shape) (tensor.Shape, error) { return k.g.outShape(in) }

func (k *loraKernel) forward(out tval, in []tval) error {
	n := out.shape[0] * k.g.rank
	if out.f32 != nil {
		if len(k.xa.f32) != n {
			k.xa = tval{f32: make([]float32, n)}
		}
		loraForward(k.g, out.f32, k.xa.f32, in)
		return nil
	}
	if len(k.xa.f64) != n {
		k.xa = tval{f64: make([]float64, n)}
	}
	loraForward(k.g, out.f64, k.xa.f64, in)
	return nil
}

func loraForward[T floatT](g *loraGeom, y, xa []T, in []tval) {
	n := in[0].shape[0]
	x, xd, w := data[T](in[0]), data[T](in[g.ixd()]), data[T](in[g.iw()])
	var beta T
	if g.bias {
		bias := data[T](in[g.ib()])
		for i := 0; i < n; i++ {
			copy(y[i*g.out:(i+1)*g.out], bias)
		}
		beta = 1
	}
	gemm(false, false, n, g.out, g.in, 1, x, g.in, w, g.out, beta, y, g.out) // y = x·W (+b)  [N, out]
	s := T(g.scale)
	for i, r := range g.ranks {
		a, bm, xai := data[T](in[g.ia(i)]), data[T](in[g.ibm(i)]), xa[g.cols[i]:]
		gemm(false, false, n, r, g.in, 1, xd, g.in, a, r, 0, xai, g.rank)                               // xa_i = xd·A_i  [N, r_i]
		gemm(false, false, n, g.widths[i], r, s, xai, g.rank, bm, g.widths[i], 1, y[g.offs[i]:], g.out) // y_i += s·xa_i·B_i
	}
}

// loraGrads builds the gradient ops of a LoRA op (see LoRALinear).
func (b *Builder) loraGrads(k *loraKernel) gradFunc {
	g := k.g
	return func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		gs := make([]*G.Node, len(in))
		var err error
		dybIns := []*G.Node{dy}
		dxIns := make([]*G.Node, 1, 3+len(g.ranks))
		for i := range g.ranks {
			dybIns = append(dybIns, in[g.ibm(i)])
			dxIns = append(dxIns, in[g.ia(i)])
		}
		// dyB = s·[dy_1·B_1ᵀ | … ]  [N, R], shared by dxd and every dA_i
		if dxIns[0], _, err = b.gradNode(&loraDYBKernel{g}, dybIns...); err != nil {
			return nil, err
		}
		if g.shared {
			dxIns = append(dxIns, dy, in[g.iw()])
		} else if gs[0], _, err = b.gradNode(newMM(g.op+".dx", false, true), dy, in[g.iw()]); err != nil {
			return nil, err
		}
		if gs[g.ixd()], _, err = b.gradNode(&loraDXKernel{g}, dxIns...); err != nil {
			return nil, err
		}
		if gs[g.iw()], _, err = b.gradNode(newMM(g.op+".dW", true, false), in[0], dy); err != nil {
			return nil, err
		}
		if g.bias {
			if gs[g.ib()], _, err = b.gradNode(colSumKernel{}, dy); err != nil {
				return nil, err
			}
		}
		for i := range g.ranks {
			if gs[g.ia(i)], _, err = b.gradNode(&loraDAKernel{g, i}, in[g.ixd()], dxIns[0]); err != nil {
				return nil, err
			}
			// out is not read: it orders dB after the forward op whose stash it reads
			if gs[g.ibm(i)], _, err = b.gradNode(&loraDBKernel{k, i}, dy, out); err != nil {
				return nil, err
			}
		}
		return gs, nil
	}
}

func checkDY(g *loraGeom, dy tensor.Shape) error {
	if dy.Dims() != 2 || dy[1] != g.out {
		return fmt.Errorf("dy has shape %v, want [N, %d]", dy, g.out)
	}
	return nil
}

// loraDYBKernel: (dy [N, out], B_1 … B_k) → dyB = s·[dy_1·B_1ᵀ | … | dy_k·B_kᵀ]
// [N, R], where dy_i is dy's columns of slice i.
type loraDYBKernel struct{ g *loraGeom }

func (k *loraDYBKernel) String() string { return k.g.op + ".dyB" }

func (k *loraDYBKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if err := checkDY(k.g, in[0]); err != nil {
		return nil, err
	}
	for i, r := range k.g.ranks {
		if !in[1+i].Eq(tensor.Shape{r, k.g.widths[i]}) {
			return nil, fmt.Errorf("slice %d: B has shape %v, want [%d, %d]", i, in[1+i], r, k.g.widths[i])
		}
	}
	return tensor.Shape{in[0][0], k.g.rank}, nil
}

func (k *loraDYBKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		loraDYB[float32](k.g, out, in)
	} else {
		loraDYB[float64](k.g, out, in)
	}
	return nil
}

func loraDYB[T floatT](g *loraGeom, out tval, in []tval) {
	n, dy, dyb := out.shape[0], data[T](in[0]), data[T](out)
	for i, r := range g.ranks {
		gemm(false, true, n, r, g.widths[i], T(g.scale), dy[g.offs[i]:], g.out, data[T](in[1+i]), g.widths[i], 0, dyb[g.cols[i]:], g.rank)
	}
}

// loraDXKernel: (dyB, A_1 … A_k) → dxd = Σ_i dyB_i·A_iᵀ [N, in]. When xd is x
// it also takes (dy, W) and returns the whole dx = dy·Wᵀ + Σ_i dyB_i·A_iᵀ.
type loraDXKernel struct{ g *loraGeom }

func (k *loraDXKernel) String() string {
	if k.g.shared {
		return k.g.op + ".dx"
	}
	return k.g.op + ".dxd"
}

func (k *loraDXKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	dyb := in[0]
	if dyb.Dims() != 2 || dyb[1] != k.g.rank {
		return nil, fmt.Errorf("dyB has shape %v, want [N, %d]", dyb, k.g.rank)
	}
	for i, r := range k.g.ranks {
		if !in[1+i].Eq(tensor.Shape{k.g.in, r}) {
			return nil, fmt.Errorf("slice %d: A has shape %v, want [%d, %d]", i, in[1+i], k.g.in, r)
		}
	}
	if k.g.shared {
		j := 1 + len(k.g.ranks)
		if err := checkDY(k.g, in[j]); err != nil {
			return nil, err
		}
		if !in[j+1].Eq(tensor.Shape{k.g.in, k.g.out}) || in[j][0] != dyb[0] {
			return nil, fmt.Errorf("W %v and dy %v do not match dyB %v", in[j+1], in[j], dyb)
		}
	}
	return tensor.Shape{dyb[0], k.g.in}, nil
}

func (k *loraDXKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		loraDX[float32](k.g, out, in)
	} else {
		loraDX[float64](k.g, out, in)
	}
	return nil
}

func loraDX[T floatT](g *loraGeom, out tval, in []tval) {
	n, dyb, dx := out.shape[0], data[T](in[0]), data[T](out)
	var beta T
	if g.shared {
		j := 1 + len(g.ranks)
		gemm(false, true, n, g.in, g.out, 1, data[T](in[j]), g.out, data[T](in[j+1]), g.out, 0, dx, g.in) // dx = dy·Wᵀ
		beta = 1
	}
	for i, r := range g.ranks {
		gemm(false, true, n, g.in, r, 1, dyb[g.cols[i]:], g.rank, data[T](in[1+i]), r, beta, dx, g.in) // dx += dyB_i·A_iᵀ
		beta = 1
	}
}

// loraDAKernel: (xd [N, in], dyB [N, R]) → dA_i = xdᵀ·dyB_i [in, r_i].
type loraDAKernel struct {
	g *loraGeom
	i int
}

func (k *loraDAKernel) String() string { return fmt.Sprintf("%s.dA%d", k.g.op, k.i) }

func (k *loraDAKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	xd, dyb := in[0], in[1]
	if xd.Dims() != 2 || xd[1] != k.g.in || dyb.Dims() != 2 || dyb[1] != k.g.rank || dyb[0] != xd[0] {
		return nil, fmt.Errorf("xd %v and dyB %v, want [N, %d] and [N, %d]", xd, dyb, k.g.in, k.g.rank)
	}
	return tensor.Shape{k.g.in, k.g.ranks[k.i]}, nil
}

func (k *loraDAKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		loraDA[float32](k, out, in)
	} else {
		loraDA[float64](k, out, in)
	}
	return nil
}

func loraDA[T floatT](k *loraDAKernel, out tval, in []tval) {
	g, r := k.g, k.g.ranks[k.i]
	gemm(true, false, g.in, r, in[0].shape[0], 1, data[T](in[0]), g.in, data[T](in[1])[g.cols[k.i]:], g.rank, 0, data[T](out), r)
}

// loraDBKernel: (dy [N, out], y) → dB_i = s·xa_iᵀ·dy_i [r_i, w_i], with xa_i
// read from the forward op's stash.
type loraDBKernel struct {
	fwd *loraKernel
	i   int
}

func (k *loraDBKernel) String() string { return fmt.Sprintf("%s.dB%d", k.fwd.g.op, k.i) }

func (k *loraDBKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if err := checkDY(k.fwd.g, in[0]); err != nil {
		return nil, err
	}
	return tensor.Shape{k.fwd.g.ranks[k.i], k.fwd.g.widths[k.i]}, nil
}

func (k *loraDBKernel) forward(out tval, in []tval) error {
	n := in[0].shape[0]
	if out.f32 != nil {
		return loraDB(k, n, k.fwd.xa.f32, out.f32, data[float32](in[0]))
	}
	return loraDB(k, n, k.fwd.xa.f64, out.f64, data[float64](in[0]))
}

func loraDB[T floatT](k *loraDBKernel, n int, xa, db, dy []T) error {
	g, i := k.fwd.g, k.i
	if len(xa) != n*g.rank {
		return fmt.Errorf("the stash of xd·A holds %d values, want %d (forward has not run)", len(xa), n*g.rank)
	}
	gemm(true, false, g.ranks[i], g.widths[i], n, T(g.scale), xa[g.cols[i]:], g.rank, dy[g.offs[i]:], g.out, 0, db, g.widths[i])
	return nil
}
