package graph

import (
	"strings"
	"testing"
)

// linearProgram builds loss = Σ (x·W + b) ⊙ R for a 4×3 x and 3×2 W.
func linearProgram(t *testing.T, wTrainable, xTrainable bool) (*Program, *Builder, *Param, *Param, *Param, *Node) {
	t.Helper()
	ps := makeParams([]pspec{{name: "x", shape: []int{4, 3}}, {name: "W", shape: []int{3, 2}}, {name: "b", shape: []int{2}}}, Float64, 2)
	x, w, bias := ps[0], ps[1], ps[2]
	w.Trainable, x.Trainable = wTrainable, xTrainable
	b := NewBuilder(Float64, 1)
	y := Linear(b.Param(x), b.Param(w), b.Param(bias))
	p, err := b.Compile(lossFor(b, y, 4), y)
	if err != nil {
		t.Fatal(err)
	}
	return p, b, x, w, bias, y
}

func TestProgramSeesInPlaceUpdates(t *testing.T) {
	p, _, _, w, _, y := linearProgram(t, true, true)
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	out, _ := p.Output(y)
	before := out.Values()
	w.Float64s()[0] += 1 // an optimizer step, in place
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	out, _ = p.Output(y)
	after := out.Values()
	x := p.Trainable()[0].Float64s() // x is the first trainable param
	for i := 0; i < 4; i++ {
		if got, want := after[i*2]-before[i*2], x[i*3]; abs(got-want) > 1e-12 {
			t.Fatalf("row %d: output moved by %v, want %v", i, got, want)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestFrozenParamsGetNoGradientAndNoWork(t *testing.T) {
	p, b, x, w, bias, _ := linearProgram(t, false, true)
	if got := p.Trainable(); len(got) != 2 || got[0] != x || got[1] != bias {
		t.Fatalf("trainable = %v, want [x b]", got)
	}
	if _, ok := p.Grad(w); ok {
		t.Fatal("frozen W has a gradient")
	}
	wBefore := w.Values()
	for i := 0; i < 3; i++ {
		if err := p.Run(); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range w.Values() {
		if v != wBefore[i] {
			t.Fatal("frozen W changed during runs")
		}
	}
	// The dW kernel exists in the graph (Linear's SymDiff builds it) but the
	// program never executes it.
	var dwRuns, dxRuns int64 = -1, -1
	for _, n := range b.g.AllNodes() {
		if op, ok := n.Op().(*fusedOp); ok {
			switch op.k.String() {
			case "Linear.dW":
				dwRuns = op.runs
			case "Linear.dx":
				dxRuns = op.runs
			}
		}
	}
	if dwRuns != 0 {
		t.Errorf("dW kernel ran %d times (-1: not built), want 0", dwRuns)
	}
	if dxRuns != 3 {
		t.Errorf("dx kernel ran %d times, want 3", dxRuns)
	}
}

func TestGradientsDoNotAccumulateAcrossRuns(t *testing.T) {
	p, _, _, w, _, _ := linearProgram(t, true, true)
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	g1, _ := p.Grad(w)
	first := g1.Values()
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	g2, _ := p.Grad(w)
	compareRel(t, "second run's gradient", g2.Values(), first, 0)
}

// TestIssue569StaleIntermediates pins gorgonia #569: the value of an
// intermediate node read after a forward+backward run must be the value the
// forward pass computed, not a buffer reused later in the run.
func TestIssue569StaleIntermediates(t *testing.T) {
	ps := makeParams([]pspec{{name: "x", shape: []int{3, 3}}, {name: "W1", shape: []int{3, 3}}, {name: "W2", shape: []int{3, 3}}}, Float64, 3)
	b := NewBuilder(Float64, 1)
	x, w1, w2 := b.Param(ps[0]), b.Param(ps[1]), b.Param(ps[2])
	h := Linear(x, w1, nil)
	h2 := Add(h, h)
	y := Linear(h2, w2, nil)
	prog, err := b.Compile(lossFor(b, Mul(y, y), 1), h, h2)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	want := forward(t, Float64, ps[:2], func(b *Builder, p []*Node) *Node { return Linear(p[0], p[1], nil) })
	got, _ := prog.Output(h)
	compareRel(t, "h", got.Values(), want, 0)
	got2, _ := prog.Output(h2)
	for i, v := range got2.Values() {
		if v != 2*want[i] {
			t.Fatalf("h2[%d] = %v, want %v", i, v, 2*want[i])
		}
	}
}

func TestProgramInputErrors(t *testing.T) {
	b := NewBuilder(Float32, 1)
	x := b.Input("x", 2, 3)
	ids := b.IntInput("ids", 4)
	w := b.Param(NewParam("w", Float32, 3, 3))
	prog, err := b.Compile(nil, Linear(x, w, nil))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   *Node
		data interface{}
		want string
	}{
		{"short", x, []float32{1, 2}, "2 values"},
		{"ints into floats", x, []int{1, 2, 3, 4, 5, 6}, "float input"},
		{"floats into ints", ids, []float32{1, 2, 3, 4}, "int input"},
		{"unsupported", x, "abc", "unsupported"},
		{"param", w, []float32{1}, "not an input"},
	}
	for _, c := range cases {
		err := prog.SetInput(c.in, c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if err := prog.SetInts(ids, []int{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
}

func TestCompileErrors(t *testing.T) {
	b := NewBuilder(Float64, 1)
	x := b.Input("x", 2, 2)
	if _, err := b.Compile(x); err == nil || !strings.Contains(err.Error(), "scalar") {
		t.Errorf("non-scalar loss: err = %v", err)
	}
	if _, err := b.Compile(nil); err == nil {
		t.Error("empty compile succeeded")
	}
	b32 := NewBuilder(Float32, 1)
	n := b32.Param(NewParam("w64", Float64, 2))
	if n.Err() == nil || !strings.Contains(n.Err().Error(), "w64") {
		t.Errorf("dtype mismatch error = %v, want it to name the parameter", n.Err())
	}
}
