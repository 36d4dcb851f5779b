package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MatMul returns op(a)·op(b) for 2-D a and b, where op transposes its
// operand when the flag is set: op(a) [m, k] · op(b) [k, n] → [m, n]. The
// transpose is a gemm flag, not a copy. With C = op(A)·op(B) and upstream
// gradient dC the gradients are again products with transpose flags:
//
//	plain     dA = dC·Bᵀ     dB = Aᵀ·dC
//	transA    dA = B·dCᵀ     dB = A·dC
//	transB    dA = dC·B      dB = dCᵀ·A
//	both      dA = Bᵀ·dCᵀ    dB = dCᵀ·Aᵀ
//
// An inner-size mismatch is a build error naming both shapes.
func MatMul(a, b *Node, transA, transB bool) *Node {
	bl, bad := checkFloat("MatMul", a, b)
	if bad != nil {
		return bad
	}
	k := newMM("MatMul", transA, transB)
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		return bl.mmGrads(k, in[0], in[1], dy)
	}
	gn, _, err := bl.apply(k, []bool{true, true}, grads, a.n, b.n)
	return bl.wrap(gn, err, "MatMul", a, b)
}

// mmGrads builds dA and dB of C = α·op(A)·op(B) (see MatMul).
func (bl *Builder) mmGrads(k *mmKernel, a, b, dy *G.Node) ([]*G.Node, error) {
	type operands struct {
		x, y   *G.Node
		tx, ty bool
	}
	var da, db operands
	switch {
	case !k.tA && !k.tB:
		da, db = operands{dy, b, false, true}, operands{a, dy, true, false}
	case k.tA && !k.tB:
		da, db = operands{b, dy, false, true}, operands{a, dy, false, false}
	case !k.tA && k.tB:
		da, db = operands{dy, b, false, false}, operands{dy, a, true, false}
	default:
		da, db = operands{b, dy, true, true}, operands{dy, a, true, true}
	}
	out := make([]*G.Node, 2)
	for i, o := range []operands{da, db} {
		g := newMM(k.name+[]string{".dA", ".dB"}[i], o.tx, o.ty)
		g.alpha = k.alpha
		n, _, err := bl.gradNode(g, o.x, o.y)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// checkFloat is check, then floatInputs: the builder of xs, or a failed
// node when an input is nil, failed, from another builder or an integer node.
func checkFloat(op string, xs ...*Node) (*Builder, *Node) {
	b, bad := check(op, xs...)
	if bad != nil {
		return b, bad
	}
	if err := floatInputs(op, xs...); err != nil {
		return b, b.fail(err)
	}
	return b, nil
}

// floatInputs reports the first integer node among xs.
func floatInputs(op string, xs ...*Node) error {
	for _, x := range xs {
		if x.isInt {
			return fmt.Errorf("graph: %s: %s is an integer node, want a float one", op, x.Name())
		}
	}
	return nil
}

// Transpose returns xᵀ: [R, C] → [C, R]. Its gradient is Transpose(dy).
func Transpose(x *Node) *Node {
	b, bad := checkFloat("Transpose", x)
	if bad != nil {
		return bad
	}
	grads := func(_ []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		g, _, err := b.gradNode(transposeKernel{}, dy)
		return []*G.Node{g}, err
	}
	gn, _, err := b.apply(transposeKernel{}, []bool{true}, grads, x.n)
	return b.wrap(gn, err, "Transpose", x)
}

type transposeKernel struct{}

func (transposeKernel) String() string { return "Transpose" }

func (transposeKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 2 {
		return nil, fmt.Errorf("want a 2-D input, got %v", in[0])
	}
	return tensor.Shape{in[0][1], in[0][0]}, nil
}

func (transposeKernel) forward(out tval, in []tval) error {
	r, c := in[0].shape[0], in[0].shape[1]
	if out.f32 != nil {
		transposeTo(out.f32, in[0].f32, r, c)
	} else {
		transposeTo(out.f64, in[0].f64, r, c)
	}
	return nil
}

// transposeTo writes xᵀ [c, r] into out for x [r, c], in tiles so that both
// sides are read and written a cache line at a time.
func transposeTo[T floatT](out, x []T, r, c int) {
	const tile = 32
	for i0 := 0; i0 < r; i0 += tile {
		i1 := min(i0+tile, r)
		for j0 := 0; j0 < c; j0 += tile {
			j1 := min(j0+tile, c)
			for i := i0; i < i1; i++ {
				for j := j0; j < j1; j++ {
					out[j*r+i] = x[i*c+j]
				}
			}
		}
	}
}
