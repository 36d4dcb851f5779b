package nn

import (
	"fmt"

	"github.com/golora/golora/graph"
)

// QuantizeReport says what QuantizeBase stored at the lower precision.
type QuantizeReport struct {
	Precision   graph.Precision
	Weights     int   // parameters quantized
	Elements    int64 // their elements
	BytesBefore int64 // their storage as float
	BytesAfter  int64 // and as quantized
}

// baseLayerer is a host that keeps the layers it was built with (models/gpt
// and models/llama do), so that a wrapped layer's base can be found.
type baseLayerer interface {
	BaseLayer(path string) (Layer, error)
}

// QuantizeBase holds the frozen base weights of h at precision p (see
// graph.Precision): the weight of every Linear layer h lists, and with
// embeddings set every other frozen 2-D weight too (token and position
// tables, an untied head that is not listed). Biases, norms and trainable
// parameters (and adapters: a host with BaseParams, as models/gpt and
// models/llama have, lists its base apart) stay as they are. A
// Linear weight that is still trainable is an error: freeze the base first
// (injecting LoRA does). Quantize after adding adapters whose init reads or
// rewrites the base (PiSSA), or add those on a float base.
//
// Linear weights [in, out] get per-output-column int8 scales; tables
// [V, d] (read by rows, and as a tied head's output rows) per-row ones.
func QuantizeBase(h Host, p graph.Precision, embeddings bool) (QuantizeReport, error) {
	rep := QuantizeReport{Precision: p}
	if p == graph.F32 {
		return rep, nil
	}
	plan, err := BaseQuantization(h, embeddings)
	if err != nil {
		return rep, fmt.Errorf("nn: quantize base to %v: %w", p, err)
	}
	for _, q := range plan {
		before := q.Param.StorageBytes()
		if err := q.Param.Quantize(p, q.Options); err != nil {
			return rep, fmt.Errorf("nn: quantize base: %w", err)
		}
		rep.Weights++
		rep.Elements += int64(q.Param.Len())
		rep.BytesBefore += before
		rep.BytesAfter += q.Param.StorageBytes()
	}
	return rep, nil
}

// QuantizedWeight is one weight QuantizeBase holds at a lower precision,
// with its options.
type QuantizedWeight struct {
	Param   *graph.Param
	Options graph.QuantizeOptions
}

// BaseQuantization lists, in h's parameter order, the weights QuantizeBase
// quantizes (see there), without changing them: a loader can quantize each
// as soon as its values are in, so that the float32 model never exists
// whole.
func BaseQuantization(h Host, embeddings bool) ([]QuantizedWeight, error) {
	linear := map[*graph.Param]string{}
	bl, hasBase := h.(baseLayerer)
	for _, nl := range h.Layers() {
		l := nl.Layer
		if hasBase {
			if b, err := bl.BaseLayer(nl.Path); err == nil {
				l = b
			}
		}
		if lin, ok := l.(*Linear); ok {
			linear[lin.Weight] = nl.Path
		}
	}
	params := h.Params()
	if bp, ok := h.(interface{ BaseParams() []*graph.Param }); ok {
		params = bp.BaseParams() // the base alone: adapters stay float even when frozen
	}
	var out []QuantizedWeight
	seen := map[*graph.Param]bool{}
	for _, prm := range params {
		if seen[prm] || len(prm.Shape()) != 2 || prm.Precision() != graph.F32 {
			continue
		}
		seen[prm] = true
		path, isLinear := linear[prm]
		if prm.Trainable {
			if isLinear {
				return nil, fmt.Errorf("%s (layer %s) is trainable; freeze the base first", prm.Name, path)
			}
			continue
		}
		if !isLinear && !embeddings {
			continue
		}
		if prm.DType() != graph.Float32 {
			return nil, fmt.Errorf("%s is %v; quantize a float32 model", prm.Name, prm.DType())
		}
		out = append(out, QuantizedWeight{Param: prm, Options: graph.QuantizeOptions{RowScale: !isLinear}})
	}
	return out, nil
}
