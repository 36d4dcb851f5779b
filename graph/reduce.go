package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Constant adds an input whose value is set once, here, from float64s; a
// program may still overwrite it with SetInput.
func (b *Builder) Constant(name string, values []float64, shape ...int) *Node {
	n := b.Input(name, shape...)
	if n.err != nil {
		return n
	}
	dst := n.n.Value().(*tensor.Dense)
	if len(values) != dst.Shape().TotalSize() {
		return b.fail(fmt.Errorf("graph: constant %s: %d values for shape %v", name, len(values), shape))
	}
	switch d := dst.Data().(type) {
	case []float64:
		copy(d, values)
	case []float32:
		for i, v := range values {
			d[i] = float32(v)
		}
	}
	return n
}

// Sum returns the sum of every element of x as a scalar.
func Sum(x *Node) *Node {
	b, bad := check("Sum", x)
	if bad != nil {
		return bad
	}
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		g, _, err := b.gradNode(&broadcastKernel{shape: in[0].Shape().Clone()}, dy)
		return []*G.Node{g}, err
	}
	gn, _, err := b.apply(sumKernel{}, []bool{true}, grads, x.n)
	return b.wrap(gn, err, "Sum", x)
}

type sumKernel struct{}

func (sumKernel) String() string { return "Sum" }
func (sumKernel) outShape([]tensor.Shape) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}
func (sumKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		var s float64 // accumulate in float64 to keep float32 sums accurate
		for _, v := range in[0].f32 {
			s += float64(v)
		}
		out.f32[0] = float32(s)
		return nil
	}
	var s float64
	for _, v := range in[0].f64 {
		s += v
	}
	out.f64[0] = s
	return nil
}

// broadcastKernel fills a tensor of a fixed shape with one scalar, divided
// by the number of elements when mean is set (the gradient of Mean).
type broadcastKernel struct {
	shape tensor.Shape
	mean  bool
}

func (k *broadcastKernel) String() string { return fmt.Sprintf("Broadcast%v", k.shape) }
func (k *broadcastKernel) outShape([]tensor.Shape) (tensor.Shape, error) {
	return k.shape.Clone(), nil
}
func (k *broadcastKernel) forward(out tval, in []tval) error {
	n := 1.0
	if k.mean {
		n = float64(k.shape.TotalSize())
	}
	if out.f32 != nil {
		fill(out.f32, float32(float64(in[0].f32[0])/n))
	} else {
		fill(out.f64, in[0].f64[0]/n)
	}
	return nil
}

func fill[T floatT](x []T, v T) {
	for i := range x {
		x[i] = v
	}
}

// Mul returns the elementwise product of two nodes of the same shape.
func Mul(x, y *Node) *Node {
	return product("Mul", x, y, mulKernel{}, mulKernel{}, mulKernel{})
}

type mulKernel struct{ sameShapes }

func (mulKernel) String() string { return "Mul" }
func (mulKernel) forward(out tval, in []tval) error {
	return zip2(out, in, mulTo[float32], mulTo[float64])
}

func mulTo[T floatT](out, a, b []T) {
	for i := range out {
		out[i] = a[i] * b[i]
	}
}

// IntConstant adds an integer input (token ids, targets) whose value is set
// once, here; a program may still overwrite it with SetInts.
func (b *Builder) IntConstant(name string, ids []int, shape ...int) *Node {
	n := b.IntInput(name, shape...)
	if n.err != nil {
		return n
	}
	dst := n.n.Value().(*tensor.Dense).Data().([]int)
	if len(ids) != len(dst) {
		return b.fail(fmt.Errorf("graph: int constant %s: %d values for shape %v", name, len(ids), shape))
	}
	copy(dst, ids)
	return n
}
