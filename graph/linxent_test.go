package graph

import (
	"strings"
	"testing"
)

// lxCase is LinearCrossEntropy on parameters h [n, d] and w [v, d], with
// blocks of rows vocabulary rows.
func lxCase(name string, n, d, v, rows int, ids []int, mask []float64, eps float64) opCase {
	return opCase{name: name,
		params: []pspec{{name: "h", shape: []int{n, d}, scale: 1.5}, {name: "w", shape: []int{v, d}}},
		build: func(b *Builder, p []*Node) *Node {
			b.scratch().headRows = rows
			var m *Node
			if mask != nil {
				m = b.Constant("mask", mask, n)
			}
			return LinearCrossEntropy(p[0], p[1], intConst(b, "targets", ids), m, eps)
		}}
}

// TestLinearCrossEntropyGradients checks dh and dW against central
// differences in float64, and float32 against float64, with blocks that do
// and do not divide the vocabulary.
func TestLinearCrossEntropyGradients(t *testing.T) {
	ids := []int{0, 6, 2, 2, 1}
	for _, c := range []opCase{
		lxCase("one block", 5, 4, 7, 0, ids, nil, 0),
		lxCase("blocks of 3", 5, 4, 7, 3, ids, nil, 0),
		lxCase("blocks of 1, smoothing", 5, 4, 7, 1, ids, nil, 0.1),
		lxCase("mask", 5, 4, 7, 2, ids, []float64{1, 0, 1, 1, 0}, 0),
		lxCase("weights+smoothing", 5, 4, 7, 4, ids, []float64{0.5, 2, 1, 0, 3}, 0.3),
		lxCase("all masked", 5, 4, 7, 3, ids, []float64{0, 0, 0, 0, 0}, 0.1),
	} {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// runLX returns the loss and the gradients of h and w (nil when w is
// frozen) of either LinearCrossEntropy or SoftmaxCrossEntropy(LinearT).
func runLX(t *testing.T, dt DType, h, w *Param, ids []int, mask []float64, eps float64, rows int, fused bool) (float64, []float64, []float64) {
	t.Helper()
	b := NewBuilder(dt, 1)
	b.scratch().headRows = rows
	n := h.Shape()[0]
	tg := b.IntInput("targets", n)
	var m *Node
	if mask != nil {
		m = b.Constant("mask", mask, n)
	}
	var loss *Node
	if fused {
		loss = LinearCrossEntropy(b.Param(h), b.Param(w), tg, m, eps)
	} else {
		loss = SoftmaxCrossEntropy(LinearT(b.Param(h), b.Param(w), nil), tg, m, eps)
	}
	prog, err := b.Compile(loss)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.SetInts(tg, ids); err != nil {
		t.Fatal(err)
	}
	// Twice: the second run reuses the kernel's buffers and statistics.
	for range 2 {
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
	}
	gh, _ := prog.Grad(h)
	var gw []float64
	if g, ok := prog.Grad(w); ok {
		gw = g.Values()
	}
	return prog.Loss(), gh.Values(), gw
}

// TestLinearCrossEntropyMatchesLogits compares the op with the loss of the
// materialised logits on a wider head (many blocks, the last one short), in
// both dtypes, and on quantized weights with the float op on their
// dequantized values.
func TestLinearCrossEntropyMatchesLogits(t *testing.T) {
	const n, d, v = 9, 16, 301
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i * 97) % v
	}
	mask := []float64{1, 1, 0, 1, 2, 1, 0, 1, 1}
	for _, dt := range []DType{Float64, Float32} {
		tol := 1e-12
		if dt == Float32 {
			tol = 2e-6
		}
		h := NewParam("h", dt, n, d)
		_ = h.SetValues(toF64(normals(n*d, 3, 2)))
		w := NewParam("w", dt, v, d)
		_ = w.SetValues(toF64(normals(v*d, 4, 1)))
		for _, rows := range []int{0, 64, 7} {
			l1, dh1, dw1 := runLX(t, dt, h, w, ids, mask, 0.1, rows, true)
			l0, dh0, dw0 := runLX(t, dt, h, w, ids, mask, 0.1, rows, false)
			compareRel(t, "loss", []float64{l1}, []float64{l0}, tol)
			compareRel(t, "dh", dh1, dh0, tol)
			compareRel(t, "dW", dw1, dw0, tol)
		}
		for _, p := range []Precision{BF16, NF4} {
			qw, fw := quantPair(t, v, d, p, dt, 5)
			l1, dh1, dw1 := runLX(t, dt, h, qw, ids, nil, 0, 50, true)
			l0, dh0, _ := runLX(t, dt, h, fw, ids, nil, 0, 50, false)
			if dw1 != nil {
				t.Fatalf("%v: a quantized weight got a gradient", p)
			}
			compareRel(t, p.String()+" loss", []float64{l1}, []float64{l0}, tol)
			compareRel(t, p.String()+" dh", dh1, dh0, tol)
		}
	}
}

// TestLinearCrossEntropyQuantizedGradient checks dh through an nf4 head
// against central differences in float64.
func TestLinearCrossEntropyQuantizedGradient(t *testing.T) {
	qw, _ := quantPair(t, 11, 4, NF4, Float64, 8)
	h := NewParam("h", Float64, 3, 4)
	_ = h.SetValues(toF64(normals(h.Len(), 10, 1)))
	res, err := CheckGradients(func(b *Builder) (*Node, error) {
		b.scratch().headRows = 4
		return LinearCrossEntropy(b.Param(h), b.Param(qw), intConst(b, "targets", []int{3, 10, 0}), nil, 0.2), b.Err()
	}, []*Param{h}, GradCheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.OK(1e-7, 1e-6) {
			t.Fatal(r)
		}
	}
}

func TestLinearCrossEntropyErrors(t *testing.T) {
	build := func(f func(b *Builder) *Node) error {
		b := NewBuilder(Float64, 1)
		f(b)
		return b.Err()
	}
	h := NewParam("h", Float64, 3, 4)
	w := NewParam("w", Float64, 5, 4)
	w3 := NewParam("w3", Float64, 5, 3)
	for _, c := range []struct {
		name, want string
		f          func(b *Builder) *Node
	}{
		{"width", "w3", func(b *Builder) *Node {
			return LinearCrossEntropy(b.Param(h), b.Param(w3), b.IntInput("t", 3), nil, 0)
		}},
		{"targets", "targets shape", func(b *Builder) *Node {
			return LinearCrossEntropy(b.Param(h), b.Param(w), b.IntInput("t", 2), nil, 0)
		}},
		{"float targets", "not an integer input", func(b *Builder) *Node {
			return LinearCrossEntropy(b.Param(h), b.Param(w), b.Input("t", 3), nil, 0)
		}},
		{"mask", "mask shape", func(b *Builder) *Node {
			return LinearCrossEntropy(b.Param(h), b.Param(w), b.IntInput("t", 3), b.Input("m", 4), 0)
		}},
		{"smoothing", "label smoothing", func(b *Builder) *Node {
			return LinearCrossEntropy(b.Param(h), b.Param(w), b.IntInput("t", 3), nil, 1)
		}},
	} {
		if err := build(c.f); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A target outside the vocabulary fails the run, naming the row.
	b := NewBuilder(Float64, 1)
	tg := b.IntInput("targets", 3)
	loss := LinearCrossEntropy(b.Param(h), b.Param(w), tg, nil, 0)
	prog, err := b.Compile(loss)
	if err != nil {
		t.Fatal(err)
	}
	_ = prog.SetInts(tg, []int{0, 5, 1})
	if err := prog.Run(); err == nil || !strings.Contains(err.Error(), "row 1: id 5 outside [0, 5)") {
		t.Fatalf("run with target 5 of 5: %v", err)
	}
}
