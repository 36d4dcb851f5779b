package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SliceCols returns the columns [from, to) of x: [N, d] → [N, to−from].
// Its gradient is dy padded with zeros back to [N, d]. A range outside
// [0, d), or an empty one, is a build error.
func SliceCols(x *Node, from, to int) *Node {
	b, bad := checkFloat("SliceCols", x)
	if bad != nil {
		return bad
	}
	k := &sliceColsKernel{from: from, to: to}
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		g, _, err := b.gradNode(&padColsKernel{from: from, width: in[0].Shape()[1]}, dy)
		return []*G.Node{g}, err
	}
	gn, _, err := b.apply(k, []bool{true}, grads, x.n)
	return b.wrap(gn, err, "SliceCols", x)
}

// sliceColsKernel copies columns [from, to) of a [N, d] input.
type sliceColsKernel struct{ from, to int }

func (k *sliceColsKernel) String() string { return fmt.Sprintf("SliceCols[%d:%d]", k.from, k.to) }

func (k *sliceColsKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x := in[0]
	if x.Dims() != 2 {
		return nil, fmt.Errorf("input shape %v, want [N, d]", x)
	}
	if k.from < 0 || k.to <= k.from || k.to > x[1] {
		return nil, fmt.Errorf("columns [%d, %d) of an input %v: want 0 ≤ from < to ≤ %d", k.from, k.to, x, x[1])
	}
	return tensor.Shape{x[0], k.to - k.from}, nil
}

func (k *sliceColsKernel) forward(out tval, in []tval) error {
	d := in[0].shape[1]
	if out.f32 != nil {
		copyCols(out.f32, in[0].f32, d, k.from, k.to-k.from)
	} else {
		copyCols(out.f64, in[0].f64, d, k.from, k.to-k.from)
	}
	return nil
}

// copyCols copies columns [from, from+w) of x (rows of d) into out (rows
// of w).
func copyCols[T floatT](out, x []T, d, from, w int) {
	for i := 0; i*w < len(out); i++ {
		copy(out[i*w:(i+1)*w], x[i*d+from:i*d+from+w])
	}
}

// padColsKernel places a [N, w] input at columns [from, from+w) of a
// [N, width] output that is zero elsewhere: the gradient of SliceCols.
type padColsKernel struct{ from, width int }

func (k *padColsKernel) String() string { return fmt.Sprintf("PadCols[%d:]", k.from) }

func (k *padColsKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x := in[0]
	if x.Dims() != 2 || k.from < 0 || k.from+x[1] > k.width {
		return nil, fmt.Errorf("input %v does not fit at column %d of %d", x, k.from, k.width)
	}
	return tensor.Shape{x[0], k.width}, nil
}

func (k *padColsKernel) forward(out tval, in []tval) error {
	w := in[0].shape[1]
	if out.f32 != nil {
		padCols(out.f32, in[0].f32, k.width, k.from, w)
	} else {
		padCols(out.f64, in[0].f64, k.width, k.from, w)
	}
	return nil
}

func padCols[T floatT](out, x []T, d, from, w int) {
	clear(out)
	for i := 0; i*w < len(x); i++ {
		copy(out[i*d+from:i*d+from+w], x[i*w:(i+1)*w])
	}
}

// AddCols returns y with u added into its columns [offset, offset+w):
// y [N, d], u [N, w] → [N, d]. The gradients are dy for y and dy's columns
// [offset, offset+w) for u. It is how an update of part of a fused
// projection's output (GPT-2's c_attn: q | k | v) is added.
func AddCols(y, u *Node, offset int) *Node {
	b, bad := checkFloat("AddCols", y, u)
	if bad != nil {
		return bad
	}
	k := &addColsKernel{offset: offset}
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		w := in[1].Shape()[1]
		du, _, err := b.gradNode(&sliceColsKernel{from: offset, to: offset + w}, dy)
		return []*G.Node{dy, du}, err
	}
	gn, _, err := b.apply(k, []bool{true, true}, grads, y.n, u.n)
	return b.wrap(gn, err, "AddCols", y, u)
}

// addColsKernel: (y [N, d], u [N, w]) → y with u added at column offset.
type addColsKernel struct{ offset int }

func (k *addColsKernel) String() string { return fmt.Sprintf("AddCols[%d:]", k.offset) }

func (k *addColsKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	y, u := in[0], in[1]
	if y.Dims() != 2 || u.Dims() != 2 || y[0] != u[0] {
		return nil, fmt.Errorf("y %v and u %v, want [N, d] and [N, w]", y, u)
	}
	if k.offset < 0 || k.offset+u[1] > y[1] {
		return nil, fmt.Errorf("u %v at column %d does not fit in y %v", u, k.offset, y)
	}
	return y.Clone(), nil
}

func (k *addColsKernel) forward(out tval, in []tval) error {
	d, w := in[0].shape[1], in[1].shape[1]
	if out.f32 != nil {
		addCols(out.f32, in[0].f32, in[1].f32, d, k.offset, w)
	} else {
		addCols(out.f64, in[0].f64, in[1].f64, d, k.offset, w)
	}
	return nil
}

func addCols[T floatT](out, y, u []T, d, from, w int) {
	copy(out, y)
	for i := 0; i*w < len(u); i++ {
		dst := out[i*d+from : i*d+from+w]
		for j, v := range u[i*w : (i+1)*w] {
			dst[j] += v
		}
	}
}

// ScaleCols multiplies column j of x by g[j]: x [N, d], g [d] → [N, d].
// The gradients are ScaleCols(dy, g) for x and dg[j] = Σ_i dy[i,j]·x[i,j].
func ScaleCols(x, g *Node) *Node {
	return product("ScaleCols", x, g, scaleColsKernel{}, scaleColsKernel{}, colDotKernel{})
}

type scaleColsKernel struct{}

func (scaleColsKernel) String() string { return "ScaleCols" }

func (scaleColsKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return rowVectorShape(in[0], in[1])
}

// rowVectorShape checks x [N, d] against a vector v [d].
func rowVectorShape(x, v tensor.Shape) (tensor.Shape, error) {
	if x.Dims() != 2 || v.Dims() != 1 || v[0] != x[1] {
		return nil, fmt.Errorf("x %v and vector %v, want [N, d] and [d]", x, v)
	}
	return x.Clone(), nil
}

func (scaleColsKernel) forward(out tval, in []tval) error {
	return zip2(out, in, scaleCols[float32], scaleCols[float64])
}

func scaleCols[T floatT](out, x, g []T) {
	d := len(g)
	for i := 0; i+d <= len(x); i += d {
		o, row := out[i:i+d], x[i:i+d]
		for j, v := range row {
			o[j] = v * g[j]
		}
	}
}

// colDotKernel: (dy [N, d], x [N, d]) → [d], Σ_i dy[i,j]·x[i,j].
type colDotKernel struct{}

func (colDotKernel) String() string { return "ColDot" }

func (colDotKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 2 || !in[0].Eq(in[1]) {
		return nil, fmt.Errorf("shapes %v and %v, want two equal [N, d]", in[0], in[1])
	}
	return tensor.Shape{in[0][1]}, nil
}

func (colDotKernel) forward(out tval, in []tval) error {
	return zip2(out, in, colDot[float32], colDot[float64])
}

func colDot[T floatT](out, a, b []T) {
	d := len(out)
	clear(out)
	for i := 0; i+d <= len(a); i += d {
		ra, rb := a[i:i+d], b[i:i+d]
		for j := range out {
			out[j] += ra[j] * rb[j]
		}
	}
}

// AddBias adds b to every row of x: x [N, d], b [d] → [N, d]. The
// gradients are dy and the column sums of dy.
func AddBias(x, bias *Node) *Node {
	b, bad := checkFloat("AddBias", x, bias)
	if bad != nil {
		return bad
	}
	grads := func(_ []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		db, _, err := b.gradNode(colSumKernel{}, dy)
		return []*G.Node{dy, db}, err
	}
	gn, _, err := b.apply(addBiasKernel{}, []bool{true, true}, grads, x.n, bias.n)
	return b.wrap(gn, err, "AddBias", x, bias)
}

type addBiasKernel struct{}

func (addBiasKernel) String() string { return "AddBias" }

func (addBiasKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return rowVectorShape(in[0], in[1])
}

func (addBiasKernel) forward(out tval, in []tval) error {
	return zip2(out, in, addBias[float32], addBias[float64])
}

func addBias[T floatT](out, x, b []T) {
	d := len(b)
	for i := 0; i+d <= len(x); i += d {
		o, row := out[i:i+d], x[i:i+d]
		for j, v := range row {
			o[j] = v + b[j]
		}
	}
}
