package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// RMSNorm scales each group of d consecutive elements of x (d = len(w)) by
// the inverse of its root mean square, then by w, as Llama's RMSNorm
// (transformers' LlamaRMSNorm) does:
//
//	r = 1/√(mean_j x_j² + eps)
//	y_j = w_j·(x_j·r)
//
// in that order: the row is normalised first and the weight applied last.
// The mean of squares is summed in float64; r is rounded to the graph's
// dtype before it multiplies x.
//
// x is [N, k·d] (any rank ≥ 1; the last axis must be a multiple of d): with
// k = 1 every row is one group (a model's hidden state), with k = heads and
// d = head_dim every head of every row is its own group (Qwen3's q_norm and
// k_norm, applied per head). w is [d]; the result has x's shape. eps must be
// finite and > 0.
//
// The forward pass keeps r per group for the backward pass, one kernel that
// computes, with x̂ = x·r and g = w ⊙ dy per group,
//
//	dx = r·(g − x̂·mean(g ⊙ x̂)),  dw = Σ_groups dy ⊙ x̂
//
// dw is read out of it by a small op, so it runs once whichever of the two
// gradients a program needs.
func RMSNorm(x, w *Node, eps float64) *Node {
	const name = "RMSNorm"
	b, bad := check(name, x, w)
	if bad != nil {
		return bad
	}
	switch {
	case math.IsNaN(eps) || math.IsInf(eps, 0) || eps <= 0:
		return b.fail(fmt.Errorf("graph: %s: eps %v, want a finite value > 0", name, eps))
	case x.isInt:
		return b.fail(fmt.Errorf("graph: %s: x %s is an integer input", name, x.Name()))
	case w.isInt:
		return b.fail(fmt.Errorf("graph: %s: weight %s is an integer input", name, w.Name()))
	}
	k := &rmsKernel{eps: eps}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		// out is a child only so that the forward pass (which fills k.rstd)
		// runs before this node.
		core := &rmsGradKernel{fwd: k}
		dx, _, err := b.gradNode(core, in[0], in[1], out, dy)
		if err != nil {
			return nil, err
		}
		dw, _, err := b.gradNode(&rmsWeightGradKernel{core: core}, dx, in[1])
		if err != nil {
			return nil, err
		}
		return []*G.Node{dx, dw}, nil
	}
	gn, _, err := b.apply(k, []bool{true, true}, grads, x.n, w.n)
	return b.wrap(gn, err, name, x, w)
}

// rmsKernel computes the forward pass and keeps each group's 1/rms.
type rmsKernel struct {
	eps  float64
	rstd []float64 // [groups], from the last run
}

func (*rmsKernel) String() string { return "RMSNorm" }

func (*rmsKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x, w := in[0], in[1]
	if x.Dims() < 1 || x.TotalSize() == 0 {
		return nil, fmt.Errorf("x shape %v, want [N, k·d]", x)
	}
	last := x[x.Dims()-1]
	if w.Dims() != 1 || w[0] == 0 || last%w[0] != 0 {
		return nil, fmt.Errorf("weight shape %v does not divide x's last axis %d (x %v)", w, last, x)
	}
	return x.Clone(), nil
}

func (k *rmsKernel) forward(out tval, in []tval) error {
	d := in[1].shape[0]
	groups := in[0].shape.TotalSize() / d
	k.rstd = sizedBuf(k.rstd, groups)
	if rowWorkers(groups, d) == 1 {
		k.groups(out, in, 0, groups) // no goroutine, no allocation
		return nil
	}
	forRows(groups, d, func(lo, hi int) { k.groups(out, in, lo, hi) })
	return nil
}

// groups normalises groups [lo, hi).
func (k *rmsKernel) groups(out tval, in []tval, lo, hi int) {
	if out.f32 != nil {
		rmsForward(out.f32, in[0].f32, in[1].f32, k.rstd, k.eps, lo, hi)
	} else {
		rmsForward(out.f64, in[0].f64, in[1].f64, k.rstd, k.eps, lo, hi)
	}
}

// rmsForward normalises groups [lo, hi) of x (len(w) elements each) into y
// and stores each group's r.
func rmsForward[T floatT](y, x, w []T, rstd []float64, eps float64, lo, hi int) {
	d := len(w)
	for i := lo; i < hi; i++ {
		xr := x[i*d : (i+1)*d]
		yr := y[i*d : (i+1)*d]
		yr = yr[:len(xr)]
		r := 1 / math.Sqrt(sumSquares(xr)/float64(d)+eps)
		rstd[i] = r
		rT := T(r)
		for j, v := range xr {
			yr[j] = w[j] * (v * rT)
		}
	}
}

// sumSquares returns Σ x_j² in float64, with four accumulators.
func sumSquares[T floatT](x []T) float64 { return centredSquares(x, 0) }

// rmsGradKernel computes dx from (x, w, y, dy) and leaves dw in its buffer
// for rmsWeightGradKernel. y is not read.
type rmsGradKernel struct {
	fwd  *rmsKernel
	dw   []float64   // [d], from the last run
	part [][]float64 // per extra worker: its groups' dw, [d]
}

func (*rmsGradKernel) String() string { return "RMSNorm.dx" }

// orderOnly: input 2, the forward output, only orders this after the forward pass.
func (*rmsGradKernel) orderOnly() []int { return []int{2} }

func (*rmsGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}

func (k *rmsGradKernel) forward(out tval, in []tval) error {
	d := in[1].shape[0]
	groups := in[0].shape.TotalSize() / d
	if groups != len(k.fwd.rstd) {
		return fmt.Errorf("forward pass kept %d groups, input has %d", len(k.fwd.rstd), groups)
	}
	k.dw = sizedBuf(k.dw, d)
	w := rowWorkers(groups, d)
	for len(k.part) < w-1 {
		k.part = append(k.part, nil)
	}
	for i := range k.part[:w-1] {
		k.part[i] = sizedBuf(k.part[i], d)
	}
	if w == 1 {
		k.groups(out, in, k.dw, 0, groups) // no goroutine, no allocation
		return nil
	}
	// Worker i sums dw of its groups into its own buffer; the partial sums
	// are added up afterwards.
	forRowBlocks(groups, w, func(i, lo, hi int) {
		if i == 0 {
			k.groups(out, in, k.dw, lo, hi)
		} else {
			k.groups(out, in, k.part[i-1], lo, hi)
		}
	})
	for _, p := range k.part[:w-1] {
		for j := range d {
			k.dw[j] += p[j]
		}
	}
	return nil
}

// groups computes dx of groups [lo, hi) and their dw sum into dw.
func (k *rmsGradKernel) groups(out tval, in []tval, dw []float64, lo, hi int) {
	if out.f32 != nil {
		rmsBackward(out.f32, in[0].f32, in[1].f32, in[3].f32, k.fwd.rstd, dw, lo, hi)
	} else {
		rmsBackward(out.f64, in[0].f64, in[1].f64, in[3].f64, k.fwd.rstd, dw, lo, hi)
	}
}

// rmsBackward writes dx for groups [lo, hi) and overwrites dw with those
// groups' sum of dy ⊙ x̂ (see RMSNorm for the maths). Row sums run in
// float64, the elementwise work in T.
func rmsBackward[T floatT](dx, x, w, dy []T, rstd, dw []float64, lo, hi int) {
	d := len(w)
	dw = dw[:d]
	clear(dw)
	for i := lo; i < hi; i++ {
		xr := x[i*d : (i+1)*d]
		dyr, dxr := dy[i*d:(i+1)*d], dx[i*d:(i+1)*d]
		dyr, dxr = dyr[:len(xr)], dxr[:len(xr)]
		r := T(rstd[i])
		var s float64 // Σ w⊙dy⊙x̂
		for j, v := range xr {
			xh := v * r
			s += float64(w[j] * dyr[j] * xh)
			dw[j] += float64(dyr[j] * xh)
		}
		m := T(s / float64(d))
		for j, v := range xr {
			dxr[j] = r * (w[j]*dyr[j] - v*r*m)
		}
	}
}

// rmsWeightGradKernel copies dw out of a rmsGradKernel's buffer. Its first
// input is that kernel's node, so it runs after it; the second (the weight)
// gives its shape.
type rmsWeightGradKernel struct{ core *rmsGradKernel }

func (*rmsWeightGradKernel) String() string { return "RMSNorm.dw" }

func (*rmsWeightGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[1].Clone(), nil
}

func (k *rmsWeightGradKernel) forward(out tval, _ []tval) error {
	if len(k.core.dw) != out.shape.TotalSize() {
		return fmt.Errorf("backward pass kept %d weight gradients, want %d", len(k.core.dw), out.shape.TotalSize())
	}
	if out.f32 != nil {
		for j, v := range k.core.dw {
			out.f32[j] = float32(v)
		}
	} else {
		copy(out.f64, k.core.dw)
	}
	return nil
}
