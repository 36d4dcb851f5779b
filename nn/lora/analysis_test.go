package lora_test

import (
	"math"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
	"gonum.org/v1/gonum/mat"
)

func gaussian(rows, cols int, seed uint64) *mat.Dense {
	rng := graph.NewRand(seed)
	v := make([]float64, rows*cols)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return mat.NewDense(rows, cols, v)
}

// TestSubspaceSimilaritySelf: an adapter's A against itself has φ = 1 at
// every (i, j) (one top subspace contains the other), and against A·R for
// an invertible R (the same column space) φ(r, r) = 1.
func TestSubspaceSimilaritySelf(t *testing.T) {
	a := gaussian(20, 6, 1)
	g, err := lora.SubspaceSimilarityGrid(a, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 6 || len(g[0]) != 6 {
		t.Fatalf("grid %d×%d, want 6×6", len(g), len(g[0]))
	}
	for i := range g {
		for j := range g[i] {
			if math.Abs(g[i][j]-1) > 1e-12 {
				t.Errorf("φ(A, A, %d, %d) = %v, want 1", i+1, j+1, g[i][j])
			}
		}
	}
	var ar mat.Dense
	ar.Mul(a, gaussian(6, 6, 2))
	if phi, err := lora.SubspaceSimilarity(a, &ar, 6, 6); err != nil || math.Abs(phi-1) > 1e-10 {
		t.Errorf("φ(A, A·R, 6, 6) = %v, %v; want 1", phi, err)
	}
}

// TestSubspaceSimilarityHand: orthogonal spans give 0; e₁ against
// (e₁+e₂)/√2 gives cos² 45° = 1/2.
func TestSubspaceSimilarityHand(t *testing.T) {
	a1 := mat.NewDense(4, 2, []float64{1, 0, 0, 1, 0, 0, 0, 0})
	a2 := mat.NewDense(4, 2, []float64{0, 0, 0, 0, 2, 0, 0, -3})
	if phi, _ := lora.SubspaceSimilarity(a1, a2, 2, 2); math.Abs(phi) > 1e-15 {
		t.Errorf("orthogonal spans: φ = %v, want 0", phi)
	}
	b1 := mat.NewDense(2, 1, []float64{5, 0})
	b2 := mat.NewDense(2, 1, []float64{1, 1})
	if phi, _ := lora.SubspaceSimilarity(b1, b2, 1, 1); math.Abs(phi-0.5) > 1e-15 {
		t.Errorf("φ(e₁, e₁+e₂) = %v, want 0.5", phi)
	}
}

// TestSubspaceSimilarityRandom checks φ of independent random subspaces
// against its expectation. Let U₁ [d, i] be any orthonormal basis and U₂
// [d, j] the top-j basis of an independent Gaussian A₂ [d, r], whose span
// is uniformly distributed, so each column u of U₂ is uniform on the unit
// sphere. For a unit x, E[(xᵀu)²] = 1/d (the d coordinates of u have equal
// second moments summing to 1). Hence
//
//	E‖U₁ᵀU₂‖²_F = Σ_{a≤i} Σ_{b≤j} E[(u₁ₐᵀu₂ᵦ)²] = i·j/d,
//	E[φ(i, j)] = i·j / (d·min(i, j)) = max(i, j)/d.
//
// Over S seeds the mean of φ must be within 5 standard errors (the sample
// standard deviation / √S, plus 10⁻³ for the cells whose spread is tiny)
// of max(i, j)/d at every (i, j).
func TestSubspaceSimilarityRandom(t *testing.T) {
	const d, r, seeds = 64, 8, 60
	var sum, sum2 [r][r]float64
	for s := uint64(0); s < seeds; s++ {
		g, err := lora.SubspaceSimilarityGrid(gaussian(d, r, 100+2*s), gaussian(d, r, 101+2*s))
		if err != nil {
			t.Fatal(err)
		}
		for i := range g {
			for j, v := range g[i] {
				sum[i][j] += v
				sum2[i][j] += v * v
			}
		}
	}
	for i := 0; i < r; i++ {
		for j := 0; j < r; j++ {
			mean := sum[i][j] / seeds
			sd := math.Sqrt(math.Max(0, sum2[i][j]/seeds-mean*mean))
			want := float64(max(i+1, j+1)) / d
			if tol := 5*sd/math.Sqrt(seeds) + 1e-3; math.Abs(mean-want) > tol {
				t.Errorf("mean φ(%d, %d) = %.4f, want max(i,j)/d = %.4f ± %.4f", i+1, j+1, mean, want, tol)
			}
		}
	}
}

func TestSubspaceSimilarityErrors(t *testing.T) {
	a := gaussian(5, 2, 1)
	for _, c := range []struct {
		b    mat.Matrix
		i, j int
		want string
	}{
		{gaussian(6, 2, 2), 1, 1, "rows"},
		{gaussian(5, 2, 2), 3, 1, "(i, j)"},
		{gaussian(5, 2, 2), 1, 0, "(i, j)"},
		{mat.NewDense(5, 1, []float64{1, math.NaN(), 0, 0, 0}), 1, 1, "NaN"},
	} {
		if _, err := lora.SubspaceSimilarity(a, c.b, c.i, c.j); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("(%d, %d): err %v, want %q", c.i, c.j, err, c.want)
		}
	}
}

// TestAmplificationHand works two small cases by hand.
//
// W = [1 2; 3 4], ΔW = [1 1; 1 1] = 2·uvᵀ with u = v = (1, 1)/√2:
// ‖ΔW‖_F = 2 and uᵀWv = (1+2+3+4)/2 = 5, so the factor is 2/5.
//
// W = [1 0; 0 2; 3 0] (3×2), ΔW = 3·e₂·e₂ᵀ: ‖ΔW‖_F = 3, uᵀWv = W[1][1] = 2,
// factor 3/2.
func TestAmplificationHand(t *testing.T) {
	f, err := lora.Amplification(mat.NewDense(2, 2, []float64{1, 2, 3, 4}), mat.NewDense(2, 2, []float64{1, 1, 1, 1}), 1)
	if err != nil || math.Abs(f-0.4) > 1e-14 {
		t.Errorf("factor %v, %v; want 0.4", f, err)
	}
	f, err = lora.Amplification(mat.NewDense(3, 2, []float64{1, 0, 0, 2, 3, 0}), mat.NewDense(3, 2, []float64{0, 0, 0, 3, 0, 0}), 1)
	if err != nil || math.Abs(f-1.5) > 1e-14 {
		t.Errorf("factor %v, %v; want 1.5", f, err)
	}
	// errors: shapes, rank, W orthogonal to ΔW's directions
	w := mat.NewDense(2, 2, []float64{1, 0, 0, 0})
	if _, err := lora.Amplification(w, mat.NewDense(3, 2, nil), 1); err == nil {
		t.Error("shape mismatch accepted")
	}
	if _, err := lora.Amplification(w, w, 3); err == nil {
		t.Error("r = 3 of a 2×2 accepted")
	}
	if _, err := lora.Amplification(w, mat.NewDense(2, 2, []float64{0, 0, 0, 1}), 1); err == nil || !strings.Contains(err.Error(), "no component") {
		t.Errorf("orthogonal W: %v", err)
	}
}

// TestModelAnalysis: DeltaW is what Merge adds, its spectrum has at most
// (parts × r) non-zero values whose squares sum to ‖ΔW‖²_F, and the
// amplification of a trained adapter is finite and positive.
func TestModelAnalysis(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Targets: []string{"q", "v"}, Seed: 1})
	train(t, h, 3, 0.5)
	const path = "h.0.attn.c_attn"
	dw, err := m.DeltaW(path, lora.DefaultAdapter)
	if err != nil {
		t.Fatal(err)
	}
	w := h.attn[0].CAttn.(*lora.Linear).Base.Weight
	w0 := w.Values()
	if err := m.Merge(); err != nil {
		t.Fatal(err)
	}
	for i, v := range w.Values() {
		if math.Abs(v-w0[i]-dw.RawMatrix().Data[i]) > 1e-14 {
			t.Fatalf("merge added %v at %d, DeltaW says %v", v-w0[i], i, dw.RawMatrix().Data[i])
		}
	}
	_ = m.Unmerge()
	s, err := lora.Spectrum(dw)
	if err != nil {
		t.Fatal(err)
	}
	var ss float64
	nonzero := 0
	for _, v := range s {
		ss += v * v
		if v > 1e-12*s[0] {
			nonzero++
		}
	}
	if len(s) != 8 || nonzero > 4 || nonzero < 2 {
		t.Errorf("spectrum %v: %d values, %d non-zero; want 8 and 2…4", s, len(s), nonzero)
	}
	if fro := mat.Norm(dw, 2); math.Abs(ss-fro*fro) > 1e-12*fro*fro {
		t.Errorf("Σσ² = %v, ‖ΔW‖²_F = %v", ss, fro*fro)
	}
	if s, _ := lora.Spectrum(mat.NewDense(2, 2, []float64{3, 0, 0, -2})); math.Abs(s[0]-3) > 1e-15 || math.Abs(s[1]-2) > 1e-15 {
		t.Errorf("spectrum of diag(3, −2) = %v", s)
	}
	wm, err := graph.ParamMatrix(w)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := lora.Amplification(wm, dw, 4); err != nil || !(f > 0) || math.IsInf(f, 0) {
		t.Errorf("amplification %v, %v", f, err)
	}
	ad, _ := m.Adapter(path, lora.DefaultAdapter)
	aq, _ := graph.ParamMatrix(ad.Slices[0].A)
	if phi, err := lora.SubspaceSimilarity(aq, aq, 2, 2); err != nil || math.Abs(phi-1) > 1e-12 {
		t.Errorf("φ(A_q, A_q) = %v, %v", phi, err)
	}
	if _, err := graph.ParamMatrix(graph.NewParam("v", graph.Float64, 3)); err == nil {
		t.Error("ParamMatrix of a vector")
	}
}
