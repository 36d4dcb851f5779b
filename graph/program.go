package graph

import (
	"errors"
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Array is a read-only view of a tensor a Program produced: an output, the
// loss or a gradient. Exactly one of F32 and F64 is set, by dtype. The storage
// belongs to the Program and is overwritten by its next run: copy what must
// outlive it.
type Array struct {
	Shape []int
	F32   []float32
	F64   []float64
}

// DType is the element type.
func (a Array) DType() DType {
	if a.F64 != nil {
		return Float64
	}
	return Float32
}

// Len is the number of elements.
func (a Array) Len() int {
	if a.F64 != nil {
		return len(a.F64)
	}
	return len(a.F32)
}

// At returns one element as a float64, whatever the dtype: with one index
// the flat (row-major) position, with one index per dimension that element
// (a.At(i, j) of a matrix). Like Param.At it panics, naming the shape and
// the index, when the index is out of range.
func (a Array) At(idx ...int) float64 {
	shape := a.Shape
	if len(shape) == 0 { // a scalar (the loss)
		shape = []int{a.Len()}
	}
	i := flatIndex("Array", shape, idx)
	if a.F64 != nil {
		return a.F64[i]
	}
	return float64(a.F32[i])
}

// Values returns a float64 copy of the elements.
func (a Array) Values() []float64 {
	if a.F64 != nil {
		return append([]float64(nil), a.F64...)
	}
	out := make([]float64, len(a.F32))
	for i, v := range a.F32 {
		out[i] = float64(v)
	}
	return out
}

// Program is a compiled graph: built once for an input shape, then fed and run
// any number of times without rebuilding. Run computes the outputs, the loss
// and the gradients of every trainable parameter the loss depends on; Forward
// computes only the outputs and the loss. Only the nodes a run needs are
// executed: gradient nodes of frozen weights are never run.
type Program struct {
	b         *Builder
	loss      *Node
	outputs   []*Node
	trainable []*Param
	gradNode  map[*Param]*G.Node

	fwdRoots, fullRoots []*G.Node
	fwd, full           *executor
	last                *executor        // the executor of the last successful run
	readable            map[*G.Node]bool // the outputs and the loss
	opt                 ExecOptions
	arena               *arena       // storage the executors hand out by liveness
	shared              *sharedRoots // roots in storage other programs share (a checkpoint's), or nil
}

// Compile finishes the graph. loss (a scalar, or nil for an inference-only
// program) is what Run differentiates; outputs are the nodes to read after a
// run. Gradients are built for the parameters that are Trainable at this call
// and that loss depends on; change a Trainable flag and compile again.
func (b *Builder) Compile(loss *Node, outputs ...*Node) (*Program, error) {
	if b.err != nil {
		return nil, b.err
	}
	all := append([]*Node{}, outputs...)
	if loss != nil {
		all = append(all, loss)
	}
	if len(all) == 0 {
		return nil, errors.New("graph: compile: no loss and no outputs")
	}
	for _, n := range all {
		if n.err != nil {
			return nil, n.err
		}
		if n.b != b {
			return nil, errors.New("graph: compile: node from another builder")
		}
	}
	p := &Program{b: b, loss: loss, outputs: outputs, gradNode: map[*Param]*G.Node{}, readable: map[*G.Node]bool{}}
	if loss != nil {
		if len(loss.n.Shape()) != 0 {
			return nil, fmt.Errorf("graph: compile: loss has shape %v, want a scalar", loss.n.Shape())
		}
		p.trainable = reachableTrainable(loss)
		if len(p.trainable) > 0 {
			wrt := make([]*G.Node, len(p.trainable))
			for i, prm := range p.trainable {
				wrt[i] = b.pnodes[prm].n
			}
			b.symErr = nil
			grads, err := G.Grad(loss.n, wrt...)
			if err != nil {
				return nil, &gradError{gorgonia: err, cause: b.symErr}
			}
			for i, prm := range p.trainable {
				p.gradNode[prm] = grads[i]
			}
		}
	}
	for _, n := range all {
		p.fwdRoots = append(p.fwdRoots, n.n)
		p.readable[n.n] = true
	}
	p.fullRoots = append(p.fullRoots, p.fwdRoots...)
	for _, prm := range p.trainable {
		p.fullRoots = append(p.fullRoots, p.gradNode[prm])
	}
	return p, nil
}

// gradError is a failed symbolic differentiation. Gorgonia reports it as a
// SymDiffError, which keeps the error of the op's gradient function but has
// no Unwrap; gradError unwraps to both, so errors.Is and errors.As find the
// SymDiffError and whatever the gradient function returned (an error of
// Gorgonia's own ops, wrapped with github.com/pkg/errors, included).
type gradError struct {
	gorgonia error // from G.Grad
	cause    error // the gradient function's error, or nil
}

func (e *gradError) Error() string { return "graph: compile: gradients: " + e.gorgonia.Error() }

func (e *gradError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.gorgonia}
	}
	return []error{e.gorgonia, e.cause}
}

// reachableTrainable lists the trainable parameters loss depends on, in the
// order they were added to the builder.
func reachableTrainable(loss *Node) []*Param {
	seen := map[*Node]bool{}
	found := map[*Param]bool{}
	stack := []*Node{loss}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		if n.param != nil && n.param.Trainable {
			found[n.param] = true
		}
		if !n.detached {
			stack = append(stack, n.ins...)
		}
	}
	var out []*Param
	for _, prm := range loss.b.params {
		if found[prm] {
			out = append(out, prm)
		}
	}
	return out
}

// Trainable lists the parameters Run computes gradients for.
func (p *Program) Trainable() []*Param { return append([]*Param(nil), p.trainable...) }

// SetTraining switches dropout on (the default) or off for later runs.
func (p *Program) SetTraining(on bool) { p.b.mode.training = on }

// Training reports whether dropout is on.
func (p *Program) Training() bool { return p.b.mode.training }

// SetInput copies data ([]float32, []float64 or []int) into an input node.
func (p *Program) SetInput(in *Node, data interface{}) error {
	if in == nil || in.n == nil || in.param != nil || in.n.Op() != nil {
		return errors.New("graph: SetInput: not an input node")
	}
	dst, ok := in.n.Value().(*tensor.Dense)
	if !ok {
		return fmt.Errorf("graph: input %s has no value", in.name)
	}
	n := dst.Shape().TotalSize()
	out, err := denseTval(dst)
	if err != nil {
		return fmt.Errorf("graph: input %s: %w", in.name, err)
	}
	switch d := data.(type) {
	case []int:
		if out.ints == nil {
			return fmt.Errorf("graph: input %s is a float input, got ints", in.name)
		}
		if len(d) != n {
			return fmt.Errorf("graph: input %s: %d values for shape %v", in.name, len(d), dst.Shape())
		}
		copy(out.ints, d)
	case []float32:
		return setFloats(in.name, out, d, n, dst.Shape())
	case []float64:
		return setFloats(in.name, out, d, n, dst.Shape())
	default:
		return fmt.Errorf("graph: input %s: unsupported data %T", in.name, data)
	}
	return nil
}

// SetInts is SetInput for integer inputs.
func (p *Program) SetInts(in *Node, ids []int) error { return p.SetInput(in, ids) }

// Run executes the forward pass and, when the program has a loss and
// trainable parameters, the backward pass.
func (p *Program) Run() error {
	if len(p.trainable) == 0 {
		return p.Forward()
	}
	return p.exec(&p.full, p.fullRoots)
}

// Forward executes only what the outputs and the loss need.
func (p *Program) Forward() error { return p.exec(&p.fwd, p.fwdRoots) }

// exec runs *e, planning it for roots on first use. A stale program (see
// Generation) does not run.
func (p *Program) exec(e **executor, roots []*G.Node) error {
	if err := p.b.Stale(); err != nil {
		p.last = nil
		return fmt.Errorf("graph: run: %w", err)
	}
	if *e == nil {
		if p.arena == nil {
			p.arena = newArena()
		}
		x, err := newExecutor(p.b.g, roots, p.opt, p.arena, p.shared)
		if err != nil {
			return err
		}
		*e = x
	}
	p.last = nil
	if err := (*e).run(); err != nil {
		return err
	}
	p.last = *e
	return nil
}

// Loss returns the loss of the last run.
func (p *Program) Loss() float64 {
	if p.loss == nil {
		return 0
	}
	a := p.value(p.loss.n)
	if a.Len() == 0 {
		return 0
	}
	return a.At(0)
}

// Output returns the value of n (one of the compiled outputs or the loss)
// from the last run.
func (p *Program) Output(n *Node) (Array, error) {
	if n == nil || n.n == nil {
		return Array{}, errors.New("graph: Output: nil node")
	}
	if !p.readable[n.n] {
		return Array{}, fmt.Errorf("graph: %s is not an output of this program", n.Name())
	}
	a := p.value(n.n)
	if a.Len() == 0 {
		return Array{}, fmt.Errorf("graph: %s has not been computed yet", n.Name())
	}
	return a, nil
}

// Grad returns the gradient of the loss with respect to prm from the last Run;
// ok is false when prm is not one of the program's trainable parameters.
func (p *Program) Grad(prm *Param) (a Array, ok bool) {
	gn, ok := p.gradNode[prm]
	if !ok {
		return Array{}, false
	}
	a = p.value(gn)
	return a, a.Len() > 0
}

// value views n's value from the last run that computed it: the last
// run, or else (a gradient read after Forward) the last full run.
func (p *Program) value(n *G.Node) Array {
	if p.last == nil {
		return Array{}
	}
	v := p.last.value(n)
	if v == nil && p.last == p.fwd && p.full != nil {
		v = p.full.value(n)
	}
	switch v := v.(type) {
	case *tensor.Dense:
		a := Array{Shape: append([]int(nil), v.Shape()...)}
		if t, err := denseTval(v); err == nil {
			a.F32, a.F64 = t.f32, t.f64
		}
		return a
	case *G.F32:
		return Array{F32: []float32{float32(*v)}}
	case *G.F64:
		return Array{F64: []float64{float64(*v)}}
	}
	return Array{}
}

// RNGState returns the state of the dropout random source, for checkpoints.
func (p *Program) RNGState() ([]byte, error) { return p.b.rng.MarshalBinary() }

// SetRNGState restores a state saved by RNGState.
func (p *Program) SetRNGState(s []byte) error {
	if err := p.b.rng.UnmarshalBinary(s); err != nil {
		return fmt.Errorf("graph: restore dropout RNG: %w", err)
	}
	return nil
}

// SetExecOptions switches optimisations of the executor off (see
// ExecOptions); the program is planned again at its next run. Values are the
// same with any options, up to the rounding of a different order of
// additions (see "Running" in the package documentation).
func (p *Program) SetExecOptions(o ExecOptions) {
	p.opt = o
	p.fwd, p.full, p.last, p.arena = nil, nil, nil, nil
}

// storageBytes is what the values of the program's planned executors
// occupy: the arena's buffers and the roots' own (not those in storage
// that other programs share).
func (p *Program) storageBytes() int {
	n := 0
	if p.arena != nil {
		for k, l := range p.arena.bufs {
			size := 4
			if k.dt == Float64 {
				size = 8
			}
			n += len(l) * k.size * size
		}
	}
	for _, e := range []*executor{p.fwd, p.full} {
		if e == nil {
			continue
		}
		for i, st := range e.steps {
			if p.shared != nil && p.shared.nodes[st.n] {
				continue
			}
			if e.root[len(e.leaves)+i] && st.out.f32 != nil {
				n += 4 * len(st.out.f32)
			} else if e.root[len(e.leaves)+i] && st.out.f64 != nil {
				n += 8 * len(st.out.f64)
			}
		}
	}
	return n
}

// Close releases the program's plans and storage; the Program must not be
// run after.
func (p *Program) Close() error {
	p.fwd, p.full, p.last, p.arena = nil, nil, nil, nil
	return nil
}

// BindParam makes the parameter node n of this program read and write prm's
// storage from the next run on, in place of the parameter n was built with,
// without compiling again: a compiled decoding step uses it to switch between
// key/value caches (see CachedSelfAttention). Nothing is copied. prm must
// have n's shape and dtype, must not already be in the program, and both it
// and the parameter it replaces must be frozen (not Trainable), since
// gradients are fixed when the program is compiled.
func (p *Program) BindParam(n *Node, prm *Param) error {
	switch {
	case n == nil || n.n == nil || n.param == nil:
		return errors.New("graph: BindParam: not a parameter node")
	case prm == nil:
		return fmt.Errorf("graph: BindParam %s: nil parameter", n.name)
	case n.b != p.b:
		return fmt.Errorf("graph: BindParam %s: node from another builder", n.name)
	}
	if n.param == prm {
		return nil
	}
	switch {
	case n.param.Trainable || prm.Trainable:
		return fmt.Errorf("graph: BindParam %s to %s: trainable parameters cannot be rebound", n.param.Name, prm.Name)
	case prm.DType() != p.b.dt:
		return fmt.Errorf("graph: BindParam %s to %s: parameter is %v, program is %v", n.param.Name, prm.Name, prm.DType(), p.b.dt)
	case !slices.Equal(prm.Shape(), n.param.Shape()):
		return fmt.Errorf("graph: BindParam %s to %s: shape %v, want %v", n.param.Name, prm.Name, prm.Shape(), n.param.Shape())
	}
	if _, in := p.b.pnodes[prm]; in {
		return fmt.Errorf("graph: BindParam %s to %s: the parameter is already in the program", n.param.Name, prm.Name)
	}
	if err := G.Let(n.n, prm.value); err != nil {
		return fmt.Errorf("graph: BindParam %s to %s: %w", n.param.Name, prm.Name, err)
	}
	delete(p.b.pnodes, n.param)
	p.b.pnodes[prm] = n
	for i, q := range p.b.params {
		if q == n.param {
			p.b.params[i] = prm
		}
	}
	n.param, n.name = prm, prm.Name
	return nil
}

// setFloats copies the n values d into a float input's storage out,
// converting them to its dtype.
func setFloats[T float32 | float64](name string, out tval, d []T, n int, shape tensor.Shape) error {
	if len(d) != n {
		return fmt.Errorf("graph: input %s: %d values for shape %v", name, len(d), shape)
	}
	switch {
	case out.f32 != nil:
		convertTo(out.f32, d)
	case out.f64 != nil:
		convertTo(out.f64, d)
	default:
		return fmt.Errorf("graph: input %s is an int input, got floats", name)
	}
	return nil
}

// convertTo sets dst[i] = D(src[i]), copying when the types are the same.
func convertTo[D, S float32 | float64](dst []D, src []S) {
	if same, ok := any(src).([]D); ok {
		copy(dst, same)
		return
	}
	for i, v := range src {
		dst[i] = D(v)
	}
}

// ExecOptions switches the executor's optimisations off, one by one, for
// tests (a run computes the same values with and without each) and for
// measurements. The zero value enables all of them; see "Running" in the
// package documentation for what each does.
type ExecOptions struct {
	NoReuse      bool // every value gets storage of its own (no liveness-based reuse)
	NoFold       bool // Scale and SliceCols run as ops (no folding into GEMM's α and strides)
	NoAccumulate bool // products are materialised, then added (no GEMM with β = 1)
	NoInPlace    bool // elementwise ops never overwrite an input that dies there
}
