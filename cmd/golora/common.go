package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/golora/golora/chat"
	"github.com/golora/golora/experiments"
	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/internal/memlimit"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// loadBase reads the model folder given to --base (or flagName), of any
// architecture golora implements (model.go), and its tokenizer.
func loadBase(flagName, dir string) (*loadedModel, gpt.Tokenizer, error) {
	if err := need(flagName, dir); err != nil {
		return nil, nil, err
	}
	m, err := openModel(flagName, dir)
	if err != nil {
		return nil, nil, err
	}
	tok, err := m.Tokenizer()
	if err != nil {
		return nil, nil, fmt.Errorf("--%s %s: %w", flagName, dir, err)
	}
	return m, tok, nil
}

// loadAdapter loads the adapter folder dir onto m (nothing when dir is "").
func loadAdapter(m baseModel, dir string) (*lora.Model, error) {
	if dir == "" {
		return nil, nil
	}
	if err := checkInputDir("adapter", dir, lora.ConfigFile, lora.WeightsFile); err != nil {
		return nil, err
	}
	lm, err := lora.Load(hostOf(m), dir)
	if err != nil {
		return nil, adapterError(dir, err)
	}
	return lm, nil
}

// adapterError names the --adapter folder dir in a load error, and says in
// words when the adapter was made for another base.
func adapterError(dir string, err error) error {
	if errors.Is(err, lora.ErrOtherBase) {
		made := ""
		var c struct {
			Base string `json:"base_model_name_or_path"`
		}
		if b, rerr := os.ReadFile(filepath.Join(dir, lora.ConfigFile)); rerr == nil && json.Unmarshal(b, &c) == nil && c.Base != "" {
			made = fmt.Sprintf(" (its config names %s)", c.Base)
		}
		return fmt.Errorf("--adapter %s was made for another base than this one%s: %s", dir, made, after(err, lora.ErrOtherBase))
	}
	return fmt.Errorf("--adapter %s: %w", dir, err)
}

// after returns the part of err's message that follows sentinel's (the
// details), or the whole message.
func after(err, sentinel error) string {
	msg, key := err.Error(), sentinel.Error()+": "
	if i := strings.Index(msg, key); i >= 0 {
		return msg[i+len(key):]
	}
	return msg
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
	// The text and its tokens (8 bytes each, at most one per byte) are
	// held in memory.
	if st, err := os.Stat(path); err == nil {
		if err := memlimit.Check(saturate(9*float64(st.Size())), fmt.Sprintf("reading the %s of --%s %s", memlimit.Bytes(st.Size()), flagName, path)); err != nil {
			return nil, "", err
		}
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
	validTokens              int
	force                    bool
	chat                     chatOptions // --chat-template, --pack, --skip-bad-lines (chatdata.go)
	dist                     distFlags   // data-parallel runs (dist.go)
}

// defaultValidTokens caps each validation: enough tokens for a loss
// estimate good to about 1% on small models, few enough that a validation
// takes seconds on a CPU.
const defaultValidTokens = 65536

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
	f.IntVar(&t.validTokens, "valid-tokens", defaultValidTokens, "score at most this many validation tokens per validation, on evenly spaced examples (0: all)")
	f.Uint64Var(&t.seed, "seed", 1, "seed of the initialisation, data order and dropout")
	f.StringVar(&t.checkpoint, "checkpoint", "", "write a resumable checkpoint to this .safetensors `FILE` at the end, every --checkpoint-every steps and on Ctrl-C")
	f.IntVar(&t.checkpointEvery, "checkpoint-every", 0, "checkpoint interval in steps (needs --checkpoint)")
	f.StringVar(&t.resume, "resume", "", "continue the run saved in this checkpoint `FILE` (same data, seed and options; checkpoints go on to it unless --checkpoint says otherwise)")
	f.StringVar(&t.metrics, "metrics", "", "write training metrics as JSON lines to this `FILE` when training ends (with --resume, the history goes on)")
	f.BoolVar(&t.force, "force", false, "go ahead where golora would refuse: --resume with another --steps, --seed, --batch, --context or data, a --rank above a layer's width")
	f.BoolVar(&t.jsonOut, "json", false, "print the result as JSON")
	f.BoolVar(&t.quiet, "quiet", false, "no progress output")
	t.dist.register(f)
}

// guard refuses outputs (--out, --checkpoint, --metrics) that would
// overwrite or delete an input (--base, --data, --valid, --resume); the
// checkpoint may be the file resumed from.
func (t *trainFlags) guard(out, base string) error {
	ins := []flagPath{{"base", base}, {"data", t.data}, {"valid", t.valid}}
	if err := guardOutputs([]flagPath{{"out", out}}, append(ins, flagPath{"resume", t.resume})); err != nil {
		return err
	}
	return guardOutputs([]flagPath{{"checkpoint", t.checkpoint}, {"metrics", t.metrics}}, ins)
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
	case t.validTokens < 0:
		return c, bad("valid-tokens", t.validTokens, "≥ 0 (0: all)")
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
		if f.path != "" && out != "" && (filepath.Clean(filepath.Dir(f.path)) == filepath.Clean(out) || inside(resolvePath(f.path), resolvePath(out))) {
			return c, usagef("--%s %s: put it outside --out %s, which holds only the model or adapter files", f.name, f.path, out)
		}
	}
	// Output files are checked now, not when training ends.
	for _, f := range []struct{ name, path string }{{"checkpoint", t.checkpoint}, {"metrics", t.metrics}} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err == nil && !st.Mode().IsRegular() {
			return c, usagef("--%s %s: is a folder or a device, want a file path", f.name, f.path)
		}
		if f.name == "checkpoint" {
			if st, err := os.Stat(filepath.Dir(f.path)); err != nil || !st.IsDir() {
				return c, usagef("--checkpoint %s: the folder %s does not exist (create it first)", f.path, filepath.Dir(f.path))
			}
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
	return train, trainers.CapTokens(valid, t.validTokens), format, nil
}

// trainSummary is what pretrain and finetune print.
type trainSummary struct {
	Out             string   `json:"out"`
	Kind            string   `json:"kind"` // "model" or "adapter"
	Format          string   `json:"data_format"`
	Steps           int      `json:"steps"`                // steps done in all
	RunSteps        int      `json:"steps_run"`            // steps this command ran (fewer after --resume)
	TrainLoss       *float64 `json:"train_loss,omitempty"` // mean of the last 10 steps run; absent when none ran
	ValidLoss       float64  `json:"valid_loss,omitempty"`
	ValidPerplexity float64  `json:"valid_perplexity,omitempty"`
	ValidTokens     float64  `json:"valid_tokens,omitempty"` // tokens the last validation scored
	TrainableParams int      `json:"trainable_params"`
	AllParams       int      `json:"all_params"`
	TrainablePct    float64  `json:"trainable_percent"`
	Tokens          int64    `json:"tokens"`
	Seconds         float64  `json:"seconds"`
	TokensPerSec    float64  `json:"tokens_per_sec"`
	Checkpoint      string   `json:"checkpoint,omitempty"`
	// Data-parallel runs (MPI): the ranks and the gradient bytes each step all-reduced.
	Ranks                  int   `json:"ranks,omitempty"`
	AllReducedBytesPerStep int64 `json:"allreduced_bytes_per_step,omitempty"`
}

// summarize fills a trainSummary from a training result.
func summarize(res trainers.Result, params []*graph.Param) trainSummary {
	s := trainSummary{Steps: res.Steps, RunSteps: res.Steps - res.FirstStep, Tokens: res.Tokens, Seconds: res.Elapsed.Seconds(),
		ValidLoss: res.Valid.Loss, ValidPerplexity: res.Valid.Perplexity, ValidTokens: res.Valid.Tokens}
	if n := len(res.Losses); n > 0 {
		k := min(10, n)
		mean := 0.0
		for _, l := range res.Losses[n-k:] {
			mean += l / float64(k)
		}
		s.TrainLoss = &mean
	}
	// Throughput of training alone: validation time left out.
	if train := (res.Elapsed - res.EvalTime).Seconds(); train > 0 {
		s.TokensPerSec = float64(res.Tokens) / train
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
	steps := fmt.Sprint(s.Steps)
	if s.RunSteps != s.Steps {
		steps = fmt.Sprintf("%d (%d in this run)", s.Steps, s.RunSteps)
	}
	fmt.Fprintf(w, "steps %s, %d tokens in %.1fs (%.0f tokens/s training), trainable params %d of %d (%.2f%%)\n",
		steps, s.Tokens, s.Seconds, s.TokensPerSec, s.TrainableParams, s.AllParams, s.TrainablePct)
	var parts []string
	if s.TrainLoss != nil {
		parts = append(parts, fmt.Sprintf("train loss %.4f", *s.TrainLoss))
	} else {
		parts = append(parts, fmt.Sprintf("no training steps run (the checkpoint had done all %d)", s.Steps))
	}
	if s.ValidLoss != 0 {
		parts = append(parts, fmt.Sprintf("validation loss %.4f (perplexity %.2f)", s.ValidLoss, s.ValidPerplexity))
	}
	fmt.Fprintln(w, strings.Join(parts, ", "))
	if s.Ranks > 1 {
		fmt.Fprintf(w, "%d ranks, %s of gradients all-reduced per step\n", s.Ranks, byteSize(s.AllReducedBytesPerStep))
	}
	if s.Checkpoint != "" {
		fmt.Fprintf(w, "checkpoint %s\n", s.Checkpoint)
	}
	return nil
}
