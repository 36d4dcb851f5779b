package graph

import (
	"errors"
	"fmt"

	"gorgonia.org/tensor"
)

// ScaleRows multiplies row i of x by m[i]: x [N, d], m [N] → [N, d]. The
// gradients are ScaleRows(dy, m) for x and dm[i] = Σ_j dy[i,j]·x[i,j]. With
// a 0/1 mask from RowMask it keeps the rows of one group and zeroes the
// others; a zero factor gives a zero row even where x is not finite.
func ScaleRows(x, m *Node) *Node {
	return product("ScaleRows", x, m, scaleRowsKernel{}, scaleRowsKernel{}, rowDotKernel{})
}

type scaleRowsKernel struct{}

func (scaleRowsKernel) String() string { return "ScaleRows" }

func (scaleRowsKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x, m := in[0], in[1]
	if x.Dims() != 2 || m.Dims() != 1 || m[0] != x[0] {
		return nil, fmt.Errorf("x %v and row factors %v, want [N, d] and [N]", x, m)
	}
	return x.Clone(), nil
}

func (scaleRowsKernel) forward(out tval, in []tval) error {
	return zip2(out, in, scaleRows[float32], scaleRows[float64])
}

func scaleRows[T floatT](out, x, m []T) {
	d := len(x) / len(m)
	for i, s := range m {
		o, row := out[i*d:(i+1)*d], x[i*d:(i+1)*d]
		if s == 0 {
			clear(o)
			continue
		}
		for j, v := range row {
			o[j] = s * v
		}
	}
}

// rowDotKernel: (dy [N, d], x [N, d]) → [N], Σ_j dy[i,j]·x[i,j].
type rowDotKernel struct{}

func (rowDotKernel) String() string { return "RowDot" }

func (rowDotKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 2 || !in[0].Eq(in[1]) {
		return nil, fmt.Errorf("shapes %v and %v, want two equal [N, d]", in[0], in[1])
	}
	return tensor.Shape{in[0][0]}, nil
}

func (rowDotKernel) forward(out tval, in []tval) error {
	return zip2(out, in, rowDot[float32], rowDot[float64])
}

func rowDot[T floatT](out, a, b []T) {
	d := len(a) / len(out)
	for i := range out {
		var s T
		ra, rb := a[i*d:(i+1)*d], b[i*d:(i+1)*d]
		for j := range ra {
			s += ra[j] * rb[j]
		}
		out[i] = s
	}
}

// RowMask turns an integer node ids [N] into a float mask [N]: 1 where
// ids[i] == value, else 0. Every id must lie in [lo, hi): another is a run
// error (Program.Run or Forward) naming the input, the position and the id,
// so a bad group index is reported rather than silently masked out. It has
// no gradient (its input is integer).
func RowMask(ids *Node, value, lo, hi int) *Node {
	b, bad := check("RowMask", ids)
	if bad != nil {
		return bad
	}
	if !ids.isInt {
		return b.fail(fmt.Errorf("graph: RowMask: %s is not an integer node", ids.Name()))
	}
	if lo >= hi {
		return b.fail(fmt.Errorf("graph: RowMask of %s: empty range [%d, %d)", ids.Name(), lo, hi))
	}
	k := &rowMaskKernel{ids: ids.Name(), value: value, lo: lo, hi: hi}
	gn, _, err := b.apply(k, []bool{false}, nil, ids.n)
	n := b.wrap(gn, err, "RowMask", ids)
	n.detached = true
	return n
}

// rowMaskKernel: ids [N] → [N] of 0 and 1.
type rowMaskKernel struct {
	ids           string
	value, lo, hi int
}

func (k *rowMaskKernel) String() string { return fmt.Sprintf("RowMask(=%d)", k.value) }

func (k *rowMaskKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 1 {
		return nil, fmt.Errorf("ids shape %v, want [N]", in[0])
	}
	return in[0].Clone(), nil
}

func (k *rowMaskKernel) forward(out tval, in []tval) error {
	ids := in[0].ints
	if ids == nil {
		return errors.New("ids are not integers")
	}
	for i, id := range ids {
		if id < k.lo || id >= k.hi {
			return fmt.Errorf("%s: value %d at position %d is outside [%d, %d)", k.ids, id, i, k.lo, k.hi)
		}
	}
	if out.f32 != nil {
		rowMask(out.f32, ids, k.value)
	} else {
		rowMask(out.f64, ids, k.value)
	}
	return nil
}

func rowMask[T floatT](out []T, ids []int, v int) {
	for i, id := range ids {
		out[i] = 0
		if id == v {
			out[i] = 1
		}
	}
}
