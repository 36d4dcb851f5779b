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
	seen := map[*graph.Param]bool{}
	for _, prm := range params {
		if seen[prm] || len(prm.Shape()) != 2 || prm.Precision() != graph.F32 {
			continue
		}
		seen[prm] = true
		path, isLinear := linear[prm]
		if prm.Trainable {
			if isLinear {
				return rep, fmt.Errorf("nn: quantize base to %v: %s (layer %s) is trainable; freeze the base first", p, prm.Name, path)
			}
			continue
		}
		if !isLinear && !embeddings {
			continue
		}
		if prm.DType() != graph.Float32 {
			return rep, fmt.Errorf("nn: quantize base to %v: %s is %v; quantize a float32 model", p, prm.Name, prm.DType())
		}
		before := prm.StorageBytes()
		if err := prm.Quantize(p, graph.QuantizeOptions{RowScale: !isLinear}); err != nil {
			return rep, fmt.Errorf("nn: quantize base: %w", err)
		}
		rep.Weights++
		rep.Elements += int64(prm.Len())
		rep.BytesBefore += before
		rep.BytesAfter += prm.StorageBytes()
	}
	return rep, nil
}
