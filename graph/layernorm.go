package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LayerNorm normalises each row of x over its last axis and applies a
// per-feature scale and shift, as PyTorch's LayerNorm (biased variance):
//
//	μ = mean_j x_j,  σ² = mean_j (x_j − μ)²,  r = 1/√(σ² + eps)
//	y_j = γ_j·(x_j − μ)·r + β_j
//
// x is [N, d] (any rank ≥ 1 works: rows are the leading axes), gamma and
// beta are [d]; the result has x's shape. eps must be finite and ≥ 0 (with
// eps = 0 a constant row divides by zero).
//
// The forward pass keeps μ and r per row for the backward pass, which is one
// kernel computing, with x̂ = (x − μ)·r and g = γ ⊙ dy per row,
//
//	dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)),  dγ = Σ_rows dy ⊙ x̂,  dβ = Σ_rows dy
//
// dγ and dβ are read out of it by two small ops, so it runs once whichever of
// the three gradients a program needs.
func LayerNorm(x, gamma, beta *Node, eps float64) *Node {
	b, bad := check("LayerNorm", x, gamma, beta)
	if bad != nil {
		return bad
	}
	if math.IsNaN(eps) || math.IsInf(eps, 0) || eps < 0 {
		return b.fail(fmt.Errorf("graph: LayerNorm: eps %v, want a finite value ≥ 0", eps))
	}
	k := &lnKernel{eps: eps}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		// [N, d] → dx [N, d]; out is a child only so that the forward pass
		// (which fills k.mean and k.rstd) runs before this node.
		core := &lnGradKernel{fwd: k}
		dx, _, err := b.gradNode(core, in[0], in[1], out, dy)
		if err != nil {
			return nil, err
		}
		dg, _, err := b.gradNode(&lnParamGradKernel{core: core}, dx)
		if err != nil {
			return nil, err
		}
		db, _, err := b.gradNode(&lnParamGradKernel{core: core, beta: true}, dx)
		if err != nil {
			return nil, err
		}
		return []*G.Node{dx, dg, db}, nil
	}
	gn, _, err := b.apply(k, []bool{true, true, true}, grads, x.n, gamma.n, beta.n)
	return b.wrap(gn, err, "LayerNorm", x, gamma, beta)
}

// lnKernel computes the forward pass and keeps each row's mean and 1/std.
type lnKernel struct {
	eps        float64
	mean, rstd []float64 // [rows], from the last run
}

func (*lnKernel) String() string { return "LayerNorm" }

func (*lnKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x, g, b := in[0], in[1], in[2]
	if x.Dims() < 1 || x.TotalSize() == 0 {
		return nil, fmt.Errorf("x shape %v, want [N, d]", x)
	}
	d := x[x.Dims()-1]
	if g.Dims() != 1 || g[0] != d {
		return nil, fmt.Errorf("gamma shape %v, want [%d]", g, d)
	}
	if b.Dims() != 1 || b[0] != d {
		return nil, fmt.Errorf("beta shape %v, want [%d]", b, d)
	}
	return x.Clone(), nil
}

func (k *lnKernel) forward(out tval, in []tval) error {
	d := in[1].shape[0]
	rows := in[0].shape.TotalSize() / d
	k.mean = sizedBuf(k.mean, rows)
	k.rstd = sizedBuf(k.rstd, rows)
	if rowWorkers(rows, d) == 1 {
		k.rows(out, in, 0, rows) // no goroutine, no allocation
		return nil
	}
	forRows(rows, d, func(lo, hi int) { k.rows(out, in, lo, hi) })
	return nil
}

// rows normalises rows [lo, hi).
func (k *lnKernel) rows(out tval, in []tval, lo, hi int) {
	if out.f32 != nil {
		lnForward(out.f32, in[0].f32, in[1].f32, in[2].f32, k.mean, k.rstd, k.eps, lo, hi)
	} else {
		lnForward(out.f64, in[0].f64, in[1].f64, in[2].f64, k.mean, k.rstd, k.eps, lo, hi)
	}
}

// lnForward normalises rows [lo, hi) of x (len(g) columns) into y, storing
// each row's mean and 1/std. The mean and variance are summed in float64;
// the normalisation runs in T (for float32 rows of a multiple of 8 elements
// on AVX2, in vmath_amd64.s).
func lnForward[T floatT](y, x, g, b []T, mean, rstd []float64, eps float64, lo, hi int) {
	d := len(g)
	b = b[:d]
	if y32, ok := any(y).([]float32); ok && lnVec(d) {
		x32, g32, b32 := any(x).([]float32), any(g).([]float32), any(b).([]float32)
		for i := lo; i < hi; i++ {
			mean[i], rstd[i] = lnRowFwd(y32[i*d:(i+1)*d], x32[i*d:(i+1)*d], g32, b32, eps)
		}
		return
	}
	for i := lo; i < hi; i++ {
		xr := x[i*d : (i+1)*d]
		yr := y[i*d : (i+1)*d]
		yr = yr[:len(xr)]
		mu := rowSum(xr) / float64(d)
		r := 1 / math.Sqrt(centredSquares(xr, mu)/float64(d)+eps)
		mean[i], rstd[i] = mu, r
		muT, rT := T(mu), T(r)
		for j, v := range xr {
			yr[j] = (v-muT)*rT*g[j] + b[j]
		}
	}
}

// centredSquares returns Σ (x_j − mu)² in float64, with four accumulators.
func centredSquares[T floatT](x []T, mu float64) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		c0, c1, c2, c3 := float64(x[j])-mu, float64(x[j+1])-mu, float64(x[j+2])-mu, float64(x[j+3])-mu
		s0 += c0 * c0
		s1 += c1 * c1
		s2 += c2 * c2
		s3 += c3 * c3
	}
	for ; j < len(x); j++ {
		c := float64(x[j]) - mu
		s0 += c * c
	}
	return (s0 + s1) + (s2 + s3)
}

// lnGradKernel computes dx from (x, γ, y, dy) and leaves dγ and dβ in its
// buffers for lnParamGradKernel. y is not read.
type lnGradKernel struct {
	fwd    *lnKernel
	dg, db []float64   // [d], from the last run
	part   [][]float64 // per extra worker: its rows' dγ and dβ, [2d]
}

func (*lnGradKernel) String() string { return "LayerNorm.dx" }

// orderOnly: input 2, the forward output, only orders this after the forward pass.
func (*lnGradKernel) orderOnly() []int { return []int{2} }

func (*lnGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}

func (k *lnGradKernel) forward(out tval, in []tval) error {
	d := in[1].shape[0]
	rows := in[0].shape.TotalSize() / d
	if rows != len(k.fwd.mean) {
		return fmt.Errorf("forward pass kept %d rows, input has %d", len(k.fwd.mean), rows)
	}
	k.dg = sizedBuf(k.dg, d)
	k.db = sizedBuf(k.db, d)
	w := rowWorkers(rows, d)
	for len(k.part) < w-1 {
		k.part = append(k.part, nil)
	}
	for i := range k.part[:w-1] {
		k.part[i] = sizedBuf(k.part[i], 2*d)
	}
	if w == 1 {
		k.rows(out, in, k.dg, k.db, 0, rows) // no goroutine, no allocation
		return nil
	}
	// Worker i sums dγ and dβ of its rows into its own buffer; the
	// partial sums are added up afterwards.
	forRowBlocks(rows, w, func(i, lo, hi int) {
		if i == 0 {
			k.rows(out, in, k.dg, k.db, lo, hi)
		} else {
			k.rows(out, in, k.part[i-1][:d], k.part[i-1][d:], lo, hi)
		}
	})
	for _, p := range k.part[:w-1] {
		for j := range d {
			k.dg[j] += p[j]
			k.db[j] += p[d+j]
		}
	}
	return nil
}

// rows computes dx of rows [lo, hi), their dγ and dβ sums into dg, db.
func (k *lnGradKernel) rows(out tval, in []tval, dg, db []float64, lo, hi int) {
	if out.f32 != nil {
		lnBackward(out.f32, in[0].f32, in[1].f32, in[3].f32, k.fwd.mean, k.fwd.rstd, dg, db, lo, hi)
	} else {
		lnBackward(out.f64, in[0].f64, in[1].f64, in[3].f64, k.fwd.mean, k.fwd.rstd, dg, db, lo, hi)
	}
}

// lnBackward writes dx for rows [lo, hi) and overwrites dg, db with those
// rows' sums (see LayerNorm for the maths). The row sums are taken in
// float64, the elementwise work in T (for float32 rows of a multiple of 8
// elements on AVX2, in vmath_amd64.s).
func lnBackward[T floatT](dx, x, g, dy []T, mean, rstd, dg, db []float64, lo, hi int) {
	d := len(g)
	dg, db = dg[:d], db[:d]
	clear(dg)
	clear(db)
	if dx32, ok := any(dx).([]float32); ok && lnVec(d) {
		x32, g32, dy32 := any(x).([]float32), any(g).([]float32), any(dy).([]float32)
		for i := lo; i < hi; i++ {
			r := i * d
			lnRowBwd(dx32[r:r+d], x32[r:r+d], g32, dy32[r:r+d], float32(mean[i]), float32(rstd[i]), dg, db)
		}
		return
	}
	for i := lo; i < hi; i++ {
		xr := x[i*d : (i+1)*d]
		dyr, dxr := dy[i*d:(i+1)*d], dx[i*d:(i+1)*d]
		dyr, dxr = dyr[:len(xr)], dxr[:len(xr)]
		mu, r := T(mean[i]), T(rstd[i])
		var s1, s2 float64 // Σ γ⊙dy, Σ γ⊙dy⊙x̂
		for j, v := range xr {
			xh := (v - mu) * r
			dyj := dyr[j]
			gdy := g[j] * dyj
			s1 += float64(gdy)
			s2 += float64(gdy * xh)
			dg[j] += float64(dyj * xh)
			db[j] += float64(dyj)
		}
		m1, m2 := T(s1/float64(d)), T(s2/float64(d))
		for j, v := range xr {
			xh := (v - mu) * r
			dxr[j] = r * (g[j]*dyr[j] - m1 - xh*m2)
		}
	}
}

// lnParamGradKernel copies dγ (or dβ) out of a lnGradKernel's buffers. Its
// input is that kernel's node, so it runs after it.
type lnParamGradKernel struct {
	core *lnGradKernel
	beta bool
}

func (k *lnParamGradKernel) String() string {
	if k.beta {
		return "LayerNorm.dbeta"
	}
	return "LayerNorm.dgamma"
}

func (*lnParamGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape{in[0][in[0].Dims()-1]}, nil
}

func (k *lnParamGradKernel) forward(out tval, _ []tval) error {
	src := k.core.dg
	if k.beta {
		src = k.core.db
	}
	if out.f32 != nil {
		for j, v := range src {
			out.f32[j] = float32(v)
		}
	} else {
		copy(out.f64, src)
	}
	return nil
}
