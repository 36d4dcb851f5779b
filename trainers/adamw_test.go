package trainers

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
)

// adamReference is AdamW written out from the paper (Loshchilov & Hutter,
// Algorithm 2 with PyTorch's placement of the decay), one element at a time:
//
//	m_t = β₁ m_{t−1} + (1−β₁) g_t
//	v_t = β₂ v_{t−1} + (1−β₂) g_t²
//	m̂_t = m_t / (1−β₁ᵗ),  v̂_t = v_t / (1−β₂ᵗ)
//	θ_t = θ_{t−1} − η λ θ_{t−1} − η m̂_t / (√v̂_t + ε)
func adamReference(theta []float64, grads [][]float64, lr, b1, b2, eps, wd float64) []float64 {
	th := append([]float64(nil), theta...)
	m := make([]float64, len(th))
	v := make([]float64, len(th))
	for t, g := range grads {
		step := float64(t + 1)
		for i := range th {
			m[i] = b1*m[i] + (1-b1)*g[i]
			v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
			mhat := m[i] / (1 - math.Pow(b1, step))
			vhat := v[i] / (1 - math.Pow(b2, step))
			th[i] = th[i] - lr*wd*th[i] - lr*mhat/(math.Sqrt(vhat)+eps)
		}
	}
	return th
}

// TestAdamWMatchesReference runs three steps on a matrix and a bias, with
// and without weight decay, in float64 (to rounding) and float32 (to float32
// precision); the bias never decays by default.
func TestAdamWMatchesReference(t *testing.T) {
	w0 := []float64{0.5, -1.5, 2, 0.25, -0.75, 1}
	b0 := []float64{0.1, -0.2}
	gw := [][]float64{{0.1, -0.2, 0.3, 1, -2, 0.05}, {0.2, 0.1, -0.3, 0.5, 1, -0.05}, {-0.1, 0.4, 0.2, -1, 0.5, 0}}
	gb := [][]float64{{1, -1}, {0.5, 2}, {-3, 0.25}}
	const lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
	for _, wd := range []float64{0, 0.1} {
		for _, dt := range []graph.DType{graph.Float64, graph.Float32} {
			w, _ := graph.NewParamFrom("w", w0, 2, 3)
			b, _ := graph.NewParamFrom("b", b0, 2)
			w, b = w.Convert(dt), b.Convert(dt)
			opt := NewAdamW(b1, b2, eps, wd)
			for s := range gw {
				if err := opt.Step([]*graph.Param{w, b}, []graph.Array{array(dt, gw[s]), array(dt, gb[s])}, lr); err != nil {
					t.Fatal(err)
				}
			}
			tol := 1e-15
			if dt == graph.Float32 {
				tol = 1e-6 // a few float32 ulps at |θ| ≤ 2
			}
			check := func(name string, got, want []float64) {
				for i := range want {
					if math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
						t.Errorf("wd %v %v %s[%d] = %.17g, want %.17g", wd, dt, name, i, got[i], want[i])
					}
				}
			}
			check("w", w.Values(), adamReference(w0, gw, lr, b1, b2, eps, wd))
			check("b", b.Values(), adamReference(b0, gb, lr, b1, b2, eps, 0)) // a vector: no decay
			if opt.StepCount() != 3 {
				t.Errorf("step count %d", opt.StepCount())
			}
		}
	}
}

func array(dt graph.DType, v []float64) graph.Array {
	if dt == graph.Float64 {
		return graph.Array{F64: append([]float64(nil), v...)}
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return graph.Array{F32: f}
}

// TestAdamWDecayRule: Decay decides which parameters decay.
func TestAdamWDecayRule(t *testing.T) {
	b, _ := graph.NewParamFrom("b", []float64{1, 2}, 2)
	opt := NewAdamW(0.9, 0.999, 1e-8, 0.5)
	opt.Decay = func(*graph.Param) bool { return true }
	if err := opt.Step([]*graph.Param{b}, []graph.Array{{F64: []float64{0, 0}}}, 0.1); err != nil {
		t.Fatal(err)
	}
	// zero gradient: only the decay acts, θ·(1 − 0.1·0.5)
	if got := b.Values(); got[0] != 0.95 || got[1] != 1.9 {
		t.Fatalf("decayed bias %v, want [0.95 1.9]", got)
	}
}

// TestAdamWStateByName: the state follows the name, not the position.
func TestAdamWStateByName(t *testing.T) {
	mk := func() (*graph.Param, *graph.Param) {
		x, _ := graph.NewParamFrom("x", []float64{1, 2, 3}, 3)
		y, _ := graph.NewParamFrom("y", []float64{-1, 5, 0.5}, 3)
		return x, y
	}
	gx := []graph.Array{{F64: []float64{1, 0, -1}}, {F64: []float64{2, 2, 2}}}
	gy := []graph.Array{{F64: []float64{0.5, 0.5, 0}}, {F64: []float64{-1, 3, 1}}}
	x1, y1 := mk()
	o1 := NewAdamW(0.9, 0.99, 1e-8, 0)
	x2, y2 := mk()
	o2 := NewAdamW(0.9, 0.99, 1e-8, 0)
	for s := 0; s < 2; s++ {
		if err := o1.Step([]*graph.Param{x1, y1}, []graph.Array{gx[s], gy[s]}, 0.1); err != nil {
			t.Fatal(err)
		}
		ps, gs := []*graph.Param{x2, y2}, []graph.Array{gx[s], gy[s]}
		if s == 1 { // swap the order on the second step
			ps, gs = []*graph.Param{y2, x2}, []graph.Array{gy[s], gx[s]}
		}
		if err := o2.Step(ps, gs, 0.1); err != nil {
			t.Fatal(err)
		}
	}
	if !equalBits(x1.Values(), x2.Values()) || !equalBits(y1.Values(), y2.Values()) {
		t.Fatal("reordering the parameters changed the result")
	}
	if _, _, ok := o1.Moments("z"); ok {
		t.Fatal("state for an unknown name")
	}
}

func TestAdamWErrors(t *testing.T) {
	x := graph.NewParam("x", graph.Float64, 3)
	y := graph.NewParam("x", graph.Float64, 3)
	opt := NewAdamW(0.9, 0.999, 1e-8, 0)
	cases := []struct {
		ps   []*graph.Param
		gs   []graph.Array
		want string
	}{
		{[]*graph.Param{x}, nil, "1 parameters and 0 gradients"},
		{[]*graph.Param{x}, []graph.Array{{F64: make([]float64, 2)}}, "gradient of x is 2 float64 values, want 3 float64"},
		{[]*graph.Param{x}, []graph.Array{{F32: make([]float32, 3)}}, "gradient of x is 3 float32 values"},
		{[]*graph.Param{x, y}, []graph.Array{{F64: make([]float64, 3)}, {F64: make([]float64, 3)}}, "name x appears twice"},
	}
	for _, c := range cases {
		if err := opt.Step(c.ps, c.gs, 0.1); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	if opt.StepCount() != 0 {
		t.Fatal("a failed step counted")
	}
}

// TestClipGlobalNorm: clipping scales every gradient by the same factor so
// the global norm becomes the maximum, and leaves small gradients alone.
func TestClipGlobalNorm(t *testing.T) {
	gs := []graph.Array{{F64: []float64{3, 0}}, {F32: []float32{0, 4}}} // norm 5
	norm := globalNorm(gs)
	if norm != 5 {
		t.Fatalf("norm %v, want 5", norm)
	}
	if !clip(gs, norm, 2) {
		t.Fatal("not clipped")
	}
	if got := globalNorm(gs); math.Abs(got-2) > 1e-7 || math.Abs(gs[0].F64[0]-1.2) > 1e-15 || math.Abs(float64(gs[1].F32[1])-1.6) > 1e-7 {
		t.Fatalf("clipped to %v: %v %v", got, gs[0].F64, gs[1].F32)
	}
	if before := gs[0].F64[0]; clip(gs, 2, 3) || gs[0].F64[0] != before {
		t.Fatal("a gradient below the limit was scaled")
	}
	// No spurious overflow: the norm of huge finite gradients is finite.
	big := []graph.Array{{F64: []float64{3e200, 4e200}}}
	if n := globalNorm(big); math.Abs(n-5e200) > 1e186 {
		t.Fatalf("norm of huge gradients %v, want 5e200", n)
	}
	if n := globalNorm([]graph.Array{{F64: []float64{1, math.NaN()}}}); !math.IsNaN(n) {
		t.Fatalf("norm with a NaN is %v", n)
	}
}

// TestAdamWSplitMatchesOneGoroutine: a parameter large enough to be updated
// in ranges on several goroutines gets exactly the values of an update on
// one goroutine (the elements are independent).
func TestAdamWSplitMatchesOneGoroutine(t *testing.T) {
	rows := 3*adamChunk/5 + 1
	n := 5 * rows
	run := func(procs int) []float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		p := graph.NewParam("w", graph.Float32, rows, 5)
		g := graph.Array{Shape: p.Shape(), F32: make([]float32, n)}
		for i := range g.F32 {
			p.Float32s()[i] = float32(i%7) - 3
			g.F32[i] = float32(i%11)/5 - 1
		}
		opt := NewAdamW(0.9, 0.999, 1e-6, 0.01)
		for range 2 {
			if err := opt.Step([]*graph.Param{p}, []graph.Array{g}, 1e-2); err != nil {
				t.Fatal(err)
			}
		}
		return p.Float32s()
	}
	one, split := run(1), run(4)
	for i := range one {
		if one[i] != split[i] {
			t.Fatalf("element %d: %v on one goroutine, %v split", i, one[i], split[i])
		}
	}
}
