package graph

import (
	"math"
	"runtime"
	"testing"

	"gorgonia.org/tensor"
)

func TestGELUGradients(t *testing.T) {
	cases := []opCase{
		// scale 4 reaches the saturated tails (|u| > 3) as well as the middle
		{name: "[3,7]", params: []pspec{{name: "x", shape: []int{3, 7}, scale: 4}},
			build: func(b *Builder, p []*Node) *Node { return GELU(p[0]) }},
		{name: "1-D", params: []pspec{{name: "x", shape: []int{9}}},
			build: func(b *Builder, p []*Node) *Node { return GELU(p[0]) }},
		{name: "twice", params: []pspec{{name: "x", shape: []int{2, 5}, scale: 2}},
			build: func(b *Builder, p []*Node) *Node { return GELU(GELU(p[0])) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// geluRef is GPT-2's formula written out in float64.
func geluRef(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func TestGELUMatchesReference(t *testing.T) {
	// a grid over [-12, 12] plus the points where tanh switches method
	xs := []float64{0, 1e-30, -1e-30, 0.3125, -0.3125, 0.625, -0.625}
	for x := -12.0; x <= 12; x += 0.0625 {
		xs = append(xs, x)
	}
	p, err := NewParamFrom("x", xs, len(xs))
	if err != nil {
		t.Fatal(err)
	}
	build := func(b *Builder, ps []*Node) *Node { return GELU(ps[0]) }
	want := make([]float64, len(xs))
	for i, x := range xs {
		want[i] = geluRef(x)
	}
	got := forward(t, Float64, []*Param{p}, build)
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > 1e-15*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("float64 GELU(%v) = %v, want %v", xs[i], got[i], want[i])
		}
	}
	// float32: rounding of x and y plus math32.Tanh's ~1e-7 relative error
	got32 := forward(t, Float32, []*Param{p.Convert(Float32)}, build)
	for i := range got32 {
		want := geluRef(float64(float32(xs[i])))
		if d := math.Abs(got32[i] - want); d > 4e-7*math.Max(1, math.Abs(want)) {
			t.Fatalf("float32 GELU(%v) = %v, want %v (error %.3g)", xs[i], got32[i], want, d)
		}
	}
}

// TestGELUExtremes checks that huge inputs give x or 0 with finite
// gradients 1 and 0, in both dtypes.
func TestGELUExtremes(t *testing.T) {
	xs := []float64{1e4, -1e4, 100, -100, 3e38, -3e38}
	for _, dt := range []DType{Float64, Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			p := NewParam("x", dt, len(xs))
			_ = p.SetValues(xs)
			b := NewBuilder(dt, 1)
			y := GELU(b.Param(p))
			prog, err := b.Compile(Sum(y), y)
			if err != nil {
				t.Fatal(err)
			}
			if err := prog.Run(); err != nil {
				t.Fatal(err)
			}
			out, _ := prog.Output(y)
			g, _ := prog.Grad(p)
			for i, x := range xs {
				wantY, wantG := x, 1.0
				if x < 0 {
					wantY, wantG = 0, 0
				}
				if dt == Float32 {
					wantY = float64(float32(wantY))
				}
				if out.At(i) != wantY || g.At(i) != wantG {
					t.Errorf("GELU(%g) = %g, GELU' = %g; want %g, %g", x, out.At(i), g.At(i), wantY, wantG)
				}
			}
		})
	}
}

func TestGELUKernelsDoNotAllocate(t *testing.T) {
	const n = 64
	mk := func() tval { return tval{f32: make([]float32, n), shape: tensor.Shape{n}} }
	x, y, dy, dx := mk(), mk(), mk(), mk()
	for i := range x.f32 {
		x.f32[i] = float32(i)/8 - 4
		dy.f32[i] = 1
	}
	fwd := newGELUKernel()
	bwd := &geluGradKernel{fwd: fwd}
	fwdIn, bwdIn := []tval{x}, []tval{x, y, dy}
	step := func() {
		if err := fwd.forward(y, fwdIn); err != nil {
			t.Fatal(err)
		}
		if err := bwd.forward(dx, bwdIn); err != nil {
			t.Fatal(err)
		}
	}
	step() // the first run sizes the buffers
	if allocs := testing.AllocsPerRun(10, step); allocs != 0 {
		t.Errorf("%v allocations per forward+backward", allocs)
	}
}

// TestTanh32 bounds tanh32's absolute error against math.Tanh on a fine
// grid, including both tails and exact zeros.
func TestTanh32(t *testing.T) {
	var worst, at float64
	for x := -20.0; x <= 20; x += 1.0 / 4096 {
		u := float32(x)
		got, want := float64(tanh32(u)), math.Tanh(float64(u))
		if d := math.Abs(got - want); d > worst {
			worst, at = d, x
		}
	}
	// 4e-8 is 2/3 of float32's spacing just below 1, so this allows a
	// single rounding of the result and nothing more
	if worst > 4e-8 {
		t.Errorf("max |tanh32 − tanh| = %.3g at %v", worst, at)
	}
	for _, u := range []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-30} {
		if got := tanh32(u); math.Abs(float64(got)) > 1e-29 {
			t.Errorf("tanh32(%v) = %v", u, got)
		}
	}
	if tanh32(float32(math.Inf(1))) != 1 || tanh32(float32(math.Inf(-1))) != -1 {
		t.Error("tanh32(±Inf) is not ±1")
	}
	if !math.IsNaN(float64(tanh32(float32(math.NaN())))) {
		t.Error("tanh32(NaN) is not NaN")
	}
}

// TestGELUSpans: a tensor large enough to be split over goroutines gets
// bit for bit the values and gradients of one goroutine (spans start at
// multiples of 8, so the vector kernel sees every element the same way).
func TestGELUSpans(t *testing.T) {
	const n = 100003 // two spans and a tail of 3
	x, dy := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = float32(i%997)/100 - 5
		dy[i] = float32(i%13) - 6
	}
	run := func(procs int) (y, dx []float32) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		if w := rowWorkers(n, 1); (procs > 1) != (w > 1) {
			t.Fatalf("GOMAXPROCS %d: %d workers", procs, w)
		}
		s := tensor.Shape{n}
		y, dx = make([]float32, n), make([]float32, n)
		fwd := newGELUKernel()
		if err := fwd.forward(tval{f32: y, shape: s}, []tval{{f32: x, shape: s}}); err != nil {
			t.Fatal(err)
		}
		bwd := &geluGradKernel{fwd: fwd}
		in := []tval{{f32: x, shape: s}, {f32: y, shape: s}, {f32: dy, shape: s}}
		if err := bwd.forward(tval{f32: dx, shape: s}, in); err != nil {
			t.Fatal(err)
		}
		return y, dx
	}
	y1, dx1 := run(1)
	y3, dx3 := run(3)
	for i := range y1 {
		if y1[i] != y3[i] || dx1[i] != dx3[i] {
			t.Fatalf("element %d: y %v / %v, dx %v / %v (one goroutine / spans)", i, y1[i], y3[i], dx1[i], dx3[i])
		}
	}
}
