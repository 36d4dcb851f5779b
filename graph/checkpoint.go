package graph

import (
	"errors"
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Checkpoint computes y = fn(x) as one op that keeps only its input
// (activation recomputation, or gradient checkpointing). fn builds its
// subgraph on a nested builder, from the node it is given, exactly as it
// would on x's builder; that subgraph is compiled into a nested Program.
//
// The op's forward pass runs the nested forward pass, copies y out and hands
// the nested buffers (op outputs, attention probabilities, dropout masks)
// back: the nested programs of a builder's checkpoints share one arena of
// storage (they run one at a time), so that only one checkpoint's
// activations exist at a time. They share their input, upstream gradient,
// output and input gradient buffers too: what a checkpoint keeps between
// its runs is its parameters' gradients. Its gradient recomputes the
// forward pass, with the dropout random source wound back to where the
// forward pass drew from it, then runs the nested backward pass for the
// upstream gradient: the masks, the activations and so the gradients are
// bit for bit those of the same graph built without Checkpoint. The
// trainable parameters fn uses get their gradients through the op.
//
// No op inside fn needs to know about it; the trainable flags are read when
// Checkpoint is called (build the graph after setting them).
func Checkpoint(x *Node, fn func(x *Node) *Node) *Node {
	b, bad := check("Checkpoint", x)
	if bad != nil {
		return bad
	}
	if x.isInt {
		return b.fail(errors.New("graph: Checkpoint: x is an integer node"))
	}
	inner := NewBuilder(b.dt, 0)
	inner.rng, inner.mode, inner.qs = b.rng, b.mode, b.scratch()
	if b.pool == nil {
		b.pool = newCkptPool()
	}
	xp := &Param{Name: "checkpoint.x", Trainable: true, value: b.pool.xs.shared(b.dt, x.Shape())}
	y := fn(inner.Param(xp))
	if err := inner.Err(); err != nil {
		return b.fail(fmt.Errorf("graph: Checkpoint: %w", err))
	}
	if y == nil || y.b != inner || y.isInt || y.q != nil {
		return b.fail(errors.New("graph: Checkpoint: fn must return a float node built from its argument"))
	}
	for g, v := range inner.deps { // the outer graph is stale when the inner one is
		if b.deps == nil {
			b.deps = map[*Generation]uint64{}
		}
		if _, ok := b.deps[g]; !ok {
			b.deps[g] = v
		}
	}
	dy := inner.inputOver("checkpoint.dy", b.pool.dys.shared(b.dt, y.Shape()))
	loss := Sum(Mul(y, dy)) // d loss / d y = dy exactly
	prog, err := inner.Compile(loss, y)
	if err != nil {
		return b.fail(fmt.Errorf("graph: Checkpoint: %w", err))
	}
	prog.arena = b.pool.arena
	// y and dx are copied out right after each run: their buffers serve
	// every checkpoint. The parameters' gradients keep their own, read after
	// other checkpoints may have run. (The loss, a scalar, never takes a
	// buffer.)
	prog.shared = &sharedRoots{arena: b.pool.roots, nodes: map[*G.Node]bool{y.n: true}}
	if gx, ok := prog.gradNode[xp]; ok {
		prog.shared.nodes[gx] = true
	}
	c := &ckpt{prog: prog, xp: xp, y: y, dy: dy, pool: b.pool}
	ins := []*Node{x}
	for _, p := range prog.trainable {
		if p == xp {
			continue
		}
		if p.q != nil {
			return b.fail(fmt.Errorf("graph: Checkpoint: %s is quantized and trainable", p.Name))
		}
		c.params = append(c.params, p)
		ins = append(ins, b.Param(p))
	}
	keep := map[*G.Node]bool{}
	for _, gn := range prog.gradNode {
		keep[gn] = true
	}
	for _, n := range inner.g.AllNodes() {
		if op, ok := n.Op().(*fusedOp); ok && !keep[n] {
			c.ops = append(c.ops, op)
			c.sizes = append(c.sizes, n.Shape().TotalSize())
		}
	}
	grads := func(in []*G.Node, _, dyn *G.Node) ([]*G.Node, error) {
		out := make([]*G.Node, len(in))
		var err error
		if out[0], _, err = b.gradNode(&ckptGradKernel{c: c}, in[0], dyn); err != nil {
			return nil, err
		}
		for i := range c.params {
			if out[i+1], _, err = b.gradNode(&ckptParamGradKernel{c: c, i: i}, out[0]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	diff := make([]bool, len(ins))
	for i := range diff {
		diff[i] = true
	}
	gn, _, err := b.apply(&ckptKernel{c: c}, diff, grads, gnodes(ins...)...)
	return b.wrap(gn, err, "Checkpoint", ins...)
}

// ckpt is one checkpoint's nested program and state.
type ckpt struct {
	prog     *Program
	xp       *Param // the nested input, fed with the op's input
	y, dy    *Node
	params   []*Param       // the trainable parameters inside, in input order
	paramOps []*fusedOp     // the outer ops that output their gradients
	ops      []*fusedOp     // nested ops whose kernel state goes back to the pool
	sizes    []int          // their output sizes
	shapes   []tensor.Shape // their output shapes
	pool     *ckptPool
	rngState []byte // the dropout source before the last forward pass
}

// ckptPool holds the buffers of nested programs between their runs, by
// shape, and the per-op state kernels keep for their gradients. The nested
// programs of one builder run one at a time, so each buffer serves them
// all.
type ckptPool struct {
	arena   *arena // the nested programs' storage
	roots   *arena // their outputs and input gradients (see sharedRoots)
	xs, dys *arena // their inputs and upstream gradients, by size
	attn    []interface{}
	f32     map[int][][]float32 // dropout masks, GELU and SiLU stashes, by length
	f64     map[int][][]float64
}

func newCkptPool() *ckptPool {
	return &ckptPool{arena: newArena(), roots: newArena(), xs: newArena(), dys: newArena(),
		f32: map[int][][]float32{}, f64: map[int][][]float64{}}
}

// shared returns a Dense of dtype dt and the given shape over the one
// buffer of its size in a: every Dense of that size it returns shares it.
// No shape is shape [1], as for NewParam.
func (a *arena) shared(dt DType, shape []int) *tensor.Dense {
	if len(shape) == 0 {
		shape = []int{1}
	}
	return a.get(arenaKey{dt, tensor.Shape(shape).TotalSize()}, 0, shape)
}

// lend32 returns a pooled slice of length n (nil for none), take32 pools s.
func (p *ckptPool) lend32(n int) []float32 {
	l := p.f32[n]
	if len(l) == 0 {
		return nil
	}
	s := l[len(l)-1]
	p.f32[n] = l[:len(l)-1]
	return s
}

func (p *ckptPool) lend64(n int) []float64 {
	l := p.f64[n]
	if len(l) == 0 {
		return nil
	}
	s := l[len(l)-1]
	p.f64[n] = l[:len(l)-1]
	return s
}

func (p *ckptPool) take32(s []float32) {
	if s != nil {
		p.f32[len(s)] = append(p.f32[len(s)], s)
	}
}

func (p *ckptPool) take64(s []float64) {
	if s != nil {
		p.f64[len(s)] = append(p.f64[len(s)], s)
	}
}

// lend gives the nested ops' kernel state (attention probabilities,
// dropout masks, GELU and SiLU stashes) from the pool before a run; the values themselves live in
// the arena all checkpoints share.
func (c *ckpt) lend() {
	p := c.pool
	for i, op := range c.ops {
		n := c.sizes[i]
		switch k := op.k.(type) {
		case *attnKernel:
			if k.state == nil && len(p.attn) > 0 {
				k.state, p.attn = p.attn[len(p.attn)-1], p.attn[:len(p.attn)-1]
			}
		case *dropoutKernel:
			if k.m32 == nil && k.m64 == nil {
				k.m32, k.m64 = p.lend32(n), p.lend64(n)
			}
		case *geluKernel:
			k.saving.lend(p, n)
		case *siluKernel:
			k.saving.lend(p, n)
		}
	}
}

// lend gives a saving kernel (GELU, SiLU) its stash of n values from p.
func (k *saving) lend(p *ckptPool, n int) {
	if k.s32 == nil && k.s64 == nil {
		k.s32, k.s64 = p.lend32(n), p.lend64(n)
	}
}

// reclaim returns a saving kernel's stash to p.
func (k *saving) reclaim(p *ckptPool) {
	p.take32(k.s32)
	p.take64(k.s64)
	k.s32, k.s64 = nil, nil
}

// reclaim takes the nested ops' kernel state back after a run.
func (c *ckpt) reclaim() {
	p := c.pool
	for _, op := range c.ops {
		switch k := op.k.(type) {
		case *attnKernel:
			if k.state != nil {
				p.attn, k.state = append(p.attn, k.state), nil
			}
		case *dropoutKernel:
			p.take32(k.m32)
			p.take64(k.m64)
			k.m32, k.m64 = nil, nil
		case *geluKernel:
			k.saving.reclaim(p)
		case *siluKernel:
			k.saving.reclaim(p)
		}
	}
}

// setInput copies the op's input into the nested input parameter, whose
// storage the builder's checkpoints share.
func (c *ckpt) setInput(x tval) {
	if x.f32 != nil {
		copy(c.xp.Float32s(), x.f32)
	} else {
		copy(c.xp.Float64s(), x.f64)
	}
}

func copyOut(out tval, a Array) {
	if out.f32 != nil {
		copy(out.f32, a.F32)
	} else {
		copy(out.f64, a.F64)
	}
}

// ckptKernel is the checkpoint's forward pass.
type ckptKernel struct{ c *ckpt }

func (*ckptKernel) String() string { return "Checkpoint" }

func (k *ckptKernel) outShape([]tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape(k.c.y.Shape()), nil
}

func (k *ckptKernel) forward(out tval, in []tval) error {
	c := k.c
	st, err := c.prog.b.rng.MarshalBinary()
	if err != nil {
		return err
	}
	c.rngState = st
	c.setInput(in[0])
	// the output is read before the buffers go back to the pool
	c.lend()
	defer c.reclaim()
	if err := c.prog.Forward(); err != nil {
		return fmt.Errorf("checkpoint forward: %w", err)
	}
	y, err := c.prog.Output(c.y)
	if err != nil {
		return err
	}
	copyOut(out, y)
	return nil
}

// ckptGradKernel recomputes the forward pass and runs the nested backward
// pass for dy: its output is dx; the parameter gradients stay in the nested
// program, where the ckptParamGradKernel ops read them.
type ckptGradKernel struct{ c *ckpt }

func (*ckptGradKernel) String() string { return "Checkpoint.dx" }

func (k *ckptGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}

func (k *ckptGradKernel) forward(out tval, in []tval) error {
	c := k.c
	if c.rngState == nil {
		return errors.New("checkpoint: gradient before the forward pass")
	}
	rng := c.prog.b.rng
	now, err := rng.MarshalBinary()
	if err != nil {
		return err
	}
	if err := rng.UnmarshalBinary(c.rngState); err != nil { // the forward pass's masks again
		return err
	}
	c.setInput(in[0])
	if err := c.prog.SetInput(c.dy, dyValues(in[1])); err != nil {
		return err
	}
	c.lend()
	err = c.prog.Run()
	if rerr := rng.UnmarshalBinary(now); err == nil {
		err = rerr
	}
	if err == nil {
		var dx Array
		dx, _ = c.prog.Grad(c.xp)
		copyOut(out, dx)
	}
	c.reclaim()
	if err != nil {
		return fmt.Errorf("checkpoint backward: %w", err)
	}
	return nil
}

func dyValues(v tval) interface{} {
	if v.f32 != nil {
		return v.f32
	}
	return v.f64
}

// ckptParamGradKernel outputs the gradient of the checkpoint's i-th
// trainable parameter, which the nested program computed.
type ckptParamGradKernel struct {
	c *ckpt
	i int
}

func (k *ckptParamGradKernel) String() string { return "Checkpoint.d" + k.c.params[k.i].Name }

func (k *ckptParamGradKernel) outShape([]tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape(k.c.params[k.i].Shape()), nil
}

func (k *ckptParamGradKernel) forward(out tval, _ []tval) error {
	g, ok := k.c.prog.Grad(k.c.params[k.i])
	if !ok {
		return fmt.Errorf("no gradient for %s", k.c.params[k.i].Name)
	}
	copyOut(out, g)
	return nil
}
