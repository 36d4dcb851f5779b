package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SoftmaxCrossEntropy returns the masked mean cross-entropy of the softmax of
// logits against integer targets, as one scalar:
//
//	loss = Σ_i m_i·ℓ_i / Σ_i m_i
//	ℓ_i  = (1−ε)·(−log p_{i,t_i}) + ε·mean_v(−log p_{i,v}),  p_i = softmax(logits_i)
//
// logits is [N, V], targets an IntInput [N] and mask a float [N] node of row
// weights (usually 0 or 1; nil means all ones). ε = smoothing is label
// smoothing in [0, 1). Each row's softmax subtracts that row's max. When
// Σ_i m_i = 0 the loss and its gradient are 0. A target outside [0, V) on a
// row whose mask is non-zero makes the run fail with an error naming the row.
//
// Only logits get a gradient: dlogits_{i,v} = g·m_i/Σm·(p_{i,v} − (1−ε)·[v = t_i] − ε/V)
// for the upstream scalar g.
func SoftmaxCrossEntropy(logits, targets, mask *Node, smoothing float64) *Node {
	const name = "SoftmaxCrossEntropy"
	b, ins, bad := xentInputs(name, "logits", logits, targets, mask, smoothing)
	if bad != nil {
		return bad
	}
	k := &xentKernel{eps: smoothing, mask: mask != nil, targets: targets.Name()}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		// The gradient reads the probabilities the forward pass stashed in
		// k; taking out as an input orders it after the forward pass, and
		// logits gives it its shape.
		gin := append([]*G.Node{in[0], out, dy}, in[1:]...)
		dl, _, err := b.gradNode(&xentGradKernel{fwd: k}, gin...)
		res := make([]*G.Node, len(in))
		res[0] = dl
		return res, err
	}
	diff := []bool{true, false, false}
	gn, _, err := b.apply(k, diff[:len(ins)], grads, gnodes(ins...)...)
	// Only logits is listed as the node's input: targets and mask get no gradient.
	return b.wrap(gn, err, name, logits)
}

// xentInputs checks the inputs of a cross-entropy op: x (named what) a
// float node, targets an integer input, mask a float node or nil, and
// smoothing in [0, 1). It returns x's builder and the inputs [x, targets,
// mask?], or a failed node.
func xentInputs(name, what string, x, targets, mask *Node, smoothing float64) (*Builder, []*Node, *Node) {
	ins := []*Node{x, targets}
	if mask != nil {
		ins = append(ins, mask)
	}
	b, bad := check(name, ins...)
	if bad != nil {
		return b, nil, bad
	}
	switch {
	case x.isInt:
		return b, nil, b.fail(fmt.Errorf("graph: %s: %s %q is an integer input", name, what, x.Name()))
	case !targets.isInt:
		return b, nil, b.fail(fmt.Errorf("graph: %s: targets %q is not an integer input (use IntInput)", name, targets.Name()))
	case mask != nil && mask.isInt:
		return b, nil, b.fail(fmt.Errorf("graph: %s: mask %q is an integer input, want a float [N] node", name, mask.Name()))
	case !(smoothing >= 0 && smoothing < 1):
		return b, nil, b.fail(fmt.Errorf("graph: %s: label smoothing %v outside [0, 1)", name, smoothing))
	}
	return b, ins, nil
}

// checkTargets returns Σ_i m_i, or an error naming the first row whose
// mask is non-zero and whose target is outside [0, v).
func checkTargets[T floatT](targets string, ids []int, mask []T, v int) (float64, error) {
	var msum float64
	for i, t := range ids {
		m := rowWeight(mask, i)
		if m != 0 && (t < 0 || t >= v) {
			return 0, fmt.Errorf("targets %q: row %d: id %d outside [0, %d)", targets, i, t, v)
		}
		msum += m
	}
	return msum, nil
}

// dlogitsRow writes one row's gradient of the loss, c·(p_v − ε/V) with
// c = g·m_i/Σm and p = e^(x − mx)/sum, into dl (which may alias x), and
// subtracts c·(1 − ε) at column t when t ≥ 0: the row's target, when it
// lies in this row or block of columns.
func dlogitsRow[T floatT](dl, x []T, mx T, sum, c, eps float64, v, t int) {
	cT, off := T(c), T(c*eps/float64(v))
	expSubSum(dl, x, mx)
	inv := T(1 / sum)
	for j, e := range dl {
		dl[j] = cT*(e*inv) - off
	}
	if t >= 0 {
		dl[t] -= T(c * (1 - eps))
	}
}

// xentKernel: (logits [N, V], targets int [N], mask [N]?) → scalar loss. It
// keeps each row's max and Σ exp(x − max) for the gradient, which computes
// the softmax again from the logits (into its own output, which may be the
// logits' storage), so no N·V softmax is kept between the passes.
type xentKernel struct {
	eps     float64
	mask    bool
	targets string // the targets node's name, for errors

	rowMax  interface{} // []float32 or []float64 of N: each row's max, reused across runs
	rowExp  []float64   // Σ_v exp(x_v − max) of each row, reused across runs
	rowLoss []float64   // ℓ_i, reused across runs
	scratch interface{} // []float32 or []float64: one row per worker
}

func (k *xentKernel) String() string { return "SoftmaxCrossEntropy" }

func (k *xentKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x, t := in[0], in[1]
	if x.Dims() != 2 {
		return nil, fmt.Errorf("logits shape %v, want [N, V]", x)
	}
	if t.Dims() != 1 || t[0] != x[0] {
		return nil, fmt.Errorf("targets shape %v, want [%d] for logits %v", t, x[0], x)
	}
	if k.mask && (in[2].Dims() != 1 || in[2][0] != x[0]) {
		return nil, fmt.Errorf("mask shape %v, want [%d] for logits %v", in[2], x[0], x)
	}
	return tensor.ScalarShape(), nil
}

func (k *xentKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		l, err := xentForward[float32](k, in)
		out.f32[0] = float32(l)
		return err
	}
	l, err := xentForward[float64](k, in)
	out.f64[0] = l
	return err
}

// rowWeight is m_i, or 1 without a mask.
func rowWeight[T floatT](mask []T, i int) float64 {
	if mask == nil {
		return 1
	}
	return float64(mask[i])
}

func xentForward[T floatT](k *xentKernel, in []tval) (float64, error) {
	x, ids := data[T](in[0]), in[1].ints
	n, v := in[0].dims(0), in[0].dims(1)
	var mask []T
	if k.mask {
		mask = data[T](in[2])
	}
	msum, err := checkTargets(k.targets, ids, mask, v)
	if err != nil {
		return 0, err
	}
	mx, _ := k.rowMax.([]T)
	if len(mx) != n {
		mx = make([]T, n)
		k.rowMax = mx
	}
	if len(k.rowExp) != n {
		k.rowExp = make([]float64, n)
	}
	// ℓ_i with lse = log Σ_v exp(x_v): −log p_t = lse − x_t and
	// mean_v(−log p_v) = lse − mean_v x_v.
	if len(k.rowLoss) != n {
		k.rowLoss = make([]float64, n)
	}
	rowLoss, rowExp := k.rowLoss, k.rowExp
	w := rowWorkers(n, v)
	scratch, _ := k.scratch.([]T)
	if len(scratch) != w*v {
		scratch = make([]T, w*v)
		k.scratch = scratch
	}
	forRowBlocks(n, w, func(b, lo, hi int) {
		e := scratch[b*v : (b+1)*v]
		for i := lo; i < hi; i++ {
			if rowWeight(mask, i) == 0 {
				rowLoss[i] = 0
				continue
			}
			xi := x[i*v : (i+1)*v]
			mx[i] = rowMax(xi)
			sum := expSubSum(e, xi, mx[i])
			rowExp[i] = sum
			lse := float64(mx[i]) + math.Log(sum)
			l := (1 - k.eps) * (lse - float64(xi[ids[i]]))
			if k.eps != 0 {
				l += k.eps * (lse - rowSum(xi)/float64(v))
			}
			rowLoss[i] = l
		}
	})
	if msum == 0 {
		return 0, nil
	}
	var loss float64
	for i, l := range rowLoss {
		loss += rowWeight(mask, i) * l
	}
	return loss / msum, nil
}

// xentGradKernel: (logits [N, V], loss, g, targets, mask?) → dlogits [N, V],
// the softmax computed again from the logits with the row maxima and sums
// its forward kernel kept during the same run. Each output element depends
// only on the same element of the logits, so the output may overwrite them.
type xentGradKernel struct{ fwd *xentKernel }

func (k *xentGradKernel) String() string { return "SoftmaxCrossEntropy.dlogits" }

func (k *xentGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[2].TotalSize() != 1 {
		return nil, fmt.Errorf("upstream gradient shape %v, want a scalar", in[2])
	}
	return in[0].Clone(), nil
}

func (k *xentGradKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		return xentBackward[float32](k, out, in)
	}
	return xentBackward[float64](k, out, in)
}

func xentBackward[T floatT](k *xentGradKernel, out tval, in []tval) error {
	dl, ids, x := data[T](out), in[3].ints, data[T](in[0])
	mx, _ := k.fwd.rowMax.([]T)
	if len(mx)*in[0].dims(1) != len(dl) || len(x) != len(dl) {
		return fmt.Errorf("the forward pass kept %d rows, want %d", len(mx), in[0].dims(0))
	}
	var mask []T
	if k.fwd.mask {
		mask = data[T](in[4])
	}
	n, v := in[0].dims(0), in[0].dims(1)
	var msum float64
	for i := range ids {
		msum += rowWeight(mask, i)
	}
	g := float64(data[T](in[2])[0])
	eps := k.fwd.eps
	forRows(n, v, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := dl[i*v : (i+1)*v]
			c := rowWeight(mask, i)
			if c == 0 || msum == 0 {
				clear(row)
				continue
			}
			dlogitsRow(row, x[i*v:(i+1)*v], mx[i], k.fwd.rowExp[i], c*g/msum, eps, v, ids[i])
		}
	})
	return nil
}
