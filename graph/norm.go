package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// L2Norm returns the Euclidean norms of the columns or rows of x [R, C]:
// axis 0 reduces over the rows, giving the norm of each column [C]; axis 1
// reduces over the columns, giving the norm of each row [R]. Squares are
// summed in float64. The gradient is dx = dn ⊙ x / n, broadcast along the
// reduced axis, and 0 where a norm is 0.
func L2Norm(x *Node, axis int) *Node {
	b, bad := checkFloat("L2Norm", x)
	if bad != nil {
		return bad
	}
	if axis != 0 && axis != 1 {
		return b.fail(fmt.Errorf("graph: L2Norm of %s: axis %d, want 0 or 1", x.Name(), axis))
	}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		g, _, err := b.gradNode(&l2NormGradKernel{axis: axis}, in[0], out, dy)
		return []*G.Node{g}, err
	}
	gn, _, err := b.apply(&l2NormKernel{axis: axis}, []bool{true}, grads, x.n)
	return b.wrap(gn, err, "L2Norm", x)
}

type l2NormKernel struct{ axis int }

func (k *l2NormKernel) String() string { return fmt.Sprintf("L2Norm(axis %d)", k.axis) }

func (k *l2NormKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x := in[0]
	if x.Dims() != 2 {
		return nil, fmt.Errorf("input shape %v, want [R, C]", x)
	}
	return tensor.Shape{x[1-k.axis]}, nil
}

func (k *l2NormKernel) forward(out tval, in []tval) error {
	r, c := in[0].shape[0], in[0].shape[1]
	if out.f32 != nil {
		l2Norm(out.f32, in[0].f32, r, c, k.axis)
	} else {
		l2Norm(out.f64, in[0].f64, r, c, k.axis)
	}
	return nil
}

// l2Norm writes the norms of x [r, c] along axis into out.
func l2Norm[T floatT](out, x []T, r, c, axis int) {
	if axis == 1 {
		for i := range r {
			var s float64
			for _, v := range x[i*c : (i+1)*c] {
				s += float64(v) * float64(v)
			}
			out[i] = T(math.Sqrt(s))
		}
		return
	}
	acc := make([]float64, c)
	for i := range r {
		for j, v := range x[i*c : (i+1)*c] {
			acc[j] += float64(v) * float64(v)
		}
	}
	for j, s := range acc {
		out[j] = T(math.Sqrt(s))
	}
}

// l2NormGradKernel: (x [R, C], n, dn) → dx = dn ⊙ x / n along the axis.
type l2NormGradKernel struct{ axis int }

func (k *l2NormGradKernel) String() string { return fmt.Sprintf("L2Norm(axis %d).dx", k.axis) }

func (k *l2NormGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x, n, dn := in[0], in[1], in[2]
	if x.Dims() != 2 || n.Dims() != 1 || !n.Eq(dn) || n[0] != x[1-k.axis] {
		return nil, fmt.Errorf("x %v, norms %v and their gradient %v do not match along axis %d", x, n, dn, k.axis)
	}
	return x.Clone(), nil
}

func (k *l2NormGradKernel) forward(out tval, in []tval) error {
	c := in[0].shape[1]
	if out.f32 != nil {
		l2NormGrad(out.f32, in[0].f32, in[1].f32, in[2].f32, c, k.axis)
	} else {
		l2NormGrad(out.f64, in[0].f64, in[1].f64, in[2].f64, c, k.axis)
	}
	return nil
}

func l2NormGrad[T floatT](dx, x, n, dn []T, c, axis int) {
	for i := 0; i*c < len(x); i++ {
		row, drow := x[i*c:(i+1)*c], dx[i*c:(i+1)*c]
		for j, v := range row {
			k := j
			if axis == 1 {
				k = i
			}
			if n[k] == 0 {
				drow[j] = 0
				continue
			}
			drow[j] = dn[k] * v / n[k]
		}
	}
}
