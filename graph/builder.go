package graph

import (
	"errors"
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Builder builds one Gorgonia expression graph in one dtype. Parameters enter
// it with Param, per-run data with Input and IntInput, and ops (Linear,
// LayerNorm, …) add nodes. Errors are sticky: an op given a failed node
// returns a failed node, and Compile or Err reports the first error, so model
// code reads as straight-line maths without an error check per op.
type Builder struct {
	g      *G.ExprGraph
	dt     DType
	err    error
	nextID int64

	params []*Param
	pnodes map[*Param]*Node
	inputs []*Node
	names  map[string]bool
	rng    *rand.PCG     // dropout masks
	qs     *quantScratch // tiles of dequantized weights, shared by the ops that read them
	pool   *ckptPool     // buffers of the nested programs of Checkpoint ops between their runs
	mode   *runMode
	deps   map[*Generation]uint64 // state the graph was built from, at its version then
	symErr error                  // the first error of a gradient function (see gradError)
}

// runMode is shared by a builder's ops and its programs.
type runMode struct{ training bool }

// Node is a value in a graph under construction: a parameter, an input, or the
// result of an op. Its shape is known when it is built.
type Node struct {
	b     *Builder
	n     *G.Node
	err   error
	name  string
	ins   []*Node
	param *Param
	isInt bool
	// q is set for a quantized frozen weight: a node with no Gorgonia node
	// of its own, read only by the ops that dequantize it on the fly.
	q *QTensor
	// detached: symbolic differentiation does not pass from this node to
	// ins (Detach), so parameters reached only through it are not
	// differentiated.
	detached bool
}

// NewBuilder starts an empty graph of dtype dt. seed seeds the random masks of
// the Dropout ops in the graph.
func NewBuilder(dt DType, seed uint64) *Builder {
	b := &Builder{
		g:      G.NewGraph(),
		dt:     dt,
		pnodes: map[*Param]*Node{},
		names:  map[string]bool{},
		rng:    rand.NewPCG(seed, 0x9e3779b97f4a7c15),
		mode:   &runMode{training: true},
	}
	if !dt.valid() {
		b.err = fmt.Errorf("graph: invalid dtype %v", dt)
	}
	return b
}

// DType is the graph's floating-point type.
func (b *Builder) DType() DType { return b.dt }

// Err returns the first error met while building, or nil.
func (b *Builder) Err() error { return b.err }

// Params lists the parameters added to the graph, in the order first added.
func (b *Builder) Params() []*Param { return append([]*Param(nil), b.params...) }

// Fail records err as the builder's error (if it is the first) and returns a
// failed node carrying it: what a layer outside this package returns when its
// own arguments are wrong.
func (b *Builder) Fail(err error) *Node {
	if err == nil {
		err = errors.New("graph: Fail called with a nil error")
	}
	return b.fail(err)
}

func (b *Builder) fail(err error) *Node {
	if b.err == nil {
		b.err = err
	}
	return &Node{b: b, err: b.err}
}

// Dot returns the graph built so far in Graphviz's DOT language, as
// Gorgonia writes it: every node with its op, type and shape, edges from
// inputs to the ops that read them, and the gradient nodes Compile added
// in a cluster of their own. Render it with Graphviz (dot -Tsvg).
func (b *Builder) Dot() string { return b.g.ToDot() }

// OpRuns counts, by op name, how many times the fused ops of this graph
// have run, over every program compiled from it: a profiling and test aid
// that shows what runs skip (the gradient ops of a frozen weight never run).
func (b *Builder) OpRuns() map[string]int64 {
	out := map[string]int64{}
	for _, n := range b.g.AllNodes() {
		if op, ok := n.Op().(*fusedOp); ok {
			out[op.k.String()] += op.runs
		}
	}
	return out
}

// Param returns the node bound to p, adding it on first use; a parameter used
// twice (a tied embedding) is one node whose gradients are summed.
func (b *Builder) Param(p *Param) *Node {
	if n, ok := b.pnodes[p]; ok {
		return n
	}
	if p == nil {
		return b.fail(errors.New("graph: nil parameter"))
	}
	if p.q != nil {
		if p.Trainable {
			return b.fail(fmt.Errorf("graph: parameter %s is held at %v and cannot be trainable", p.Name, p.q.prec))
		}
		n := &Node{b: b, name: p.Name, param: p, q: p.q}
		b.pnodes[p] = n
		b.params = append(b.params, p)
		return n
	}
	if p.DType() != b.dt {
		return b.fail(fmt.Errorf("graph: parameter %s is %v, graph is %v", p.Name, p.DType(), b.dt))
	}
	shape := p.value.Shape()
	gn := G.NewTensor(b.g, b.dt.tensorDtype(), shape.Dims(), G.WithShape(shape...), G.WithName(b.unique(p.Name)), G.WithValue(p.value))
	n := &Node{b: b, n: gn, name: p.Name, param: p}
	b.pnodes[p] = n
	b.params = append(b.params, p)
	return n
}

func (b *Builder) unique(name string) string {
	base := name
	for i := 1; b.names[name]; i++ {
		name = fmt.Sprintf("%s#%d", base, i)
	}
	b.names[name] = true
	return name
}

// Input adds a float input of the graph's dtype, fed before each run with
// Program.SetInput. Its value starts at zero.
func (b *Builder) Input(name string, shape ...int) *Node {
	return b.input(name, b.dt.tensorDtype(), shape)
}

// IntInput adds an integer input (token ids, targets), fed with
// Program.SetInts.
func (b *Builder) IntInput(name string, shape ...int) *Node {
	n := b.input(name, tensor.Int, shape)
	n.isInt = true
	return n
}

func (b *Builder) input(name string, dt tensor.Dtype, shape []int) *Node {
	if len(shape) == 0 {
		return b.fail(fmt.Errorf("graph: input %s: empty shape", name))
	}
	for _, s := range shape {
		if s <= 0 {
			return b.fail(fmt.Errorf("graph: input %s: shape %v has a non-positive size", name, shape))
		}
	}
	var v *tensor.Dense
	if dt == tensor.Int {
		v = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]int, tensor.Shape(shape).TotalSize())))
	} else {
		v = newDense(b.dt, tensor.Shape(shape))
	}
	return b.inputOver(name, v)
}

// inputOver adds an input node whose value is v, of v's dtype and shape:
// SetInput writes into v's storage, which the caller may share (see
// Checkpoint).
func (b *Builder) inputOver(name string, v *tensor.Dense) *Node {
	shape := v.Shape()
	gn := G.NewTensor(b.g, v.Dtype(), len(shape), G.WithShape(shape...), G.WithName(b.unique(name)), G.WithValue(v))
	n := &Node{b: b, n: gn, name: name}
	b.inputs = append(b.inputs, n)
	return n
}

// Shape returns the node's shape (nil for a failed node).
func (n *Node) Shape() []int {
	if n == nil || n.err != nil {
		return nil
	}
	if n.q != nil {
		return n.q.Shape()
	}
	return append([]int(nil), n.n.Shape()...)
}

// Name is the parameter or input name, or the op that made the node.
func (n *Node) Name() string {
	if n.name != "" {
		return n.name
	}
	if n.n != nil {
		return n.n.Op().String()
	}
	return "<failed>"
}

// Quantized reports whether the node is a weight held quantized (see
// Param.Quantize).
func (n *Node) Quantized() bool { return n != nil && n.err == nil && n.q != nil }

// Err is the error that made this node fail, or nil.
func (n *Node) Err() error {
	if n == nil {
		return errors.New("graph: nil node")
	}
	return n.err
}

// Builder returns the builder the node belongs to (nil for a nil node).
func (n *Node) Builder() *Builder {
	if n == nil {
		return nil
	}
	return n.b
}

// check returns the builder of xs and nil when every node is usable, or the
// failed node to return.
func check(op string, xs ...*Node) (*Builder, *Node) {
	var b *Builder
	for _, x := range xs {
		if x != nil {
			b = x.b
			break
		}
	}
	if b == nil {
		return nil, &Node{err: fmt.Errorf("graph: %s: no input nodes", op)}
	}
	for i, x := range xs {
		if x == nil {
			return b, b.fail(fmt.Errorf("graph: %s: input %d is nil", op, i))
		}
		if x.err != nil {
			return b, &Node{b: b, err: x.err}
		}
		if x.b != b {
			return b, b.fail(fmt.Errorf("graph: %s: inputs come from different builders", op))
		}
		if x.q != nil {
			return b, b.fail(fmt.Errorf("graph: %s: %s is held at %v; only Linear, LinearT, Embedding, LinearCrossEntropy and QuantColNorms read a quantized weight", op, x.name, x.q.prec))
		}
	}
	return b, nil
}

// wrap turns an apply result into a Node.
func (b *Builder) wrap(gn *G.Node, err error, op string, ins ...*Node) *Node {
	if err != nil {
		return b.fail(fmt.Errorf("graph: %s: %w", op, err))
	}
	return &Node{b: b, n: gn, ins: ins}
}

func gnodes(ns ...*Node) []*G.Node {
	out := make([]*G.Node, len(ns))
	for i, n := range ns {
		out[i] = n.n
	}
	return out
}
