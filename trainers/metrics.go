package trainers

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// StepInfo describes one optimizer step. Its JSON form is the metrics line
// of a logged step.
type StepInfo struct {
	Step       int     `json:"step"`        // steps done, this one included
	TotalSteps int     `json:"total_steps"` // steps of the whole run
	Epoch      float64 `json:"epoch"`       // passes over the training data so far
	Loss       float64 `json:"loss"`        // training loss (label-smoothed when configured)
	LR         float64 `json:"lr"`          // learning rate of this step
	GradNorm   float64 `json:"grad_norm"`   // global gradient norm before clipping
	Clipped    bool    `json:"clipped"`     // whether clipping scaled the gradient
	// Tokens counts the input tokens (not padding) processed by this Train call.
	Tokens int64 `json:"tokens"`
	// TokensPerSec is the throughput since the previous metrics line.
	TokensPerSec float64 `json:"tokens_per_sec"`
	// ElapsedSec is the time since this Train call started.
	ElapsedSec float64 `json:"elapsed_sec"`
	// Ranks is the number of processes of a data-parallel run (0: one
	// process) and AllReducedBytes the gradient bytes this step all-reduced
	// (Trainer.GradientBytes); Loss, Tokens and TokensPerSec are global.
	Ranks           int   `json:"ranks,omitempty"`
	AllReducedBytes int64 `json:"allreduced_bytes,omitempty"`
}

// EvalResult is a validation score: the mask-weighted mean cross-entropy over
// every loss token of a dataset, without label smoothing, and its
// exponential.
type EvalResult struct {
	Loss       float64 `json:"val_loss"`
	Perplexity float64 `json:"val_perplexity"`
	Tokens     float64 `json:"val_tokens"` // Σ mask: the tokens scored
	Examples   int     `json:"val_examples"`
}

// EvalInfo describes a validation run during training. Its JSON form is the
// metrics line of a validation.
type EvalInfo struct {
	Step int `json:"step"`
	EvalResult
	// Best is true when this is the lowest validation loss so far.
	Best       bool    `json:"best"`
	ElapsedSec float64 `json:"elapsed_sec"`
}

// CheckpointInfo describes a checkpoint just written.
type CheckpointInfo struct {
	Step int
	Path string
	// Best is true for a checkpoint written to Config.BestPath.
	Best bool
}

// Observer receives training events as they happen, for a progress bar or a
// live plot. Every field is optional. The callbacks run on the training
// goroutine: a slow one slows training.
type Observer struct {
	OnStep       func(StepInfo)
	OnEval       func(EvalInfo)
	OnCheckpoint func(CheckpointInfo)
	// OnEvalProgress is called by Evaluate (and so by each validation)
	// before its first batch and after each batch.
	OnEvalProgress func(EvalProgress)
}

// EvalProgress says how far an evaluation has got: Done of Total examples
// scored, at training step Step.
type EvalProgress struct {
	Step        int
	Done, Total int
}

// Result summarises a Train call.
type Result struct {
	// FirstStep is the number of steps done before this call (0 for a fresh
	// run, the checkpoint's step after Resume).
	FirstStep int
	// Steps is the number of steps done in all, after this call.
	Steps int
	// Losses holds the training loss of steps FirstStep+1 … Steps.
	Losses []float64
	// Epochs is the number of passes over the training data so far.
	Epochs float64
	// Tokens is the input tokens processed by this call.
	Tokens int64
	// Elapsed is the wall time of this call.
	Elapsed time.Duration
	// EvalTime is the part of Elapsed spent on validation, so that
	// Tokens / (Elapsed − EvalTime) is the training throughput.
	EvalTime time.Duration
	// Valid is the last validation result (zero when no validation set was given).
	Valid EvalResult
	// BestValidLoss is the lowest validation loss of the run and BestStep
	// its step; BestStep is 0 when no validation has run.
	BestValidLoss float64
	BestStep      int
	// Ranks is the number of processes of a data-parallel run (0: one
	// process) and AllReducedBytes the gradient bytes all-reduced by this
	// call's steps.
	Ranks           int
	AllReducedBytes int64
}

// writeMetric writes v as one JSON line to w (nil: nothing).
func writeMetric(w io.Writer, v interface{}) error {
	if w == nil {
		return nil
	}
	line, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("trainers: encode metrics: %w", err)
	}
	if _, err := w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("trainers: write metrics: %w", err)
	}
	return nil
}
