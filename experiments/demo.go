package experiments

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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

// DemoEvent is a progress report of RunDemo.
type DemoEvent struct {
	// Stage names the phase: "data", "pretrain", "lora <task>", "full
	// <task>", "evaluate", "switch", "merge", "latency", "samples".
	Stage string
	// Step and Total count training steps (0 outside training); Loss is the
	// training loss of the step and TokensPerSec the recent throughput.
	Step, Total  int
	Loss         float64
	TokensPerSec float64
	// ValidLoss is set (non-zero) on the event of a validation.
	ValidLoss float64
	// Message describes a phase outside training.
	Message string
}

// DemoResult is everything the demo measured; its JSON form is the
// report's metrics.json.
type DemoResult struct {
	Date       string  `json:"date"`
	ElapsedSec float64 `json:"elapsed_sec"`
	GoVersion  string  `json:"go_version"`
	Platform   string  `json:"platform"`
	CPUs       int     `json:"cpus"`
	BLAS       string  `json:"blas"`
	Seed       uint64  `json:"seed"`
	// TextSource is the version of the Go distribution the text was read
	// from (the first line of its VERSION file, "" when it has none).
	TextSource string `json:"text_source"`

	Model ModelInfo    `json:"model"`
	Data  []DomainInfo `json:"data"`

	Pretrain RunInfo   `json:"pretrain"`
	LoRA     []RunInfo `json:"lora"`
	Full     RunInfo   `json:"full_finetune"`

	// Domains are the evaluation domains: the base domain, then the tasks.
	Domains []string `json:"domains"`
	// ValidLoss[model][domain] is the validation loss of "base", "lora:<task>"
	// (each adapter right after training) and "full:<task>".
	ValidLoss map[string]map[string]float64 `json:"valid_loss"`
	// Switching[adapter][domain] is the validation loss measured on ONE base
	// model with every adapter loaded from its folder, switching the active
	// adapter between evaluations.
	Switching map[string]map[string]float64 `json:"task_switching_valid_loss"`

	Merge   []MergeCheck `json:"merge"`
	Latency LatencyInfo  `json:"latency"`
	Files   FileSizes    `json:"files"`
	Samples []Sample     `json:"samples"`

	Checks []Check `json:"checks"`
	// Passed is true when every check passed.
	Passed bool `json:"passed"`
}

// ModelInfo describes the base model.
type ModelInfo struct {
	Layers    int    `json:"layers"`
	Heads     int    `json:"heads"`
	Embd      int    `json:"embd"`
	Context   int    `json:"context"`
	Vocab     int    `json:"vocab"`
	Tokenizer string `json:"tokenizer"`
	Params    int    `json:"params"`
}

// DomainInfo describes the text of one domain.
type DomainInfo struct {
	Domain      string   `json:"domain"`
	Role        string   `json:"role"` // "base" or "task"
	Description string   `json:"description"`
	Files       int      `json:"files"`
	Bytes       int      `json:"bytes"`
	TrainTokens int      `json:"train_tokens"`
	ValidTokens int      `json:"valid_tokens"`
	FirstFiles  []string `json:"first_files"`
}

// RunInfo describes one training run.
type RunInfo struct {
	Name      string  `json:"name"`   // "pretrain", "lora:<task>", "full:<task>"
	Method    string  `json:"method"` // "pretrain", "lora" or "full"
	Domain    string  `json:"domain"`
	Steps     int     `json:"steps"`
	LR        float64 `json:"lr"`
	Trainable int     `json:"trainable_params"`
	All       int     `json:"all_params"`
	Percent   float64 `json:"trainable_percent"`
	Tokens    int64   `json:"tokens"`
	Seconds   float64 `json:"seconds"` // the whole run, validations included
	// TokensPerSec is the training throughput: tokens over the time spent
	// in training steps (validations left out; the first step includes
	// compiling the program).
	TokensPerSec float64  `json:"tokens_per_sec"`
	Rank         int      `json:"rank,omitempty"`
	Alpha        float64  `json:"alpha,omitempty"`
	Targets      []string `json:"targets,omitempty"`
	Curve        Curve    `json:"curve"`
}

// Curve is a loss curve: the training loss of every step and the validation
// loss at some steps.
type Curve struct {
	Train      []float64 `json:"train"`
	ValidSteps []int     `json:"valid_steps"`
	Valid      []float64 `json:"valid"`
}

// MergeCheck compares the logits of an adapter unmerged and merged into the
// base weights on one validation batch.
type MergeCheck struct {
	Adapter     string  `json:"adapter"`
	MaxAbsDiff  float64 `json:"max_abs_diff"`
	MaxAbsLogit float64 `json:"max_abs_logit"`
	Tolerance   float64 `json:"tolerance"`
	OK          bool    `json:"ok"`
}

// LatencyInfo is the median time of one forward pass of Batch × Context
// tokens.
type LatencyInfo struct {
	Batch      int     `json:"batch"`
	Context    int     `json:"context"`
	Runs       int     `json:"runs"`
	Adapter    string  `json:"adapter"`
	BaseMs     float64 `json:"base_ms"`
	UnmergedMs float64 `json:"unmerged_ms"`
	MergedMs   float64 `json:"merged_ms"`
}

// FileSizes are the sizes of the saved base model and adapters.
type FileSizes struct {
	BaseModelBytes int64            `json:"base_model_bytes"` // model.safetensors
	AdapterBytes   map[string]int64 `json:"adapter_bytes"`    // adapter_model.safetensors by task
}

// Sample is a text generated by one model from a prompt.
type Sample struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	Text   string `json:"text"`
}

// Check is one claim of the report and whether the run bears it out.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// mergeRelTol is the merged-vs-unmerged tolerance relative to the largest
// logit. float32 has ε ≈ 1.2e-7; merging rounds each W + s·A·B once, and
// that rounding passes through every later layer, so differences of a few ε
// times the logit scale are expected. 1e-4 leaves three orders of magnitude
// of headroom while a real mistake (a missing, doubled or mis-scaled ΔW)
// moves logits by far more.
const mergeRelTol = 1e-4

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

// loadData reads the domains, tokenizes them and splits each into training
// and validation windows.
func (d *demo) loadData() error {
	c := d.cfg
	root := c.GoRoot
	if root == "" {
		var err error
		if root, err = FindGoRoot(); err != nil {
			return err
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "VERSION")); err == nil {
		d.res.TextSource, _, _ = strings.Cut(string(b), "\n")
	}
	d.train, d.valid = map[string]trainers.Dataset{}, map[string]trainers.Dataset{}
	used := map[string]bool{c.BaseDomain: true}
	for _, t := range c.Tasks {
		used[t] = true
	}
	read := func(domain string, n int) (*GoText, error) {
		d.say("data", "reading %s: %s", domain, DomainDescription(domain))
		return ReadGoDomain(root, domain, n)
	}
	base, err := read(c.BaseDomain, c.BaseBytes)
	if err != nil {
		return err
	}
	if err := d.addDomain(base, "base"); err != nil {
		return err
	}
	d.fullTask = c.FullTask
	for _, t := range c.Tasks {
		txt, err := read(t, c.TaskBytes)
		if err != nil && errors.Is(err, os.ErrNotExist) {
			// This distribution lacks the folder: take a fallback domain.
			for _, f := range c.Fallbacks {
				if used[f] {
					continue
				}
				if txt, err = read(f, c.TaskBytes); err == nil {
					used[f] = true
					d.say("data", "%s is missing from this Go distribution; using %s instead", t, f)
					if d.fullTask == t {
						d.fullTask = f
					}
					t = f
					break
				}
			}
		}
		if err != nil {
			return err
		}
		if err := d.addDomain(txt, "task"); err != nil {
			return err
		}
		d.tasks = append(d.tasks, t)
	}
	d.res.Domains = append([]string{c.BaseDomain}, d.tasks...)
	return nil
}

// addDomain tokenizes a domain's text and splits it into windows.
func (d *demo) addDomain(txt *GoText, role string) error {
	c := d.cfg
	ids := Tokens(d.tok, txt.Docs)
	ds, err := trainers.NewTextDataset(ids, c.Context)
	if err != nil {
		return fmt.Errorf("experiments: demo: %s text: %w", txt.Domain, err)
	}
	tr, va, err := trainers.Split(ds, c.ValidFraction, c.Seed)
	if err != nil {
		return fmt.Errorf("experiments: demo: %s text: %w", txt.Domain, err)
	}
	va = firstN(va, c.MaxValidWindows)
	d.train[txt.Domain], d.valid[txt.Domain] = tr, va
	info := DomainInfo{Domain: txt.Domain, Role: role, Description: DomainDescription(txt.Domain),
		Files: len(txt.Files), Bytes: txt.Bytes,
		TrainTokens: tr.Len() * c.Context, ValidTokens: va.Len() * c.Context}
	info.FirstFiles = txt.Files[:min(3, len(txt.Files))]
	d.res.Data = append(d.res.Data, info)
	return nil
}

// limited is the first n examples of a Dataset.
type limited struct {
	trainers.Dataset
	n int
}

func (l limited) Len() int { return l.n }

func firstN(ds trainers.Dataset, n int) trainers.Dataset {
	if ds.Len() <= n {
		return ds
	}
	return limited{ds, n}
}

// trainConfig is the trainer configuration of a run of steps at peak lr.
func (d *demo) trainConfig(stage string, steps int, lr float64, seed uint64, curve *Curve, clock *stepClock) trainers.Config {
	c := d.cfg
	tc := trainers.DefaultConfig()
	tc.Seed, tc.Batch, tc.Context, tc.Steps = seed, c.Batch, c.Context, steps
	tc.LR, tc.Schedule, tc.Warmup, tc.MinLR = lr, trainers.ScheduleCosine, min(c.Warmup, steps), lr/10
	tc.EvalEvery = max(1, steps/c.CurvePoints)
	tc.EvalBatch = 4 * c.Batch
	tc.LogEvery = steps
	tc.Observer = trainers.Observer{
		OnStep: func(s trainers.StepInfo) {
			clock.tick(true)
			clock.tokens = s.Tokens
			curve.Train = append(curve.Train, s.Loss)
			d.emit(DemoEvent{Stage: stage, Step: s.Step, Total: s.TotalSteps, Loss: s.Loss, TokensPerSec: s.TokensPerSec})
		},
		OnEval: func(e trainers.EvalInfo) {
			clock.tick(false)
			curve.ValidSteps = append(curve.ValidSteps, e.Step)
			curve.Valid = append(curve.Valid, e.Loss)
			d.emit(DemoEvent{Stage: stage, Step: e.Step, Total: steps, ValidLoss: e.Loss})
		},
	}
	return tc
}

// stepClock adds up the time spent in training steps, leaving out
// validations, from the times the trainer's callbacks run.
type stepClock struct {
	last   time.Time
	inStep time.Duration
	tokens int64
}

// tick ends an interval that was a training step (step) or a validation.
func (c *stepClock) tick(step bool) {
	now := time.Now()
	if step {
		c.inStep += now.Sub(c.last)
	}
	c.last = now
}

// trainRun trains m's trainable parameters on domain and fills run.
func (d *demo) trainRun(m *gpt.Model, run *RunInfo, seed uint64) error {
	run.Curve = Curve{}
	clock := &stepClock{}
	tr, err := trainers.New(m, d.trainConfig(run.Name, run.Steps, run.LR, seed, &run.Curve, clock))
	if err != nil {
		return fmt.Errorf("experiments: demo %s: %w", run.Name, err)
	}
	defer tr.Close()
	for _, p := range m.Params() {
		run.All += p.Len()
		if p.Trainable {
			run.Trainable += p.Len()
		}
	}
	run.Percent = 100 * float64(run.Trainable) / float64(run.All)
	clock.last = time.Now()
	res, err := tr.TrainContext(d.ctx, d.train[run.Domain], d.valid[run.Domain])
	if err != nil {
		return fmt.Errorf("experiments: demo %s: %w", run.Name, err)
	}
	run.Tokens, run.Seconds = res.Tokens, res.Elapsed.Seconds()
	if s := clock.inStep.Seconds(); s > 0 {
		run.TokensPerSec = float64(clock.tokens) / s
	}
	return nil
}

// pretrain trains the base model from scratch and saves it.
func (d *demo) pretrain() error {
	c := d.cfg
	m, err := gpt.New(c.Model, graph.Float32)
	if err != nil {
		return fmt.Errorf("experiments: demo: %w", err)
	}
	if err := m.Init(graph.NewRand(c.Seed)); err != nil {
		return err
	}
	d.res.Model = ModelInfo{Layers: c.Model.NLayer, Heads: c.Model.NHead, Embd: c.Model.NEmbd,
		Context: c.Context, Vocab: c.Model.VocabSize, Tokenizer: c.Model.Tokenizer,
		Params: graph.CountParams(m.BaseParams())}
	d.res.Pretrain = RunInfo{Name: "pretrain", Method: "pretrain", Domain: c.BaseDomain, Steps: c.PretrainSteps, LR: c.PretrainLR}
	if err := d.trainRun(m, &d.res.Pretrain, c.Seed); err != nil {
		return err
	}
	if err := m.Save(filepath.Join(d.dir, DemoBaseDir)); err != nil {
		return err
	}
	st, err := os.Stat(filepath.Join(d.dir, DemoBaseDir, gpt.WeightsFile))
	if err != nil {
		return err
	}
	d.res.Files.BaseModelBytes = st.Size()
	return nil
}

// loadBase reads the saved base model.
func (d *demo) loadBase() (*gpt.Model, error) {
	return gpt.Load(filepath.Join(d.dir, DemoBaseDir), graph.Float32)
}

func (d *demo) adapterDir(task string) string {
	return filepath.Join(d.dir, DemoAdaptersDir, task)
}

// finetune trains one LoRA adapter per task and the full fine-tuning
// baseline, each from the saved base, and scores each on every domain.
func (d *demo) finetune() error {
	c := d.cfg
	if err := os.MkdirAll(filepath.Join(d.dir, DemoAdaptersDir), 0o755); err != nil {
		return err
	}
	for i, t := range d.tasks {
		m, err := d.loadBase()
		if err != nil {
			return err
		}
		lc := c.LoRA
		lc.Seed = c.Seed + uint64(i) + 1
		lc.BaseModel = c.BaseName
		if lc.BaseModel == "" {
			lc.BaseModel = DemoBaseDir
		}
		lm, err := lora.Inject(m, lc)
		if err != nil {
			return fmt.Errorf("experiments: demo: %w", err)
		}
		full, _ := lm.Config(lora.DefaultAdapter)
		run := RunInfo{Name: "lora:" + t, Method: "lora", Domain: t, Steps: c.FinetuneSteps, LR: c.LoRALR,
			Rank: full.R, Alpha: full.Alpha, Targets: full.Targets}
		if err := d.trainRun(m, &run, c.Seed+100+uint64(i)); err != nil {
			return err
		}
		d.res.LoRA = append(d.res.LoRA, run)
		if err := lm.Save(d.adapterDir(t), lora.DefaultAdapter); err != nil {
			return err
		}
		st, err := os.Stat(filepath.Join(d.adapterDir(t), lora.WeightsFile))
		if err != nil {
			return err
		}
		d.res.Files.AdapterBytes[t] = st.Size()
		if err := d.scoreAll(m, run.Name); err != nil {
			return err
		}
	}
	m, err := d.loadBase()
	if err != nil {
		return err
	}
	for _, p := range m.Params() {
		p.Trainable = true
	}
	d.res.Full = RunInfo{Name: "full:" + d.fullTask, Method: "full", Domain: d.fullTask, Steps: c.FinetuneSteps, LR: c.FullLR}
	if err := d.trainRun(m, &d.res.Full, c.Seed+200); err != nil {
		return err
	}
	return d.scoreAll(m, d.res.Full.Name)
}

// evaluate scores the base model on every domain.
func (d *demo) evaluate() error {
	m, err := d.loadBase()
	if err != nil {
		return err
	}
	return d.scoreAll(m, "base")
}

// scoreAll records the validation loss of m on every domain under name.
func (d *demo) scoreAll(m *gpt.Model, name string) error {
	d.say("evaluate", "%s on %v", name, d.res.Domains)
	losses, err := d.score(m)
	if err != nil {
		return fmt.Errorf("experiments: demo: evaluate %s: %w", name, err)
	}
	d.res.ValidLoss[name] = losses
	return nil
}

// score returns m's validation loss on every domain, as it is now (a new
// evaluator, so that a changed LoRA state is compiled in).
func (d *demo) score(m *gpt.Model) (map[string]float64, error) {
	tc := trainers.DefaultConfig()
	tc.Batch, tc.Context, tc.EvalBatch = d.cfg.Batch, d.cfg.Context, 4*d.cfg.Batch
	ev, err := trainers.New(m, tc)
	if err != nil {
		return nil, err
	}
	defer ev.Close()
	out := map[string]float64{}
	for _, dom := range d.res.Domains {
		r, err := ev.Evaluate(d.valid[dom])
		if err != nil {
			return nil, err
		}
		out[dom] = r.Loss
	}
	return out, nil
}

// loadAll reads the base and loads every adapter onto it, named by task.
func (d *demo) loadAll() (*gpt.Model, *lora.Model, error) {
	m, err := d.loadBase()
	if err != nil {
		return nil, nil, err
	}
	lm, err := lora.NewModel(m)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range d.tasks {
		if err := lm.LoadAdapter(d.adapterDir(t), t); err != nil {
			return nil, nil, err
		}
	}
	return m, lm, nil
}

// switching loads every adapter onto one base and scores each, switching the
// active adapter in between.
func (d *demo) switching() error {
	m, lm, err := d.loadAll()
	if err != nil {
		return err
	}
	for _, t := range d.tasks {
		if err := lm.SetActive(t); err != nil {
			return err
		}
		d.say("switch", "one base, adapters %v loaded; active: %s", d.tasks, t)
		losses, err := d.score(m)
		if err != nil {
			return fmt.Errorf("experiments: demo: task switching to %s: %w", t, err)
		}
		d.res.Switching[t] = losses
	}
	return nil
}

// mergeAndLatency compares merged and unmerged logits for every adapter and
// times batch-1 forward passes of the base, unmerged and merged models.
func (d *demo) mergeAndLatency() error {
	c := d.cfg
	m, lm, err := d.loadAll()
	if err != nil {
		return err
	}
	// One validation batch of the first task: up to Batch windows.
	va := d.valid[d.tasks[0]]
	n := min(c.Batch, va.Len())
	ids := make([]int, 0, n*c.Context)
	for i := 0; i < n; i++ {
		ids = append(ids, va.Example(i).Tokens[:c.Context]...)
	}
	logits := func(batch int, in []int) ([]float64, error) {
		f, err := NewForward(m, batch, c.Context)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return f.Logits(in)
	}
	for _, t := range d.tasks {
		d.say("merge", "adapter %s: merged vs unmerged logits on %d × %d tokens", t, n, c.Context)
		if err := lm.SetActive(t); err != nil {
			return err
		}
		un, err := logits(n, ids)
		if err != nil {
			return err
		}
		if err := lm.Merge(); err != nil {
			return err
		}
		me, err := logits(n, ids)
		if err != nil {
			return err
		}
		if err := lm.Unmerge(); err != nil {
			return err
		}
		diff, scale, err := MaxAbsDiff(un, me)
		if err != nil {
			return err
		}
		tol := mergeRelTol * math.Max(1, scale)
		d.res.Merge = append(d.res.Merge, MergeCheck{Adapter: t, MaxAbsDiff: diff, MaxAbsLogit: scale, Tolerance: tol, OK: diff <= tol})
	}

	t := d.tasks[0]
	one := ids[:c.Context]
	lat := LatencyInfo{Batch: 1, Context: c.Context, Runs: c.LatencyRuns, Adapter: t}
	time1 := func() (float64, error) {
		f, err := NewForward(m, 1, c.Context)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		return f.Latency(one, c.LatencyRuns)
	}
	d.say("latency", "batch 1 × %d tokens, %d runs each: base, unmerged, merged", c.Context, c.LatencyRuns)
	if err := lm.SetActive(t); err != nil {
		return err
	}
	if err := lm.Disable(); err != nil {
		return err
	}
	if lat.BaseMs, err = time1(); err != nil {
		return err
	}
	if err := lm.Enable(); err != nil {
		return err
	}
	if lat.UnmergedMs, err = time1(); err != nil {
		return err
	}
	if err := lm.Merge(); err != nil {
		return err
	}
	if lat.MergedMs, err = time1(); err != nil {
		return err
	}
	d.res.Latency = lat
	return lm.Unmerge()
}

// Sampling settings of the demo's samples.
const (
	sampleTemperature = 0.8
	sampleTopK        = 40
)

// samples generates a text per model from a prompt typical of each task.
func (d *demo) samples() error {
	if d.cfg.SampleTokens == 0 {
		return nil
	}
	m, lm, err := d.loadAll()
	if err != nil {
		return err
	}
	for i, t := range append([]string{""}, d.tasks...) {
		name := "base"
		if t == "" {
			if err := lm.Disable(); err != nil {
				return err
			}
		} else {
			name = "lora:" + t
			if err := lm.Enable(); err != nil {
				return err
			}
			if err := lm.SetActive(t); err != nil {
				return err
			}
		}
		prompts := d.prompts()
		ids := make([][]int, len(prompts))
		for j, p := range prompts {
			ids[j] = d.tok.Encode(p)
		}
		d.say("samples", "%s: %d tokens after each of %q", name, d.cfg.SampleTokens, prompts)
		opts := gpt.GenerateOptions{MaxNewTokens: min(d.cfg.SampleTokens, d.cfg.Model.BlockSize),
			Temperature: sampleTemperature, TopK: sampleTopK, Seed: d.cfg.Seed + uint64(i)}
		gens, err := m.Generate(ids, opts)
		if err != nil {
			return fmt.Errorf("experiments: demo: samples of %s: %w", name, err)
		}
		for j, g := range gens {
			text := strings.ToValidUTF8(d.tok.Decode(g.Tokens), "\uFFFD")
			d.res.Samples = append(d.res.Samples, Sample{Model: name, Prompt: prompts[j], Text: text})
		}
	}
	return nil
}

// prompts returns one prompt per task that starts text typical of it.
func (d *demo) prompts() []string {
	var ps []string
	for _, t := range d.tasks {
		switch t {
		case DomainDocs:
			ps = append(ps, "The ")
		case DomainAsm:
			ps = append(ps, "TEXT ·")
		case DomainAPI:
			ps = append(ps, "pkg ")
		default:
			ps = append(ps, "func ")
		}
	}
	return ps
}

// check evaluates the report's claims.
func (d *demo) check() {
	r := d.res
	add := func(name string, ok bool, format string, a ...any) {
		r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
	}
	for _, t := range d.tasks {
		own := r.ValidLoss["lora:"+t][t]
		base := r.ValidLoss["base"][t]
		add("lora:"+t+" beats the base on "+t, own < base, "validation loss %.4f vs base %.4f", own, base)
		for _, u := range d.tasks {
			if u == t {
				continue
			}
			other := r.ValidLoss["lora:"+u][t]
			add("lora:"+t+" beats lora:"+u+" on "+t, own < other, "validation loss %.4f vs %.4f", own, other)
		}
	}
	for _, run := range r.LoRA {
		add(run.Name+" trains under 5% of the parameters", run.Percent < 5,
			"%d of %d parameters (%.2f%%)", run.Trainable, run.All, run.Percent)
	}
	for _, mc := range r.Merge {
		add("lora:"+mc.Adapter+" merged = unmerged", mc.OK,
			"max |Δlogit| %.3g ≤ %.3g (1e-4 × max |logit| %.3g)", mc.MaxAbsDiff, mc.Tolerance, mc.MaxAbsLogit)
	}
	// The adapters reloaded from their folders onto one base must score what
	// they scored right after training.
	worst := 0.0
	for _, t := range d.tasks {
		for _, dom := range r.Domains {
			a, b := r.Switching[t][dom], r.ValidLoss["lora:"+t][dom]
			worst = math.Max(worst, math.Abs(a-b)/math.Max(1, math.Abs(b)))
		}
	}
	add("adapters reloaded on one base reproduce their losses", worst <= 1e-5,
		"largest relative difference %.2g (tolerance 1e-5)", worst)
	r.Passed = true
	for _, c := range r.Checks {
		r.Passed = r.Passed && c.OK
	}
}
