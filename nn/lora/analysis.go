package lora

import (
	"errors"
	"fmt"
	"math"

	"github.com/golora/golora/graph"
	"gonum.org/v1/gonum/mat"
)

// This file holds the analyses of the paper's Section 7 (Hu et al. 2021).
// golora keeps A as [in, r] (the paper's A is [r, in]) and ΔW as [in, out]
// (the paper's ΔW is [out, in]); every quantity below is the paper's, and
// the comments say which singular vectors that means in golora's layout.

// ParamMatrix is graph.ParamMatrix, kept so that existing callers compile.
//
// Deprecated: use graph.ParamMatrix.
func ParamMatrix(p *graph.Param) (*mat.Dense, error) { return graph.ParamMatrix(p) }

// DeltaW returns the named adapter's update on the layer at path,
// ΔW = s·A·B [in, out] (V×d for an embedding), in float64, zero in the
// columns of fused parts the adapter does not adapt.
func (m *Model) DeltaW(path, adapter string) (*mat.Dense, error) {
	ad, err := m.Adapter(path, adapter)
	if err != nil {
		return nil, err
	}
	s := m.byPath[path].weight().Shape()
	return deltaOf(ad, s[0], s[1]), nil
}

// leftSingular returns the left-singular vectors U [rows, k] of a (thin SVD,
// singular values descending) and the singular values.
func leftSingular(a mat.Matrix, what string) (*mat.Dense, *mat.Dense, []float64, error) {
	r, c := a.Dims()
	if r == 0 || c == 0 {
		return nil, nil, nil, fmt.Errorf("lora: %s is empty", what)
	}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			if v := a.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, nil, fmt.Errorf("lora: %s has %v at [%d, %d]", what, v, i, j)
			}
		}
	}
	var svd mat.SVD
	if !svd.Factorize(a, mat.SVDThin) {
		return nil, nil, nil, fmt.Errorf("lora: the SVD of %s did not converge", what)
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	return &u, &v, svd.Values(nil), nil
}

// SubspaceSimilarity is the paper's normalised subspace similarity
// (Section 7.2, eq. 4):
//
//	φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ·U₂[:, :j]‖²_F / min(i, j) ∈ [0, 1]
//
// where U_k holds the singular vectors of A_k that span its r_k-dimensional
// column space: the right-singular vectors of the paper's A [r, in], which
// are the left-singular vectors of golora's A [in, r] (U_k is [in, r_k],
// columns by decreasing singular value). a1 is [in, r₁] and a2 [in, r₂]
// with the same in; 1 ≤ i ≤ r₁ and 1 ≤ j ≤ r₂ (and at most in). φ is 1
// when one top subspace contains the other and 0 when they are orthogonal.
func SubspaceSimilarity(a1, a2 mat.Matrix, i, j int) (float64, error) {
	g, err := similarity(a1, a2, i, j)
	if err != nil {
		return 0, err
	}
	return g[i-1][j-1], nil
}

// SubspaceSimilarityGrid returns φ(A₁, A₂, i, j) (see SubspaceSimilarity)
// for every 1 ≤ i ≤ min(r₁, in) and 1 ≤ j ≤ min(r₂, in): grid[i-1][j-1] —
// the paper's Figures 3 and 4.
func SubspaceSimilarityGrid(a1, a2 mat.Matrix) ([][]float64, error) {
	return similarity(a1, a2, 0, 0)
}

// similarity computes the grid up to (i, j), or in full for i = j = 0.
func similarity(a1, a2 mat.Matrix, i, j int) ([][]float64, error) {
	u1, _, _, err := leftSingular(a1, "A₁")
	if err != nil {
		return nil, err
	}
	u2, _, _, err := leftSingular(a2, "A₂")
	if err != nil {
		return nil, err
	}
	n1, k1 := u1.Dims()
	n2, k2 := u2.Dims()
	if n1 != n2 {
		return nil, fmt.Errorf("lora: subspace similarity: A₁ has %d rows and A₂ %d, want the same input size", n1, n2)
	}
	if i == 0 && j == 0 {
		i, j = k1, k2
	} else if i < 1 || i > k1 || j < 1 || j > k2 {
		return nil, fmt.Errorf("lora: subspace similarity: (i, j) = (%d, %d), want 1 ≤ i ≤ %d and 1 ≤ j ≤ %d", i, j, k1, k2)
	}
	var c mat.Dense
	c.Mul(u1.Slice(0, n1, 0, i).T(), u2.Slice(0, n2, 0, j)) // C = U₁ᵀU₂  [i, j]
	// ‖U₁[:, :a]ᵀU₂[:, :b]‖²_F is the sum of C² over the top-left a×b block:
	// a 2-D prefix sum gives every (a, b) at once.
	grid := make([][]float64, i)
	for a := 0; a < i; a++ {
		grid[a] = make([]float64, j)
		row := 0.0
		for b := 0; b < j; b++ {
			row += c.At(a, b) * c.At(a, b)
			grid[a][b] = row
			if a > 0 {
				grid[a][b] += grid[a-1][b]
			}
		}
	}
	for a := range grid {
		for b := range grid[a] {
			grid[a][b] /= float64(min(a+1, b+1))
		}
	}
	return grid, nil
}

// Amplification is the paper's amplification factor (Section 7.3, Table 7)
// of an update ΔW on a weight W, both [in, out] in golora's layout:
//
//	‖ΔW‖_F / ‖Uᵀ·W·V‖_F
//
// where ΔW = U·Σ·Vᵀ is the SVD and U [in, r], V [out, r] are ΔW's top-r
// left- and right-singular vectors, so Uᵀ·W·V [r, r] is W projected onto
// ΔW's r-dimensional subspaces. (The paper writes ‖UᵀWVᵀ‖_F in its
// [out, in] layout with Vᵀ as returned by the SVD; transposing both
// matrices swaps U and V and leaves the norm unchanged.) r is the rank
// to use, usually the adapter's.
func Amplification(w, deltaW mat.Matrix, r int) (float64, error) {
	wr, wc := w.Dims()
	dr, dc := deltaW.Dims()
	if wr != dr || wc != dc {
		return 0, fmt.Errorf("lora: amplification: W is %d×%d and ΔW %d×%d, want the same shape", wr, wc, dr, dc)
	}
	u, v, _, err := leftSingular(deltaW, "ΔW")
	if err != nil {
		return 0, err
	}
	if _, k := u.Dims(); r < 1 || r > k {
		return 0, fmt.Errorf("lora: amplification: r = %d, want 1 ≤ r ≤ %d", r, k)
	}
	var proj, t mat.Dense
	t.Mul(u.Slice(0, dr, 0, r).T(), w) // Uᵀ·W   [r, out]
	proj.Mul(&t, v.Slice(0, dc, 0, r)) // Uᵀ·W·V [r, r]
	den := mat.Norm(&proj, 2)          // Frobenius norm
	if den == 0 {
		return 0, errors.New("lora: amplification: W has no component in ΔW's top directions (‖UᵀWV‖_F = 0)")
	}
	return mat.Norm(deltaW, 2) / den, nil
}

// Spectrum returns the singular values of m (such as a ΔW) in decreasing
// order, min(rows, cols) of them.
func Spectrum(m mat.Matrix) ([]float64, error) {
	_, _, s, err := leftSingular(m, "the matrix")
	return s, err
}
