package graph

import (
	"fmt"
	"math"
	"testing"
)

// execVariants are the executor's options under test: all passes on, each
// off alone, and all off (the plain executor every value has storage of its
// own in).
var execVariants = []struct {
	name  string
	opt   ExecOptions
	exact bool // the same values bit for bit as with every pass on
}{
	{"no-reuse", ExecOptions{NoReuse: true}, true},
	{"no-inplace", ExecOptions{NoInPlace: true}, true},
	{"no-fold", ExecOptions{NoFold: true}, false},
	{"no-accumulate", ExecOptions{NoAccumulate: true}, false},
	{"all-off", ExecOptions{NoReuse: true, NoFold: true, NoAccumulate: true, NoInPlace: true}, false},
}

// runWith builds c in float64, runs it twice with opt (the second run must
// not see storage the first left behind) and returns the output and the
// gradients.
func runWith(t *testing.T, c opCase, dt DType, opt ExecOptions) [][]float64 {
	t.Helper()
	ps := makeParams(c.params, dt, 1)
	b := NewBuilder(dt, 5)
	nodes := make([]*Node, len(ps))
	for i, p := range ps {
		nodes[i] = b.Param(p)
	}
	out := c.build(b, nodes)
	prog, err := b.Compile(lossFor(b, out, 3), out)
	if err != nil {
		t.Fatal(err)
	}
	prog.SetExecOptions(opt)
	var res [][]float64
	for run := 0; run < 2; run++ {
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		o, err := prog.Output(out)
		if err != nil {
			t.Fatal(err)
		}
		res = [][]float64{o.Values(), {prog.Loss()}}
		for _, p := range ps {
			g, ok := prog.Grad(p)
			if !ok {
				t.Fatalf("no gradient for %s", p.Name)
			}
			res = append(res, g.Values())
		}
	}
	return res
}

// TestExecOptionsAgree checks that every executor pass leaves the values
// of every op case unchanged: exactly for storage reuse and in-place ops,
// up to rounding for folding and accumulation (which change the order of
// operations), in float64 and float32.
func TestExecOptionsAgree(t *testing.T) {
	var cases []opCase
	cases = append(cases, primCases()...)
	cases = append(cases, linearCases()...)
	// Sums of scalars (and Grad's sum of a scalar's two gradients).
	cases = append(cases, opCase{name: "sum of scalars", params: []pspec{{name: "x", shape: []int{3, 4}}},
		build: func(b *Builder, p []*Node) *Node {
			s := Sum(p[0])
			return Add(s, Scale(s, 2))
		}})
	// The cross-entropy gradient overwrites the logits it recomputes the
	// softmax from, with and without a mask and smoothing.
	for _, masked := range []bool{false, true} {
		cases = append(cases, opCase{name: fmt.Sprintf("cross-entropy of a product, mask %v", masked),
			params: []pspec{{name: "x", shape: []int{6, 4}}, {name: "W", shape: []int{4, 11}}},
			build: func(b *Builder, p []*Node) *Node {
				var mask *Node
				if masked {
					mask = b.Constant("mask", []float64{1, 0, 1, 1, 0, 1}, 6)
				}
				logits := Add(MatMul(p[0], p[1], false, false), MatMul(p[0], p[1], false, false))
				return SoftmaxCrossEntropy(logits, b.IntConstant("t", []int{3, 10, 0, 7, 7, 1}, 6), mask, 0.1)
			}})
	}
	// Products large enough to be split across goroutines (with OpenBLAS),
	// reading column slices with strides and accumulating into columns.
	cases = append(cases, opCase{name: "large low-rank update of two column blocks",
		params: []pspec{{name: "x", shape: []int{256, 64}}, {name: "W", shape: []int{64, 192}}, {name: "b", shape: []int{192}},
			{name: "A", shape: []int{64, 8}}, {name: "B", shape: []int{8, 64}}, {name: "A2", shape: []int{64, 8}}, {name: "B2", shape: []int{8, 64}}},
		build: func(b *Builder, p []*Node) *Node {
			y := Linear(p[0], p[1], p[2])
			y = AddCols(y, Scale(MatMul(MatMul(p[0], p[3], false, false), p[4], false, false), 2), 0)
			y = AddCols(y, Scale(MatMul(MatMul(p[0], p[5], false, false), p[6], false, false), 2), 128)
			return Add(MatMul(y, p[1], false, true), p[0])
		}})
	for _, c := range cases {
		for _, dt := range []DType{Float64, Float32} {
			ref := runWith(t, c, dt, ExecOptions{})
			for _, v := range execVariants {
				got := runWith(t, c, dt, v.opt)
				for i := range ref {
					// Exact variants must agree bit for bit; the others
					// up to rounding, relative to the largest magnitude.
					var scale float64 = 1
					for _, w := range ref[i] {
						scale = math.Max(scale, math.Abs(w))
					}
					tol := 0.0
					if !v.exact {
						tol = 1e-12
						if dt == Float32 {
							tol = 1e-5
						}
					}
					for j := range ref[i] {
						a, w := got[i][j], ref[i][j]
						if math.Abs(a-w) > tol*scale || math.IsNaN(a) != math.IsNaN(w) {
							t.Errorf("%s %v %s: value %d of result %d: %v, with every pass %v", c.name, dt, v.name, j, i, a, w)
							break
						}
					}
				}
			}
		}
	}
}

// TestExecReusesStorage checks that a long chain of ops holds a few
// buffers, not one per node, and that what a program exposes survives:
// the gradients of the last Run stay readable after a Forward, which
// shares the storage.
func TestExecReusesStorage(t *testing.T) {
	ps := makeParams([]pspec{{name: "x", shape: []int{4, 6}}}, Float64, 1)
	b := NewBuilder(Float64, 1)
	h := b.Param(ps[0])
	for range 20 {
		h = GELU(Scale(h, 0.9))
	}
	out := Sub(h, b.Param(ps[0]))
	prog, err := b.Compile(Mean(Mul(out, out)), out)
	if err != nil {
		t.Fatal(err)
	}
	arenaBuffers := func() int {
		n := 0
		for _, l := range prog.arena.bufs {
			n += len(l)
		}
		return n
	}
	// Forward alone: 41 values of one size in a chain.
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	if n := arenaBuffers(); n > 3 {
		t.Errorf("forward pass: %d buffers in the arena, want at most 3", n)
	}
	fwdOut, _ := prog.Output(out)
	wantOut := fwdOut.Values()
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	g, _ := prog.Grad(ps[0])
	want := g.Values()
	o, _ := prog.Output(out)
	for i, v := range o.Values() {
		if v != wantOut[i] {
			t.Fatalf("output %d: Run gives %v, Forward gave %v", i, v, wantOut[i])
		}
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	g, ok := prog.Grad(ps[0])
	if !ok {
		t.Fatal("no gradient after Forward")
	}
	for i, v := range g.Values() {
		if v != want[i] {
			t.Fatalf("gradient %d changed by Forward: %v, was %v", i, v, want[i])
		}
	}
	reused := arenaBuffers()
	prog.SetExecOptions(ExecOptions{NoReuse: true})
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	if n := arenaBuffers(); n <= reused {
		t.Errorf("without reuse %d buffers in the arena, with reuse %d", n, reused)
	}
}

// TestOrderOnlyInputsDie: a gradient kernel's ordering input (GELU.dx takes
// the GELU's output only to run after it) does not keep that value alive:
// the first GELU's output dies when the product that reads it has run, so
// the second GELU's output, of the same size, takes its buffer.
func TestOrderOnlyInputsDie(t *testing.T) {
	b := NewBuilder(Float32, 1)
	x := NewParam("x", Float32, 4, 8)
	w1, w2 := NewParam("w1", Float32, 8, 8), NewParam("w2", Float32, 8, 8)
	w1.Trainable, w2.Trainable = false, false
	g1 := GELU(Linear(b.Param(x), b.Param(w1), nil))
	g2 := GELU(Linear(g1, b.Param(w2), nil))
	prog, err := b.Compile(Sum(g2))
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	buf := func(n *Node) *float32 {
		for _, st := range prog.full.steps {
			if st.n == n.n {
				return &st.out.f32[0]
			}
		}
		t.Fatalf("no step for %s", n.Name())
		return nil
	}
	if buf(g1) != buf(g2) {
		t.Fatal("the first GELU's output is still alive when the second one is computed")
	}
}
