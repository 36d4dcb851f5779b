package experiments

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// DemoConfig sets up RunDemo: a small GPT pretrained on one domain of the Go
// distribution, LoRA adapters for other domains on that same base, and a
// full fine-tuning baseline on one of them.
type DemoConfig struct {
	// GoRoot is the Go distribution the text comes from ("" finds one with
	// FindGoRoot).
	GoRoot string
	// Seed seeds the weights, the data splits and orders, and the samples.
	Seed uint64

	// Model is the base GPT's shape (byte tokenizer).
	Model gpt.Config
	// Batch sequences of Context tokens per training step.
	Batch, Context int

	// BaseDomain is pretrained on; Tasks are the fine-tuning domains, one
	// adapter each (at least two); FullTask (one of Tasks) also gets full
	// fine-tuning. Where a task's files are missing from the distribution,
	// the first domain of Fallbacks that is present and not yet used
	// replaces it.
	BaseDomain string
	Tasks      []string
	FullTask   string
	Fallbacks  []string

	// BaseBytes and TaskBytes are the amounts of text read per domain;
	// ValidFraction of each domain's windows is held out for validation, at
	// most MaxValidWindows of them.
	BaseBytes, TaskBytes int
	ValidFraction        float64
	MaxValidWindows      int

	// Training: steps, peak learning rates (cosine schedule after Warmup
	// steps) and how many validations to draw each loss curve with.
	PretrainSteps, FinetuneSteps int
	PretrainLR, LoRALR, FullLR   float64
	Warmup                       int
	CurvePoints                  int

	// LoRA is the adapter configuration (its Seed is offset per task).
	LoRA lora.Config
	// BaseName is recorded as the adapters' base_model_name_or_path
	// ("" for DemoBaseDir); the golora command gives the path of the base
	// model folder inside the report folder.
	BaseName string

	// LatencyRuns is the number of timed batch-1 forward passes per figure;
	// SampleTokens the length of each generated sample.
	LatencyRuns, SampleTokens int

	// Progress, when set, receives events as the demo runs (the library
	// prints nothing).
	Progress func(DemoEvent)
}

// DefaultDemoConfig is the demo of `golora demo`: a 2-layer, 64-wide GPT
// with a byte tokenizer pretrained on Go source, LoRA r = 8 (α = 16) on q
// and v for the documentation prose and for assembly, and full fine-tuning
// on the prose. It is sized to finish in a few minutes on two CPU cores.
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{
		Seed: 1,
		Model: gpt.Config{NLayer: 2, NHead: 4, NEmbd: 64, BlockSize: 64, VocabSize: 257,
			LayerNormEps: 1e-5, Tokenizer: "bytes"},
		Batch: 16, Context: 64,
		BaseDomain: DomainGo, Tasks: []string{DomainDocs, DomainAsm}, FullTask: DomainDocs,
		Fallbacks: []string{DomainAPI},
		BaseBytes: 600_000, TaskBytes: 250_000,
		ValidFraction: 0.1, MaxValidWindows: 64,
		PretrainSteps: 600, FinetuneSteps: 200,
		PretrainLR: 3e-3, LoRALR: 3e-3, FullLR: 1e-3, Warmup: 20,
		CurvePoints: 6,
		LoRA:        lora.Config{R: 8, Alpha: 16, Targets: []string{"q", "v"}},
		LatencyRuns: 50, SampleTokens: 60,
	}
}

// QuickDemoConfig is DefaultDemoConfig cut down to seconds, for tests: the
// same pipeline and checks on less text and fewer steps.
func QuickDemoConfig() DemoConfig {
	c := DefaultDemoConfig()
	c.Model.NLayer, c.Model.NEmbd, c.Model.NHead = 1, 32, 2
	c.Model.BlockSize, c.Context, c.Batch = 32, 32, 8
	c.BaseBytes, c.TaskBytes = 60_000, 30_000
	c.MaxValidWindows = 24
	c.PretrainSteps, c.FinetuneSteps = 150, 100
	c.LoRALR = 1e-2
	c.Warmup, c.CurvePoints = 5, 3
	c.LatencyRuns, c.SampleTokens = 3, 24
	return c
}

// Folders RunDemo writes inside its output folder.
const (
	DemoBaseDir     = "base"     // the pretrained base model (Hugging Face folder)
	DemoAdaptersDir = "adapters" // one PEFT adapter folder per task
)

// RunDemo runs the demo and writes the base model and the adapters under
// dir (DemoBaseDir, DemoAdaptersDir/<task>); WriteDemoReport then adds the
// report. Training stops early with an error when ctx is done.
func RunDemo(ctx context.Context, cfg DemoConfig, dir string) (*DemoResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	d := &demo{cfg: cfg, ctx: ctx, dir: dir, tok: gpt.ByteTokenizer(), res: &DemoResult{
		Date:      start.UTC().Format(time.RFC3339),
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:      runtime.NumCPU(),
		BLAS:      graph.BLASName(),
		Seed:      cfg.Seed,
		ValidLoss: map[string]map[string]float64{},
		Switching: map[string]map[string]float64{},
		Files:     FileSizes{AdapterBytes: map[string]int64{}},
	}}
	steps := []func() error{d.loadData, d.pretrain, d.finetune, d.evaluate, d.switching, d.mergeAndLatency, d.samples}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	d.check()
	d.res.ElapsedSec = time.Since(start).Seconds()
	return d.res, nil
}

func (c DemoConfig) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("experiments: demo config: "+format, a...)
	}
	if err := c.Model.Validate(); err != nil {
		return fmt.Errorf("experiments: demo config: %w", err)
	}
	switch {
	case len(c.Tasks) < 2:
		return bad("%d tasks, want at least 2", len(c.Tasks))
	case c.Context < 2 || c.Context > c.Model.BlockSize:
		return bad("context %d, want 2 … %d (the model's BlockSize)", c.Context, c.Model.BlockSize)
	case c.Batch < 1 || c.PretrainSteps < 1 || c.FinetuneSteps < 1:
		return bad("batch, pretraining and fine-tuning steps must be ≥ 1")
	case c.BaseBytes < 1 || c.TaskBytes < 1:
		return bad("BaseBytes and TaskBytes must be ≥ 1")
	case !(c.ValidFraction > 0 && c.ValidFraction < 1) || c.MaxValidWindows < 1:
		return bad("ValidFraction must be in (0, 1) and MaxValidWindows ≥ 1")
	case c.LatencyRuns < 1 || c.SampleTokens < 0 || c.CurvePoints < 1:
		return bad("LatencyRuns and CurvePoints must be ≥ 1, SampleTokens ≥ 0")
	}
	seen := map[string]bool{c.BaseDomain: true}
	full := false
	for _, t := range c.Tasks {
		if seen[t] {
			return bad("domain %q is used twice", t)
		}
		seen[t] = true
		full = full || t == c.FullTask
	}
	if !full {
		return bad("FullTask %q is not one of the tasks %v", c.FullTask, c.Tasks)
	}
	return c.LoRA.Validate()
}

// demo is the state of one RunDemo.
type demo struct {
	cfg DemoConfig
	ctx context.Context
	dir string
	tok gpt.Tokenizer
	res *DemoResult

	train, valid map[string]trainers.Dataset // by domain
	tasks        []string                    // the tasks actually used (after fallbacks)
	fullTask     string
}

func (d *demo) emit(e DemoEvent) {
	if d.cfg.Progress != nil {
		d.cfg.Progress(e)
	}
}

func (d *demo) say(stage, format string, a ...any) {
	d.emit(DemoEvent{Stage: stage, Message: fmt.Sprintf(format, a...)})
}
