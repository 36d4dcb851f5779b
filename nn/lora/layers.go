package lora

import (
	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
)

// Adapter is one named adapter's weights on one layer.
type Adapter struct {
	// Name is the adapter's name in its Model ("default" for Inject).
	Name string
	// Rank is r, the rank of each slice.
	Rank int
	// Alpha is α; Scale is the factor s of the update: α/r, or α/√r for
	// rsLoRA.
	Alpha, Scale float64
	// Dropout is the LoRA dropout probability on the layer's input (Linear
	// only).
	Dropout float64
	// Slices are the low-rank updates. A plain layer has one slice over all
	// output columns; a fused projection adapted on some parts has one
	// slice per part.
	Slices []Slice
	// Magnitude is DoRA's magnitude vector m [out] ([d] for an embedding),
	// named <path>.lora_magnitude_vector.<adapter>.weight, or nil for plain
	// LoRA (see Config.DoRA).
	Magnitude *graph.Param
}

// Slice is one low-rank update s·(x·A)·B added to the output columns
// [Offset, Offset+Width) of a layer. For a Linear, A is [in, r]; for an
// Embedding of V rows, A is [V, r] and is looked up by token id. B is
// [r, Width].
type Slice struct {
	// Part is the fused part the slice adapts ("q"), or "" for the whole
	// output.
	Part          string
	Offset, Width int
	A, B          *graph.Param
}

// params lists A and B of every slice.
func (a *Adapter) params() []*graph.Param {
	var ps []*graph.Param
	for _, s := range a.Slices {
		ps = append(ps, s.A, s.B)
	}
	if a.Magnitude != nil {
		ps = append(ps, a.Magnitude)
	}
	return ps
}

// routing sends each row of a batch to one adapter (Model.SetRowAdapters).
type routing struct {
	rows  *graph.Node
	names []string
	masks []*graph.Node // RowMask(rows, k, −1, K) per adapter, built once
}

// mask returns the 0/1 row mask of adapter k, adding it to rows' graph on
// first use. Its run checks every row value against [−1, K).
func (r *routing) mask(k int) *graph.Node {
	if r.masks == nil {
		r.masks = make([]*graph.Node, len(r.names))
	}
	if r.masks[k] == nil {
		r.masks[k] = graph.RowMask(r.rows, k, -1, len(r.names))
	}
	return r.masks[k]
}

// adapted is the adapter state that Linear and Embedding share. A Model
// keeps it in step across its layers.
type adapted struct {
	path     string
	adapters []*Adapter
	active   string // adapter used by Forward; "" for none
	merged   string // adapter merged into the base weight; "" for none
	disabled bool
	route    *routing
	gen      *graph.Generation // the Model's state version, recorded by every graph built
	doraG    []float64         // a merged DoRA adapter's column factors g, for Unmerge
}

// Path is the layer's dotted path in its host ("h.0.attn.c_attn").
func (a *adapted) Path() string { return a.path }

// Adapter returns the named adapter's weights on this layer, or nil when
// the adapter does not adapt it.
func (a *adapted) Adapter(name string) *Adapter {
	for _, ad := range a.adapters {
		if ad.Name == name {
			return ad
		}
	}
	return nil
}

// Adapters lists the adapters on this layer in the order they were added.
func (a *adapted) Adapters() []*Adapter { return append([]*Adapter(nil), a.adapters...) }

// Merged names the adapter merged into the base weight, or "".
func (a *adapted) Merged() string { return a.merged }

// current is the adapter Forward applies: nil when disabled, merged or
// without an active adapter here.
func (a *adapted) current() *Adapter {
	if a.disabled || a.merged != "" || a.active == "" {
		return nil
	}
	return a.Adapter(a.active)
}

func (a *adapted) remove(name string) {
	for i, ad := range a.adapters {
		if ad.Name == name {
			a.adapters = append(a.adapters[:i:i], a.adapters[i+1:]...)
			return
		}
	}
}

func (a *adapted) loraParams() []*graph.Param {
	var ps []*graph.Param
	for _, ad := range a.adapters {
		ps = append(ps, ad.params()...)
	}
	return ps
}

// Linear is a LoRA wrapper around a *nn.Linear, plain or fused:
//
//	y = x·W + b + s·(dropout(x)·A)·B          [N, in] → [N, out]
//
// with W [in, out] and b frozen, A [in, r] and B [r, out] trainable. A
// fused projection (GPT-2's c_attn, q | k | v) may be adapted on some of its
// parts only: each adapted part j has its own A_j [in, r] and B_j
// [r, out/parts], added to the part's block of columns (loralib's
// MergedLinear). x·A·B is computed as (x·A)·B: A·B is never formed while
// training.
//
// A Linear is made and kept in step by a Model; use Model's methods to add,
// switch, merge or remove adapters.
type Linear struct {
	// Base is the wrapped layer; its weight is frozen.
	Base *nn.Linear
	// Parts is the fused layout of the output columns (equal blocks), nil
	// for a plain projection.
	Parts []string
	adapted
}

var (
	_ nn.Layer = (*Linear)(nil)
	_ nn.Layer = (*Embedding)(nil)
)

// Forward computes the layer for x [N, in] → [N, out] with the active
// adapter (or with the per-row adapters the Model routes), or the base
// layer alone when adapters are disabled, merged into W, or none is active.
// It builds the graph from generic nodes (see the package documentation):
//
//	y = Linear(x, W, b)                                      // W, b frozen
//	y = Add(y, Scale(MatMul(MatMul(Dropout(x), A), B), s))   // or AddCols per part
//
// and a DoRA adapter scales the columns (see Config.DoRA).
func (l *Linear) Forward(x *graph.Node) *graph.Node {
	if x.Err() != nil {
		return x
	}
	b := x.Builder()
	b.DependOn(l.gen)
	w := b.Param(l.Base.Weight)
	var bias *graph.Node
	if l.Base.Bias != nil {
		bias = b.Param(l.Base.Bias)
	}
	if l.route != nil && !l.disabled {
		y := graph.Linear(x, w, bias) // [N, out]
		for k, name := range l.route.names {
			if ad := l.Adapter(name); ad != nil {
				y = ad.addLinear(y, x, w, l.route.mask(k))
			}
		}
		return y
	}
	ad := l.current()
	switch {
	case ad == nil:
		return graph.Linear(x, w, bias)
	case ad.Magnitude != nil && ad.Dropout == 0:
		return ad.doraLinear(x, w, bias) // g ⊙ (x·W + s·(x·A)·B) + b
	}
	return ad.addLinear(graph.Linear(x, w, bias), x, w, nil)
}

// addLinear adds the adapter's contribution for input x to the base output
// y = x·W + b [N, out], on the rows mask selects (nil: every row): its
// updates s·(xd·A_j)·B_j with xd = Dropout(x) (x itself when p = 0), or for
// DoRA PEFT's (g − 1) ⊙ xd·W + g ⊙ s·(xd·A)·B.
func (ad *Adapter) addLinear(y, x, w, mask *graph.Node) *graph.Node {
	xd := graph.Dropout(x, ad.Dropout)
	if ad.Magnitude == nil {
		return ad.addUpdates(y, xd, mask)
	}
	u := ad.doraDelta(graph.Linear(xd, w, nil), w, func(base *graph.Node) *graph.Node { return ad.addUpdates(base, xd, nil) })
	if mask != nil {
		u = graph.ScaleRows(u, mask)
	}
	return graph.Add(y, u)
}

// addUpdates adds the adapter's updates s·(xd·A_j)·B_j to y [N, out], each
// into its slice's columns, on the rows mask selects (nil: every row).
func (ad *Adapter) addUpdates(y, xd, mask *graph.Node) *graph.Node {
	b := xd.Builder()
	for _, s := range ad.Slices {
		xa := graph.MatMul(xd, b.Param(s.A), false, false)  // [N, r]
		u := graph.MatMul(xa, b.Param(s.B), false, false)   // [N, w]
		y = addUpdate(y, graph.Scale(u, ad.Scale), s, mask) // y[:, o:o+w] += s·u
	}
	return y
}

// addUpdate adds u [N, w] into the columns of slice s of y [N, out], on
// the rows mask selects (nil: every row).
func addUpdate(y, u *graph.Node, s Slice, mask *graph.Node) *graph.Node {
	if mask != nil {
		u = graph.ScaleRows(u, mask)
	}
	if s.Part == "" && s.Offset == 0 {
		return graph.Add(y, u)
	}
	return graph.AddCols(y, u, s.Offset)
}

// Params returns the base weight and bias, then A and B of every slice of
// every adapter, adapters in the order they were added.
func (l *Linear) Params() []*graph.Param {
	return append(l.Base.Params(), l.loraParams()...)
}

// Embedding is a LoRA wrapper around a *nn.Embedding (loralib's Embedding):
//
//	y = E[ids] + s·A[ids]·B          ids [N] → [N, d]
//
// with the table E [V, d] frozen, A [V, r] (row ids[i] looked up like E's)
// and B [r, d] trainable. A starts at zero and B random, the reverse of
// Linear, so that ΔW = s·A·B is still 0 at step 0. Embeddings have no LoRA
// dropout.
type Embedding struct {
	// Base is the wrapped table; its weight is frozen.
	Base *nn.Embedding
	adapted
}

// Forward looks up ids (an integer node [N]) with the active adapter, or
// the per-row adapters the Model routes, or the base table alone:
//
//	y = Add(Embedding(E, ids), Scale(MatMul(Embedding(A, ids), B), s))
//
// and a DoRA adapter scales the columns by g = m / ‖E + s·A·B‖.
func (e *Embedding) Forward(ids *graph.Node) *graph.Node {
	if ids.Err() != nil {
		return ids
	}
	b := ids.Builder()
	b.DependOn(e.gen)
	table := b.Param(e.Base.Weight)
	y := graph.Embedding(table, ids) // [N, d], E frozen
	if e.route != nil && !e.disabled {
		base := y
		for k, name := range e.route.names {
			if ad := e.Adapter(name); ad != nil {
				y = ad.addEmbedding(y, base, ids, table, e.route.mask(k))
			}
		}
		return y
	}
	ad := e.current()
	switch {
	case ad == nil:
		return y
	case ad.Magnitude != nil:
		return graph.ScaleCols(ad.embeddingUpdates(y, ids, nil), ad.doraScale(table)) // g ⊙ (E[ids] + s·A[ids]·B)
	}
	return ad.embeddingUpdates(y, ids, nil)
}

// addEmbedding adds the adapter's contribution to y on the rows mask
// selects: its update s·A[ids]·B, or for DoRA g ⊙ (E[ids] + s·A[ids]·B) −
// E[ids], with base = E[ids].
func (ad *Adapter) addEmbedding(y, base, ids, table, mask *graph.Node) *graph.Node {
	if ad.Magnitude == nil {
		return ad.embeddingUpdates(y, ids, mask)
	}
	u := ad.doraDelta(base, table, func(base *graph.Node) *graph.Node { return ad.embeddingUpdates(base, ids, nil) })
	return graph.Add(y, graph.ScaleRows(u, mask))
}

// embeddingUpdates adds s·A[ids]·B to y [N, d] on the rows mask selects.
func (ad *Adapter) embeddingUpdates(y, ids, mask *graph.Node) *graph.Node {
	b := ids.Builder()
	for _, s := range ad.Slices {
		xa := graph.Embedding(b.Param(s.A), ids)          // A's rows [N, r]
		u := graph.MatMul(xa, b.Param(s.B), false, false) // [N, d]
		y = addUpdate(y, graph.Scale(u, ad.Scale), s, mask)
	}
	return y
}

// Params returns the table, then A and B of every adapter in the order they
// were added.
func (e *Embedding) Params() []*graph.Param {
	return append(e.Base.Params(), e.loraParams()...)
}

// wrapper is what a Model needs of Linear and Embedding.
type wrapper interface {
	nn.Layer
	state() *adapted
	base() nn.Layer
	weight() *graph.Param // W [in, out] or the table [V, d]
}

func (l *Linear) state() *adapted         { return &l.adapted }
func (l *Linear) base() nn.Layer          { return l.Base }
func (l *Linear) weight() *graph.Param    { return l.Base.Weight }
func (e *Embedding) state() *adapted      { return &e.adapted }
func (e *Embedding) base() nn.Layer       { return e.Base }
func (e *Embedding) weight() *graph.Param { return e.Base.Weight }
