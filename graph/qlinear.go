package graph

import (
	"errors"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// quantTile is the number of weight elements dequantized at a time into a
// builder's scratch (256 KiB in float32), whatever the weight's size.
const quantTile = 1 << 16

// quantScratch is the float storage tiles of quantized weights are
// dequantized into. A Builder's programs run one op at a time, so its ops
// share one.
type quantScratch struct {
	f32   []float32
	f64   []float64
	elems int // weight elements per tile (quantTile; tests set fewer)
	// headRows is the vocabulary rows per block of LinearCrossEntropy (0:
	// by size, see headBlockElems; tests set fewer).
	headRows int
}

func (b *Builder) scratch() *quantScratch {
	if b.qs == nil {
		b.qs = &quantScratch{elems: quantTile}
	}
	return b.qs
}

// tile returns n elements of scratch of type T, growing it when needed.
func tile[T floatT](s *quantScratch, n int) []T {
	var z T
	if _, ok := any(z).(float32); ok {
		if cap(s.f32) < n {
			s.f32 = make([]float32, n)
		}
		return any(s.f32[:n]).([]T)
	}
	if cap(s.f64) < n {
		s.f64 = make([]float64, n)
	}
	return any(s.f64[:n]).([]T)
}

// tileRows is how many rows of a matrix with cols columns make one tile.
func (s *quantScratch) tileRows(cols int) int { return max(1, s.elems/cols) }

// quantLinear is Linear/LinearT for a quantized frozen weight: the product
// runs tile by tile over the weight's rows, each tile dequantized into the
// builder's scratch and fed to gemm. Only x (and the bias) get gradients;
// dx = dy·Wᵀ (dy·W for LinearT) runs the same way.
func quantLinear(name string, x, w, bias *Node, transW bool) *Node {
	ins := []*Node{x}
	if bias != nil {
		ins = append(ins, bias)
	}
	b, bad := check(name, ins...)
	if bad != nil {
		return bad
	}
	if w.b != b {
		return b.fail(fmt.Errorf("graph: %s: inputs come from different builders", name))
	}
	k := &qLinearKernel{name: name, wname: w.name, q: w.q, transW: transW, bias: bias != nil, s: b.scratch()}
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		out := make([]*G.Node, len(in))
		var err error
		dk := &qLinearKernel{name: name + ".dx", wname: w.name, q: w.q, transW: transW, dx: true, s: k.s}
		if out[0], _, err = b.gradNode(dk, dy); err != nil {
			return nil, err
		}
		if len(in) == 2 {
			if out[1], _, err = b.gradNode(colSumKernel{}, dy); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	diff := []bool{true, true}
	gn, _, err := b.apply(k, diff[:len(ins)], grads, gnodes(ins...)...)
	return b.wrap(gn, err, name, append(ins, w)...)
}

// qLinearKernel computes x·op(W) (+ bias), or with dx set dy·op(W)ᵀ, for a
// quantized W: op(W) = W [in, out] for Linear, Wᵀ for LinearT (W [out, in]).
type qLinearKernel struct {
	name, wname string
	q           *QTensor
	transW      bool
	bias, dx    bool
	s           *quantScratch
}

func (k *qLinearKernel) String() string { return k.name }

// inOut is the layer's input and output widths.
func (k *qLinearKernel) inOut() (in, out int) {
	if k.transW {
		return k.q.cols, k.q.rows
	}
	return k.q.rows, k.q.cols
}

func (k *qLinearKernel) outShape(s []tensor.Shape) (tensor.Shape, error) {
	in, out := k.inOut()
	want := in
	if k.dx {
		want = out
	}
	if s[0].Dims() != 2 || s[0][1] != want {
		return nil, fmt.Errorf("input shape %v does not chain with %s %v (want [N, %d])", s[0], k.wname, k.q.Shape(), want)
	}
	if k.bias && (s[1].Dims() != 1 || s[1][0] != out) {
		return nil, fmt.Errorf("bias shape %v, want [%d]", s[1], out)
	}
	if k.dx {
		return tensor.Shape{s[0][0], in}, nil
	}
	return tensor.Shape{s[0][0], out}, nil
}

func (k *qLinearKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		qLinear(k, data[float32](out), in)
	} else {
		qLinear(k, data[float64](out), in)
	}
	return nil
}

func qLinear[T floatT](k *qLinearKernel, y []T, in []tval) {
	x := data[T](in[0])
	n := in[0].shape[0]
	rows, cols := k.q.rows, k.q.cols
	var beta T
	if k.bias {
		bias := data[T](in[1])
		for i := range n {
			copy(y[i*len(bias):(i+1)*len(bias)], bias)
		}
		beta = 1
	}
	tr := k.s.tileRows(cols)
	for r0 := 0; r0 < rows; r0 += tr {
		r1 := min(rows, r0+tr)
		w := tile[T](k.s, (r1-r0)*cols)
		dequantRows(k.q, w, r0, r1)
		switch {
		case !k.dx && !k.transW: // y += x[:, r0:r1]·W[r0:r1, :]
			gemm(false, false, n, cols, r1-r0, 1, x[r0:], rows, w, cols, beta, y, cols)
			beta = 1
		case !k.dx && k.transW: // y[:, r0:r1] = x·W[r0:r1, :]ᵀ
			gemm(false, true, n, r1-r0, cols, 1, x, cols, w, cols, beta, y[r0:], rows)
		case k.dx && !k.transW: // dx[:, r0:r1] = dy·W[r0:r1, :]ᵀ
			gemm(false, true, n, r1-r0, cols, 1, x, cols, w, cols, 0, y[r0:], rows)
		default: // dx += dy[:, r0:r1]·W[r0:r1, :]
			gemm(false, false, n, cols, r1-r0, 1, x[r0:], rows, w, cols, beta, y, cols)
			beta = 1
		}
	}
}

// quantEmbedding is Embedding for a quantized frozen table: each looked-up
// row is dequantized into the output. The table gets no gradient.
func quantEmbedding(table, ids *Node) *Node {
	b, bad := check("Embedding", ids)
	if bad != nil {
		return bad
	}
	if table.b != b {
		return b.fail(errors.New("graph: Embedding: inputs come from different builders"))
	}
	if !ids.isInt {
		return b.fail(fmt.Errorf("graph: Embedding: ids %s is not an integer input", ids.Name()))
	}
	gn, _, err := b.apply(&qEmbedKernel{ids: ids.Name(), q: table.q}, []bool{false}, nil, ids.n)
	return b.wrap(gn, err, "Embedding", ids, table)
}

type qEmbedKernel struct {
	ids string
	q   *QTensor
}

func (*qEmbedKernel) String() string { return "Embedding" }

func (k *qEmbedKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[0].Dims() != 1 {
		return nil, fmt.Errorf("ids shape %v, want [N]", in[0])
	}
	return tensor.Shape{in[0][0], k.q.cols}, nil
}

func (k *qEmbedKernel) forward(out tval, in []tval) error {
	if err := checkIDs(k.ids, in[0].ints, k.q.rows); err != nil {
		return err
	}
	d := k.q.cols
	for i, id := range in[0].ints {
		if out.f32 != nil {
			dequantRows(k.q, out.f32[i*d:(i+1)*d], id, id+1)
		} else {
			dequantRows(k.q, out.f64[i*d:(i+1)*d], id, id+1)
		}
	}
	return nil
}

// QuantColNorms returns the column norms ‖W[:, j] + Δ[:, j]‖ [cols] of a
// quantized weight W [rows, cols] plus updates: deltas[i] [rows, w_i] is
// added to the columns [offsets[i], offsets[i]+w_i). It reads W tile by tile
// like Linear (DoRA's norm on a quantized base) and has no gradient: wrap it
// in Detach, as DoRA holds the norm constant.
func QuantColNorms(w *Node, deltas []*Node, offsets []int) *Node {
	b, bad := check("QuantColNorms", deltas...)
	if bad != nil {
		return bad
	}
	if w == nil || w.err != nil || w.q == nil || w.b != b {
		return b.fail(errors.New("graph: QuantColNorms: w is not a quantized weight of this builder"))
	}
	if len(deltas) == 0 || len(deltas) != len(offsets) {
		return b.fail(fmt.Errorf("graph: QuantColNorms: %d deltas and %d offsets (want at least one of each, as many)", len(deltas), len(offsets)))
	}
	for i, d := range deltas {
		s := d.Shape()
		if len(s) != 2 || s[0] != w.q.rows || offsets[i] < 0 || offsets[i]+s[1] > w.q.cols {
			return b.fail(fmt.Errorf("graph: QuantColNorms: delta %d %v at column %d does not fit %s %v", i, s, offsets[i], w.name, w.q.Shape()))
		}
	}
	k := &qNormKernel{q: w.q, offsets: offsets, s: b.scratch()}
	gn, _, err := b.apply(k, make([]bool, len(deltas)), nil, gnodes(deltas...)...)
	return b.wrap(gn, err, "QuantColNorms", append(deltas, w)...)
}

type qNormKernel struct {
	q       *QTensor
	offsets []int
	s       *quantScratch
	acc     []float64
}

func (*qNormKernel) String() string { return "QuantColNorms" }

func (k *qNormKernel) outShape([]tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape{k.q.cols}, nil
}

func (k *qNormKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		qNorms(k, in)
		for j, v := range k.acc {
			out.f32[j] = float32(v)
		}
	} else {
		qNorms(k, in)
		copy(out.f64, k.acc)
	}
	return nil
}

// qNorms accumulates the column norms into k.acc, in float64.
func qNorms(k *qNormKernel, in []tval) {
	rows, cols := k.q.rows, k.q.cols
	if len(k.acc) != cols {
		k.acc = make([]float64, cols)
	}
	clear(k.acc)
	tr := k.s.tileRows(cols)
	for r0 := 0; r0 < rows; r0 += tr {
		r1 := min(rows, r0+tr)
		w := tile[float64](k.s, (r1-r0)*cols)
		dequantRows(k.q, w, r0, r1)
		for i, d := range in {
			width, off := d.shape[1], k.offsets[i]
			for r := r0; r < r1; r++ {
				dst := w[(r-r0)*cols+off : (r-r0)*cols+off+width]
				if d.f32 != nil {
					for j, v := range d.f32[r*width : (r+1)*width] {
						dst[j] += float64(v)
					}
				} else {
					for j, v := range d.f64[r*width : (r+1)*width] {
						dst[j] += v
					}
				}
			}
		}
		for i, v := range w {
			k.acc[i%cols] += v * v
		}
	}
	for j, v := range k.acc {
		k.acc[j] = math.Sqrt(v)
	}
}
