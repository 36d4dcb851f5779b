//go:build amd64

package graph

import "math"

// hasAVX2 reports whether the CPU and the OS support AVX2 and FMA, which the
// kernels of vmath_amd64.s need. It is set once, when the package starts.
var hasAVX2 = detectAVX2()

func detectAVX2() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, c, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if c&(fma|osxsave|avx) != fma|osxsave|avx {
		return false
	}
	if a, _ := xgetbv0(); a&6 != 6 { // the OS saves the XMM and YMM registers
		return false
	}
	_, b, _, _ := cpuid(7, 0)
	return b&(1<<5) != 0 // AVX2
}

func cpuid(leaf, sub uint32) (a, b, c, d uint32)
func xgetbv0() (a, d uint32)

//go:noescape
func expSumAVX2(dst, src *float32, n int, m float32) float64

//go:noescape
func geluAVX2(y, t, x *float32, n int)

//go:noescape
func geluGradAVX2(dx, x, t, dy *float32, n int)

//go:noescape
func siluAVX2(y, s, x *float32, n int)

//go:noescape
func dotAVX2(a, b *float32, n int) float64

//go:noescape
func dsoftmaxAVX2(out, a, p, gr *float32, n int, d float32)

//go:noescape
func maxAVX2(x *float32, n int) (m float32, nan bool)

//go:noescape
func lnRowFwdAVX2(y, x, gm, b *float32, d int, eps float64) (mu, r float64)

//go:noescape
func lnRowBwdAVX2(dx, x, gm, dy *float32, d int, mu, r float32, dg, db *float64)

// expSumVec sets dst[i] = e^(src[i] − m) for a prefix of src whose length
// is a multiple of 8 and returns that length and the prefix's sum; it does
// nothing without AVX2.
func expSumVec(dst, src []float32, m float32) (done int, sum float64) {
	n := len(src) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0
	}
	_ = dst[n-1]
	return n, expSumAVX2(&dst[0], &src[0], n, m)
}

// geluVec is geluForward32 for a prefix of x whose length is a multiple of 8;
// it returns that length (0 without AVX2).
func geluVec(y, t, x []float32) int {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = y[n-1], t[n-1]
	geluAVX2(&y[0], &t[0], &x[0], n)
	return n
}

// geluGradVec is geluBackward for a prefix of x whose length is a multiple
// of 8; it returns that length (0 without AVX2).
func geluGradVec(dx, x, t, dy []float32) int {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = dx[n-1], t[n-1], dy[n-1]
	geluGradAVX2(&dx[0], &x[0], &t[0], &dy[0], n)
	return n
}

// siluVec is the float32 SiLU forward pass (y = x·σ(x), s = σ(x)) for a
// prefix of x whose length is a multiple of 8; it returns that length (0
// without AVX2).
func siluVec(y, s, x []float32) int {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _ = y[n-1], s[n-1]
	siluAVX2(&y[0], &s[0], &x[0], n)
	return n
}

// lnVec reports whether the LayerNorm row kernels below run: AVX2 and rows
// of a multiple of 8 elements.
func lnVec(d int) bool { return hasAVX2 && d > 0 && d%8 == 0 }

// lnRowFwd is one row of lnForward (see lnRowFwdAVX2); only when lnVec(len(g)).
func lnRowFwd(y, x, g, b []float32, eps float64) (mu, r float64) {
	d := len(g)
	_, _, _ = y[d-1], x[d-1], b[d-1]
	return lnRowFwdAVX2(&y[0], &x[0], &g[0], &b[0], d, eps)
}

// lnRowBwd is one row of lnBackward (see lnRowBwdAVX2); only when
// lnVec(len(g)).
func lnRowBwd(dx, x, g, dy []float32, mu, r float32, dg, db []float64) {
	d := len(g)
	_, _, _, _, _ = dx[d-1], x[d-1], dy[d-1], dg[d-1], db[d-1]
	lnRowBwdAVX2(&dx[0], &x[0], &g[0], &dy[0], d, mu, r, &dg[0], &db[0])
}

// maxVec returns the largest element of a prefix of x whose length is a
// multiple of 8, and that length (0 without AVX2); m is NaN when the prefix
// holds a NaN.
func maxVec(x []float32) (m float32, done int) {
	n := len(x) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0
	}
	m, nan := maxAVX2(&x[0], n)
	if nan {
		m = float32(math.NaN())
	}
	return m, n
}

// dotVec returns Σ a[i]·b[i] (in float64) over a prefix of a whose length is
// a multiple of 8, and that length (0 without AVX2).
func dotVec(a, b []float32) (dot float64, done int) {
	n := len(a) &^ 7
	if !hasAVX2 || n == 0 {
		return 0, 0
	}
	_ = b[n-1]
	return dotAVX2(&a[0], &b[0], n), n
}

// dsoftmaxVec sets out[i] = a[i]·g[i] − p[i]·d over a prefix of a whose
// length is a multiple of 8 and returns that length (0 without AVX2).
func dsoftmaxVec(out, a, p, g []float32, d float32) int {
	n := len(a) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_, _, _ = out[n-1], p[n-1], g[n-1]
	dsoftmaxAVX2(&out[0], &a[0], &p[0], &g[0], n, d)
	return n
}
