package graph

import (
	"math"
	"testing"
)

func TestCheckpointGradients(t *testing.T) {
	x := NewParam("x", Float64, 4, 3)
	w := NewParam("w", Float64, 3, 5)
	bias := NewParam("b", Float64, 5)
	w2 := NewParam("w2", Float64, 5, 3)
	for i, p := range []*Param{x, w, bias, w2} {
		_ = p.SetValues(toF64(normals(p.Len(), uint64(20+i), 0.7)))
	}
	block := func(x *Node) *Node {
		b := x.Builder()
		h := GELU(Linear(x, b.Param(w), b.Param(bias)))
		return Add(x, Linear(h, b.Param(w2), nil)) // a residual: x feeds two ops
	}
	build := func(ckpt bool) func(b *Builder) (*Node, error) {
		return func(b *Builder) (*Node, error) {
			h := b.Param(x)
			for range 2 { // the same weights twice: gradients add up across checkpoints
				if ckpt {
					h = Checkpoint(h, block)
				} else {
					h = block(h)
				}
			}
			return Sum(Mul(h, GELU(h))), b.Err()
		}
	}
	res, err := CheckGradients(build(true), []*Param{x, w, bias, w2}, GradCheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.OK(1e-7, 1e-6) {
			t.Errorf("%v", r)
		}
	}
	// float32 and float64, with and without the checkpoint
	grads := func(dt DType, ckpt bool) []float64 {
		ps := []*Param{x.Convert(dt), w.Convert(dt), bias.Convert(dt), w2.Convert(dt)}
		x, w, bias, w2 = ps[0], ps[1], ps[2], ps[3]
		defer func() {
			x, w, bias, w2 = x.Convert(Float64), w.Convert(Float64), bias.Convert(Float64), w2.Convert(Float64)
		}()
		b := NewBuilder(dt, 1)
		loss, _ := build(ckpt)(b)
		prog, err := b.Compile(loss)
		if err != nil {
			t.Fatal(err)
		}
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		var out []float64
		for _, p := range ps {
			g, ok := prog.Grad(p)
			if !ok {
				t.Fatalf("no gradient for %s", p.Name)
			}
			out = append(out, g.Values()...)
		}
		return out
	}
	g64, g64c, g32c := grads(Float64, false), grads(Float64, true), grads(Float32, true)
	// The weights are shared by both checkpoints: their two gradients are
	// summed outside, where the graph without checkpoints accumulates one
	// product onto the other (GEMM with β = 1), so they may round apart in
	// the last bit; x's gradient is exact. (Models' blocks share no weight:
	// their gradients are bit-identical, see models/gpt.)
	for i := range x.Len() {
		if math.Float64bits(g64[i]) != math.Float64bits(g64c[i]) {
			t.Fatalf("dx %d: %v with the checkpoint, %v without", i, g64c[i], g64[i])
		}
	}
	compareRel(t, "with and without the checkpoint", g64c, g64, 1e-14)
	compareRel(t, "float32 vs float64", g32c, g64, 1e-5)
}

func TestCheckpointErrors(t *testing.T) {
	b := NewBuilder(Float32, 1)
	x := b.Input("x", 2, 3)
	other := NewBuilder(Float32, 1).Input("y", 2, 3)
	if y := Checkpoint(x, func(*Node) *Node { return other }); y.Err() == nil {
		t.Fatal("a node from another builder passed")
	}
	if y := Checkpoint(x, func(x *Node) *Node { return Linear(x, x, nil) }); y.Err() == nil {
		t.Fatal("a failed op inside passed")
	}
}
