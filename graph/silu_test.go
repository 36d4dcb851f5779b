package graph

import (
	"math"
	"testing"
)

func TestSiLUGradients(t *testing.T) {
	cases := []opCase{
		// scale 8 reaches the saturated tails as well as the middle
		{name: "[3,7]", params: []pspec{{name: "x", shape: []int{3, 7}, scale: 8}},
			build: func(b *Builder, p []*Node) *Node { return SiLU(p[0]) }},
		{name: "1-D", params: []pspec{{name: "x", shape: []int{9}}},
			build: func(b *Builder, p []*Node) *Node { return SiLU(p[0]) }},
		{name: "gated: SiLU(g)⊙u", params: []pspec{{name: "g", shape: []int{4, 5}, scale: 3}, {name: "u", shape: []int{4, 5}}},
			build: func(b *Builder, p []*Node) *Node { return Mul(SiLU(p[0]), p[1]) }},
		{name: "twice", params: []pspec{{name: "x", shape: []int{2, 5}, scale: 2}},
			build: func(b *Builder, p []*Node) *Node { return SiLU(SiLU(p[0])) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

func siluRef(x float64) float64 { return x / (1 + math.Exp(-x)) }

func TestSiLUMatchesReference(t *testing.T) {
	xs := []float64{0, 1e-30, -1e-30, 88, -88, 90, -90, 104, -104, 110, -110}
	for x := -20.0; x <= 20; x += 0.0625 {
		xs = append(xs, x)
	}
	p, err := NewParamFrom("x", xs, len(xs))
	if err != nil {
		t.Fatal(err)
	}
	build := func(b *Builder, ps []*Node) *Node { return SiLU(ps[0]) }
	got := forward(t, Float64, []*Param{p}, build)
	for i, x := range xs {
		if want := siluRef(x); math.Abs(got[i]-want) > 1e-15*math.Max(1, math.Abs(want)) {
			t.Fatalf("float64 SiLU(%v) = %v, want %v", x, got[i], want)
		}
	}
	// float32: rounding of x, σ and y plus exp32's one unit in the last place
	got32 := forward(t, Float32, []*Param{p.Convert(Float32)}, build)
	for i, x := range xs {
		want := siluRef(float64(float32(x)))
		if d := math.Abs(got32[i] - want); d > 4e-7*math.Max(1, math.Abs(want)) {
			t.Fatalf("float32 SiLU(%v) = %v, want %v (error %.3g)", x, got32[i], want, d)
		}
	}
}

// TestSiLUExtremes checks that huge inputs give x or 0 with finite
// gradients 1 and 0, in both dtypes.
func TestSiLUExtremes(t *testing.T) {
	xs := []float64{1e4, -1e4, 100, -100, 3e38, -3e38}
	wantY := []float64{1e4, 0, 100, 0, 3e38, 0}
	wantG := []float64{1, 0, 1, 0, 1, 0}
	for _, dt := range []DType{Float64, Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			p := NewParam("x", dt, len(xs))
			_ = p.SetValues(xs)
			b := NewBuilder(dt, 1)
			y := SiLU(b.Param(p))
			prog, err := b.Compile(Sum(y), y)
			if err != nil {
				t.Fatal(err)
			}
			if err := prog.Run(); err != nil {
				t.Fatal(err)
			}
			out, _ := prog.Output(y)
			g, _ := prog.Grad(p)
			for i := range xs {
				y, gr := out.At(i), g.At(i)
				if math.Abs(y-wantY[i]) > 1e-6*math.Abs(wantY[i])+1e-30 || math.Abs(gr-wantG[i]) > 1e-6 {
					t.Errorf("SiLU(%g) = %g with gradient %g, want %g and %g", xs[i], y, gr, wantY[i], wantG[i])
				}
			}
		})
	}
}

func TestSiLUIntegerInput(t *testing.T) {
	b := NewBuilder(Float64, 1)
	if y := SiLU(b.IntInput("ids", 3)); y.Err() == nil {
		t.Fatal("SiLU of an integer input built")
	}
}

// TestSiLUVec checks the AVX2 forward kernel against float64 over the
// range where σ is not saturated, and at the extremes and NaN.
func TestSiLUVec(t *testing.T) {
	skipWithoutAVX2(t)
	var xs []float32
	for x := float32(-30); x <= 30; x += 0.00731 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, 1e-30, -1e-30, 88, -88, 90, -90, 104, -104, 110, -110, 3e38, -3e38, float32(math.NaN()))
	for len(xs)%8 != 0 {
		xs = append(xs, 0.5)
	}
	y, s := make([]float32, len(xs)), make([]float32, len(xs))
	if n := siluVec(y, s, xs); n != len(xs) {
		t.Fatalf("did %d of %d", n, len(xs))
	}
	for i, x := range xs {
		xd := float64(x)
		switch {
		case math.IsNaN(xd):
			if !math.IsNaN(float64(y[i])) {
				t.Errorf("SiLU(NaN) = %v", y[i])
			}
		case xd < -89:
			if y[i] != 0 || s[i] != 0 {
				t.Errorf("SiLU(%v) = %v, σ = %v; want 0, 0", x, y[i], s[i])
			}
		default:
			want := siluRef(xd)
			// e^(−x) within 2 ulp, then roundings of 1 + e, the quotient and x·σ
			if d := math.Abs(float64(y[i]) - want); d > 4e-7*math.Max(1, math.Abs(want)) {
				t.Errorf("SiLU(%v) = %v, want %v (error %.3g)", x, y[i], want, d)
			}
			if d := math.Abs(float64(s[i]) - 1/(1+math.Exp(-xd))); d > 4e-7 {
				t.Errorf("σ(%v) = %v (error %.3g)", x, s[i], d)
			}
		}
	}
}
