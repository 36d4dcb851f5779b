package graph

import (
	"errors"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// headBlockElems bounds one block of logits of LinearCrossEntropy: N rows
// times the block's vocabulary rows (8 MiB in float32).
const headBlockElems = 1 << 21

// LinearCrossEntropy returns SoftmaxCrossEntropy(LinearT(h, w, nil),
// targets, mask, smoothing), the loss of a language model's head, without
// ever holding the [N, V] logits: h is [N, d], w the head's weight [V, d]
// (a tied token embedding's layout; float or quantized), targets an
// IntInput [N] and mask a float [N] node of row weights or nil.
//
// The forward pass computes the logits a block of vocabulary rows at a time
// (about 2 Mi elements: 2,048 rows of 1,024 positions) and keeps each row's
// running max and Σ exp(x − max), rescaled whenever a later block raises the
// max (the online softmax), plus the target's logit. The gradient computes
// every block again, and from it dh = Σ_blocks dlogits·W[block] and dW[block] =
// dlogitsᵀ·h, with dlogits as in SoftmaxCrossEntropy. So it trades one more
// product of the head (two when w trains) for the 2·N·V floats of the
// logits and their gradient: the models use it after SetLossInBlocks,
// which the command line's --recompute turns on. A quantized w is
// dequantized a block at a time into the builder's scratch and gets no
// gradient.
func LinearCrossEntropy(h, w, targets, mask *Node, smoothing float64) *Node {
	const name = "LinearCrossEntropy"
	b, ins, bad := xentInputs(name, "h", h, targets, mask, smoothing)
	if bad != nil {
		return bad
	}
	switch {
	case w == nil:
		return b.fail(fmt.Errorf("graph: %s: w is nil", name))
	case w.err != nil:
		return &Node{b: b, err: w.err}
	case w.b != b:
		return b.fail(fmt.Errorf("graph: %s: inputs come from different builders", name))
	case w.isInt:
		return b.fail(fmt.Errorf("graph: %s: w %q is an integer input", name, w.Name()))
	}
	k := &lxKernel{eps: smoothing, mask: mask != nil, targets: targets.Name(), q: w.q, wname: w.Name(), s: b.scratch()}
	children := gnodes(ins...)
	if w.q == nil { // a float weight is an input (index 1 of the kernel's inputs)
		children = append([]*G.Node{h.n, w.n}, children[1:]...)
	}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		res := make([]*G.Node, len(in))
		// The gradients read the row statistics the forward pass kept in
		// k; out orders them after it.
		gin := append([]*G.Node{out, dy}, in...)
		var err error
		if res[0], _, err = b.gradNode(&lxGradKernel{fwd: k}, gin...); err != nil {
			return nil, err
		}
		if k.q == nil {
			res[1], _, err = b.gradNode(&lxGradKernel{fwd: k, dw: true}, gin...)
		}
		return res, err
	}
	diff := make([]bool, len(children))
	diff[0] = true
	if k.q == nil {
		diff[1] = true
	}
	gn, _, err := b.apply(k, diff, grads, children...)
	return b.wrap(gn, err, name, append(ins, w)...)
}

// lxKernel: (h [N, d], w [V, d] unless quantized, targets int [N],
// mask [N]?) → the scalar loss. It keeps each row's max and Σ exp(x − max)
// for the gradient kernels.
type lxKernel struct {
	eps     float64
	mask    bool
	targets string
	q       *QTensor // the quantized weight, or nil
	wname   string
	s       *quantScratch

	rowMax []float64   // each row's max logit, a value of the kernel's dtype
	rowExp []float64   // Σ_v exp(x_v − max)
	rowTgt []float64   // the target's logit
	rowSum []float64   // Σ_v x_v (label smoothing)
	blk    interface{} // []float32 or []float64: one block of logits, reused
}

func (k *lxKernel) String() string { return "LinearCrossEntropy" }

// split returns the positions of h, w (−1 when quantized), targets and mask
// (−1 without) among the kernel's inputs, after the two leading ones of a
// gradient kernel (off = 2).
func (k *lxKernel) split(off int) (h, w, t, m int) {
	h, w, t, m = off, off+1, off+2, -1
	if k.q != nil {
		w, t = -1, off+1
	}
	if k.mask {
		m = t + 1
	}
	return h, w, t, m
}

// vocab is the head's vocabulary size V and width d, given h's shape.
func (k *lxKernel) vocab(in []tensor.Shape, w int) (v, d int) {
	if k.q != nil {
		return k.q.rows, k.q.cols
	}
	if in[w].Dims() != 2 {
		return -1, -1
	}
	return in[w][0], in[w][1]
}

func (k *lxKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	h, w, t, m := k.split(0)
	v, d := k.vocab(in, w)
	if in[h].Dims() != 2 || v < 0 || in[h][1] != d {
		ws := "?"
		if k.q != nil {
			ws = fmt.Sprint(k.q.Shape())
		} else if w >= 0 {
			ws = fmt.Sprint(in[w])
		}
		return nil, fmt.Errorf("h shape %v does not chain with %s %s (want [N, d] and [V, d])", in[h], k.wname, ws)
	}
	n := in[h][0]
	if in[t].Dims() != 1 || in[t][0] != n {
		return nil, fmt.Errorf("targets shape %v, want [%d] for h %v", in[t], n, in[h])
	}
	if m >= 0 && (in[m].Dims() != 1 || in[m][0] != n) {
		return nil, fmt.Errorf("mask shape %v, want [%d] for h %v", in[m], n, in[h])
	}
	return tensor.ScalarShape(), nil
}

// blockRows is the number of vocabulary rows per block for n positions.
func (k *lxKernel) blockRows(n, v int) int {
	r := k.s.headRows
	if r == 0 {
		r = max(64, headBlockElems/max(n, 1))
	}
	return min(r, v)
}

// eachBlock calls f with every block [v0, v1) of the logits, L = h·W[v0:v1]ᵀ
// [n, v1−v0] (row stride v1−v0), and W[v0:v1] itself.
func eachBlock[T floatT](k *lxKernel, h []T, n, d, v int, win []T, f func(v0, v1 int, l, wb []T)) {
	br := k.blockRows(n, v)
	blk, _ := k.blk.([]T)
	if len(blk) < n*br {
		blk = make([]T, n*br)
		k.blk = blk
	}
	for v0 := 0; v0 < v; v0 += br {
		v1 := min(v, v0+br)
		var wb []T
		if k.q != nil {
			wb = tile[T](k.s, (v1-v0)*d)
			dequantRows(k.q, wb, v0, v1)
		} else {
			wb = win[v0*d : v1*d]
		}
		l := blk[:n*(v1-v0)]
		gemm(false, true, n, v1-v0, d, 1, h, d, wb, d, 0, l, v1-v0)
		f(v0, v1, l, wb)
	}
}

func (k *lxKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		l, err := lxForward[float32](k, in)
		out.f32[0] = float32(l)
		return err
	}
	l, err := lxForward[float64](k, in)
	out.f64[0] = l
	return err
}

func lxForward[T floatT](k *lxKernel, in []tval) (float64, error) {
	hi, wi, ti, mi := k.split(0)
	ids := in[ti].ints
	n, d := in[hi].dims(0), in[hi].dims(1)
	v := k.vocabSize(in, wi)
	var mask []T
	if mi >= 0 {
		mask = data[T](in[mi])
	}
	msum, err := checkTargets(k.targets, ids, mask, v)
	if err != nil {
		return 0, err
	}
	for _, s := range []*[]float64{&k.rowMax, &k.rowExp, &k.rowTgt, &k.rowSum} {
		*s = sizedBuf(*s, n)
	}
	for i := range n {
		k.rowMax[i], k.rowExp[i], k.rowTgt[i], k.rowSum[i] = math.Inf(-1), 0, 0, 0
	}
	var win []T
	if wi >= 0 {
		win = data[T](in[wi])
	}
	eachBlock(k, data[T](in[hi]), n, d, v, win, func(v0, v1 int, l, _ []T) {
		w := v1 - v0
		forRows(n, w, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				if rowWeight(mask, i) == 0 {
					continue
				}
				row := l[i*w : (i+1)*w]
				if t := ids[i]; t >= v0 && t < v1 {
					k.rowTgt[i] = float64(row[t-v0])
				}
				if k.eps != 0 {
					k.rowSum[i] += rowSum(row)
				}
				if bm := float64(rowMax(row)); bm > k.rowMax[i] {
					k.rowExp[i] *= math.Exp(k.rowMax[i] - bm)
					k.rowMax[i] = bm
				}
				k.rowExp[i] += expSubSum(row, row, T(k.rowMax[i]))
			}
		})
	})
	if msum == 0 {
		return 0, nil
	}
	var loss float64
	for i := range n {
		m := rowWeight(mask, i)
		if m == 0 {
			continue
		}
		lse := k.rowMax[i] + math.Log(k.rowExp[i])
		l := (1 - k.eps) * (lse - k.rowTgt[i])
		if k.eps != 0 {
			l += k.eps * (lse - k.rowSum[i]/float64(v))
		}
		loss += m * l
	}
	return loss / msum, nil
}

// vocabSize is V: the quantized weight's rows, or the first dimension of
// the float weight, input w.
func (k *lxKernel) vocabSize(in []tval, w int) int {
	if k.q != nil {
		return k.q.rows
	}
	return in[w].dims(0)
}

// lxGradKernel: (loss, g, h, w?, targets, mask?) → dh [N, d], or with dw
// set dW [V, d]: the logits computed again block by block, turned into
// dlogits with the forward pass's row statistics, and multiplied out.
type lxGradKernel struct {
	fwd *lxKernel
	dw  bool
}

func (k *lxGradKernel) String() string {
	if k.dw {
		return "LinearCrossEntropy.dW"
	}
	return "LinearCrossEntropy.dh"
}

func (k *lxGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if in[1].TotalSize() != 1 {
		return nil, fmt.Errorf("upstream gradient shape %v, want a scalar", in[1])
	}
	h, w, _, _ := k.fwd.split(2)
	if k.dw {
		return in[w].Clone(), nil
	}
	return in[h].Clone(), nil
}

func (k *lxGradKernel) forward(out tval, in []tval) error {
	if out.f32 != nil {
		return lxBackward[float32](k, data[float32](out), in)
	}
	return lxBackward[float64](k, data[float64](out), in)
}

func lxBackward[T floatT](k *lxGradKernel, out []T, in []tval) error {
	f := k.fwd
	hi, wi, ti, mi := f.split(2)
	ids := in[ti].ints
	n, d := in[hi].dims(0), in[hi].dims(1)
	v := f.vocabSize(in, wi)
	if len(f.rowMax) != n {
		return errors.New("the forward pass kept no row statistics for this batch")
	}
	var mask []T
	if mi >= 0 {
		mask = data[T](in[mi])
	}
	var msum float64
	for i := range ids {
		msum += rowWeight(mask, i)
	}
	g := float64(data[T](in[1])[0])
	h := data[T](in[hi])
	var win []T
	if wi >= 0 {
		win = data[T](in[wi])
	}
	var beta T // dh: the first block writes, the later ones add
	eachBlock(f, h, n, d, v, win, func(v0, v1 int, l, wb []T) {
		w := v1 - v0
		forRows(n, w, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := l[i*w : (i+1)*w]
				c := rowWeight(mask, i)
				if c == 0 || msum == 0 {
					clear(row)
					continue
				}
				t := ids[i] - v0 // the target's column in this block, if it is in it
				if t >= w {
					t = -1
				}
				dlogitsRow(row, row, T(f.rowMax[i]), f.rowExp[i], c*g/msum, f.eps, v, t)
			}
		})
		if k.dw { // dW[v0:v1] = dlᵀ·h
			gemm(true, false, w, d, n, 1, l, w, h, d, 0, out[v0*d:], d)
			return
		}
		gemm(false, false, n, d, w, 1, l, w, wb, d, beta, out, d) // dh += dl·W[v0:v1]
		beta = 1
	})
	return nil
}
