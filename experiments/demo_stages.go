package experiments

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// mergeRelTol is the merged-vs-unmerged tolerance relative to the largest
// logit. float32 has ε ≈ 1.2e-7; merging rounds each W + s·A·B once, and
// that rounding passes through every later layer, so differences of a few ε
// times the logit scale are expected. 1e-4 leaves three orders of magnitude
// of headroom while a real mistake (a missing, doubled or mis-scaled ΔW)
// moves logits by far more.
const mergeRelTol = 1e-4

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
