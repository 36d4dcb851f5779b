package graph

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func TestDropoutGradients(t *testing.T) {
	cases := []opCase{
		{name: "p=0.3", params: []pspec{{name: "x", shape: []int{6, 7}}},
			build: func(b *Builder, p []*Node) *Node { return Dropout(p[0], 0.3) }},
		{name: "odd size, two dropouts", params: []pspec{{name: "x", shape: []int{3, 5}}},
			build: func(b *Builder, p []*Node) *Node { return Dropout(Mul(Dropout(p[0], 0.5), p[0]), 0.1) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// dropoutRun builds y = Dropout(x, p) with loss Σ y ⊙ r, runs it once and
// returns x, r, y and dx.
type dropoutRun struct {
	x, r, y, dx []float64
}

func runDropout(t *testing.T, dt DType, seed uint64, n int, p float64, training bool) dropoutRun {
	t.Helper()
	ps := makeParams([]pspec{{name: "x", shape: []int{n}}}, dt, 2)
	var res dropoutRun
	res.x = ps[0].Values()
	res.r = make([]float64, n)
	for i := range res.r {
		res.r[i] = float64(i%9) - 4.5
	}
	b := NewBuilder(dt, seed)
	y := Dropout(b.Param(ps[0]), p)
	prog, err := b.Compile(sumTimes(b, y, res.r), y)
	if err != nil {
		t.Fatal(err)
	}
	prog.SetTraining(training)
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	out, _ := prog.Output(y)
	g, ok := prog.Grad(ps[0])
	if !ok {
		t.Fatal("no gradient for x")
	}
	res.y, res.dx = out.Values(), g.Values()
	return res
}

// TestDropoutMask checks the scale (exactly 1/(1−p) on kept units, where
// Gorgonia's own Dropout used 1/p), the dropped fraction, and that the
// gradient uses the same mask and scale as the output.
func TestDropoutMask(t *testing.T) {
	const n, p = 200000, 0.3
	for _, dt := range []DType{Float64, Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			res := runDropout(t, dt, 7, n, p, true)
			scale := 1 / (1 - p)
			if dt == Float32 {
				scale = float64(float32(scale))
			}
			dropped := 0
			for i, y := range res.y {
				var wantY, wantDx float64
				if y == 0 {
					dropped++
				} else {
					wantY, wantDx = res.x[i]*scale, res.r[i]*scale
				}
				if dt == Float32 {
					wantY, wantDx = float64(float32(wantY)), float64(float32(wantDx))
				}
				if y != wantY || res.dx[i] != wantDx {
					t.Fatalf("element %d: x %v r %v → y %v dx %v; want y %v dx %v", i, res.x[i], res.r[i], y, res.dx[i], wantY, wantDx)
				}
			}
			// the dropped count is Binomial(n, p): σ = √(p(1−p)/n) ≈ 0.001
			// of n, so 0.006 is six standard deviations
			if frac := float64(dropped) / n; math.Abs(frac-p) > 0.006 {
				t.Errorf("dropped fraction %.4f, want %.1f ± 0.006", frac, p)
			}
		})
	}
}

// TestDropoutSeeds checks that a seed fixes the mask, that another seed
// changes it, that each run draws a new mask, and that RNGState replays one.
func TestDropoutSeeds(t *testing.T) {
	const n = 1000
	a := runDropout(t, Float64, 11, n, 0.5, true)
	b := runDropout(t, Float64, 11, n, 0.5, true)
	c := runDropout(t, Float64, 12, n, 0.5, true)
	compareRel(t, "same seed", b.y, a.y, 0)
	if sameZeros(a.y, c.y) {
		t.Error("seeds 11 and 12 gave the same mask")
	}

	x := NewParam("x", Float64, n)
	for i := range x.Float64s() {
		x.Float64s()[i] = 1
	}
	bl := NewBuilder(Float64, 11)
	y := Dropout(bl.Param(x), 0.5)
	prog, err := bl.Compile(nil, y)
	if err != nil {
		t.Fatal(err)
	}
	state, err := prog.RNGState()
	if err != nil {
		t.Fatal(err)
	}
	var runs [3][]float64
	for i := range runs {
		if i == 2 {
			if err := prog.SetRNGState(state); err != nil {
				t.Fatal(err)
			}
		}
		if err := prog.Forward(); err != nil {
			t.Fatal(err)
		}
		out, _ := prog.Output(y)
		runs[i] = out.Values()
	}
	if sameZeros(runs[0], runs[1]) {
		t.Error("two runs drew the same mask")
	}
	compareRel(t, "replayed RNG state", runs[2], runs[0], 0)
	// the mask depends on the seed only: not on x, the dtype, or Run vs Forward
	if !sameZeros(runs[0], a.y) {
		t.Error("Forward on other values drew another mask from the same seed")
	}
	if f32 := runDropout(t, Float32, 11, n, 0.5, true); !sameZeros(f32.y, a.y) {
		t.Error("float32 and float64 drew different masks from the same seed")
	}
}

func sameZeros(a, b []float64) bool {
	for i := range a {
		if (a[i] == 0) != (b[i] == 0) {
			return false
		}
	}
	return true
}

// TestDropoutEval checks that with training off the output is x and the
// gradient is dy, exactly.
func TestDropoutEval(t *testing.T) {
	for _, dt := range []DType{Float64, Float32} {
		res := runDropout(t, dt, 3, 100, 0.5, false)
		compareRel(t, dt.String()+" output", res.y, res.x, 0)
		compareRel(t, dt.String()+" gradient", res.dx, res.r, 0)
	}
}

func TestDropoutArguments(t *testing.T) {
	b := NewBuilder(Float64, 1)
	x := b.Input("x", 3)
	if y := Dropout(x, 0); y != x {
		t.Error("Dropout(x, 0) is not x itself")
	}
	for _, p := range []float64{1, -0.1, 1.5, math.NaN(), math.Inf(-1)} {
		b := NewBuilder(Float64, 1)
		y := Dropout(b.Input("h", 3), p)
		if y.Err() == nil || b.Err() == nil {
			t.Errorf("p = %v built without error", p)
			continue
		}
		if msg := y.Err().Error(); !strings.Contains(msg, "Dropout") || !strings.Contains(msg, " h:") {
			t.Errorf("p = %v: error %q does not name the op and the input", p, msg)
		}
	}
}

func TestDropoutKernelsDoNotAllocate(t *testing.T) {
	const n = 65
	mk := func() tval { return tval{f32: make([]float32, n), shape: tensor.Shape{n}} }
	x, y, dy, dx := mk(), mk(), mk(), mk()
	b := NewBuilder(Float32, 1)
	fwd := &dropoutKernel{p: 0.5, thr: 1 << 31, scale: 2, rng: b.rng, mode: b.mode}
	bwd := &dropoutGradKernel{fwd: fwd}
	fwdIn, bwdIn := []tval{x}, []tval{y, dy}
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

func TestDropoutKeepBit(t *testing.T) {
	cases := []struct {
		u, thr uint64
		want   int64
	}{
		{0, 0, 1}, {1<<32 - 1, 0, 1}, // thr 0: keep everything
		{0, 1 << 32, 0}, {1<<32 - 1, 1 << 32, 0}, // thr 2³²: drop everything
		{4, 5, 0}, {5, 5, 1}, {6, 5, 1}, {0, 5, 0},
	}
	for _, c := range cases {
		if got := keepBit(c.u, c.thr); got != c.want {
			t.Errorf("keepBit(%d, %d) = %d, want %d", c.u, c.thr, got, c.want)
		}
	}
}
