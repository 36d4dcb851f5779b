package lora

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/golora/golora/graph"
	"gonum.org/v1/gonum/mat"
)

// initAdapter fills the zero-valued A and B of ad (see InitMode), drawing
// from rng slice by slice. For PiSSA it returns the residual base weight
// W − s·A·B [in, out] to store (A and B as rounded to their dtype), else nil.
func initAdapter(ad *Adapter, p *layerPlan, mode InitMode, rng *rand.Rand) ([]float64, error) {
	in, out := p.dims()
	if p.emb != nil { // loralib and PEFT: A = 0, B ~ N(0, 1), for every mode but PiSSA (refused)
		for _, s := range ad.Slices {
			graph.InitNormal(s.B, rng, 1)
		}
		return nil, nil
	}
	switch mode {
	case InitDefault:
		for _, s := range ad.Slices {
			graph.InitKaimingUniform(s.A, rng, math.Sqrt(5), in) // U(−1/√in, 1/√in)
		}
		return nil, nil
	case InitGaussian:
		for _, s := range ad.Slices {
			graph.InitNormal(s.A, rng, 1/float64(ad.Rank))
		}
		return nil, nil
	case InitPiSSA:
		if q := p.weight(); q.Quantized() != nil {
			return nil, fmt.Errorf("PiSSA rewrites the base weight, which is held at %v (initialise on a float base, then quantize)", q.Precision())
		}
		w := p.weight().Values()
		for _, s := range ad.Slices {
			if err := pissa(ad, s, w, in, out); err != nil {
				return nil, err
			}
		}
		return w, nil
	}
	return nil, fmt.Errorf("unknown init %q", mode)
}

// pissa sets A and B of slice s from the top-r SVD of its block of columns
// of w [in, out] and subtracts s·A·B from that block of w.
func pissa(ad *Adapter, s Slice, w []float64, in, out int) error {
	r := ad.Rank
	blk := mat.NewDense(in, s.Width, nil)
	for i := 0; i < in; i++ {
		for j := 0; j < s.Width; j++ {
			blk.Set(i, j, w[i*out+s.Offset+j])
		}
	}
	var svd mat.SVD
	if !svd.Factorize(blk, mat.SVDThin) {
		return errors.New("PiSSA: the SVD of the base weight did not converge")
	}
	var u, v mat.Dense
	svd.UTo(&u) // [in, k]
	svd.VTo(&v) // [width, k]
	sig := svd.Values(nil)
	a := make([]float64, in*r)
	b := make([]float64, r*s.Width)
	for p := 0; p < r; p++ {
		f := math.Sqrt(sig[p] / ad.Scale)
		for i := 0; i < in; i++ {
			a[i*r+p] = u.At(i, p) * f // A = U_r·√(Σ_r/s)
		}
		for j := 0; j < s.Width; j++ {
			b[p*s.Width+j] = f * v.At(j, p) // B = √(Σ_r/s)·V_rᵀ
		}
	}
	if err := s.A.SetValues(a); err != nil {
		return err
	}
	if err := s.B.SetValues(b); err != nil {
		return err
	}
	a, b = s.A.Values(), s.B.Values() // as rounded to the dtype
	for i := 0; i < in; i++ {
		for p := 0; p < r; p++ {
			c := ad.Scale * a[i*r+p]
			row := w[i*out+s.Offset : i*out+s.Offset+s.Width]
			for j := range row {
				row[j] -= c * b[p*s.Width+j]
			}
		}
	}
	return nil
}

// addDelta adds sign·s·A·B of every slice of ad into its columns of w
// [in, out]: each element's update is summed in float64 and rounded once to
// w's dtype. The update is computed the same way for sign +1 and −1, so an
// unmerge subtracts exactly what the merge added (before rounding).
func addDelta(w *graph.Param, ad *Adapter, sign float64) {
	shape := w.Shape()
	in, out := shape[0], shape[1]
	f32, f64 := w.Float32s(), w.Float64s()
	row := make([]float64, out)
	for _, s := range ad.Slices {
		a, b, r := s.A.Values(), s.B.Values(), ad.Rank
		for i := 0; i < in; i++ {
			d := row[:s.Width]
			clear(d)
			for p := 0; p < r; p++ {
				c := sign * ad.Scale * a[i*r+p]
				for j, bv := range b[p*s.Width : (p+1)*s.Width] {
					d[j] += c * bv
				}
			}
			base := i*out + s.Offset
			if f64 != nil {
				for j, v := range d {
					f64[base+j] += v
				}
			} else {
				for j, v := range d {
					f32[base+j] = float32(float64(f32[base+j]) + v)
				}
			}
		}
	}
}

// deltaOf returns ΔW = s·A·B of ad on a layer with weight [in, out], in
// float64: zero in the columns no slice covers.
func deltaOf(ad *Adapter, in, out int) *mat.Dense {
	d := mat.NewDense(in, out, nil)
	for _, s := range ad.Slices {
		a := mat.NewDense(in, ad.Rank, s.A.Values())
		b := mat.NewDense(ad.Rank, s.Width, s.B.Values())
		blk := d.Slice(0, in, s.Offset, s.Offset+s.Width).(*mat.Dense)
		blk.Mul(a, b)
		blk.Scale(ad.Scale, blk)
	}
	return d
}
