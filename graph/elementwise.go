package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Scale returns s·x for a constant s, any shape; its gradient is s·dy. A
// non-finite s is a build error.
func Scale(x *Node, s float64) *Node {
	b, bad := checkFloat("Scale", x)
	if bad != nil {
		return bad
	}
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return b.fail(fmt.Errorf("graph: Scale of %s: factor %v is not finite", x.Name(), s))
	}
	grads := func(_ []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		g, _, err := b.gradNode(&scaleKernel{s: s}, dy)
		return []*G.Node{g}, err
	}
	gn, _, err := b.apply(&scaleKernel{s: s}, []bool{true}, grads, x.n)
	return b.wrap(gn, err, "Scale", x)
}

// scaleKernel multiplies its input by s.
type scaleKernel struct{ s float64 }

func (k *scaleKernel) String() string { return fmt.Sprintf("Scale(%g)", k.s) }

func (*scaleKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}

func (k *scaleKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		scaleTo(out.f32, in[0].f32, float32(k.s))
	} else {
		scaleTo(out.f64, in[0].f64, k.s)
	}
	return nil
}

func scaleTo[T floatT](out, x []T, s T) {
	for i, v := range x[:len(out)] {
		out[i] = s * v
	}
}

// Sub returns x − y for nodes of the same shape; the gradients are dy and
// −dy.
func Sub(x, y *Node) *Node {
	b, bad := checkFloat("Sub", x, y)
	if bad != nil {
		return bad
	}
	grads := func(_ []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		neg, _, err := b.gradNode(&scaleKernel{s: -1}, dy)
		return []*G.Node{dy, neg}, err
	}
	gn, _, err := b.apply(subKernel{}, []bool{true, true}, grads, x.n, y.n)
	return b.wrap(gn, err, "Sub", x, y)
}

type subKernel struct{ sameShapes }

func (subKernel) String() string { return "Sub" }
func (subKernel) forward(out tval, in []tval) error {
	return zip2(out, in, subTo[float32], subTo[float64])
}

func subTo[T floatT](out, a, b []T) {
	for i := range out {
		out[i] = a[i] - b[i]
	}
}

// Div returns x / y elementwise for nodes of the same shape; the gradients
// are dy/y and −dy·x/y². A zero in y gives ±Inf or NaN, as in IEEE-754
// division.
func Div(x, y *Node) *Node {
	b, bad := checkFloat("Div", x, y)
	if bad != nil {
		return bad
	}
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		gx, _, err := b.gradNode(divKernel{}, dy, in[1])
		if err != nil {
			return nil, err
		}
		gy, _, err := b.gradNode(divGradKernel{}, dy, in[0], in[1])
		return []*G.Node{gx, gy}, err
	}
	gn, _, err := b.apply(divKernel{}, []bool{true, true}, grads, x.n, y.n)
	return b.wrap(gn, err, "Div", x, y)
}

type divKernel struct{ sameShapes }

func (divKernel) String() string { return "Div" }
func (divKernel) forward(out tval, in []tval) error {
	return zip2(out, in, divTo[float32], divTo[float64])
}

func divTo[T floatT](out, a, b []T) {
	for i := range out {
		out[i] = a[i] / b[i]
	}
}

// divGradKernel: (dy, x, y) → −dy·x/y², the gradient of x/y by y.
type divGradKernel struct{}

func (divGradKernel) String() string { return "Div.dy" }
func (divGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if !in[0].Eq(in[1]) || !in[0].Eq(in[2]) {
		return nil, fmt.Errorf("shapes %v, %v and %v differ", in[0], in[1], in[2])
	}
	return in[0].Clone(), nil
}
func (divGradKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		divGrad(out.f32, in[0].f32, in[1].f32, in[2].f32)
	} else {
		divGrad(out.f64, in[0].f64, in[1].f64, in[2].f64)
	}
	return nil
}

func divGrad[T floatT](out, dy, x, y []T) {
	for i := range out {
		out[i] = -dy[i] * (x[i] / y[i]) / y[i]
	}
}

// Mean returns the mean of every element of x as a scalar; its gradient
// spreads dy/n over x's n elements.
func Mean(x *Node) *Node {
	b, bad := checkFloat("Mean", x)
	if bad != nil {
		return bad
	}
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		g, _, err := b.gradNode(&broadcastKernel{shape: in[0].Shape().Clone(), mean: true}, dy)
		return []*G.Node{g}, err
	}
	gn, _, err := b.apply(meanKernel{}, []bool{true}, grads, x.n)
	return b.wrap(gn, err, "Mean", x)
}

type meanKernel struct{}

func (meanKernel) String() string { return "Mean" }
func (meanKernel) outShape([]tensor.Shape) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (meanKernel) forward(out tval, in []tval) error {
	var s float64 // accumulated in float64, as Sum does
	if out.f32 != nil {
		for _, v := range in[0].f32 {
			s += float64(v)
		}
		out.f32[0] = float32(s / float64(len(in[0].f32)))
		return nil
	}
	for _, v := range in[0].f64 {
		s += v
	}
	out.f64[0] = s / float64(len(in[0].f64))
	return nil
}

// Detach returns a copy of x through which symbolic differentiation does
// not pass: the gradient of anything computed from Detach(x) stops here, as
// PyTorch's x.detach(). Parameters reached only through Detach get no
// gradient (Compile does not differentiate with respect to them).
func Detach(x *Node) *Node {
	b, bad := checkFloat("Detach", x)
	if bad != nil {
		return bad
	}
	gn, _, err := b.apply(detachKernel{}, []bool{false}, nil, x.n)
	n := b.wrap(gn, err, "Detach", x)
	n.detached = true
	return n
}

// detachKernel copies its input (an executor may make it a view instead).
type detachKernel struct{}

func (detachKernel) String() string { return "Detach" }
func (detachKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return in[0].Clone(), nil
}
func (detachKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		copy(out.f32, in[0].f32)
	} else {
		copy(out.f64, in[0].f64)
	}
	return nil
}

// heldKernel stands in for a Detach while CheckGradients holds it: it
// outputs the value the Detach had, whatever its input.
type heldKernel struct {
	shape tensor.Shape
	f32   []float32
	f64   []float64
}

func (*heldKernel) String() string { return "Detach(held)" }
func (k *heldKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if !in[0].Eq(k.shape) {
		return nil, fmt.Errorf("input %v, the held value is %v", in[0], k.shape)
	}
	return k.shape.Clone(), nil
}
func (k *heldKernel) forward(out tval, _ []tval) error {
	if out.f32 != nil {
		copy(out.f32, k.f32)
	} else {
		copy(out.f64, k.f64)
	}
	return nil
}
