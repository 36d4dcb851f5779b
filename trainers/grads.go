package trainers

import (
	"math"

	"github.com/golora/golora/graph"
)

// accumulate sets dst = w·src (first) or adds dst += w·src, in dst's dtype.
// w = 1 with first copies exactly.
func accumulate(dst, src graph.Array, w float64, first bool) {
	if dst.F64 != nil {
		axpy(dst.F64, src.F64, w, first)
	} else {
		axpy(dst.F32, src.F32, float32(w), first)
	}
}

func axpy[T float32 | float64](dst, src []T, w T, first bool) {
	switch {
	case first && w == 1:
		copy(dst, src)
	case first:
		for i, v := range src {
			dst[i] = w * v
		}
	default:
		for i, v := range src {
			dst[i] += w * v
		}
	}
}

// scale multiplies g by s in place.
func scale(g graph.Array, s float64) {
	if g.F64 != nil {
		for i := range g.F64 {
			g.F64[i] *= s
		}
		return
	}
	s32 := float32(s)
	for i := range g.F32 {
		g.F32[i] *= s32
	}
}

// globalNorm is √(Σ over every gradient element of g²), summed in float64.
// It is NaN or +Inf only when an element is: when the plain sum of squares
// overflows, it is recomputed with every element divided by the largest
// magnitude.
func globalNorm(gs []graph.Array) float64 {
	if n := math.Sqrt(sumSquares(gs, 1)); !math.IsInf(n, 0) {
		return n
	}
	var mx float64
	for _, g := range gs {
		for i := 0; i < g.Len(); i++ {
			v := math.Abs(g.At(i))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return v
			}
			mx = math.Max(mx, v)
		}
	}
	return mx * math.Sqrt(sumSquares(gs, 1/mx))
}

// sumSquares is Σ (s·g)² over every element, in float64.
func sumSquares(gs []graph.Array, s float64) float64 {
	var ss float64
	for _, g := range gs {
		if g.F64 != nil {
			for _, v := range g.F64 {
				v *= s
				ss += v * v
			}
		} else {
			for _, v := range g.F32 {
				x := float64(v) * s
				ss += x * x
			}
		}
	}
	return ss
}

// clip scales every gradient by maxNorm/norm when norm > maxNorm > 0, so the
// global norm becomes maxNorm, and reports whether it did.
func clip(gs []graph.Array, norm, maxNorm float64) bool {
	if maxNorm <= 0 || norm <= maxNorm {
		return false
	}
	s := maxNorm / norm
	for _, g := range gs {
		scale(g, s)
	}
	return true
}

// firstNonFinite finds the first NaN or ±Inf element of g.
func firstNonFinite(g graph.Array) (int, float64, bool) {
	for i := 0; i < g.Len(); i++ {
		if v := g.At(i); math.IsNaN(v) || math.IsInf(v, 0) {
			return i, v, true
		}
	}
	return 0, 0, false
}
