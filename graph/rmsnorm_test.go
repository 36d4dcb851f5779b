package graph

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func TestRMSNormGradients(t *testing.T) {
	rms := func(eps float64) func(b *Builder, p []*Node) *Node {
		return func(b *Builder, p []*Node) *Node { return RMSNorm(p[0], p[1], eps) }
	}
	cases := []opCase{
		{name: "[4,6]", params: []pspec{{name: "x", shape: []int{4, 6}, init: lnRowOffset}, {name: "w", shape: []int{6}, init: lnGammaInit}},
			build: rms(1e-6)},
		{name: "per head [3,2·4]", params: []pspec{{name: "x", shape: []int{3, 8}}, {name: "w", shape: []int{4}, init: lnGammaInit}},
			build: rms(1e-6)},
		{name: "[2,3,4]", params: []pspec{{name: "x", shape: []int{2, 3, 4}}, {name: "w", shape: []int{4}, init: lnGammaInit}},
			build: rms(1e-5)},
		{name: "small rows, large eps", params: []pspec{{name: "x", shape: []int{2, 5}, scale: 0.05}, {name: "w", shape: []int{5}}},
			build: rms(0.01)},
		{name: "stacked", params: []pspec{{name: "x", shape: []int{3, 4}}, {name: "w", shape: []int{4}, init: lnGammaInit}},
			build: func(b *Builder, p []*Node) *Node {
				// the same w in two RMSNorms: its gradients add up
				return RMSNorm(RMSNorm(p[0], p[1], 1e-6), p[1], 1e-6)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// TestRMSNormPartialGradients checks that each gradient alone is right: a
// frozen norm under LoRA needs only dx, a norm on a fixed input only dw.
func TestRMSNormPartialGradients(t *testing.T) {
	specs := []pspec{{name: "x", shape: []int{3, 5}, init: lnRowOffset}, {name: "w", shape: []int{5}, init: lnGammaInit}}
	for _, c := range []struct {
		name      string
		trainable [2]bool
	}{{"dx only", [2]bool{true, false}}, {"dw only", [2]bool{false, true}}} {
		t.Run(c.name, func(t *testing.T) {
			ps := makeParams(specs, Float64, 6)
			var check []*Param
			for i, p := range ps {
				p.Trainable = c.trainable[i]
				if p.Trainable {
					check = append(check, p)
				}
			}
			res, err := CheckGradients(func(b *Builder) (*Node, error) {
				y := RMSNorm(b.Param(ps[0]), b.Param(ps[1]), 1e-6)
				return lossFor(b, y, 3), b.Err()
			}, check, GradCheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !r.OK(1e-7, 1e-6) {
					t.Errorf("gradient mismatch: %v", r)
				}
			}
		})
	}
}

// rmsRef is transformers' formula in float64: w·(x·rsqrt(mean(x²)+eps)),
// over groups of len(w) elements.
func rmsRef(x, w []float64, eps float64) []float64 {
	d := len(w)
	out := make([]float64, len(x))
	for i := 0; i < len(x); i += d {
		var ms float64
		for _, v := range x[i : i+d] {
			ms += v * v / float64(d)
		}
		r := 1 / math.Sqrt(ms+eps)
		for j := range d {
			out[i+j] = w[j] * (x[i+j] * r)
		}
	}
	return out
}

func TestRMSNormMatchesReference(t *testing.T) {
	for _, c := range []struct {
		name  string
		x     []int
		d     int
		scale float64
	}{{"rows", []int{4, 6}, 6, 1}, {"heads", []int{3, 12}, 4, 3}, {"tiny values", []int{2, 8}, 8, 1e-4}} {
		t.Run(c.name, func(t *testing.T) {
			const eps = 1e-6
			specs := []pspec{{name: "x", shape: c.x, scale: c.scale}, {name: "w", shape: []int{c.d}, init: lnGammaInit}}
			ps := makeParams(specs, Float64, 8)
			want := rmsRef(ps[0].Float64s(), ps[1].Float64s(), eps)
			build := func(b *Builder, p []*Node) *Node { return RMSNorm(p[0], p[1], eps) }
			compareRel(t, "float64", forward(t, Float64, ps, build), want, 1e-14)
			ps32 := []*Param{ps[0].Convert(Float32), ps[1].Convert(Float32)}
			compareRel(t, "float32", forward(t, Float32, ps32, build), want, 1e-6)
		})
	}
}

func TestRMSNormBuildErrors(t *testing.T) {
	cases := []struct {
		name   string
		xs, ws []int
		eps    float64
		want   string
	}{
		{"weight does not divide", []int{2, 6}, []int{4}, 1e-6, "weight"},
		{"weight 2-D", []int{2, 4}, []int{4, 1}, 1e-6, "weight"},
		{"zero eps", []int{2, 4}, []int{4}, 0, "eps"},
		{"negative eps", []int{2, 4}, []int{4}, -1e-6, "eps"},
		{"NaN eps", []int{2, 4}, []int{4}, math.NaN(), "eps"},
		{"infinite eps", []int{2, 4}, []int{4}, math.Inf(1), "eps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			y := RMSNorm(b.Input("x", c.xs...), b.Param(NewParam("w", Float64, c.ws...)), c.eps)
			if y.Err() == nil {
				t.Fatal("built without error")
			}
			if msg := y.Err().Error(); !strings.Contains(msg, "RMSNorm") || !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not name the op and %q", msg, c.want)
			}
		})
	}
	b := NewBuilder(Float64, 1)
	if y := RMSNorm(b.IntInput("ids", 4), b.Param(NewParam("w", Float64, 4)), 1e-6); y.Err() == nil || !strings.Contains(y.Err().Error(), "integer") {
		t.Errorf("integer x: %v", y.Err())
	}
}

// TestRMSNormGroupsInParallel runs the kernels on enough groups to be split
// over goroutines and compares with one goroutine.
func TestRMSNormGroupsInParallel(t *testing.T) {
	const rows, d = 300, 256
	x, w, dy := make([]float64, rows*d), make([]float64, d), make([]float64, rows*d)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, v := range [][]float64{x, w, dy} {
		for i := range v {
			v[i] = 2*rng.Float64() - 1
		}
	}
	run := func(procs int) (y, dx, dw []float64) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		if wk := rowWorkers(rows, d); (procs > 1) != (wk > 1) {
			t.Fatalf("GOMAXPROCS %d: %d workers", procs, wk)
		}
		shape := tensor.Shape{rows, d}
		y, dx = make([]float64, rows*d), make([]float64, rows*d)
		fwd := &rmsKernel{eps: 1e-6}
		in := []tval{{f64: x, shape: shape}, {f64: w, shape: tensor.Shape{d}}}
		if err := fwd.forward(tval{f64: y, shape: shape}, in); err != nil {
			t.Fatal(err)
		}
		bwd := &rmsGradKernel{fwd: fwd}
		bin := []tval{in[0], in[1], {f64: y, shape: shape}, {f64: dy, shape: shape}}
		if err := bwd.forward(tval{f64: dx, shape: shape}, bin); err != nil {
			t.Fatal(err)
		}
		return y, dx, bwd.dw
	}
	y1, dx1, dw1 := run(1)
	y3, dx3, dw3 := run(3)
	for _, c := range []struct {
		name      string
		got, want []float64
		tol       float64
	}{{"y", y3, y1, 0}, {"dx", dx3, dx1, 0}, {"dw", dw3, dw1, 1e-12}} {
		for i := range c.want {
			if math.Abs(c.got[i]-c.want[i]) > c.tol*math.Max(1, math.Abs(c.want[i])) {
				t.Fatalf("%s[%d] = %v in parallel, %v on one goroutine", c.name, i, c.got[i], c.want[i])
			}
		}
	}
}
