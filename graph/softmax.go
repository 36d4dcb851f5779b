package graph

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Softmax returns the softmax of each row of x: [N, V] → [N, V],
//
//	y_{i,v} = exp(x_{i,v} − max_u x_{i,u}) / Σ_u exp(x_{i,u} − max_u x_{i,u}).
//
// Subtracting each row's own max keeps every exponent ≤ 0, so rows with huge
// or very different values stay finite (Gorgonia's SoftMax subtracts one max
// for the whole tensor and returns NaN for [[0, 0], [100, 0]]). The gradient
// is dx = y ⊙ (dy − Σ_v dy_v·y_v) per row.
func Softmax(x *Node) *Node {
	b, bad := check("Softmax", x)
	if bad != nil {
		return bad
	}
	if x.isInt {
		return b.fail(fmt.Errorf("graph: Softmax: input %q is an integer input", x.Name()))
	}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		dx, _, err := b.gradNode(softmaxGradKernel{}, out, dy)
		return []*G.Node{dx}, err
	}
	gn, _, err := b.apply(softmaxKernel{}, []bool{true}, grads, x.n)
	return b.wrap(gn, err, "Softmax", x)
}

// softmaxKernel: [N, V] → [N, V], a row-wise softmax.
type softmaxKernel struct{}

func (softmaxKernel) String() string { return "Softmax" }

func (softmaxKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 2 {
		return nil, fmt.Errorf("input shape %v, want [N, V]", in[0])
	}
	return in[0].Clone(), nil
}

func (softmaxKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		softmaxRows(out.f32, in[0].f32, in[0].dims(1))
	} else {
		softmaxRows(out.f64, in[0].f64, in[0].dims(1))
	}
	return nil
}

func softmaxRows[T floatT](y, x []T, v int) {
	forRows(len(x)/v, v, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			softmaxRow(y[i*v:(i+1)*v], x[i*v:(i+1)*v])
		}
	})
}

// softmaxGradKernel: (y [N, V], dy [N, V]) → dx = y ⊙ (dy − rowsum(dy ⊙ y)).
type softmaxGradKernel struct{}

func (softmaxGradKernel) String() string { return "Softmax.dx" }

func (softmaxGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if !in[0].Eq(in[1]) {
		return nil, fmt.Errorf("output shape %v and gradient shape %v differ", in[0], in[1])
	}
	return in[0].Clone(), nil
}

func (softmaxGradKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		softmaxGradRows(out.f32, in[0].f32, in[1].f32, in[0].dims(1))
	} else {
		softmaxGradRows(out.f64, in[0].f64, in[1].f64, in[0].dims(1))
	}
	return nil
}

func softmaxGradRows[T floatT](dx, y, dy []T, v int) {
	forRows(len(y)/v, v, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := i * v
			softmaxGradRow(dx[r:r+v], y[r:r+v], dy[r:r+v])
		}
	})
}

// softmaxRow writes p = softmax(x) for one row (p may alias x) and returns
// the row's max m and Σ_v exp(x_v − m), so that log Σ_v exp(x_v) = m + log(sum).
// Sums run in float64 so that float32 rows of 50k entries keep their accuracy.
func softmaxRow[T floatT](p, x []T) (m T, sum float64) {
	m = rowMax(x)
	sum = expSubSum(p, x, m)
	inv := T(1 / sum)
	for j := range p {
		p[j] *= inv
	}
	return m, sum
}

// expSubSum sets p[j] = e^(x[j] − m) (p may alias x) and returns Σ_j p[j],
// summed in float64. float32 rows run eight lanes at a time where the CPU
// has AVX2 (vmath_amd64.s), the rest one element at a time with exp32.
func expSubSum[T floatT](p, x []T, m T) float64 {
	var sum float64
	j := 0
	if p32, ok := any(p).([]float32); ok {
		j, sum = expSumVec(p32, any(x).([]float32), float32(m))
	}
	for ; j < len(x); j++ {
		e := expT(x[j] - m)
		p[j] = e
		sum += float64(e)
	}
	return sum
}

// rowMax returns the largest element of a non-empty x, or NaN if x holds
// one (the builtin max propagates NaN, so a NaN row stays NaN).
func rowMax[T floatT](x []T) T {
	// Four running maxima break the loop-carried dependency of one.
	m0, m1, m2, m3 := x[0], x[0], x[0], x[0]
	j := 0
	if x32, ok := any(x).([]float32); ok {
		var m float32
		if m, j = maxVec(x32); j > 0 {
			m0 = T(m) // NaN stays NaN through the builtin max below
		}
	}
	for ; j+4 <= len(x); j += 4 {
		m0, m1, m2, m3 = max(m0, x[j]), max(m1, x[j+1]), max(m2, x[j+2]), max(m3, x[j+3])
	}
	for ; j < len(x); j++ {
		m0 = max(m0, x[j])
	}
	return max(m0, m1, m2, m3)
}

// rowSum returns Σ x in float64, with four accumulators for speed.
func rowSum[T floatT](x []T) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		s0 += float64(x[j])
		s1 += float64(x[j+1])
		s2 += float64(x[j+2])
		s3 += float64(x[j+3])
	}
	for ; j < len(x); j++ {
		s0 += float64(x[j])
	}
	return (s0 + s1) + (s2 + s3)
}

// softmaxGradRow writes dx = y ⊙ (dy − Σ_v dy_v·y_v) for one row.
func softmaxGradRow[T floatT](dx, y, dy []T) { softmaxBack(dx, y, y, dy) }

// softmaxBack writes out_j = a_j·g_j − p_j·Σ_k a_k·g_k (out may alias g):
// the gradient of a softmax p through an elementwise mask, a = drop(p), for
// the upstream gradient g (a = p without a mask). The sum runs in float64.
func softmaxBack[T floatT](out, a, p, g []T) {
	n := len(a)
	out, p, g = out[:n], p[:n], g[:n]
	var dot float64
	j := 0
	o32, vec := any(out).([]float32)
	var a32, p32, g32 []float32
	if vec {
		a32, p32, g32 = any(a).([]float32), any(p).([]float32), any(g).([]float32)
		dot, j = dotVec(a32, g32)
	}
	for ; j < n; j++ {
		dot += float64(a[j]) * float64(g[j])
	}
	d := T(dot)
	j = 0
	if vec {
		j = dsoftmaxVec(o32, a32, p32, g32, float32(d))
	}
	for ; j < n; j++ {
		out[j] = a[j]*g[j] - p[j]*d
	}
}

// expT is exp in the kernel's type: math.Exp for float64, exp32 for float32.
func expT[T floatT](x T) T {
	if x32, ok := any(x).(float32); ok {
		return T(exp32(x32))
	}
	return T(math.Exp(float64(x)))
}

// exp32 returns e^x to float32 precision: the float64 value it rounds has a
// relative error below 1e-8, so the result is within one unit in the last
// place. It is cheaper than math.Exp, whose full float64 accuracy a float32
// softmax cannot use. With k = round(x·log₂e) and r = x − k·ln 2,
// |r| ≤ ln 2 / 2, e^x = 2^k·e^r, and e^r is its Taylor polynomial of degree 7
// (truncation error |r|⁸/8! < 6e-9), evaluated in float64.
func exp32(x float32) float32 {
	switch {
	case x < -104: // e^-104 is below half the smallest float32 subnormal
		return 0
	case x > 89: // e^89 overflows float32
		return float32(math.Inf(1))
	}
	xd := float64(x)
	k := math.Floor(xd*math.Log2E + 0.5)
	r := xd - k*math.Ln2
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return float32(p * math.Float64frombits(uint64(int64(k)+1023)<<52))
}

// forRows calls f on contiguous row ranges [lo, hi) covering [0, n), on up to
// GOMAXPROCS goroutines when the work (n rows of width elements) is large
// enough to pay for them, else on the caller's goroutine. f must only touch
// its own rows.
func forRows(n, width int, f func(lo, hi int)) {
	forRowBlocks(n, rowWorkers(n, width), func(_, lo, hi int) { f(lo, hi) })
}

// rowWorkers is the number of goroutines forRows uses for n rows of width
// elements: one per 2¹⁵ elements, at most GOMAXPROCS and n.
func rowWorkers(n, width int) int {
	const minWork = 1 << 15 // elements per goroutine worth a goroutine start
	return max(1, min(runtime.GOMAXPROCS(0), n, n*width/minWork))
}

// forSpans calls f on contiguous ranges [lo, hi) covering [0, n) elements,
// split as forRows splits rows of width 1 but at multiples of 8, so that a
// vector kernel treats every element as it would in one call (the results
// do not depend on GOMAXPROCS).
func forSpans(n int, f func(lo, hi int)) {
	w := rowWorkers(n, 1)
	forRowBlocks(n/8, w, func(_, lo, hi int) {
		if hi == n/8 {
			f(8*lo, n)
		} else {
			f(8*lo, 8*hi)
		}
	})
}

// forRowBlocks splits rows [0, n) into w contiguous blocks and calls
// f(i, lo, hi) for block i, the caller running block 0 and one goroutine
// each of the others.
func forRowBlocks(n, w int, f func(i, lo, hi int)) {
	if w <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < w; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i, n*i/w, n*(i+1)/w)
		}()
	}
	f(0, 0, n/w)
	wg.Wait()
}
