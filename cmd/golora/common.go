package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"

	"github.com/golora/golora/chat"
	"github.com/golora/golora/experiments"
	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// loadBase reads the model folder given to --base (or flagName) and its
// tokenizer.
func loadBase(flagName, dir string) (*gpt.Model, gpt.Tokenizer, error) {
	if err := need(flagName, dir); err != nil {
		return nil, nil, err
	}
	if err := checkInputDir(flagName, dir, gpt.ConfigFile, gpt.WeightsFile); err != nil {
		return nil, nil, err
	}
	m, err := gpt.Load(dir, graph.Float32)
	if err != nil {
		return nil, nil, fmt.Errorf("--%s %s: %w", flagName, dir, err)
	}
	tok, err := m.Tokenizer()
	if err != nil {
		return nil, nil, fmt.Errorf("--%s %s: %w", flagName, dir, err)
	}
	return m, tok, nil
}

// loadAdapter loads the adapter folder dir onto m (nothing when dir is "").
func loadAdapter(m *gpt.Model, dir string) (*lora.Model, error) {
	if dir == "" {
		return nil, nil
	}
	if err := checkInputDir("adapter", dir, lora.ConfigFile, lora.WeightsFile); err != nil {
		return nil, err
	}
	lm, err := lora.Load(m, dir)
	if err != nil {
		return nil, fmt.Errorf("--adapter %s: %w", dir, err)
	}
	return lm, nil
}

// loadDataFlag reads the data file given to flag for a model with tokenizer
// tok and context ctx.
func loadDataFlag(flagName, path string, tok gpt.Tokenizer, ctx int, format string, co *chatOptions) (trainers.Dataset, string, error) {
	if err := need(flagName, path); err != nil {
		return nil, "", err
	}
	if err := checkInputFile(flagName, path); err != nil {
		return nil, "", err
	}
	switch format {
	case "", experiments.FormatAuto, experiments.FormatText, experiments.FormatCompletions, chat.FormatChat, chat.FormatPromptCompletion:
	default:
		return nil, "", usagef("--format %q: want auto, chat, prompt-completion, text or completions", format)
	}
	if ds, f, ok, err := co.load(flagName, path, format, ctx); ok || err != nil { // chatdata.go
		return ds, f, err
	}
	if err := co.unused(flagName, path); err != nil {
		return nil, "", err
	}
	ds, f, err := experiments.LoadData(path, tok, ctx, format)
	if err != nil {
		return nil, "", fmt.Errorf("--%s: %w", flagName, err)
	}
	return ds, f, nil
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeFileAtomic writes b to path through a temporary file.
func writeFileAtomic(path string, b []byte) error {
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(b))
		return err
	})
}

// trainFlags are the training options pretrain and finetune share.
type trainFlags struct {
	data, valid, format      string
	validFraction            float64
	steps, epochs, batch     int
	context, accumulate      int
	lr, minLR                float64
	schedule                 string
	warmup                   int
	weightDecay, maxGradNorm float64
	labelSmoothing           float64
	evalEvery                int
	seed                     uint64
	resume, checkpoint       string
	checkpointEvery          int
	metrics                  string
	jsonOut, quiet           bool
	chat                     chatOptions // --chat-template, --pack, --skip-bad-lines (chatdata.go)
	dist                     distFlags   // data-parallel runs (dist.go)
}

// register adds the training flags; lrHelp documents --lr's default.
func (t *trainFlags) register(f *flags, lrHelp string) {
	f.StringVar(&t.data, "data", "", "training data `FILE`: plain text, context||completion lines (loss on the completion),\nor JSONL conversations or prompt-completion records (loss on the assistant's turns)")
	f.StringVar(&t.valid, "valid", "", "validation data `FILE` in the same format (default: hold out --valid-fraction of --data)")
	f.StringVar(&t.format, "format", "auto", "data format: chat (JSONL {\"messages\": [...]}), prompt-completion (JSONL {\"prompt\", \"completion\"}),\ntext, completions, or auto (JSONL by its first line, else completions when every\nnon-blank line has \"||\", else text)")
	t.chat.register(f)
	f.Float64Var(&t.validFraction, "valid-fraction", 0.1, "share of --data held out for validation when --valid is not given (0: none)")
	f.IntVar(&t.steps, "steps", 0, "optimizer steps (0: --epochs passes over the data)")
	f.IntVar(&t.epochs, "epochs", 1, "passes over the training data when --steps is 0")
	f.IntVar(&t.batch, "batch", 8, "sequences per step")
	f.IntVar(&t.context, "context", 0, "tokens per sequence (0: the model's context, at most 128)")
	f.IntVar(&t.accumulate, "accumulate", 1, "micro-batches whose gradients make one step")
	f.Float64Var(&t.lr, "lr", 0, "peak learning rate "+lrHelp)
	f.Float64Var(&t.minLR, "min-lr", 0, "learning rate the schedule decays toward")
	f.StringVar(&t.schedule, "schedule", trainers.ScheduleCosine, "learning-rate schedule: constant, linear or cosine")
	f.IntVar(&t.warmup, "warmup", 0, "linear warm-up steps")
	f.Float64Var(&t.weightDecay, "weight-decay", 0.01, "AdamW weight decay")
	f.Float64Var(&t.maxGradNorm, "max-grad-norm", 1, "clip the gradient norm to this (0: no clipping)")
	f.Float64Var(&t.labelSmoothing, "label-smoothing", 0, "label smoothing of the training loss")
	f.IntVar(&t.evalEvery, "eval-every", 0, "validate every N steps (0: only at the end)")
	f.Uint64Var(&t.seed, "seed", 1, "seed of the initialisation, data order and dropout")
	f.StringVar(&t.checkpoint, "checkpoint", "", "write a resumable checkpoint to this .safetensors `FILE` at the end, every --checkpoint-every steps and on Ctrl-C")
	f.IntVar(&t.checkpointEvery, "checkpoint-every", 0, "checkpoint interval in steps (needs --checkpoint)")
	f.StringVar(&t.resume, "resume", "", "continue the run saved in this checkpoint `FILE` (same data, seed and options; checkpoints go on to it unless --checkpoint says otherwise)")
	f.StringVar(&t.metrics, "metrics", "", "write training metrics as JSON lines to this `FILE` when training ends")
	f.BoolVar(&t.jsonOut, "json", false, "print the result as JSON")
	f.BoolVar(&t.quiet, "quiet", false, "no progress output")
	t.dist.register(f)
}

// config checks the training flags and returns the trainer configuration
// for a model whose context is blockSize, writing to the folder out.
func (t *trainFlags) config(blockSize int, lr float64, out string) (trainers.Config, error) {
	c := trainers.DefaultConfig()
	bad := func(name string, v any, want string) error { return usagef("--%s %v: want %s", name, v, want) }
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case t.steps < 0:
		return c, bad("steps", t.steps, "≥ 0")
	case t.epochs < 0 || (t.steps == 0 && t.epochs == 0):
		return c, bad("epochs", t.epochs, "≥ 1 when --steps is 0")
	case t.batch < 1:
		return c, bad("batch", t.batch, "≥ 1")
	case t.context < 0 || t.context > blockSize:
		return c, bad("context", t.context, fmt.Sprintf("0 … %d (the model's context)", blockSize))
	case t.accumulate < 1:
		return c, bad("accumulate", t.accumulate, "≥ 1")
	case !finite(t.lr) || t.lr < 0:
		return c, bad("lr", t.lr, "a finite value ≥ 0 (0: the default)")
	case !finite(t.minLR) || t.minLR < 0:
		return c, bad("min-lr", t.minLR, "a finite value ≥ 0")
	case t.warmup < 0:
		return c, bad("warmup", t.warmup, "≥ 0")
	case !finite(t.weightDecay) || t.weightDecay < 0:
		return c, bad("weight-decay", t.weightDecay, "a finite value ≥ 0")
	case !finite(t.maxGradNorm) || t.maxGradNorm < 0:
		return c, bad("max-grad-norm", t.maxGradNorm, "a finite value ≥ 0")
	case !(t.labelSmoothing >= 0 && t.labelSmoothing < 1):
		return c, bad("label-smoothing", t.labelSmoothing, "in [0, 1)")
	case !(t.validFraction >= 0 && t.validFraction < 1):
		return c, bad("valid-fraction", t.validFraction, "in [0, 1)")
	case t.evalEvery < 0:
		return c, bad("eval-every", t.evalEvery, "≥ 0")
	case t.checkpointEvery < 0:
		return c, bad("checkpoint-every", t.checkpointEvery, "≥ 0")
	}
	switch t.schedule {
	case trainers.ScheduleConstant, trainers.ScheduleLinear, trainers.ScheduleCosine:
	default:
		return c, bad("schedule", t.schedule, "constant, linear or cosine")
	}
	if t.lr > 0 {
		lr = t.lr
	}
	if t.minLR > lr {
		return c, bad("min-lr", t.minLR, fmt.Sprintf("≤ the learning rate %g", lr))
	}
	ckpt := t.checkpoint
	if ckpt == "" {
		ckpt = t.resume
	}
	if t.checkpointEvery > 0 && ckpt == "" {
		return c, usagef("--checkpoint-every needs --checkpoint FILE")
	}
	for _, f := range []struct{ name, path string }{{"checkpoint", ckpt}, {"metrics", t.metrics}} {
		if f.path != "" && out != "" && filepath.Clean(filepath.Dir(f.path)) == filepath.Clean(out) {
			return c, usagef("--%s %s: put it outside --out %s, which holds only the model or adapter files", f.name, f.path, out)
		}
	}
	c.Seed, c.Batch, c.Accumulate = t.seed, t.batch, t.accumulate
	c.Context = t.context
	if c.Context == 0 {
		c.Context = min(blockSize, 128)
	}
	c.Steps, c.Epochs = t.steps, t.epochs
	c.LR, c.MinLR, c.Schedule, c.Warmup = lr, t.minLR, t.schedule, t.warmup
	c.WeightDecay, c.MaxGradNorm, c.LabelSmoothing = t.weightDecay, t.maxGradNorm, t.labelSmoothing
	c.EvalEvery = t.evalEvery
	c.CheckpointPath, c.CheckpointEvery = ckpt, t.checkpointEvery
	c.LogEvery = 10
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// datasets loads the training data and the validation set (from --valid,
// or a --valid-fraction split of --data when it has at least two examples).
func (t *trainFlags) datasets(tok gpt.Tokenizer, ctx int, stderr io.Writer) (train, valid trainers.Dataset, format string, err error) {
	t.chat.use(tok, stderr, t.quiet)
	train, format, err = loadDataFlag("data", t.data, tok, ctx, t.format, &t.chat)
	if err != nil {
		return nil, nil, "", err
	}
	switch {
	case t.valid != "":
		if valid, _, err = loadDataFlag("valid", t.valid, tok, ctx, format, &t.chat); err != nil {
			return nil, nil, "", err
		}
	case t.validFraction > 0 && train.Len() >= 2:
		if train, valid, err = trainers.Split(train, t.validFraction, t.seed); err != nil {
			return nil, nil, "", fmt.Errorf("--valid-fraction: %w", err)
		}
	}
	return train, valid, format, nil
}

// trainSummary is what pretrain and finetune print.
type trainSummary struct {
	Out             string  `json:"out"`
	Kind            string  `json:"kind"` // "model" or "adapter"
	Format          string  `json:"data_format"`
	Steps           int     `json:"steps"`
	TrainLoss       float64 `json:"train_loss"` // mean of the last 10 steps
	ValidLoss       float64 `json:"valid_loss,omitempty"`
	ValidPerplexity float64 `json:"valid_perplexity,omitempty"`
	TrainableParams int     `json:"trainable_params"`
	AllParams       int     `json:"all_params"`
	TrainablePct    float64 `json:"trainable_percent"`
	Tokens          int64   `json:"tokens"`
	Seconds         float64 `json:"seconds"`
	TokensPerSec    float64 `json:"tokens_per_sec"`
	Checkpoint      string  `json:"checkpoint,omitempty"`
	// Data-parallel runs (MPI): the ranks and the gradient bytes each step all-reduced.
	Ranks                  int   `json:"ranks,omitempty"`
	AllReducedBytesPerStep int64 `json:"allreduced_bytes_per_step,omitempty"`
}

// summarize fills a trainSummary from a training result.
func summarize(res trainers.Result, params []*graph.Param) trainSummary {
	s := trainSummary{Steps: res.Steps, Tokens: res.Tokens, Seconds: res.Elapsed.Seconds(),
		ValidLoss: res.Valid.Loss, ValidPerplexity: res.Valid.Perplexity}
	if n := len(res.Losses); n > 0 {
		k := min(10, n)
		for _, l := range res.Losses[n-k:] {
			s.TrainLoss += l / float64(k)
		}
	}
	if s.Seconds > 0 {
		s.TokensPerSec = float64(res.Tokens) / s.Seconds
	}
	if done := res.Steps - res.FirstStep; res.Ranks > 1 && done > 0 {
		s.Ranks, s.AllReducedBytesPerStep = res.Ranks, res.AllReducedBytes/int64(done)
	}
	for _, p := range params {
		s.AllParams += p.Len()
		if p.Trainable {
			s.TrainableParams += p.Len()
		}
	}
	if s.AllParams > 0 {
		s.TrainablePct = 100 * float64(s.TrainableParams) / float64(s.AllParams)
	}
	return s
}

// print writes the summary as text or JSON.
func (s trainSummary) print(w io.Writer, asJSON bool) error {
	if asJSON {
		return writeJSON(w, s)
	}
	fmt.Fprintf(w, "wrote %s %s\n", s.Kind, s.Out)
	fmt.Fprintf(w, "steps %d, %d tokens in %.1fs (%.0f tokens/s), trainable params %d of %d (%.2f%%)\n",
		s.Steps, s.Tokens, s.Seconds, s.TokensPerSec, s.TrainableParams, s.AllParams, s.TrainablePct)
	fmt.Fprintf(w, "train loss %.4f", s.TrainLoss)
	if s.ValidLoss != 0 {
		fmt.Fprintf(w, ", validation loss %.4f (perplexity %.2f)", s.ValidLoss, s.ValidPerplexity)
	}
	fmt.Fprintln(w)
	if s.Ranks > 1 {
		fmt.Fprintf(w, "%d ranks, %s of gradients all-reduced per step\n", s.Ranks, byteSize(s.AllReducedBytesPerStep))
	}
	if s.Checkpoint != "" {
		fmt.Fprintf(w, "checkpoint %s\n", s.Checkpoint)
	}
	return nil
}
