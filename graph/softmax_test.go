package graph

import (
	"math"
	"testing"
)

func TestSoftmaxGradients(t *testing.T) {
	cases := []opCase{
		{name: "4x7", params: []pspec{{name: "x", shape: []int{4, 7}, scale: 3}},
			build: func(b *Builder, p []*Node) *Node { return Softmax(p[0]) }},
		{name: "1x1", params: []pspec{{name: "x", shape: []int{1, 1}}},
			build: func(b *Builder, p []*Node) *Node { return Softmax(p[0]) }},
		// Rows offset by ±1000 are only finite with a per-row max.
		{name: "offset rows", params: []pspec{{name: "x", shape: []int{3, 5}, init: func(v []float64) {
			for j := 0; j < 5; j++ {
				v[5+j] += 1000
				v[10+j] -= 1000
			}
		}}},
			build: func(b *Builder, p []*Node) *Node { return Softmax(p[0]) }},
		{name: "wide rows", params: []pspec{{name: "x", shape: []int{3, 300}, scale: 4}},
			build: func(b *Builder, p []*Node) *Node { return Softmax(p[0]) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// TestSoftmaxMatchesReference compares with exp(x_v)/Σ_u exp(x_u) computed
// without any max (the values are small enough not to overflow). The second
// shape is split over several goroutines.
func TestSoftmaxMatchesReference(t *testing.T) {
	for _, shape := range [][2]int{{5, 6}, {64, 1500}} {
		n, v := shape[0], shape[1]
		ps := makeParams([]pspec{{name: "x", shape: []int{n, v}, scale: 5}}, Float64, 4)
		got := forward(t, Float64, ps, func(b *Builder, p []*Node) *Node { return Softmax(p[0]) })
		x := ps[0].Float64s()
		for i := 0; i < n; i++ {
			var s float64
			for j := 0; j < v; j++ {
				s += math.Exp(x[i*v+j])
			}
			for j := 0; j < v; j++ {
				want := math.Exp(x[i*v+j]) / s
				if d := math.Abs(got[i*v+j] - want); d > 1e-15 {
					t.Fatalf("%v: y[%d,%d] = %v, want %v", shape, i, j, got[i*v+j], want)
				}
			}
		}
	}
}

// TestSoftmaxPerRowMax pins the case where Gorgonia's SoftMax, which
// subtracts one max for the whole tensor, returns NaN.
func TestSoftmaxPerRowMax(t *testing.T) {
	for _, dt := range []DType{Float64, Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			p, err := NewParamFrom("x", []float64{0, 0, 100, 0}, 2, 2)
			if err != nil {
				t.Fatal(err)
			}
			got := forward(t, dt, []*Param{p.Convert(dt)}, func(b *Builder, p []*Node) *Node { return Softmax(p[0]) })
			want := []float64{0.5, 0.5, 1, math.Exp(-100)}
			for i, g := range got {
				if math.IsNaN(g) || math.IsInf(g, 0) {
					t.Fatalf("y[%d] = %v", i, g)
				}
				// float32 holds e^-100 ≈ 3.7e-44 only as a subnormal, to ~1.4e-45.
				if d := math.Abs(g - want[i]); d > 2e-45 || (dt == Float64 && d > 1e-16*want[i]) {
					t.Errorf("y[%d] = %v, want %v", i, g, want[i])
				}
			}
		})
	}
}

func TestSoftmaxErrors(t *testing.T) {
	b := NewBuilder(Float64, 1)
	if y := Softmax(b.Input("x3", 2, 3, 4)); y.Err() == nil {
		t.Error("3-D input built without error")
	}
	b = NewBuilder(Float64, 1)
	if y := Softmax(b.IntInput("ids", 2, 3)); y.Err() == nil {
		t.Error("integer input built without error")
	}
	if y := Softmax(nil); y.Err() == nil {
		t.Error("nil input built without error")
	}
}

// TestSoftmaxRerun feeds a second input to the same program: the reused
// output buffer must hold the new result.
func TestSoftmaxRerun(t *testing.T) {
	b := NewBuilder(Float64, 1)
	x := b.Input("x", 2, 3)
	y := Softmax(x)
	prog, err := b.Compile(nil, y)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]float64{{1, 2, 3, 0, 0, 0}, {0, 0, 0, 3, 2, 1}} {
		if err := prog.SetInput(x, in); err != nil {
			t.Fatal(err)
		}
		if err := prog.Forward(); err != nil {
			t.Fatal(err)
		}
		got, err := prog.Output(y)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			r := in[i*3 : i*3+3]
			s := math.Exp(r[0]) + math.Exp(r[1]) + math.Exp(r[2])
			for j := range r {
				if d := math.Abs(got.F64[i*3+j] - math.Exp(r[j])/s); d > 1e-15 {
					t.Fatalf("input %v: y[%d,%d] = %v", in, i, j, got.F64[i*3+j])
				}
			}
		}
	}
}

// TestExp32 compares exp32 with math.Exp rounded to float32 over its whole
// range, including subnormal results, overflow and NaN.
func TestExp32(t *testing.T) {
	var worst float64
	for x := float32(-110); x <= 90; x += 0.000917 {
		got, want := exp32(x), math.Exp(float64(x))
		if want32 := float32(want); want32 < 1.2e-38 || math.IsInf(float64(want32), 0) {
			// Subnormal, zero or infinite results: correctly rounded or one
			// subnormal step away.
			if d := math.Abs(float64(got) - float64(want32)); d > 1.5e-45 && !(math.IsInf(float64(got), 1) && math.IsInf(float64(want32), 1)) {
				t.Fatalf("exp32(%v) = %v, want %v", x, got, want32)
			}
			continue
		}
		worst = math.Max(worst, math.Abs(float64(got)-want)/want)
	}
	// Half an ulp of float32 is 6e-8 relative; one ulp at most is 1.2e-7.
	if worst > 1.2e-7 {
		t.Errorf("worst relative error %.3g", worst)
	}
	if !math.IsNaN(float64(exp32(float32(math.NaN())))) {
		t.Error("exp32(NaN) is not NaN")
	}
}
