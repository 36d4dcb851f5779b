package graph

import (
	"strconv"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// constIDs adds an integer input holding ids, for tests whose graphs are
// built by runOpCase (which feeds no inputs).
func constIDs(b *Builder, name string, ids []int) *Node {
	n := b.IntInput(name, len(ids))
	if n.Err() == nil {
		copy(n.n.Value().(*tensor.Dense).Data().([]int), ids)
	}
	return n
}

// sumTimes returns Σ out ⊙ r for a fixed r of out's shape, so the upstream
// gradient of out is exactly r.
func sumTimes(b *Builder, out *Node, r []float64) *Node {
	return Sum(Mul(out, b.Constant("r", r, out.Shape()...)))
}

func TestEmbeddingGradients(t *testing.T) {
	cases := []opCase{
		{name: "repeated ids", params: []pspec{{name: "table", shape: []int{5, 4}}},
			build: func(b *Builder, p []*Node) *Node { return Embedding(p[0], constIDs(b, "ids", []int{3, 1, 3, 0})) }},
		{name: "tied with LinearT", params: []pspec{{name: "table", shape: []int{5, 3}}, {name: "x", shape: []int{4, 3}}},
			build: func(b *Builder, p []*Node) *Node {
				e := Embedding(p[0], constIDs(b, "ids", []int{2, 2, 4, 0}))
				return LinearT(Add(e, p[1]), p[0], nil)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// TestEmbeddingScatterAdd pins the table gradient for ids [3,1,3]: row 3
// gets the sum of rows 0 and 2 of dy, row 1 gets row 1, the rest zero.
// (Gorgonia's ByIndices on the innermost axis put these on wrong rows.)
func TestEmbeddingScatterAdd(t *testing.T) {
	for _, dt := range []DType{Float64, Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			table := NewParam("wte", dt, 6, 2)
			_ = table.SetValues([]float64{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5})
			b := NewBuilder(dt, 1)
			ids := b.IntInput("ids", 3)
			out := Embedding(b.Param(table), ids)
			prog, err := b.Compile(sumTimes(b, out, []float64{10, 1, 20, 2, 30, 3}), out)
			if err != nil {
				t.Fatal(err)
			}
			if err := prog.SetInts(ids, []int{3, 1, 3}); err != nil {
				t.Fatal(err)
			}
			// Run twice: the second run must not see the first one's gradient.
			for run := 0; run < 2; run++ {
				if err := prog.Run(); err != nil {
					t.Fatal(err)
				}
			}
			o, _ := prog.Output(out)
			wantOut := []float64{3, 3.5, 1, 1.5, 3, 3.5}
			g, ok := prog.Grad(table)
			if !ok {
				t.Fatal("no table gradient")
			}
			wantGrad := []float64{0, 0, 20, 2, 0, 0, 40, 4, 0, 0, 0, 0}
			for i, w := range wantOut {
				if o.At(i) != w {
					t.Errorf("out = %v, want %v", o.Values(), wantOut)
					break
				}
			}
			for i, w := range wantGrad {
				if g.At(i) != w {
					t.Errorf("dtable = %v, want %v", g.Values(), wantGrad)
					break
				}
			}
		})
	}
}

func TestEmbeddingMatchesReference(t *testing.T) {
	const v, d = 7, 5
	ps := makeParams([]pspec{{name: "table", shape: []int{v, d}}}, Float64, 4)
	ids := []int{6, 0, 2, 2, 5, 1, 6, 3}
	got := forward(t, Float64, ps, func(b *Builder, p []*Node) *Node { return Embedding(p[0], constIDs(b, "ids", ids)) })
	tab := ps[0].Float64s()
	for i, id := range ids {
		for j := 0; j < d; j++ {
			if got[i*d+j] != tab[id*d+j] {
				t.Fatalf("out[%d,%d] = %v, want table[%d,%d] = %v", i, j, got[i*d+j], id, j, tab[id*d+j])
			}
		}
	}
}

// TestEmbeddingBadID checks that an out-of-range id is a run error naming
// the op and the id, in Run and in Forward, and that the program works
// again once the ids are fixed.
func TestEmbeddingBadID(t *testing.T) {
	table := NewParam("wte", Float64, 5, 2)
	b := NewBuilder(Float64, 1)
	ids := b.IntInput("ids", 3)
	out := Embedding(b.Param(table), ids)
	prog, err := b.Compile(Sum(out), out)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []int{5, -1, 1 << 40} {
		if err := prog.SetInts(ids, []int{0, bad, 1}); err != nil {
			t.Fatal(err)
		}
		for name, run := range map[string]func() error{"Run": prog.Run, "Forward": prog.Forward} {
			err := run()
			if err == nil {
				t.Fatalf("%s with id %d: no error", name, bad)
			}
			msg := err.Error()
			if !strings.Contains(msg, "Embedding") || !strings.Contains(msg, "ids: id "+strconv.Itoa(bad)+" ") {
				t.Errorf("%s with id %d: error %q does not name the op and the id", name, bad, msg)
			}
		}
	}
	if err := prog.SetInts(ids, []int{0, 4, 1}); err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatalf("run after fixing the ids: %v", err)
	}
}

func TestEmbeddingBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *Builder) *Node
	}{
		{"float ids", func(b *Builder) *Node {
			return Embedding(b.Param(NewParam("t", Float64, 4, 2)), b.Input("ids", 3))
		}},
		{"int table", func(b *Builder) *Node { return Embedding(b.IntInput("t", 4, 2), b.IntInput("ids", 3)) }},
		{"2-D ids", func(b *Builder) *Node {
			return Embedding(b.Param(NewParam("t", Float64, 4, 2)), b.IntInput("ids", 3, 2))
		}},
		{"1-D table", func(b *Builder) *Node {
			return Embedding(b.Param(NewParam("t", Float64, 4)), b.IntInput("ids", 3))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			n := c.build(b)
			if n.Err() == nil || b.Err() == nil {
				t.Fatal("built without error")
			}
			if !strings.Contains(n.Err().Error(), "Embedding") {
				t.Errorf("error %q does not name the op", n.Err())
			}
		})
	}
}

// TestEmbeddingFrozenTable checks that ids carry no gradient and a frozen
// table gets none either.
func TestEmbeddingFrozenTable(t *testing.T) {
	table := NewParam("wte", Float64, 4, 3)
	table.Trainable = false
	x := NewParam("x", Float64, 2, 3)
	b := NewBuilder(Float64, 1)
	out := Add(Embedding(b.Param(table), constIDs(b, "ids", []int{1, 3})), b.Param(x))
	prog, err := b.Compile(Sum(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	if _, ok := prog.Grad(table); ok {
		t.Error("frozen table has a gradient")
	}
	if _, ok := prog.Grad(x); !ok {
		t.Error("no gradient for x")
	}
}

func TestEmbeddingKernelsDoNotAllocate(t *testing.T) {
	const v, d, n = 9, 4, 6
	table := tval{f32: make([]float32, v*d), shape: tensor.Shape{v, d}}
	ids := tval{ints: []int{1, 8, 1, 0, 4, 2}, shape: tensor.Shape{n}}
	out := tval{f32: make([]float32, n*d), shape: tensor.Shape{n, d}}
	grad := tval{f32: make([]float32, v*d), shape: tensor.Shape{v, d}}
	fwd, bwd := &embedKernel{ids: "ids"}, &embedGradKernel{v: v, ids: "ids"}
	fwdIn, bwdIn := []tval{table, ids}, []tval{out, ids}
	allocs := testing.AllocsPerRun(10, func() {
		if err := fwd.forward(out, fwdIn); err != nil {
			t.Fatal(err)
		}
		if err := bwd.forward(grad, bwdIn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per forward+backward", allocs)
	}
}

// TestEmbeddingTiedRepeatRuns runs a tied table (Embedding and LinearT)
// three times: Gorgonia sums the two gradients, possibly in the Embedding
// gradient's own buffer, and later runs must still give the same result.
func TestEmbeddingTiedRepeatRuns(t *testing.T) {
	ps := makeParams([]pspec{{name: "table", shape: []int{6, 3}}}, Float32, 2)
	b := NewBuilder(Float32, 1)
	tab := b.Param(ps[0])
	logits := LinearT(Embedding(tab, constIDs(b, "ids", []int{5, 0, 5, 2})), tab, nil)
	r := make([]float64, 4*6)
	for i := range r {
		r[i] = float64(i%5) - 2
	}
	prog, err := b.Compile(sumTimes(b, logits, r))
	if err != nil {
		t.Fatal(err)
	}
	var first []float64
	for run := 0; run < 3; run++ {
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		g, ok := prog.Grad(ps[0])
		if !ok {
			t.Fatal("no gradient")
		}
		if run == 0 {
			first = g.Values()
			continue
		}
		compareRel(t, "gradient of a repeated run", g.Values(), first, 0)
	}
}
