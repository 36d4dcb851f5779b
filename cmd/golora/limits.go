package main

import (
	"fmt"

	"github.com/golora/golora/internal/memlimit"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/trainers"
)

// The checks below estimate, before anything is allocated, the memory a
// command will need from its flags (models/gpt's estimates) and refuse, with
// the flags to lower, what does not fit the memory available: a request too
// large for the machine must be an error, never the Go runtime's
// unrecoverable "fatal error: out of memory".

// checkTrainMemory checks a training run of the model shape cfg with
// trainable trainable parameters: the training step, the validation batch,
// the micro-batches' buffers and, when withModel is set (pretrain builds the
// model after this check), the weights.
func checkTrainMemory(cfg modelShape, tc trainers.Config, trainable int, withModel bool) error {
	evalBatch := tc.EvalBatch
	if evalBatch == 0 {
		evalBatch = tc.Batch
	}
	need := float64(cfg.trainBytes(tc.Batch, tc.Context, trainable, true)) +
		float64(cfg.trainBytes(evalBatch, tc.Context, 0, false)) +
		float64(tc.Accumulate)*float64(tc.Batch)*float64(tc.Context)*8*4 // staged micro-batches
	if withModel {
		need += float64(cfg.modelBytes())
	}
	what := fmt.Sprintf("training %s with --batch %d × --context %d", cfg.describe(), tc.Batch, tc.Context)
	if tc.Accumulate > 1 {
		what += fmt.Sprintf(" and --accumulate %d", tc.Accumulate)
	}
	if err := memlimit.Check(saturate(need), what); err != nil {
		hint := "lower --batch or --context (--accumulate gives the same effective batch in smaller pieces)"
		if withModel {
			hint = "choose a smaller model (--preset, --layers, --embd, --block-size) or lower --batch or --context"
		}
		return usagef("%v: %s", err, hint)
	}
	return nil
}

// checkEvalMemory checks evaluation batches of batch × ctx tokens.
func checkEvalMemory(cfg modelShape, batch, ctx int) error {
	what := fmt.Sprintf("evaluating %s with --batch %d × --context %d", cfg.describe(), batch, ctx)
	if err := memlimit.Check(cfg.trainBytes(batch, ctx, 0, false), what); err != nil {
		return usagef("%v: lower --batch or --context", err)
	}
	return nil
}

// checkGenerateMemory checks a generation of one prompt of promptLen tokens
// with opts.
func checkGenerateMemory(m *loadedModel, promptLen int, opts gpt.GenerateOptions) error {
	keep := m.ContextSize() - opts.MaxNewTokens + 1
	what := fmt.Sprintf("generating with --beams %d and --max-new-tokens %d on %s", opts.Beams, opts.MaxNewTokens, m.shape.describe())
	d, ok := m.baseModel.(gpt.Decodable)
	if !ok {
		return fmt.Errorf("%s cannot generate", m.shape.describe())
	}
	if err := memlimit.Check(gpt.GenerateBytesFor(d, 1, min(promptLen, keep), opts), what); err != nil {
		return usagef("%v: lower --beams or --max-new-tokens", err)
	}
	return nil
}

// saturate converts a float64 byte count to int64 without overflow.
func saturate(x float64) int64 {
	if !(x < 1<<63-1) {
		return 1<<63 - 1
	}
	return int64(x)
}
