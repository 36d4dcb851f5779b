package lora

import (
	"math"

	"github.com/golora/golora/graph"
)

// DoRA (Liu et al. 2024, arXiv 2402.09353) as PEFT computes it, written as
// a composition of generic graph nodes: Gorgonia derives its gradients.
//
// A layer with base weight W [in, out] and the adapter's updates ΔW = s·A·B
// (per slice, in its columns) scales each output column j by
//
//	g_j = m_j / ‖W[:, j] + ΔW[:, j]‖      (the norm over the inputs, held constant)
//
// so that, without LoRA dropout, y = g ⊙ (x·W + s·(x·A)·B) + b, the layer
// of weight g ⊙ (W + ΔW): W + ΔW gives the direction, m the magnitude of
// each output column. With LoRA dropout (training) PEFT adds
// (g − 1) ⊙ xd·W + g ⊙ s·(xd·A)·B to the base output x·W + b, where xd is
// the dropped-out input; addLinear builds that form. An embedding's table
// E [V, d] is treated the same way over its d columns.

// doraScale builds g = m / Detach(‖W + s·A·B‖) [out] for the base weight
// node w (the table for an embedding).
func (ad *Adapter) doraScale(w *graph.Node) *graph.Node {
	b := w.Builder()
	if w.Quantized() {
		// the same norms, read from the quantized weight tile by tile
		ds, offs := make([]*graph.Node, len(ad.Slices)), make([]int, len(ad.Slices))
		for i, s := range ad.Slices {
			ds[i] = graph.Scale(graph.MatMul(b.Param(s.A), b.Param(s.B), false, false), ad.Scale)
			offs[i] = s.Offset
		}
		return graph.Div(b.Param(ad.Magnitude), graph.Detach(graph.QuantColNorms(w, ds, offs)))
	}
	v := w // [in, out]
	for _, s := range ad.Slices {
		d := graph.Scale(graph.MatMul(b.Param(s.A), b.Param(s.B), false, false), ad.Scale) // s·A·B [in, w]
		v = addUpdate(v, d, s, nil)
	}
	n := graph.Detach(graph.L2Norm(v, 0)) // column norms [out]: a constant for backpropagation (PEFT, DoRA §4.3)
	return graph.Div(b.Param(ad.Magnitude), n)
}

// doraLinear is a DoRA layer without dropout: g ⊙ (x·W + s·(x·A)·B) + b.
func (ad *Adapter) doraLinear(x, w, bias *graph.Node) *graph.Node {
	y := graph.ScaleCols(ad.addUpdates(graph.Linear(x, w, nil), x, nil), ad.doraScale(w))
	if bias != nil {
		y = graph.AddBias(y, bias)
	}
	return y
}

// doraDelta is what a DoRA adapter adds to a base output whose pre-bias
// part, for the input the adapter reads, is base: g ⊙ (base + L) − base,
// where L are the low-rank updates (added into base by updates).
func (ad *Adapter) doraDelta(base, w *graph.Node, updates func(*graph.Node) *graph.Node) *graph.Node {
	return graph.Sub(graph.ScaleCols(updates(base), ad.doraScale(w)), base)
}

// columnNorms returns ‖w[:, j] + Δ[:, j]‖ for w and Δ [in, out], in
// float64.
func columnNorms(w, delta []float64, in, out int) []float64 {
	n := make([]float64, out)
	for i := range in {
		for j := range out {
			v := w[i*out+j] + delta[i*out+j]
			n[j] += v * v
		}
	}
	for j := range n {
		n[j] = math.Sqrt(n[j])
	}
	return n
}

// initMagnitude sets m = ‖W + s·A·B‖ from the base weight's values w
// [in, out] (after a PiSSA residual is taken), so that g = 1.
func initMagnitude(ad *Adapter, w []float64, in, out int) error {
	if ad.Magnitude == nil {
		return nil
	}
	return ad.Magnitude.SetValues(columnNorms(w, deltaOf(ad, in, out).RawMatrix().Data, in, out))
}

// mergeDoRA replaces w by g ⊙ (W + ΔW), computed in float64 and rounded
// once, and returns g for unmergeDoRA (PEFT keeps the norm for the same
// reason: after the merge it can no longer be computed from W).
func mergeDoRA(w *graph.Param, ad *Adapter) []float64 {
	shape := w.Shape()
	in, out := shape[0], shape[1]
	vals := w.Values()
	delta := deltaOf(ad, in, out).RawMatrix().Data
	norms := columnNorms(vals, delta, in, out)
	m := ad.Magnitude.Values()
	g := make([]float64, out)
	for j := range g {
		g[j] = m[j] / norms[j]
	}
	for i := range in {
		for j := range out {
			k := i*out + j
			vals[k] = g[j] * (vals[k] + delta[k])
		}
	}
	_ = w.SetValues(vals)
	return g
}

// unmergeDoRA inverts mergeDoRA: W = W'/g − ΔW.
func unmergeDoRA(w *graph.Param, ad *Adapter, g []float64) {
	shape := w.Shape()
	in, out := shape[0], shape[1]
	vals := w.Values()
	delta := deltaOf(ad, in, out).RawMatrix().Data
	for i := range in {
		for j := range out {
			k := i*out + j
			vals[k] = vals[k]/g[j] - delta[k]
		}
	}
	_ = w.SetValues(vals)
}
