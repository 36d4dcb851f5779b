package graph

import (
	"fmt"
	"math"
	"testing"
	"unsafe"

	G "gorgonia.org/gorgonia"
)

// ckptStorage counts the storage that b's checkpoints hold between runs:
// the pool (the nested arena, the kernel stashes), the root buffers of the
// nested executors, and the nested input and dy storage, each buffer once
// however many programs share it. grads is the part that holds the
// gradients of the trainable parameters inside the checkpoints, which each
// checkpoint keeps (they are read after other checkpoints have run).
func ckptStorage(b *Builder) (total, grads int) {
	seen := map[unsafe.Pointer]bool{}
	count := func(f32 []float32, f64 []float64) int {
		switch {
		case len(f32) > 0 && !seen[unsafe.Pointer(unsafe.SliceData(f32))]:
			seen[unsafe.Pointer(unsafe.SliceData(f32))] = true
			return 4 * len(f32)
		case len(f64) > 0 && !seen[unsafe.Pointer(unsafe.SliceData(f64))]:
			seen[unsafe.Pointer(unsafe.SliceData(f64))] = true
			return 8 * len(f64)
		}
		return 0
	}
	dense := func(v G.Value) int {
		t, err := toTval(v)
		if err != nil {
			return 0
		}
		return count(t.f32, t.f64)
	}
	if p := b.pool; p != nil {
		for _, l := range p.arena.bufs {
			for _, d := range l {
				total += dense(d)
			}
		}
		for _, l := range p.f32 {
			for _, s := range l {
				total += count(s, nil)
			}
		}
		for _, l := range p.f64 {
			for _, s := range l {
				total += count(nil, s)
			}
		}
	}
	for _, n := range b.g.AllNodes() {
		op, ok := n.Op().(*fusedOp)
		if !ok {
			continue
		}
		k, ok := op.k.(*ckptKernel)
		if !ok {
			continue
		}
		c := k.c
		isGrad := map[int]bool{}
		for _, e := range []*executor{c.prog.fwd, c.prog.full} {
			if e == nil {
				continue
			}
			for _, prm := range c.params {
				isGrad[e.slot[c.prog.gradNode[prm]]] = true
			}
			for i, st := range e.steps {
				s := len(e.leaves) + i
				if !e.root[s] {
					continue
				}
				bytes := count(st.out.f32, st.out.f64)
				total += bytes
				if isGrad[s] {
					grads += bytes
				}
			}
			clear(isGrad)
		}
		total += dense(c.xp.value) + dense(c.dy.n.Value())
	}
	return total, grads
}

// TestCheckpointSharedStorage checks that the storage of a chain of
// checkpointed blocks does not grow with the number of blocks, but for the
// gradients of the weights inside them: the blocks run one at a time, so
// their inputs, upstream gradients, outputs and input gradients live in
// buffers they share. The chains' losses and gradients are bit for bit
// those without checkpoints.
func TestCheckpointSharedStorage(t *testing.T) {
	const rows, d = 8, 16
	run := func(blocks int, ckpt bool) (total, grads int, vals []float64) {
		x := NewParam("x", Float32, rows, d)
		_ = x.SetValues(toF64(normals(x.Len(), 7, 1)))
		ps := []*Param{x}
		b := NewBuilder(Float32, 3)
		h := b.Param(x)
		for i := range blocks {
			w := NewParam(fmt.Sprintf("h.%d.w", i), Float32, d, d)
			_ = w.SetValues(toF64(normals(w.Len(), uint64(10+i), 0.3)))
			ps = append(ps, w)
			block := func(x *Node) *Node {
				h := Dropout(GELU(Linear(x, x.Builder().Param(w), nil)), 0.1)
				return Add(x, h)
			}
			if ckpt {
				h = Checkpoint(h, block)
			} else {
				h = block(h)
			}
		}
		prog, err := b.Compile(Sum(Mul(h, h)))
		if err != nil {
			t.Fatal(err)
		}
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		vals = []float64{prog.Loss()}
		for _, p := range ps {
			g, ok := prog.Grad(p)
			if !ok {
				t.Fatalf("no gradient for %s", p.Name)
			}
			vals = append(vals, g.Values()...)
		}
		total, grads = ckptStorage(b)
		return total, grads, vals
	}
	var rest int
	for _, blocks := range []int{2, 6} {
		total, grads, got := run(blocks, true)
		_, _, want := run(blocks, false)
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Fatalf("%d blocks: value %d is %v with checkpoints, %v without", blocks, i, got[i], want[i])
			}
		}
		if g := blocks * d * d * 4; grads != g {
			t.Errorf("%d blocks: the weights' gradients take %d bytes, want %d", blocks, grads, g)
		}
		t.Logf("%d blocks: %d bytes, %d of them the weights' gradients", blocks, total, grads)
		if blocks == 2 {
			rest = total - grads
		} else if total-grads != rest {
			t.Errorf("%d blocks hold %d bytes besides the weights' gradients, 2 blocks %d: the storage grows with the checkpoints",
				blocks, total-grads, rest)
		}
	}
}
