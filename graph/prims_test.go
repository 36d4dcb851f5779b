package graph

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// awayFromZero maps values in [−1, 1] to ±[0.5, 1.5], for divisors.
func awayFromZero(v []float64) {
	for i, x := range v {
		v[i] = math.Copysign(0.5+math.Abs(x), x)
	}
}

// primCases are the generic primitives under the finite-difference and
// float32-vs-float64 checks of runOpCase, alone and composed.
func primCases() []opCase {
	x := func(shape ...int) pspec { return pspec{name: "x", shape: shape} }
	y := func(shape ...int) pspec { return pspec{name: "y", shape: shape} }
	cases := []opCase{
		{name: "Transpose", params: []pspec{x(3, 5)},
			build: func(b *Builder, p []*Node) *Node { return Transpose(p[0]) }},
		{name: "Scale", params: []pspec{x(3, 4)},
			build: func(b *Builder, p []*Node) *Node { return Scale(p[0], -1.75) }},
		{name: "Scale scalar", params: []pspec{x(3, 4)},
			build: func(b *Builder, p []*Node) *Node { return Scale(Sum(p[0]), 0.5) }},
		{name: "Sub", params: []pspec{x(3, 4), y(3, 4)},
			build: func(b *Builder, p []*Node) *Node { return Sub(p[0], p[1]) }},
		{name: "Div", params: []pspec{x(3, 4), {name: "y", shape: []int{3, 4}, init: awayFromZero}},
			build: func(b *Builder, p []*Node) *Node { return Div(p[0], p[1]) }},
		{name: "Mean", params: []pspec{x(3, 4)},
			build: func(b *Builder, p []*Node) *Node { return Mean(p[0]) }},
		{name: "SliceCols", params: []pspec{x(4, 7)},
			build: func(b *Builder, p []*Node) *Node { return SliceCols(p[0], 2, 5) }},
		{name: "AddCols", params: []pspec{y(4, 7), {name: "u", shape: []int{4, 3}}},
			build: func(b *Builder, p []*Node) *Node { return AddCols(p[0], p[1], 4) }},
		{name: "ScaleRows", params: []pspec{x(4, 3), {name: "m", shape: []int{4}}},
			build: func(b *Builder, p []*Node) *Node { return ScaleRows(p[0], p[1]) }},
		{name: "ScaleCols", params: []pspec{x(4, 3), {name: "g", shape: []int{3}}},
			build: func(b *Builder, p []*Node) *Node { return ScaleCols(p[0], p[1]) }},
		{name: "AddBias", params: []pspec{x(4, 3), {name: "b", shape: []int{3}}},
			build: func(b *Builder, p []*Node) *Node { return AddBias(p[0], p[1]) }},
		{name: "L2Norm axis 0", params: []pspec{x(5, 3)},
			build: func(b *Builder, p []*Node) *Node { return L2Norm(p[0], 0) }},
		{name: "L2Norm axis 1", params: []pspec{x(5, 3)},
			build: func(b *Builder, p []*Node) *Node { return L2Norm(p[0], 1) }},
		{name: "RowMask", params: []pspec{x(5, 3)},
			build: func(b *Builder, p []*Node) *Node {
				return ScaleRows(p[0], RowMask(constIDs(b, "rows", []int{1, -1, 1, 0, 1}), 1, -1, 2))
			}},
		{name: "Detach of a constant path", params: []pspec{x(3, 4)},
			build: func(b *Builder, p []*Node) *Node {
				return Mul(p[0], Detach(b.Constant("c", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 3, 4)))
			}},
		// CheckGradients holds detached values at the unperturbed run's, so the
		// check compares with the derivative of x ⊙ c, c = 2x held constant.
		{name: "Detach held by the check", params: []pspec{x(3, 4)},
			build: func(b *Builder, p []*Node) *Node { return Mul(p[0], Detach(Scale(p[0], 2))) }},
		{name: "Detach of a scalar", params: []pspec{x(3, 4)},
			build: func(b *Builder, p []*Node) *Node { return Scale(Mul(Sum(p[0]), Detach(Mean(p[0]))), 1) }},
		// Compositions: gradients summed by G.Grad's "+" nodes.
		{name: "low-rank update into columns", params: []pspec{x(5, 4), {name: "W", shape: []int{4, 9}}, {name: "A", shape: []int{4, 2}}, {name: "B", shape: []int{2, 3}}},
			build: func(b *Builder, p []*Node) *Node {
				y := Linear(p[0], p[1], nil)
				u := Scale(MatMul(MatMul(p[0], p[2], false, false), p[3], false, false), 1.5)
				return AddCols(AddCols(y, u, 0), SliceCols(u, 1, 3), 7)
			}},
		{name: "column-normalised weight", params: []pspec{x(5, 4), {name: "W", shape: []int{4, 3}}, {name: "m", shape: []int{3}}, {name: "b", shape: []int{3}}},
			build: func(b *Builder, p []*Node) *Node {
				g := Div(p[2], L2Norm(p[1], 0))
				return AddBias(ScaleCols(MatMul(p[0], p[1], false, false), g), p[3])
			}},
		{name: "Sub then Mean", params: []pspec{x(3, 4), y(3, 4)},
			build: func(b *Builder, p []*Node) *Node { return Mean(Mul(Sub(p[0], p[1]), Sub(p[0], p[1]))) }},
	}
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		a, bs := []int{3, 4}, []int{4, 5}
		if tr[0] {
			a = []int{4, 3}
		}
		if tr[1] {
			bs = []int{5, 4}
		}
		cases = append(cases, opCase{name: fmt.Sprintf("MatMul transA=%v transB=%v", tr[0], tr[1]),
			params: []pspec{{name: "a", shape: a}, {name: "b", shape: bs}},
			build:  func(b *Builder, p []*Node) *Node { return MatMul(p[0], p[1], tr[0], tr[1]) }})
	}
	return cases
}

func TestPrimitiveGradients(t *testing.T) {
	for _, c := range primCases() {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// TestPrimitivesMatchLoops checks every primitive's forward values against
// plain loops over the same numbers.
func TestPrimitivesMatchLoops(t *testing.T) {
	ps := makeParams([]pspec{{name: "a", shape: []int{3, 4}}, {name: "b", shape: []int{4, 5}}, {name: "v", shape: []int{4}}, {name: "r", shape: []int{3}}}, Float64, 4)
	a, bm, v, r := ps[0].Values(), ps[1].Values(), ps[2].Values(), ps[3].Values()
	at := func(m []float64, cols, i, j int) float64 { return m[i*cols+j] }
	type check struct {
		name  string
		build func(b *Builder, p []*Node) *Node
		want  func() []float64
	}
	loop := func(rows, cols int, f func(i, j int) float64) func() []float64 {
		return func() []float64 {
			out := make([]float64, rows*cols)
			for i := range rows {
				for j := range cols {
					out[i*cols+j] = f(i, j)
				}
			}
			return out
		}
	}
	mm := func(i, j int) float64 {
		s := 0.0
		for k := range 4 {
			s += at(a, 4, i, k) * at(bm, 5, k, j)
		}
		return s
	}
	checks := []check{
		{"MatMul", func(b *Builder, p []*Node) *Node { return MatMul(p[0], p[1], false, false) }, loop(3, 5, mm)},
		{"MatMul both transposed", func(b *Builder, p []*Node) *Node {
			return Transpose(MatMul(p[1], p[0], true, true)) // (Bᵀ·Aᵀ)ᵀ = A·B
		}, loop(3, 5, mm)},
		{"Transpose", func(b *Builder, p []*Node) *Node { return Transpose(p[0]) }, loop(4, 3, func(i, j int) float64 { return at(a, 4, j, i) })},
		{"Scale", func(b *Builder, p []*Node) *Node { return Scale(p[0], 3) }, loop(3, 4, func(i, j int) float64 { return 3 * at(a, 4, i, j) })},
		{"Sub", func(b *Builder, p []*Node) *Node { return Sub(p[0], Scale(p[0], 3)) }, loop(3, 4, func(i, j int) float64 { return -2 * at(a, 4, i, j) })},
		{"Div", func(b *Builder, p []*Node) *Node { return Div(p[2], Add(p[2], p[2])) }, loop(1, 4, func(i, j int) float64 { return 0.5 })},
		{"Mean", func(b *Builder, p []*Node) *Node { return Mean(p[0]) }, func() []float64 {
			s := 0.0
			for _, x := range a {
				s += x
			}
			return []float64{s / 12}
		}},
		{"SliceCols", func(b *Builder, p []*Node) *Node { return SliceCols(p[1], 1, 4) }, loop(4, 3, func(i, j int) float64 { return at(bm, 5, i, j+1) })},
		{"AddCols", func(b *Builder, p []*Node) *Node { return AddCols(p[1], SliceCols(p[1], 0, 2), 3) }, loop(4, 5, func(i, j int) float64 {
			x := at(bm, 5, i, j)
			if j >= 3 {
				x += at(bm, 5, i, j-3)
			}
			return x
		})},
		{"ScaleRows", func(b *Builder, p []*Node) *Node { return ScaleRows(p[0], p[3]) }, loop(3, 4, func(i, j int) float64 { return at(a, 4, i, j) * r[i] })},
		{"ScaleCols", func(b *Builder, p []*Node) *Node { return ScaleCols(p[0], p[2]) }, loop(3, 4, func(i, j int) float64 { return at(a, 4, i, j) * v[j] })},
		{"AddBias", func(b *Builder, p []*Node) *Node { return AddBias(p[0], p[2]) }, loop(3, 4, func(i, j int) float64 { return at(a, 4, i, j) + v[j] })},
		{"L2Norm axis 0", func(b *Builder, p []*Node) *Node { return L2Norm(p[0], 0) }, loop(1, 4, func(_, j int) float64 {
			return math.Sqrt(at(a, 4, 0, j)*at(a, 4, 0, j) + at(a, 4, 1, j)*at(a, 4, 1, j) + at(a, 4, 2, j)*at(a, 4, 2, j))
		})},
		{"L2Norm axis 1", func(b *Builder, p []*Node) *Node { return L2Norm(p[0], 1) }, loop(1, 3, func(_, i int) float64 {
			s := 0.0
			for j := range 4 {
				s += at(a, 4, i, j) * at(a, 4, i, j)
			}
			return math.Sqrt(s)
		})},
		{"RowMask", func(b *Builder, p []*Node) *Node { return RowMask(constIDs(b, "rows", []int{2, 0, 2, -1}), 2, -1, 3) }, func() []float64 { return []float64{1, 0, 1, 0} }},
		{"Detach", func(b *Builder, p []*Node) *Node { return Detach(p[0]) }, func() []float64 { return a }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			got := forward(t, Float64, ps, c.build)
			compareRel(t, c.name, got, c.want(), 1e-14)
		})
	}
}

// TestDetachStopsGradient: in x ⊙ Detach(y) + y the gradient reaching y is
// the direct path's alone, and a parameter reached only through Detach is
// not differentiated at all.
func TestDetachStopsGradient(t *testing.T) {
	ps := makeParams([]pspec{{name: "x", shape: []int{2, 3}}, {name: "y", shape: []int{2, 3}}, {name: "z", shape: []int{2, 3}}}, Float64, 8)
	x, y, z := ps[0], ps[1], ps[2]
	r := []float64{1, -2, 3, 0.5, 4, -1}
	b := NewBuilder(Float64, 1)
	out := Add(Add(Mul(b.Param(x), Detach(b.Param(y))), b.Param(y)), Detach(Scale(b.Param(z), 2)))
	prog, err := b.Compile(sumTimes(b, out, r), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	gy, ok := prog.Grad(y)
	if !ok {
		t.Fatal("y has no gradient")
	}
	compareRel(t, "dy", gy.Values(), r, 0)
	gx, _ := prog.Grad(x)
	want := make([]float64, len(r))
	for i := range r {
		want[i] = r[i] * y.Values()[i]
	}
	compareRel(t, "dx", gx.Values(), want, 0)
	if _, ok := prog.Grad(z); ok {
		t.Error("z, reached only through Detach, has a gradient")
	}
	if got := fmt.Sprint(prog.Trainable()); got != fmt.Sprint([]*Param{x, y}) {
		t.Errorf("trainable %s, want [x y]", got)
	}
}

// TestRowMaskRunError: an id outside [lo, hi) fails the run with an error
// naming the input, the position and the value, in every dtype.
func TestRowMaskRunError(t *testing.T) {
	for _, dt := range []DType{Float32, Float64} {
		b := NewBuilder(dt, 1)
		rows := b.IntInput("rows", 4)
		x := b.Input("x", 4, 2)
		out := ScaleRows(x, RowMask(rows, 0, -1, 2))
		prog, err := b.Compile(nil, out)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			ids  []int
			want string
		}{
			{[]int{0, 1, -1, 0}, ""},
			{[]int{0, 2, 1, 0}, "rows: value 2 at position 1 is outside [-1, 2)"},
			{[]int{0, 1, -2, 0}, "rows: value -2 at position 2"},
		} {
			if err := prog.SetInts(rows, c.ids); err != nil {
				t.Fatal(err)
			}
			err := prog.Forward()
			if c.want == "" {
				if err != nil {
					t.Errorf("%v %v: %v", dt, c.ids, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v %v: err %v, want %q", dt, c.ids, err, c.want)
			}
		}
	}
}

// TestMatMulAlpha: the product kernel scales by its alpha (what an
// executor sets when it folds a Scale into the gemm), forward and in the
// gradients built from it.
func TestMatMulAlpha(t *testing.T) {
	ps := makeParams([]pspec{{name: "a", shape: []int{3, 4}}, {name: "b", shape: []int{4, 2}}}, Float64, 2)
	plain := forward(t, Float64, ps, func(b *Builder, p []*Node) *Node { return MatMul(p[0], p[1], false, false) })
	got := forward(t, Float64, ps, func(b *Builder, p []*Node) *Node {
		y := MatMul(p[0], p[1], false, false)
		y.n.Op().(*fusedOp).k.(*mmKernel).alpha = -2
		return y
	})
	for i := range plain {
		plain[i] *= -2
	}
	compareRel(t, "α·A·B", got, plain, 1e-15)
	k := newMM("t", false, false)
	if k.alpha != 1 {
		t.Errorf("newMM alpha %v, want 1", k.alpha)
	}
}

// TestPrimitiveBuildErrors: bad shapes, arguments and node kinds are build
// errors naming the op, never panics.
func TestPrimitiveBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *Builder) *Node
		want  string
	}{
		{"MatMul inner sizes", func(b *Builder) *Node { return MatMul(b.Input("a", 2, 3), b.Input("b", 4, 5), false, false) }, "MatMul: shapes (2, 3) and (4, 5) do not chain"},
		{"MatMul transposed inner sizes", func(b *Builder) *Node { return MatMul(b.Input("a", 2, 3), b.Input("b", 2, 5), false, false) }, "do not chain"},
		{"MatMul 1-D", func(b *Builder) *Node { return MatMul(b.Input("a", 3), b.Input("b", 3, 5), false, false) }, "want 2-D operands"},
		{"MatMul of ints", func(b *Builder) *Node { return MatMul(b.IntInput("ids", 3, 3), b.Input("b", 3, 5), false, false) }, "MatMul: ids is an integer node"},
		{"MatMul nil", func(b *Builder) *Node { return MatMul(b.Input("a", 3, 3), nil, false, false) }, "MatMul: input 1 is nil"},
		{"Transpose 3-D", func(b *Builder) *Node { return Transpose(b.Input("a", 2, 3, 4)) }, "Transpose: want a 2-D input"},
		{"Scale NaN", func(b *Builder) *Node { return Scale(b.Input("a", 2), math.NaN()) }, "Scale of a: factor NaN is not finite"},
		{"Sub shapes", func(b *Builder) *Node { return Sub(b.Input("a", 2, 3), b.Input("b", 3, 2)) }, "Sub: shapes (2, 3) and (3, 2) differ"},
		{"Div shapes", func(b *Builder) *Node { return Div(b.Input("a", 2), b.Input("b", 3)) }, "Div: shapes (2) and (3) differ"},
		{"Mean of ints", func(b *Builder) *Node { return Mean(b.IntInput("ids", 3)) }, "Mean: ids is an integer node"},
		{"SliceCols range", func(b *Builder) *Node { return SliceCols(b.Input("a", 2, 3), 1, 4) }, "SliceCols: columns [1, 4) of an input (2, 3)"},
		{"SliceCols empty", func(b *Builder) *Node { return SliceCols(b.Input("a", 2, 3), 2, 2) }, "columns [2, 2)"},
		{"SliceCols negative", func(b *Builder) *Node { return SliceCols(b.Input("a", 2, 3), -1, 2) }, "columns [-1, 2)"},
		{"SliceCols 1-D", func(b *Builder) *Node { return SliceCols(b.Input("a", 3), 0, 2) }, "want [N, d]"},
		{"AddCols overflow", func(b *Builder) *Node { return AddCols(b.Input("y", 2, 5), b.Input("u", 2, 3), 3) }, "AddCols: u (2, 3) at column 3 does not fit in y (2, 5)"},
		{"AddCols rows", func(b *Builder) *Node { return AddCols(b.Input("y", 2, 5), b.Input("u", 3, 3), 0) }, "y (2, 5) and u (3, 3)"},
		{"AddCols negative", func(b *Builder) *Node { return AddCols(b.Input("y", 2, 5), b.Input("u", 2, 3), -1) }, "at column -1"},
		{"ScaleRows length", func(b *Builder) *Node { return ScaleRows(b.Input("x", 2, 5), b.Input("m", 5)) }, "ScaleRows: x (2, 5) and row factors (5)"},
		{"ScaleCols length", func(b *Builder) *Node { return ScaleCols(b.Input("x", 2, 5), b.Input("g", 2)) }, "ScaleCols: x (2, 5) and vector (2)"},
		{"AddBias length", func(b *Builder) *Node { return AddBias(b.Input("x", 2, 5), b.Input("b", 4)) }, "AddBias: x (2, 5) and vector (4)"},
		{"RowMask of floats", func(b *Builder) *Node { return RowMask(b.Input("x", 3), 0, 0, 2) }, "RowMask: x is not an integer node"},
		{"RowMask empty range", func(b *Builder) *Node { return RowMask(b.IntInput("r", 3), 0, 2, 2) }, "empty range [2, 2)"},
		{"RowMask 2-D", func(b *Builder) *Node { return RowMask(b.IntInput("r", 3, 2), 0, 0, 2) }, "ids shape (3, 2), want [N]"},
		{"L2Norm axis", func(b *Builder) *Node { return L2Norm(b.Input("x", 3, 2), 2) }, "L2Norm of x: axis 2, want 0 or 1"},
		{"L2Norm 1-D", func(b *Builder) *Node { return L2Norm(b.Input("x", 3), 0) }, "want [R, C]"},
		{"Detach of ints", func(b *Builder) *Node { return Detach(b.IntInput("ids", 3)) }, "Detach: ids is an integer node"},
		{"failed input", func(b *Builder) *Node { return Scale(SliceCols(b.Input("a", 2, 3), 0, 9), 2) }, "SliceCols"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			var n *Node
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				n = c.build(b)
			}()
			if n.Err() == nil {
				t.Fatal("built without error")
			}
			if !strings.Contains(n.Err().Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", n.Err(), c.want)
			}
			if _, err := b.Compile(nil, n); err == nil {
				t.Error("Compile after a failed op succeeded")
			}
		})
	}
}
