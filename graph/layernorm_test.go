package graph

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// lnGammaInit puts γ around 1, as a trained LayerNorm has it.
func lnGammaInit(v []float64) {
	for i := range v {
		v[i] = 1 + 0.5*v[i]
	}
}

// lnRowOffset gives every row a non-zero mean, so the centring is exercised.
func lnRowOffset(v []float64) {
	for i := range v {
		v[i] = 3 + 2*v[i]
	}
}

func TestLayerNormGradients(t *testing.T) {
	ln := func(b *Builder, p []*Node) *Node { return LayerNorm(p[0], p[1], p[2], 1e-5) }
	cases := []opCase{
		{name: "[4,5]", params: []pspec{{name: "x", shape: []int{4, 5}, init: lnRowOffset}, {name: "gamma", shape: []int{5}, init: lnGammaInit}, {name: "beta", shape: []int{5}}},
			build: ln},
		{name: "[2,3,4]", params: []pspec{{name: "x", shape: []int{2, 3, 4}}, {name: "gamma", shape: []int{4}, init: lnGammaInit}, {name: "beta", shape: []int{4}}},
			build: ln},
		{name: "one row, large eps", params: []pspec{{name: "x", shape: []int{1, 6}, scale: 0.1}, {name: "gamma", shape: []int{6}}, {name: "beta", shape: []int{6}}},
			build: func(b *Builder, p []*Node) *Node { return LayerNorm(p[0], p[1], p[2], 0.01) }},
		{name: "stacked", params: []pspec{{name: "x", shape: []int{3, 4}}, {name: "gamma", shape: []int{4}, init: lnGammaInit}, {name: "beta", shape: []int{4}}},
			build: func(b *Builder, p []*Node) *Node {
				// the same γ, β in two LayerNorms: their gradients add up
				return LayerNorm(LayerNorm(p[0], p[1], p[2], 1e-5), p[1], p[2], 1e-5)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// TestLayerNormPartialGradients checks each subset of gradients a program
// may need (a frozen LayerNorm under an adapter needs only dx; a LayerNorm on a
// fixed input needs only dγ, dβ): the backward kernel runs in every case.
func TestLayerNormPartialGradients(t *testing.T) {
	cases := []struct {
		name      string
		trainable [3]bool // x, gamma, beta
	}{
		{"dx only", [3]bool{true, false, false}},
		{"dgamma only", [3]bool{false, true, false}},
		{"dbeta only", [3]bool{false, false, true}},
		{"dgamma and dbeta", [3]bool{false, true, true}},
		{"dx and dbeta", [3]bool{true, false, true}},
	}
	specs := []pspec{{name: "x", shape: []int{3, 5}, init: lnRowOffset}, {name: "gamma", shape: []int{5}, init: lnGammaInit}, {name: "beta", shape: []int{5}}}
	for _, c := range cases {
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
				y := LayerNorm(b.Param(ps[0]), b.Param(ps[1]), b.Param(ps[2]), 1e-5)
				return lossFor(b, y, 3), b.Err()
			}, check, GradCheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(check) {
				t.Fatalf("%d results for %d parameters", len(res), len(check))
			}
			for _, r := range res {
				if !r.OK(1e-7, 1e-6) {
					t.Errorf("gradient mismatch: %v", r)
				}
			}
		})
	}
}

func TestLayerNormMatchesReference(t *testing.T) {
	const n, d, eps = 4, 6, 1e-5
	specs := []pspec{{name: "x", shape: []int{n, d}, init: lnRowOffset}, {name: "gamma", shape: []int{d}, init: lnGammaInit}, {name: "beta", shape: []int{d}}}
	ps := makeParams(specs, Float64, 8)
	x, g, bt := ps[0].Float64s(), ps[1].Float64s(), ps[2].Float64s()
	want := make([]float64, n*d)
	for i := 0; i < n; i++ {
		row := x[i*d : (i+1)*d]
		var mean, vr float64
		for _, v := range row {
			mean += v / d
		}
		for _, v := range row {
			vr += (v - mean) * (v - mean) / d
		}
		for j, v := range row {
			want[i*d+j] = g[j]*(v-mean)/math.Sqrt(vr+eps) + bt[j]
		}
	}
	build := func(b *Builder, p []*Node) *Node { return LayerNorm(p[0], p[1], p[2], eps) }
	compareRel(t, "float64", forward(t, Float64, ps, build), want, 1e-14)
	ps32 := []*Param{ps[0].Convert(Float32), ps[1].Convert(Float32), ps[2].Convert(Float32)}
	compareRel(t, "float32", forward(t, Float32, ps32, build), want, 1e-6)
}

func TestLayerNormBuildErrors(t *testing.T) {
	cases := []struct {
		name         string
		xs, gs, bs   []int
		eps          float64
		wantInErrMsg string
	}{
		{"gamma size", []int{2, 4}, []int{3}, []int{4}, 1e-5, "gamma"},
		{"beta size", []int{2, 4}, []int{4}, []int{4, 1}, 1e-5, "beta"},
		{"negative eps", []int{2, 4}, []int{4}, []int{4}, -1e-5, "eps"},
		{"NaN eps", []int{2, 4}, []int{4}, []int{4}, math.NaN(), "eps"},
		{"infinite eps", []int{2, 4}, []int{4}, []int{4}, math.Inf(1), "eps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			y := LayerNorm(b.Input("x", c.xs...), b.Param(NewParam("g", Float64, c.gs...)), b.Param(NewParam("b", Float64, c.bs...)), c.eps)
			if y.Err() == nil {
				t.Fatal("built without error")
			}
			if msg := y.Err().Error(); !strings.Contains(msg, "LayerNorm") || !strings.Contains(msg, c.wantInErrMsg) {
				t.Errorf("error %q does not name the op and %q", msg, c.wantInErrMsg)
			}
		})
	}
}

func TestLayerNormKernelsDoNotAllocate(t *testing.T) {
	const n, d = 5, 8
	mk := func(s ...int) tval {
		sh := tensor.Shape(s)
		v := make([]float32, sh.TotalSize())
		for i := range v {
			v[i] = float32(i%7) - 3
		}
		return tval{f32: v, shape: sh}
	}
	x, g, bt, y, dy, dx, dg := mk(n, d), mk(d), mk(d), mk(n, d), mk(n, d), mk(n, d), mk(d)
	fwd := &lnKernel{eps: 1e-5}
	core := &lnGradKernel{fwd: fwd}
	pg := &lnParamGradKernel{core: core}
	fwdIn, bwdIn, pgIn := []tval{x, g, bt}, []tval{x, g, y, dy}, []tval{dx}
	step := func() {
		if err := fwd.forward(y, fwdIn); err != nil {
			t.Fatal(err)
		}
		if err := core.forward(dx, bwdIn); err != nil {
			t.Fatal(err)
		}
		if err := pg.forward(dg, pgIn); err != nil {
			t.Fatal(err)
		}
	}
	step() // the first run sizes the buffers
	if allocs := testing.AllocsPerRun(10, step); allocs != 0 {
		t.Errorf("%v allocations per forward+backward", allocs)
	}
}

// TestLayerNormRowBlocks runs the kernels on enough rows to be split over
// goroutines and compares with one goroutine: the same per-row maths, and
// dγ, dβ summed per block and then added up.
func TestLayerNormRowBlocks(t *testing.T) {
	const rows, d = 300, 256
	x, g, b, dy := make([]float64, rows*d), make([]float64, d), make([]float64, d), make([]float64, rows*d)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, v := range [][]float64{x, g, b, dy} {
		for i := range v {
			v[i] = 2*rng.Float64() - 1
		}
	}
	run := func(procs int) (y, dx, dg, db []float64) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		if w := rowWorkers(rows, d); (procs > 1) != (w > 1) {
			t.Fatalf("GOMAXPROCS %d: %d workers", procs, w)
		}
		shape := tensor.Shape{rows, d}
		y, dx = make([]float64, rows*d), make([]float64, rows*d)
		fwd := &lnKernel{eps: 1e-5}
		in := []tval{{f64: x, shape: shape}, {f64: g, shape: tensor.Shape{d}}, {f64: b, shape: tensor.Shape{d}}}
		if err := fwd.forward(tval{f64: y, shape: shape}, in); err != nil {
			t.Fatal(err)
		}
		bwd := &lnGradKernel{fwd: fwd}
		bin := []tval{in[0], in[1], {f64: y, shape: shape}, {f64: dy, shape: shape}}
		if err := bwd.forward(tval{f64: dx, shape: shape}, bin); err != nil {
			t.Fatal(err)
		}
		return y, dx, bwd.dg, bwd.db
	}
	y1, dx1, dg1, db1 := run(1)
	y3, dx3, dg3, db3 := run(3)
	for _, c := range []struct {
		name      string
		got, want []float64
		tol       float64
	}{{"y", y3, y1, 0}, {"dx", dx3, dx1, 0}, {"dgamma", dg3, dg1, 1e-12}, {"dbeta", db3, db1, 1e-12}} {
		for i := range c.want {
			if math.Abs(c.got[i]-c.want[i]) > c.tol*math.Max(1, math.Abs(c.want[i])) {
				t.Fatalf("%s[%d] = %v with row blocks, %v without", c.name, i, c.got[i], c.want[i])
			}
		}
	}
}
