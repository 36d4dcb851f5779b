package graph

import (
	"runtime"
	"sync"
	"sync/atomic"

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
// Large products are split into blocks of C computed in parallel (see
// gemmBlocks).
func gemm[T floatT](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scale(c[:(m-1)*ldc+n], beta)
		return
	}
	if blocks := gemmBlocks(m, n, k); blocks > 1 {
		gemmParallel(blocks, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmCall(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmCall is one call of the active BLAS.
func gemmCall[T floatT](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	bl := G.WhichBLAS()
	switch cc := any(c).(type) {
	case []float32:
		bl.Sgemm(trans(tA), trans(tB), m, n, k, float32(alpha), any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), cc, ldc)
	case []float64:
		bl.Dgemm(trans(tA), trans(tB), m, n, k, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), cc, ldc)
	}
}

// Splitting a product pays once each block is worth far more than a
// goroutine hand-off (~µs) and the repacking of the operand every block
// shares: gemmMinFlops multiply-adds per block, and at least gemmMinSide
// rows or columns of C.
const (
	gemmMinFlops = 1 << 19
	gemmMinSide  = 32
)

// gemmBlocks is the number of blocks to split an m×n×k product into: 1 when
// the BLAS runs products in parallel itself (gonum) or the product is small,
// else one block per CPU. (Each block repacks the operand the blocks share,
// so more blocks than CPUs measured slower, not better balanced.)
func gemmBlocks(m, n, k int) int {
	if !blasSplits {
		return 1
	}
	procs := runtime.GOMAXPROCS(0)
	if procs < 2 {
		return 1
	}
	side := max(m, n)
	return max(1, min(procs, m*n*k/gemmMinFlops, side/gemmMinSide))
}

// gemmParallel computes gemm as blocks independent blocks of C, split along
// its longer side (so the operand every block reads whole is the smaller),
// on up to GOMAXPROCS goroutines that take blocks in turn.
func gemmParallel[T floatT](blocks int, tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	block := func(i int) {
		if n >= m { // columns [j0, j1) of C: columns of op(B)
			j0, j1 := n*i/blocks, n*(i+1)/blocks
			bo := j0 // op(B) = B: column offset
			if tB {
				bo = j0 * ldb // op(B) = Bᵀ: rows of B
			}
			gemmCall(tA, tB, m, j1-j0, k, alpha, a, lda, b[bo:], ldb, beta, c[j0:], ldc)
			return
		}
		i0, i1 := m*i/blocks, m*(i+1)/blocks // rows [i0, i1) of C: rows of op(A)
		ao := i0 * lda
		if tA {
			ao = i0 // op(A) = Aᵀ: columns of A
		}
		gemmCall(tA, tB, i1-i0, n, k, alpha, a[ao:], lda, b, ldb, beta, c[i0*ldc:], ldc)
	}
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1)) - 1; i < blocks; i = int(next.Add(1)) - 1 {
			block(i)
		}
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), blocks) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work() // the caller takes blocks too
	wg.Wait()
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
