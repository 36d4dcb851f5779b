package lora

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/golora/golora/graph"
	"gonum.org/v1/gonum/mat"
)

// This file reaches the parts of fused projections by name (GPT-2's c_attn
// is q | k | v) and gives the paper's Section 7 analyses as plain Go
// values, so that a notebook never computes a column offset.

// Slice returns the adapter's low-rank update on the fused part named part
// ("q" of GPT-2's c_attn). part "" is the update of an adapter that covers
// the whole output: a plain layer's, or a fused layer's adapted as one
// (Targets "c_attn"). An adapter that does not adapt part is an error that
// lists the parts it does adapt.
func (a *Adapter) Slice(part string) (Slice, error) {
	for _, s := range a.Slices {
		if s.Part == part {
			return s, nil
		}
	}
	parts := a.Parts()
	if len(parts) == 0 {
		return Slice{}, fmt.Errorf("lora: adapter %q adapts the whole output of the layer, not part %q: use Slice(\"\")", a.Name, part)
	}
	return Slice{}, fmt.Errorf("lora: adapter %q adapts parts %s of the layer, not %q", a.Name, strings.Join(parts, ", "), part)
}

// Parts lists the fused parts the adapter adapts, in column order; nil when
// it covers the whole output.
func (a *Adapter) Parts() []string { return partsOf(a) }

// Columns returns the output columns [offset, offset+width) of the named
// part of the layer at path ("h.0.attn.c_attn", "v" gives [2d, 3d) on
// GPT-2), and for part "" all of them. The layer must be one a Model has
// wrapped; its layout is the Config's FusedParts when it was wrapped.
func (m *Model) Columns(path, part string) (offset, width int, err error) {
	w, ok := m.byPath[path]
	if !ok {
		return 0, 0, fmt.Errorf("lora: no adapted layer at %q", path)
	}
	out := w.weight().Shape()[1]
	if part == "" {
		return 0, out, nil
	}
	l, ok := w.(*Linear)
	if !ok || len(l.Parts) == 0 {
		return 0, 0, fmt.Errorf("lora: %s is not a fused projection: it has no part %q (use \"\")", path, part)
	}
	i := slices.Index(l.Parts, part)
	if i < 0 {
		return 0, 0, fmt.Errorf("lora: %s has parts %s, not %q", path, strings.Join(l.Parts, ", "), part)
	}
	width = out / len(l.Parts)
	return i * width, width, nil
}

// Weight returns the layer's weight at path as it is now (with ΔW in it
// while an adapter is merged), [in, out] in float64, restricted to the
// columns of part (see Columns; "" for all). Weight(path, "v") is GPT-2's
// W_v of that block.
func (m *Model) Weight(path, part string) (*mat.Dense, error) {
	off, width, err := m.Columns(path, part)
	if err != nil {
		return nil, err
	}
	w, err := graph.ParamMatrix(m.byPath[path].weight())
	if err != nil {
		return nil, err
	}
	rows, _ := w.Dims()
	return mat.DenseCopyOf(w.Slice(0, rows, off, off+width)), nil
}

// PartDeltaW is DeltaW restricted to the columns of part (see Columns):
// the adapter's update of W_v is PartDeltaW(path, adapter, "v"). It is zero
// when the adapter does not adapt part.
func (m *Model) PartDeltaW(path, adapter, part string) (*mat.Dense, error) {
	off, width, err := m.Columns(path, part)
	if err != nil {
		return nil, err
	}
	dw, err := m.DeltaW(path, adapter)
	if err != nil {
		return nil, err
	}
	rows, _ := dw.Dims()
	return mat.DenseCopyOf(dw.Slice(0, rows, off, off+width)), nil
}

// Similarity is the paper's subspace-similarity grid (Section 7.2, see
// SubspaceSimilarityGrid) between the A matrices of two adapters on the
// same part of the layer at path (part "" for an adapter over the whole
// output): grid[i-1][j-1] = φ(A₁, A₂, i, j).
func (m *Model) Similarity(path, part, adapter1, adapter2 string) ([][]float64, error) {
	var as [2]*mat.Dense
	for k, name := range []string{adapter1, adapter2} {
		ad, err := m.Adapter(path, name)
		if err != nil {
			return nil, err
		}
		s, err := ad.Slice(part)
		if err != nil {
			return nil, fmt.Errorf("lora: similarity on %s: %w", path, err)
		}
		if as[k], err = graph.ParamMatrix(s.A); err != nil {
			return nil, err
		}
	}
	return SubspaceSimilarityGrid(as[0], as[1])
}

// Analysis is the paper's Section 7.3 description of one adapter's update
// on one layer or fused part, in plain Go values (no gonum types): ΔW
// itself, the spectra of ΔW and W, their norms and the amplification
// factor. Model.Analyze computes it.
type Analysis struct {
	Path, Part, Adapter string
	// Rank is the adapter's r on the layer; In and Out are ΔW's shape.
	Rank, In, Out int
	// DeltaW is ΔW = s·A·B of the part, DeltaW[i][j] for input i and
	// output column j.
	DeltaW [][]float64
	// Spectrum and WeightSpectrum are the singular values of ΔW and of W
	// (the same columns), in decreasing order.
	Spectrum, WeightSpectrum []float64
	// NormDeltaW and NormW are the Frobenius norms ‖ΔW‖_F and ‖W‖_F.
	NormDeltaW, NormW float64
	// ProjectedW is ‖Uᵀ·W·V‖_F, W projected onto ΔW's top-Rank singular
	// directions, and Amplification is NormDeltaW / ProjectedW (see
	// Amplification).
	ProjectedW, Amplification float64
}

// Analyze returns the Analysis of the named adapter on part of the layer at
// path (part "" for the whole layer). W is the weight as it is now, so
// analyse an unmerged model.
func (m *Model) Analyze(path, part, adapter string) (Analysis, error) {
	ad, err := m.Adapter(path, adapter)
	if err != nil {
		return Analysis{}, err
	}
	dw, err := m.PartDeltaW(path, adapter, part)
	if err != nil {
		return Analysis{}, err
	}
	w, err := m.Weight(path, part)
	if err != nil {
		return Analysis{}, err
	}
	in, out := dw.Dims()
	a := Analysis{Path: path, Part: part, Adapter: adapter, Rank: ad.Rank, In: in, Out: out, DeltaW: Rows(dw)}
	if a.Spectrum, err = Spectrum(dw); err != nil {
		return Analysis{}, err
	}
	if a.WeightSpectrum, err = Spectrum(w); err != nil {
		return Analysis{}, err
	}
	a.NormDeltaW, a.NormW = normOf(a.Spectrum), normOf(a.WeightSpectrum)
	if a.Amplification, err = Amplification(w, dw, min(ad.Rank, len(a.Spectrum))); err != nil {
		return Analysis{}, err
	}
	a.ProjectedW = a.NormDeltaW / a.Amplification
	return a, nil
}

// normOf is the Frobenius norm from singular values: √Σσ².
func normOf(s []float64) float64 {
	var t float64
	for _, v := range s {
		t += v * v
	}
	return math.Sqrt(t)
}

// Rows copies a gonum matrix into plain rows: out[i][j] = m.At(i, j).
func Rows(m mat.Matrix) [][]float64 {
	r, c := m.Dims()
	out := make([][]float64, r)
	for i := range out {
		out[i] = make([]float64, c)
		for j := range out[i] {
			out[i][j] = m.At(i, j)
		}
	}
	return out
}
