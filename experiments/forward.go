package experiments

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/benchutil"
	"github.com/golora/golora/trainers"
)

// Forward is a compiled inference program of a language model for batch sequences of
// ctx tokens: ids [batch·ctx] → logits [batch·ctx, V], dropout off.
//
// The program reads the model's LoRA state (active adapter, merged or not)
// when it is built and the parameter values when it runs; after SetActive,
// Merge, Unmerge or another change of that state (which makes the program
// stale, see graph.ErrStale) Run compiles it again.
type Forward struct {
	m          ForwardModel
	prog       *graph.Program
	ids, out   *graph.Node
	batch, ctx int
	vocab      int
}

// ForwardModel is what NewForward runs: a language model (GPT-2's
// *gpt.Model, a Llama-family *llama.Model) and the dtype of its graph.
type ForwardModel interface {
	trainers.LanguageModel
	DType() graph.DType
}

// NewForward compiles an inference program of m for batch sequences of ctx
// tokens.
func NewForward(m ForwardModel, batch, ctx int) (*Forward, error) {
	if m == nil {
		return nil, errors.New("experiments: forward: nil model")
	}
	if batch < 1 || ctx < 1 {
		return nil, fmt.Errorf("experiments: forward: batch %d × context %d, want both ≥ 1", batch, ctx)
	}
	f := &Forward{m: m, batch: batch, ctx: ctx, vocab: m.VocabSize()}
	if err := f.compile(); err != nil {
		return nil, err
	}
	return f, nil
}

// compile builds and compiles the program of the model as it is now.
func (f *Forward) compile() error {
	b := graph.NewBuilder(f.m.DType(), 0)
	ids := b.IntInput("ids", f.batch*f.ctx)
	logits := f.m.Logits(ids, f.batch, f.ctx) // [batch·ctx, V]
	prog, err := b.Compile(nil, logits)
	if err != nil {
		return fmt.Errorf("experiments: forward %d × %d: %w", f.batch, f.ctx, err)
	}
	prog.SetTraining(false)
	f.prog, f.ids, f.out = prog, ids, logits
	return nil
}

// Run computes the logits of ids (batch·ctx ids, sequence b's token t at
// b·ctx + t) and returns them as a view [batch·ctx, V] that the next Run
// overwrites.
func (f *Forward) Run(ids []int) (graph.Array, error) {
	if len(ids) != f.batch*f.ctx {
		return graph.Array{}, fmt.Errorf("experiments: forward: %d ids, want %d × %d", len(ids), f.batch, f.ctx)
	}
	if f.prog.Stale() != nil { // the model's LoRA state changed: build it again
		_ = f.prog.Close()
		if err := f.compile(); err != nil {
			return graph.Array{}, err
		}
	}
	if err := f.prog.SetInts(f.ids, ids); err != nil {
		return graph.Array{}, fmt.Errorf("experiments: forward: %w", err)
	}
	if err := f.prog.Forward(); err != nil {
		return graph.Array{}, fmt.Errorf("experiments: forward: %w", err)
	}
	out, err := f.prog.Output(f.out)
	if err != nil {
		return graph.Array{}, fmt.Errorf("experiments: forward: %w", err)
	}
	return out, nil
}

// Logits is Run followed by a float64 copy of the logits.
func (f *Forward) Logits(ids []int) ([]float64, error) {
	a, err := f.Run(ids)
	if err != nil {
		return nil, err
	}
	return a.Values(), nil
}

// Close releases the program.
func (f *Forward) Close() error { return f.prog.Close() }

// Latency times runs forward passes of ids after one untimed warm-up run and
// returns the median wall time of one pass in milliseconds.
func (f *Forward) Latency(ids []int, runs int) (float64, error) {
	if runs < 1 {
		return 0, fmt.Errorf("experiments: latency: %d runs, want ≥ 1", runs)
	}
	if _, err := f.Run(ids); err != nil {
		return 0, err
	}
	ms := make([]float64, runs)
	for i := range ms {
		t0 := time.Now()
		if _, err := f.Run(ids); err != nil {
			return 0, err
		}
		ms[i] = float64(time.Since(t0).Microseconds()) / 1000
	}
	return benchutil.Median(ms), nil
}

// MaxAbsDiff returns max_i |a_i − b_i| and max_i |a_i| for two slices of
// the same length.
func MaxAbsDiff(a, b []float64) (diff, scale float64, err error) {
	if len(a) != len(b) {
		return 0, 0, fmt.Errorf("experiments: compare %d values with %d", len(a), len(b))
	}
	for i := range a {
		diff = math.Max(diff, math.Abs(a[i]-b[i]))
		scale = math.Max(scale, math.Abs(a[i]))
	}
	return diff, scale, nil
}
