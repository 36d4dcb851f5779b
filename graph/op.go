package graph

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// floatT is the element type of a kernel: float32 or float64.
type floatT interface{ ~float32 | ~float64 }

// tval is one input or the output of a kernel: its storage and shape. Exactly
// one of f32, f64 and ints is set; a scalar has an empty shape and one element.
type tval struct {
	f32   []float32
	f64   []float64
	ints  []int
	shape tensor.Shape
}

// data returns v's storage as []T; T must match v's dtype.
func data[T floatT](v tval) []T {
	var z T
	if _, ok := any(z).(float32); ok {
		return any(v.f32).([]T)
	}
	return any(v.f64).([]T)
}

func (v tval) dims(i int) int { return v.shape[i] }

// kernel is the numeric body of a fused op: a shape rule and a forward pass
// that overwrites every element of out.
type kernel interface {
	String() string
	outShape(in []tensor.Shape) (tensor.Shape, error)
	forward(out tval, in []tval) error
}

// orderer is a gradient kernel that takes some inputs (the forward op's
// output) only so that it runs after the forward pass, whose state it
// reads: it never reads their values, so the executor does not keep them
// alive for it. Without this, a GELU's output, say, would live until the
// backward pass even where nothing else needs it.
type orderer interface {
	orderOnly() []int
}

// inPlaceInputs lists the inputs a kernel may overwrite with its output
// (elementwise kernels whose output element i depends only on element i of
// that input).
func inPlaceInputs(k kernel) []int {
	switch k.(type) {
	case addKernel, mulKernel:
		return []int{0, 1}
	case subKernel, *scaleKernel, divKernel, *addColsKernel, addBiasKernel, scaleColsKernel, scaleRowsKernel, *xentGradKernel:
		return []int{0}
	}
	return nil
}

// gradFunc builds the gradient nodes of an op's inputs from the upstream
// gradient dy; entries for inputs that need no gradient may be nil.
type gradFunc func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error)

// fusedOp adapts a kernel to Gorgonia's Op and SDOp interfaces. Each node owns
// its op value and with it the output buffer, which is reused from run to run
// instead of being allocated every step.
type fusedOp struct {
	k     kernel
	id    int64
	dt    DType
	typ   hm.Type
	arity int
	diff  []bool
	grads gradFunc
	// symErr receives the error of a failed gradient function, which
	// Gorgonia's SymDiffError would otherwise hide (it has no Unwrap).
	symErr *error

	buf    *tensor.Dense // output storage for tensor outputs
	scalar G.Value       // output storage for a scalar output (*G.F32 or *G.F64)
	ins    []tval        // scratch, reused
	shapes []tensor.Shape
	lastIn []tensor.Shape // input shapes of the last run, and its output shape
	out    tensor.Shape
	stash  interface{} // state a kernel keeps for its gradient ops
	runs   int64       // how many times Do ran (tests check what is skipped)
}

var (
	_ G.Op   = (*fusedOp)(nil)
	_ G.SDOp = (*fusedOp)(nil)
)

func (o *fusedOp) Arity() int       { return o.arity }
func (o *fusedOp) Type() hm.Type    { return o.typ }
func (o *fusedOp) ReturnsPtr() bool { return false }
func (o *fusedOp) CallsExtern() bool {
	return false
}
func (o *fusedOp) OverwritesInput() int { return -1 }
func (o *fusedOp) String() string       { return o.k.String() }
func (o *fusedOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "golora.%s#%d", o.k.String(), o.id)
}
func (o *fusedOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

func (o *fusedOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	shapes := make([]tensor.Shape, len(ds))
	for i, d := range ds {
		s, err := dimSizerShape(d)
		if err != nil {
			return nil, err
		}
		shapes[i] = s
	}
	return o.k.outShape(shapes)
}

func dimSizerShape(d G.DimSizer) (tensor.Shape, error) {
	if s, ok := d.(tensor.Shape); ok {
		return s, nil
	}
	return nil, fmt.Errorf("graph: cannot read the shape of %T", d)
}

func (o *fusedOp) DiffWRT(n int) []bool {
	out := make([]bool, n)
	copy(out, o.diff)
	return out
}

func (o *fusedOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if o.grads == nil {
		return nil, fmt.Errorf("graph: %s has no gradient", o.k)
	}
	gs, err := o.grads(inputs, output, grad)
	if err != nil {
		err = fmt.Errorf("graph: gradient of %s: %w", o.k, err)
		if o.symErr != nil && *o.symErr == nil {
			*o.symErr = err
		}
		return nil, err
	}
	return G.Nodes(gs), nil
}

func toTval(v G.Value) (tval, error) {
	switch x := v.(type) {
	case *tensor.Dense:
		return denseTval(x)
	case *G.F32:
		return tval{f32: []float32{float32(*x)}, shape: tensor.ScalarShape()}, nil
	case *G.F64:
		return tval{f64: []float64{float64(*x)}, shape: tensor.ScalarShape()}, nil
	}
	return tval{}, fmt.Errorf("graph: unsupported value %T", v)
}

// denseTval views x's storage as a tval without copying (and, unlike
// Dense.Data, without allocating).
func denseTval(x *tensor.Dense) (tval, error) {
	t := tval{shape: x.Shape()}
	switch x.Dtype() {
	case tensor.Float32:
		t.f32 = x.Float32s()
	case tensor.Float64:
		t.f64 = x.Float64s()
	case tensor.Int:
		t.ints = x.Ints()
	default:
		return tval{}, fmt.Errorf("graph: unsupported tensor dtype %v", x.Dtype())
	}
	return t, nil
}

func (o *fusedOp) Do(inputs ...G.Value) (G.Value, error) {
	if len(inputs) != o.arity {
		return nil, fmt.Errorf("graph: %s: %d inputs, want %d", o.k, len(inputs), o.arity)
	}
	o.runs++
	o.ins, o.shapes = o.ins[:0], o.shapes[:0]
	for i, v := range inputs {
		t, err := toTval(v)
		if err != nil {
			return nil, fmt.Errorf("graph: %s input %d: %w", o.k, i, err)
		}
		o.ins = append(o.ins, t)
		o.shapes = append(o.shapes, t.shape)
	}
	shape, err := o.outShape()
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", o.k, err)
	}
	if shape.IsScalar() {
		return o.doScalar(shape)
	}
	if o.buf == nil || !o.buf.Shape().Eq(shape) {
		o.buf = newDense(o.dt, shape)
	}
	out := tval{shape: o.buf.Shape()}
	if o.dt == Float64 {
		out.f64 = o.buf.Float64s()
	} else {
		out.f32 = o.buf.Float32s()
	}
	if err := o.k.forward(out, o.ins); err != nil {
		return nil, fmt.Errorf("graph: %s: %w", o.k, err)
	}
	return o.buf, nil
}

// outShape is k.outShape of the current input shapes, remembered from the
// last run while the input shapes stay the same (the usual case: a run
// then checks and allocates nothing).
func (o *fusedOp) outShape() (tensor.Shape, error) {
	if o.out != nil && len(o.lastIn) == len(o.shapes) {
		same := true
		for i, s := range o.shapes {
			same = same && s.Eq(o.lastIn[i])
		}
		if same {
			return o.out, nil
		}
	}
	shape, err := o.k.outShape(o.shapes)
	if err != nil {
		return nil, err
	}
	o.lastIn = o.lastIn[:0]
	for _, s := range o.shapes {
		o.lastIn = append(o.lastIn, s.Clone())
	}
	o.out = shape
	return shape, nil
}

// doScalar runs a kernel with a scalar output (a loss) into a reused value.
func (o *fusedOp) doScalar(shape tensor.Shape) (G.Value, error) {
	var f32 [1]float32
	var f64 [1]float64
	out := tval{shape: shape}
	if o.dt == Float64 {
		out.f64 = f64[:]
	} else {
		out.f32 = f32[:]
	}
	if err := o.k.forward(out, o.ins); err != nil {
		return nil, fmt.Errorf("graph: %s: %w", o.k, err)
	}
	switch v := o.scalar.(type) {
	case *G.F64:
		*v = G.F64(f64[0])
	case *G.F32:
		*v = G.F32(f32[0])
	default:
		if o.dt == Float64 {
			o.scalar = G.NewF64(f64[0])
		} else {
			o.scalar = G.NewF32(f32[0])
		}
	}
	return o.scalar, nil
}

func newDense(dt DType, shape tensor.Shape) *tensor.Dense {
	n := shape.TotalSize()
	if dt == Float64 {
		return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(make([]float64, n)))
	}
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(make([]float32, n)))
}

// apply creates a node computing k over children. diff says which inputs are
// differentiable; grads builds their gradients.
func (b *Builder) apply(k kernel, diff []bool, grads gradFunc, children ...*G.Node) (*G.Node, *fusedOp, error) {
	shapes := make([]tensor.Shape, len(children))
	types := make([]hm.Type, 0, len(children)+1)
	for i, c := range children {
		shapes[i] = c.Shape()
		types = append(types, c.Type())
	}
	shape, err := k.outShape(shapes)
	if err != nil {
		return nil, nil, err
	}
	var outT hm.Type = b.dt.tensorDtype()
	if !shape.IsScalar() {
		outT = G.TensorType{Dims: shape.Dims(), Of: b.dt.tensorDtype()}
	}
	types = append(types, outT)
	b.nextID++
	op := &fusedOp{
		k:      k,
		id:     b.nextID,
		dt:     b.dt,
		typ:    hm.NewFnType(types...),
		arity:  len(children),
		diff:   diff,
		grads:  grads,
		symErr: &b.symErr,
	}
	n, err := G.ApplyOp(op, children...)
	if err != nil {
		return nil, nil, err
	}
	return n, op, nil
}

// gradNode is apply for gradient ops, which are not differentiated again.
func (b *Builder) gradNode(k kernel, children ...*G.Node) (*G.Node, *fusedOp, error) {
	return b.apply(k, nil, nil, children...)
}

// zip2 is the forward pass of a kernel with two inputs: f32 or f64, by the
// output's dtype, on the output's and the inputs' storage.
func zip2(out tval, in []tval, f32 func(out, a, b []float32), f64 func(out, a, b []float64)) error {
	if out.f32 != nil {
		f32(out.f32, in[0].f32, in[1].f32)
	} else {
		f64(out.f64, in[0].f64, in[1].f64)
	}
	return nil
}

// product builds k(x, y) for a kernel whose gradients are those of a
// product: gx(dy, y) for x and gy(dy, x) for y (Mul, ScaleRows, ScaleCols).
// Both inputs must be float nodes.
func product(name string, x, y *Node, k, gx, gy kernel) *Node {
	b, bad := checkFloat(name, x, y)
	if bad != nil {
		return bad
	}
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		dx, _, err := b.gradNode(gx, dy, in[1])
		if err != nil {
			return nil, err
		}
		dyy, _, err := b.gradNode(gy, dy, in[0])
		return []*G.Node{dx, dyy}, err
	}
	gn, _, err := b.apply(k, []bool{true, true}, grads, x.n, y.n)
	return b.wrap(gn, err, name, x, y)
}

// saving is an elementwise kernel that keeps one value per element of its
// last forward pass for the backward pass (tanh(u) for GELU, σ(x) for
// SiLU), in the output's dtype;
// f32 and f64 compute a span: y and the saved values s from x.
type saving struct {
	sameShapes
	s32 []float32
	s64 []float64
	f32 func(y, s, x []float32)
	f64 func(y, s, x []float64)
}

func (k *saving) forward(out tval, in []tval) error {
	eachSpan(k, out, in, k.size(out))
	return nil
}

// span computes elements [lo, hi).
func (k *saving) span(out tval, in []tval, lo, hi int) {
	if out.f32 != nil {
		k.f32(out.f32[lo:hi], k.s32[lo:hi], in[0].f32[lo:hi])
	} else {
		k.f64(out.f64[lo:hi], k.s64[lo:hi], in[0].f64[lo:hi])
	}
}

// size sizes the saved values to out's element count, which it returns.
func (k *saving) size(out tval) int {
	n := out.shape.TotalSize()
	if out.f32 != nil {
		k.s32 = sizedBuf(k.s32, n)
	} else {
		k.s64 = sizedBuf(k.s64, n)
	}
	return n
}

// spanner is a kernel that computes any span [lo, hi) of its output's
// elements on its own.
type spanner interface {
	span(out tval, in []tval, lo, hi int)
}

// eachSpan runs k.span over [0, n): in one call, with no goroutine and no
// allocation, when the work is too small to share, else in parallel spans.
func eachSpan(k spanner, out tval, in []tval, n int) {
	if rowWorkers(n, 1) == 1 {
		k.span(out, in, 0, n)
		return
	}
	forSpans(n, func(lo, hi int) { k.span(out, in, lo, hi) })
}
