package graph

import (
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
)

// BLASName names the BLAS that matrix products run on: "gonum" (pure Go, the
// default) or "openblas" (cgo, built with -tags openblas).
func BLASName() string { return blasName }

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemm computes c = alpha·op(a)·op(b) + beta·c for row-major matrices, with
// op(a) m×k and op(b) k×n; lda, ldb, ldc are the row strides as stored.
func gemm[T floatT](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scale(c[:(m-1)*ldc+n], beta)
		return
	}
	bl := G.WhichBLAS()
	switch cc := any(c).(type) {
	case []float32:
		bl.Sgemm(trans(tA), trans(tB), m, n, k, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), cc, ldc)
	case []float64:
		bl.Dgemm(trans(tA), trans(tB), m, n, k, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), cc, ldc)
	}
}

func scale[T floatT](x []T, s T) {
	if s == 0 {
		clear(x)
		return
	}
	for i := range x {
		x[i] *= s
	}
}
