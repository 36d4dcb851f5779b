package main

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/golora/golora/experiments"
	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/benchutil"
	"github.com/golora/golora/nn"
)

// precisionFlags are --base-precision and --quantize-embeddings.
type precisionFlags struct {
	name       string
	prec       graph.Precision
	embeddings bool
	recompute  string // --recompute, where the command registers it
	every      int
}

// registerRecompute adds --recompute.
func (p *precisionFlags) registerRecompute(f *flags) {
	f.StringVar(&p.recompute, "recompute", "none", "activation recomputation: none, blocks (keep each block's input, recompute its\nactivations in the backward pass) or every-N (recompute N blocks at a time); the loss also computes\nthe LM head in blocks of vocabulary rows, again in the backward pass; the same gradients (the blocks' bit for bit,\nthe head's to rounding), less memory, more time")
}

func (p *precisionFlags) register(f *flags) {
	f.StringVar(&p.name, "base-precision", "f32", "storage of the frozen base weights: f32, bf16, int8 (per-channel absmax) or nf4\n(QLoRA's 4-bit NormalFloat); the adapter trains in float32 either way")
	f.BoolVar(&p.embeddings, "quantize-embeddings", false, "with --base-precision: hold the token and position tables (and the tied LM head) at that\nprecision too")
}

// check reads --base-precision (call right after parsing).
func (p *precisionFlags) check() error {
	prec, err := graph.ParsePrecision(p.name)
	if err != nil {
		return usagef("--base-precision %q: want f32, bf16, int8 or nf4", p.name)
	}
	if p.embeddings && prec == graph.F32 {
		return usagef("--quantize-embeddings needs --base-precision bf16, int8 or nf4")
	}
	p.prec = prec
	if p.recompute != "" {
		if p.every, err = nn.ParseRecompute(p.recompute); err != nil {
			return usagef("--recompute %q: want none, blocks or every-N (N ≥ 1)", p.recompute)
		}
	}
	return nil
}

// apply holds m's frozen base at the chosen precision and returns the
// float copies to the operating system.
func (p *precisionFlags) apply(m baseModel) error {
	if err := m.SetRecompute(p.every); err != nil {
		return err
	}
	m.SetLossInBlocks(p.every > 0) // recomputing, the head's logits too
	if p.prec == graph.F32 {
		return nil
	}
	if _, err := nn.QuantizeBase(hostOf(m), p.prec, p.embeddings); err != nil {
		return fmt.Errorf("--base-precision %v: %w", p.prec, err)
	}
	debug.FreeOSMemory()
	return nil
}

// memWatch samples a training run's peak Go heap for the progress line.
type memWatch struct {
	params  []*graph.Param
	sampler *benchutil.Peak
}

func newMemWatch(params []*graph.Param) *memWatch {
	return &memWatch{params: params, sampler: benchutil.StartPeak(5 * time.Millisecond)}
}

func (w *memWatch) stop() {
	if w != nil {
		_ = w.sampler.Stop()
	}
}

// String is "peak heap H (base B, adapter+opt A, activations X) rss R".
func (w *memWatch) String() string {
	s := experiments.SplitMemory(w.params, w.sampler.PeakBytes(), experiments.PeakRSSBytes())
	return fmt.Sprintf("peak heap %s (base %s %s, adapter+opt %s, activations %s) rss %s",
		byteSize(s.PeakHeapBytes), s.BasePrecision, byteSize(s.BaseBytes), byteSize(s.TrainableBytes), byteSize(s.ActivationBytes), byteSize(s.PeakRSSBytes))
}
