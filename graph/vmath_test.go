package graph

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The vector kernels (vmath_amd64.s) against float64 references. On a CPU
// without AVX2 they do nothing and these tests skip.

func skipWithoutAVX2(t *testing.T) {
	t.Helper()
	if !hasAVX2 {
		t.Skip("no AVX2: the vector kernels are not used")
	}
}

// TestExpSumVec sweeps e^x over float32's whole range: within 2 ulp where
// the result is normal, one subnormal step where it is not, overflow to +Inf,
// NaN kept; the returned sum is the float64 sum of what was written.
func TestExpSumVec(t *testing.T) {
	skipWithoutAVX2(t)
	var xs []float32
	for x := float32(-110); x <= 90; x += 0.000917 {
		xs = append(xs, x)
	}
	// points where the range reduction or the clamps change
	xs = append(xs, 88.72, 88.7228, 88.7229, -87.33, -103.28, -103.97, 0, -0.34657, 0.34657,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()))
	for len(xs)%8 != 0 {
		xs = append(xs, 1)
	}
	got := make([]float32, len(xs))
	n, sum := expSumVec(got, xs, 0)
	if n != len(xs) {
		t.Fatalf("did %d of %d", n, len(xs))
	}
	var worst float64
	for i, x := range xs {
		want := math.Exp(float64(x))
		switch {
		case math.IsNaN(float64(x)):
			if !math.IsNaN(float64(got[i])) {
				t.Errorf("e^NaN = %v", got[i])
			}
			continue
		case math.IsInf(float64(float32(want)), 1):
			if !math.IsInf(float64(got[i]), 1) {
				t.Errorf("e^%v = %v, want +Inf", x, got[i])
			}
		case want < 1.1754944e-38: // subnormal or zero in float32
			if d := math.Abs(float64(got[i]) - want); d > 1.5e-45 {
				t.Errorf("e^%v = %v, want %v", x, got[i], want)
			}
		default:
			worst = math.Max(worst, math.Abs(float64(got[i])-want)/want)
		}
	}
	// 2 ulp of float32 is at most 2.4e-7 relative.
	if worst > 2.4e-7 {
		t.Errorf("worst relative error %.3g", worst)
	}
	if !math.IsNaN(sum) {
		t.Errorf("sum %v of a row with a NaN, want NaN", sum)
	}
	// A finite row: the shift by m and the float64 sum.
	row := []float32{3, 1, -2, 0.5, 7, 7, -30, 2.25, 1, 1, 1, 1, 1, 1, 1, 1}
	p := make([]float32, len(row))
	_, sum = expSumVec(p, row, 7)
	var ref float64
	for i, x := range row {
		want := math.Exp(float64(x) - 7)
		if math.Abs(float64(p[i])-want) > 2.4e-7*want {
			t.Errorf("e^(%v − 7) = %v, want %v", x, p[i], want)
		}
		ref += float64(p[i])
	}
	if math.Abs(sum-ref) > 1e-15*ref {
		t.Errorf("sum %v, want %v", sum, ref)
	}
}

// TestGELUVec compares the vector GELU with the float64 formula and its t
// with tanh u, and checks the saturated ends and NaN.
func TestGELUVec(t *testing.T) {
	skipWithoutAVX2(t)
	var xs []float32
	for x := float32(-14); x <= 14; x += 0.00731 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, 1e-30, -1e-30, 3e38, -3e38, float32(math.NaN()))
	for len(xs)%8 != 0 {
		xs = append(xs, 0.5)
	}
	y, th := make([]float32, len(xs)), make([]float32, len(xs))
	if n := geluVec(y, th, xs); n != len(xs) {
		t.Fatalf("did %d of %d", n, len(xs))
	}
	for i, x := range xs {
		xd := float64(x)
		switch {
		case math.IsNaN(xd):
			if !math.IsNaN(float64(y[i])) {
				t.Errorf("GELU(NaN) = %v", y[i])
			}
		case math.Abs(xd) > 1e30:
			wantY, wantT := xd, 1.0
			if x < 0 {
				wantY, wantT = 0, -1
			}
			if float64(y[i]) != wantY || float64(th[i]) != wantT {
				t.Errorf("GELU(%v) = %v, t = %v; want %v, %v", x, y[i], th[i], wantY, wantT)
			}
		default:
			want := geluRef(xd)
			// two roundings of e^(−2u), one of 1 + e, of the quotient and of
			// x·s: 3e-7 relative; below 1, absolute
			if d := math.Abs(float64(y[i]) - want); d > 3e-7*math.Max(1, math.Abs(want)) {
				t.Errorf("GELU(%v) = %v, want %v (error %.3g)", x, y[i], want, d)
			}
			wantT := math.Tanh(geluC * (xd + geluA*xd*xd*xd))
			if d := math.Abs(float64(th[i]) - wantT); d > 3e-7 {
				t.Errorf("t(%v) = %v, want %v (error %.3g)", x, th[i], wantT, d)
			}
		}
	}
}

// TestGELUGradVec compares the vector GELU derivative with geluBackward, the
// scalar float32 loop, on the t values the forward pass produces, including
// saturated tanh, huge x and NaN.
func TestGELUGradVec(t *testing.T) {
	skipWithoutAVX2(t)
	var xs []float32
	for x := float32(-14); x <= 14; x += 0.00731 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, 3e38, -3e38, 1e20, -1e20, float32(math.NaN()))
	for len(xs)%8 != 0 {
		xs = append(xs, 0.5)
	}
	n := len(xs)
	y, th, dy := make([]float32, n), make([]float32, n), make([]float32, n)
	geluForward32(y, th, xs)
	for i := range dy {
		dy[i] = float32(1 + i%3)
	}
	got, want := make([]float32, n), make([]float32, n)
	if geluGradVec(got, xs, th, dy) != n {
		t.Fatal("vector kernel did not run")
	}
	geluBackward(want, xs, th, dy)
	for i, x := range xs {
		if math.IsNaN(float64(x)) {
			if !math.IsNaN(float64(got[i])) {
				t.Errorf("GELU'(NaN)·dy = %v", got[i])
			}
			continue
		}
		// the same formula; FMA rounds a few steps differently
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-6*math.Max(1, math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) {
			t.Errorf("GELU'(%v)·%v = %v, want %v", x, dy[i], got[i], want[i])
		}
	}
}

func BenchmarkExpSum(b *testing.B) {
	x := ops1Values(1<<16, 3)
	p := make([]float32, len(x))
	for _, v := range []struct {
		name string
		f    func() float64
	}{
		{"vector", func() float64 { return expSubSum(p, x, 1) }},
		{"scalar", func() float64 {
			var s float64
			for j, v := range x {
				p[j] = exp32(v - 1)
				s += float64(p[j])
			}
			return s
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for range b.N {
				v.f()
			}
		})
	}
}

// TestLayerNormVec runs the vector LayerNorm rows (through lnForward and
// lnBackward) on float32 data with a large mean and compares with the
// formulas of LayerNorm's doc comment in float64.
func TestLayerNormVec(t *testing.T) {
	skipWithoutAVX2(t)
	const rows, d, eps = 5, 24, 1e-5
	rng := rand.New(rand.NewPCG(8, 9))
	x, g, b, dy := make([]float32, rows*d), make([]float32, d), make([]float32, d), make([]float32, rows*d)
	for i := range x {
		x[i] = float32(30 + 3*rng.NormFloat64()) // mean far from 0
		dy[i] = float32(rng.NormFloat64())
	}
	for j := range g {
		g[j], b[j] = float32(1+0.2*rng.NormFloat64()), float32(rng.NormFloat64())
	}
	y, dx := make([]float32, rows*d), make([]float32, rows*d)
	mean, rstd, dg, db := make([]float64, rows), make([]float64, rows), make([]float64, d), make([]float64, d)
	lnForward(y, x, g, b, mean, rstd, eps, 0, rows)
	lnBackward(dx, x, g, dy, mean, rstd, dg, db, 0, rows)
	wantDG, wantDB := make([]float64, d), make([]float64, d)
	for i := range rows {
		xr := x[i*d : (i+1)*d]
		var mu, v float64
		for _, xv := range xr {
			mu += float64(xv) / d
		}
		for _, xv := range xr {
			v += (float64(xv) - mu) * (float64(xv) - mu) / d
		}
		r := 1 / math.Sqrt(v+eps)
		if math.Abs(mean[i]-mu) > 1e-12*math.Abs(mu) || math.Abs(rstd[i]-r) > 1e-12*r {
			t.Fatalf("row %d: mean %v, 1/std %v; want %v, %v", i, mean[i], rstd[i], mu, r)
		}
		var m1, m2 float64
		for j, xv := range xr {
			xh, gdy := (float64(xv)-mu)*r, float64(g[j])*float64(dy[i*d+j])
			m1 += gdy / d
			m2 += gdy * xh / d
			wantDG[j] += float64(dy[i*d+j]) * xh
			wantDB[j] += float64(dy[i*d+j])
		}
		for j, xv := range xr {
			xh := (float64(xv) - mu) * r
			wantY := xh*float64(g[j]) + float64(b[j])
			if math.Abs(float64(y[i*d+j])-wantY) > 2e-5*math.Max(1, math.Abs(wantY)) {
				t.Errorf("y[%d,%d] = %v, want %v", i, j, y[i*d+j], wantY)
			}
			wantDX := r * (float64(g[j])*float64(dy[i*d+j]) - m1 - xh*m2)
			if math.Abs(float64(dx[i*d+j])-wantDX) > 1e-4*math.Max(1, math.Abs(wantDX)) {
				t.Errorf("dx[%d,%d] = %v, want %v", i, j, dx[i*d+j], wantDX)
			}
		}
	}
	for j := range d {
		if math.Abs(dg[j]-wantDG[j]) > 1e-5*math.Max(1, math.Abs(wantDG[j])) || math.Abs(db[j]-wantDB[j]) > 1e-6*math.Max(1, math.Abs(wantDB[j])) {
			t.Errorf("column %d: dγ %v, dβ %v; want %v, %v", j, dg[j], db[j], wantDG[j], wantDB[j])
		}
	}
}

// TestRowMaxVec: rowMax with its vector prefix finds the largest element
// wherever it is (prefix or tail) and returns NaN for a row holding one.
func TestRowMaxVec(t *testing.T) {
	skipWithoutAVX2(t)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{8, 13, 64, 1001} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(-1e3 * rng.Float64())
		}
		for _, at := range []int{0, n / 2, n - 1} {
			x[at] = 5
			if got := rowMax(x); got != 5 {
				t.Errorf("n %d, max at %d: got %v", n, at, got)
			}
			x[at] = float32(math.NaN())
			if got := rowMax(x); !math.IsNaN(float64(got)) {
				t.Errorf("n %d, NaN at %d: got %v", n, at, got)
			}
			x[at] = -2e3
		}
	}
}

// TestSoftmaxBackVec: softmaxBack (vector prefix and Go tail) against the
// formula in float64, with out aliasing g, a ≠ p, rows shorter and longer
// than one vector.
func TestSoftmaxBackVec(t *testing.T) {
	skipWithoutAVX2(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{5, 8, 29, 130} {
		a, p, g := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range a {
			p[i] = float32(rng.Float64())
			a[i] = p[i] * float32(1+rng.IntN(2)) // a dropout-like mask
			g[i] = float32(rng.NormFloat64())
		}
		var dot float64
		for i := range a {
			dot += float64(a[i]) * float64(g[i])
		}
		want := make([]float64, n)
		for i := range a {
			want[i] = float64(a[i])*float64(g[i]) - float64(p[i])*dot
		}
		softmaxBack(g, a, p, g)
		for i := range want {
			if math.Abs(float64(g[i])-want[i]) > 1e-5*math.Max(1, math.Abs(dot)) {
				t.Fatalf("n %d: out[%d] = %v, want %v", n, i, g[i], want[i])
			}
		}
	}
}
