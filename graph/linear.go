package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear returns x·W + b for x [N, in], W [in, out] (GPT-2's layout) and an
// optional bias b [out] (nil for none): [N, in] → [N, out]. It is one op: the
// bias is added in place after one gemm, and the backward pass uses gemm
// transpose flags instead of transposed copies.
func Linear(x, w, bias *Node) *Node {
	return linear(x, w, bias, false)
}

// LinearT returns x·Wᵀ + b for W [out, in], the layout of a tied LM head that
// reuses the token embedding: [N, in] → [N, out].
func LinearT(x, w, bias *Node) *Node {
	return linear(x, w, bias, true)
}

func linear(x, w, bias *Node, transW bool) *Node {
	name := "Linear"
	if transW {
		name = "LinearT"
	}
	if w != nil && w.err == nil && w.q != nil {
		return quantLinear(name, x, w, bias, transW)
	}
	ins := []*Node{x, w}
	if bias != nil {
		ins = append(ins, bias)
	}
	b, bad := check(name, ins...)
	if bad != nil {
		return bad
	}
	k := newMM(name, false, transW)
	k.bias = bias != nil
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		out := make([]*G.Node, len(in))
		var err error
		// dx = dy·Wᵀ (or dy·W when W is stored transposed)
		if out[0], _, err = b.gradNode(newMM(name+".dx", false, !transW), dy, in[1]); err != nil {
			return nil, err
		}
		// dW = xᵀ·dy, or dyᵀ·x for the transposed layout
		if transW {
			out[1], _, err = b.gradNode(newMM(name+".dW", true, false), dy, in[0])
		} else {
			out[1], _, err = b.gradNode(newMM(name+".dW", true, false), in[0], dy)
		}
		if err != nil {
			return nil, err
		}
		if len(in) == 3 {
			if out[2], _, err = b.gradNode(colSumKernel{}, dy); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	diff := []bool{true, true, true}
	gn, _, err := b.apply(k, diff[:len(ins)], grads, gnodes(ins...)...)
	return b.wrap(gn, err, name, ins...)
}

// mmKernel computes α·op(A)·op(B) (+ bias) for 2-D A and B: the kernel of
// MatMul, Linear, LinearT and of their gradients. alpha is 1 unless an
// executor folds a scale into the product.
type mmKernel struct {
	tA, tB bool
	bias   bool
	alpha  float64
	name   string
}

// newMM returns a kernel for op(A)·op(B) with α = 1.
func newMM(name string, tA, tB bool) *mmKernel {
	return &mmKernel{tA: tA, tB: tB, alpha: 1, name: name}
}

func (k *mmKernel) String() string { return k.name }

func (k *mmKernel) dims(a, b tensor.Shape) (m, n, kk int, err error) {
	if a.Dims() != 2 || b.Dims() != 2 {
		return 0, 0, 0, fmt.Errorf("want 2-D operands, got %v and %v", a, b)
	}
	m, kk = a[0], a[1]
	if k.tA {
		m, kk = a[1], a[0]
	}
	k2, n := b[0], b[1]
	if k.tB {
		k2, n = b[1], b[0]
	}
	if kk != k2 {
		return 0, 0, 0, fmt.Errorf("shapes %v and %v do not chain (inner sizes %d and %d)", a, b, kk, k2)
	}
	return m, n, kk, nil
}

func (k *mmKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	m, n, _, err := k.dims(in[0], in[1])
	if err != nil {
		return nil, err
	}
	if k.bias && (in[2].Dims() != 1 || in[2][0] != n) {
		return nil, fmt.Errorf("bias shape %v, want [%d]", in[2], n)
	}
	return tensor.Shape{m, n}, nil
}

func (k *mmKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		return mmForward[float32](k, out, in)
	}
	return mmForward[float64](k, out, in)
}

func mmForward[T floatT](k *mmKernel, out tval, in []tval) error {
	m, n, kk, err := k.dims(in[0].shape, in[1].shape)
	if err != nil {
		return err
	}
	a, b, c := data[T](in[0]), data[T](in[1]), data[T](out)
	var beta T
	if k.bias {
		bias := data[T](in[2])
		for i := 0; i < m; i++ {
			copy(c[i*n:(i+1)*n], bias)
		}
		beta = 1
	}
	gemm(k.tA, k.tB, m, n, kk, T(k.alpha), a, in[0].shape[1], b, in[1].shape[1], beta, c, n)
	return nil
}

// colSumKernel sums a [N, d] matrix over its rows: the bias gradient.
type colSumKernel struct{}

func (colSumKernel) String() string { return "ColSum" }

func (colSumKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 2 {
		return nil, fmt.Errorf("want a 2-D input, got %v", in[0])
	}
	return tensor.Shape{in[0][1]}, nil
}

func (colSumKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		colSum(data[float32](out), data[float32](in[0]), in[0].shape[1])
	} else {
		colSum(data[float64](out), data[float64](in[0]), in[0].shape[1])
	}
	return nil
}

func colSum[T floatT](out, x []T, d int) {
	clear(out)
	for i := 0; i+d <= len(x); i += d {
		row := x[i : i+d]
		for j, v := range row {
			out[j] += v
		}
	}
}

// Add returns the elementwise sum of two nodes of the same shape (a residual
// connection).
func Add(x, y *Node) *Node {
	b, bad := check("Add", x, y)
	if bad != nil {
		return bad
	}
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		return []*G.Node{dy, dy}, nil
	}
	gn, _, err := b.apply(addKernel{}, []bool{true, true}, grads, x.n, y.n)
	return b.wrap(gn, err, "Add", x, y)
}

// sameShapes gives a kernel whose inputs all have one shape that shape as its
// output's.
type sameShapes struct{}

func (sameShapes) outShape(in []tensor.Shape) (tensor.Shape, error) {
	for _, s := range in[1:] {
		if !in[0].Eq(s) {
			return nil, fmt.Errorf("shapes %v and %v differ", in[0], s)
		}
	}
	return in[0].Clone(), nil
}

type addKernel struct{ sameShapes }

func (addKernel) String() string { return "Add" }

func (addKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		addTo(data[float32](out), data[float32](in[0]), data[float32](in[1]))
	} else {
		addTo(data[float64](out), data[float64](in[0]), data[float64](in[1]))
	}
	return nil
}

func addTo[T floatT](out, a, b []T) {
	for i := range out {
		out[i] = a[i] + b[i]
	}
}
