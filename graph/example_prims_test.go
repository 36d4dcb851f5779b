package graph_test

// Examples of the generic primitives that layers outside this package
// compose. Each prints numbers that can be checked by hand.

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/safetensors"
	"gonum.org/v1/gonum/mat"
)

// MatMul multiplies with optional transposes; gradients are products too.
func ExampleMatMul() {
	b := graph.NewBuilder(graph.Float64, 1)
	a := b.Constant("a", []float64{1, 2, 3, 4}, 2, 2) // [[1 2] [3 4]]
	c := b.Constant("c", []float64{1, 0, 1, 1}, 2, 2) // [[1 0] [1 1]]
	fmt.Println(guideForward(b,
		graph.MatMul(a, c, false, false), // a·c
		graph.MatMul(a, c, true, false),  // aᵀ·c
		graph.MatMul(a, c, false, true))) // a·cᵀ
	// Output: [[3 2 7 4] [4 3 6 4] [1 3 3 7]]
}

func ExampleTranspose() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3, 4, 5, 6}, 2, 3)
	fmt.Println(guideForward(b, graph.Transpose(x)))
	// Output: [[1 4 2 5 3 6]]
}

func ExampleScale() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, -2, 4}, 3)
	fmt.Println(guideForward(b, graph.Scale(x, 0.5)))
	// Output: [[0.5 -1 2]]
}

func ExampleSub() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{5, 7}, 2)
	y := b.Constant("y", []float64{1, 10}, 2)
	fmt.Println(guideForward(b, graph.Sub(x, y)))
	// Output: [[4 -3]]
}

// Div's gradient with respect to the divisor is −dy·x/y².
func ExampleDiv() {
	x := guideParam("x", []float64{6, 1}, 2)
	y := guideParam("y", []float64{3, 4}, 2)
	b := graph.NewBuilder(graph.Float64, 1)
	q := graph.Div(b.Param(x), b.Param(y))
	prog, err := b.Compile(graph.Sum(q), q)
	if err != nil {
		log.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		log.Fatal(err)
	}
	out, _ := prog.Output(q)
	gy, _ := prog.Grad(y)
	fmt.Println(out.F64, gy.F64)
	// Output: [2 0.25] [-0.6666666666666666 -0.0625]
}

func ExampleMean() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3, 6}, 2, 2)
	fmt.Println(guideForward(b, graph.Mean(x)))
	// Output: [[3]]
}

// SliceCols takes a block of columns, such as the v part of a fused q|k|v
// projection.
func ExampleSliceCols() {
	b := graph.NewBuilder(graph.Float64, 1)
	qkv := b.Constant("qkv", []float64{1, 2, 3, 4, 5, 6}, 2, 3) // q | k | v, one column each
	fmt.Println(guideForward(b, graph.SliceCols(qkv, 2, 3)))
	// Output: [[3 6]]
}

// AddCols adds an update into a block of columns and leaves the others.
func ExampleAddCols() {
	b := graph.NewBuilder(graph.Float64, 1)
	y := b.Constant("y", []float64{1, 1, 1, 2, 2, 2}, 2, 3)
	u := b.Constant("u", []float64{10, 20}, 2, 1)
	fmt.Println(guideForward(b, graph.AddCols(y, u, 2)))
	// Output: [[1 1 11 2 2 22]]
}

func ExampleScaleRows() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3, 4}, 2, 2)
	m := b.Constant("m", []float64{10, 0}, 2)
	fmt.Println(guideForward(b, graph.ScaleRows(x, m)))
	// Output: [[10 20 0 0]]
}

func ExampleScaleCols() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3, 4}, 2, 2)
	g := b.Constant("g", []float64{10, -1}, 2)
	fmt.Println(guideForward(b, graph.ScaleCols(x, g)))
	// Output: [[10 -2 30 -4]]
}

func ExampleAddBias() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3, 4}, 2, 2)
	bias := b.Constant("b", []float64{0.5, -1}, 2)
	fmt.Println(guideForward(b, graph.AddBias(x, bias)))
	// Output: [[1.5 1 3.5 3]]
}

// RowMask picks the rows routed to one group; a value outside the declared
// range is a run error.
func ExampleRowMask() {
	b := graph.NewBuilder(graph.Float64, 1)
	rows := b.IntConstant("rows", []int{1, -1, 0, 1}, 4)
	fmt.Println(guideForward(b, graph.RowMask(rows, 1, -1, 2)))

	b = graph.NewBuilder(graph.Float64, 1)
	bad := b.IntConstant("rows", []int{0, 5}, 2)
	prog, err := b.Compile(nil, graph.RowMask(bad, 0, -1, 2))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(prog.Forward())
	// Output:
	// [[1 0 0 1]]
	// graph: run: graph: RowMask(=0): rows: value 5 at position 1 is outside [-1, 2)
}

// L2Norm of a weight [in, out] over axis 0 gives one norm per output
// column.
func ExampleL2Norm() {
	b := graph.NewBuilder(graph.Float64, 1)
	w := b.Constant("w", []float64{3, 0, 4, 1}, 2, 2) // columns (3, 4) and (0, 1)
	fmt.Println(guideForward(b, graph.L2Norm(w, 0), graph.L2Norm(w, 1)))
	// Output: [[5 1] [3 4.123105625617661]]
}

// Detach passes the value on but stops the gradient: here y gets the
// gradient of its direct use only.
func ExampleDetach() {
	x := guideParam("x", []float64{2}, 1)
	y := guideParam("y", []float64{3}, 1)
	b := graph.NewBuilder(graph.Float64, 1)
	xn, yn := b.Param(x), b.Param(y)
	loss := graph.Sum(graph.Add(graph.Mul(xn, graph.Detach(yn)), yn)) // x·y + y, y·x not differentiated by y
	prog, err := b.Compile(loss)
	if err != nil {
		log.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		log.Fatal(err)
	}
	gx, _ := prog.Grad(x)
	gy, _ := prog.Grad(y)
	fmt.Println(prog.Loss(), gx.F64, gy.F64)
	// Output: 9 [3] [1]
}

// OpRuns shows what a run skips: W is frozen, so Linear's dW op, built by
// symbolic differentiation, never runs.
func ExampleBuilder_OpRuns() {
	w := guideParam("W", []float64{1, 2}, 1, 2)
	w.Trainable = false
	x := guideParam("x", []float64{3}, 1, 1)
	b := graph.NewBuilder(graph.Float64, 1)
	y := graph.Linear(b.Param(x), b.Param(w), nil)
	prog, err := b.Compile(graph.Sum(y))
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		if err := prog.Run(); err != nil {
			log.Fatal(err)
		}
	}
	runs := b.OpRuns()
	fmt.Println(runs["Linear"], runs["Linear.dx"], runs["Linear.dW"])
	// Output: 2 2 0
}

// A layer whose structure depends on some state records the state's
// Generation while it builds; once the state changes, programs built
// before refuse to run instead of computing the old structure.
func ExampleGeneration() {
	state := graph.NewGeneration("adapter state")
	b := graph.NewBuilder(graph.Float64, 1)
	b.DependOn(state) // what a layer does when it reads the state
	prog, err := b.Compile(nil, graph.Scale(b.Constant("x", []float64{1}, 1), 2))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(prog.Forward())
	state.Advance("Merge")
	err = prog.Forward()
	fmt.Println(errors.Is(err, graph.ErrStale))
	fmt.Println(err)
	// Output:
	// <nil>
	// true
	// graph: run: graph: stale program: the adapter state changed (Merge) after the graph was built; build and compile a new program
}

// Dot describes the graph for Graphviz (dot -Tsvg draws it): one box per
// node, edges from inputs to the ops that read them.
func ExampleBuilder_Dot() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Input("x", 2, 3)
	w := b.Param(guideParam("W", []float64{1, 2, 3, 4, 5, 6}, 3, 2))
	graph.Scale(graph.MatMul(x, w, false, false), 2)
	dot := b.Dot()
	fmt.Println(strings.SplitN(dot, "\n", 2)[0])
	fmt.Println(strings.Contains(dot, "MatMul"), strings.Contains(dot, "Scale(2)"))
	// Output:
	// digraph fullGraph {
	// true true
}

// ParamMatrix copies a 2-D parameter into a gonum matrix for analysis.
func ExampleParamMatrix() {
	p, _ := graph.NewParamFrom("A", []float32{1, 2, 3, 4, 5, 6}, 3, 2)
	a, err := graph.ParamMatrix(p)
	fmt.Println(err, a.At(2, 1), mat.Formatted(a.T(), mat.Squeeze()))
	// Output: <nil> 6 ⎡1  3  5⎤
	// ⎣2  4  6⎦
}

// Save a parameter as safetensors, read the file back and load it into
// another parameter; a shape mismatch is an error.
func ExampleLoadParam() {
	w, _ := graph.NewParamFrom("h.0.mlp.c_fc.weight", []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, []safetensors.Tensor{graph.ParamTensor(w.Name, w)}, nil); err != nil {
		log.Fatal(err)
	}
	f, err := safetensors.Read(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	t, _ := f.Tensor(w.Name)
	fmt.Println(t.DType, t.Shape)

	loaded := graph.NewParam(w.Name, graph.Float64, 2, 3) // F32 is converted
	fmt.Println(graph.LoadParam(f, w.Name, loaded), loaded.Float64s())

	wrong := graph.NewParam(w.Name, graph.Float32, 3, 2)
	fmt.Println(graph.LoadParam(f, w.Name, wrong))
	// Output:
	// F32 [2 3]
	// <nil> [1 2 3 4 5 6]
	// safetensors: tensor "h.0.mlp.c_fc.weight": shape [2 3], want [3 2]
}
