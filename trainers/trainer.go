package trainers

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/golora/golora/graph"
)

// ErrNonFinite is wrapped by the error Train returns when a loss or a
// gradient is NaN or ±Inf. The step is not applied: the parameters keep
// the values of the last good step and no checkpoint is written.
var ErrNonFinite = errors.New("trainers: non-finite value")

// Trainer trains the Trainable parameters of a LanguageModel with AdamW on
// the masked cross-entropy of next-token prediction. Create it with New,
// optionally Resume a checkpoint, then call Train. A Trainer is not safe for
// concurrent use.
type Trainer struct {
	model     LanguageModel
	cfg       Config
	dtype     graph.DType
	vocab     int
	trainable []*graph.Param // in model order, as when New was called
	opt       *AdamW

	trainProgs map[shape]*compiled
	evalProgs  map[shape]*compiled
	grads      []graph.Array // step gradient per trainable parameter, own storage

	step      int      // optimizer steps done
	pos       Position // data position after the last step; Len 0 before any
	dropState []byte   // dropout RNG state for the next training run; nil: fresh
	initDrop  []byte   // the state of a Program seeded with Config.Seed, never run
	bestLoss  float64
	bestStep  int
	batches   []batch // one per micro-batch, reused

	dist *distState // data-parallel run (dist.go); nil: one process
}

// shape is a compiled batch shape.
type shape struct{ rows, T int }

// compiled is one Program with its inputs.
type compiled struct {
	prog               *graph.Program
	ids, targets, mask *graph.Node
}

// New checks cfg and the model's parameters (non-nil, unique names, one
// dtype) and returns a trainer for the parameters that are Trainable now.
// Compilation happens on first use. Zero fields of cfg take their defaults
// first (Config.WithDefaults).
func New(model LanguageModel, cfg Config) (*Trainer, error) {
	if model == nil {
		return nil, errors.New("trainers: nil model")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Trainer{
		model:      model,
		cfg:        cfg,
		vocab:      model.VocabSize(),
		trainProgs: map[shape]*compiled{},
		evalProgs:  map[shape]*compiled{},
		bestLoss:   math.Inf(1),
	}
	if t.vocab < 1 {
		return nil, fmt.Errorf("trainers: model vocabulary size %d, want ≥ 1", t.vocab)
	}
	if err := t.readTrainable(); err != nil {
		return nil, err
	}
	t.opt = t.newOptimizer()
	return t, nil
}

// readTrainable checks the model's parameters (non-nil, unique names, one
// dtype) and takes the Trainable ones, with a gradient buffer each.
func (t *Trainer) readTrainable() error {
	params := t.model.Params()
	if len(params) == 0 {
		return errors.New("trainers: model has no parameters")
	}
	names := map[string]bool{}
	var trainable []*graph.Param
	for i, p := range params {
		if p == nil {
			return fmt.Errorf("trainers: model parameter %d is nil", i)
		}
		if names[p.Name] {
			return fmt.Errorf("trainers: model has two parameters named %q", p.Name)
		}
		names[p.Name] = true
		if i == 0 {
			t.dtype = p.DType()
		} else if p.DType() != t.dtype {
			return fmt.Errorf("trainers: parameter %s is %v, %s is %v: one dtype per model", p.Name, p.DType(), params[0].Name, t.dtype)
		}
		if p.Trainable {
			trainable = append(trainable, p)
		}
	}
	t.trainable = trainable
	t.grads = make([]graph.Array, len(t.trainable))
	for i, p := range t.trainable {
		t.grads[i] = graph.Array{Shape: p.Shape()}
		if t.dtype == graph.Float64 {
			t.grads[i].F64 = make([]float64, p.Len())
		} else {
			t.grads[i].F32 = make([]float32, p.Len())
		}
	}
	return nil
}

func (t *Trainer) newOptimizer() *AdamW {
	opt := NewAdamW(t.cfg.Beta1, t.cfg.Beta2, t.cfg.Eps, t.cfg.WeightDecay)
	if t.cfg.DecayAll {
		opt.Decay = func(*graph.Param) bool { return true }
	}
	if t.cfg.LoRAPlusRatio > 0 {
		opt.Group = LoRAPlusGroups(t.model.Params(), t.cfg)
	}
	return opt
}

// refreshIfStale drops every cached program when one of them is stale
// (graph.ErrStale: the model's structure changed since it was compiled,
// such as a LoRA adapter merged, switched, disabled or added), so that the
// next use compiles programs of the model as it is now. When the model's
// Trainable parameters changed with it (another adapter active) the
// trainer takes the new set, with a fresh optimizer state (moments and
// step count; the step and data position go on).
func (t *Trainer) refreshIfStale() error {
	stale := false
	for _, m := range []map[shape]*compiled{t.trainProgs, t.evalProgs} {
		for _, c := range m {
			stale = stale || c.prog.Stale() != nil
		}
	}
	if !stale {
		return nil
	}
	if err := t.Close(); err != nil {
		return err
	}
	old := t.trainable
	if err := t.readTrainable(); err != nil {
		return err
	}
	if !slices.Equal(old, t.trainable) {
		t.opt = t.newOptimizer()
	}
	return nil
}

// Config returns the trainer's configuration.
func (t *Trainer) Config() Config { return t.cfg }

// Step is the number of optimizer steps done (restored by Resume).
func (t *Trainer) Step() int { return t.step }

// Optimizer is the trainer's AdamW, for inspection.
func (t *Trainer) Optimizer() *AdamW { return t.opt }

// Trainable lists the parameters the trainer updates, in model order.
func (t *Trainer) Trainable() []*graph.Param { return append([]*graph.Param(nil), t.trainable...) }

// Close releases the compiled programs.
func (t *Trainer) Close() error {
	var first error
	for _, m := range []map[shape]*compiled{t.trainProgs, t.evalProgs} {
		for s, c := range m {
			if err := c.prog.Close(); err != nil && first == nil {
				first = err
			}
			delete(m, s)
		}
	}
	return first
}

// loss builds the loss of compiled inputs c: the model's own Loss when it
// is a LossModel, else SoftmaxCrossEntropy of its logits.
func (t *Trainer) loss(c *compiled, s shape, smoothing float64) (*graph.Node, error) {
	n := s.rows * s.T
	if lm, ok := t.model.(LossModel); ok {
		loss := lm.Loss(c.ids, c.targets, c.mask, s.rows, s.T, smoothing)
		if loss == nil {
			return nil, errors.New("trainers: model returned a nil loss")
		}
		if err := loss.Err(); err != nil {
			return nil, fmt.Errorf("trainers: model loss for batch %d × %d: %w", s.rows, s.T, err)
		}
		return loss, nil
	}
	logits := t.model.Logits(c.ids, s.rows, s.T)
	if logits == nil {
		return nil, errors.New("trainers: model returned nil logits")
	}
	if err := logits.Err(); err != nil {
		return nil, fmt.Errorf("trainers: model forward pass for batch %d × %d: %w", s.rows, s.T, err)
	}
	if got := logits.Shape(); len(got) != 2 || got[0] != n || got[1] != t.vocab {
		return nil, fmt.Errorf("trainers: model logits have shape %v, want [%d %d]", got, n, t.vocab)
	}
	return graph.SoftmaxCrossEntropy(logits, c.targets, c.mask, smoothing), nil
}

// program returns the training or evaluation Program for s, compiling it on
// first use: ids, targets and mask inputs [rows·T] and the loss (see loss;
// label smoothing only for training).
func (t *Trainer) program(s shape, train bool) (*compiled, error) {
	if err := t.refreshIfStale(); err != nil {
		return nil, err
	}
	progs := t.evalProgs
	if train {
		progs = t.trainProgs
	}
	if c, ok := progs[s]; ok {
		return c, nil
	}
	n := s.rows * s.T
	b := graph.NewBuilder(t.dtype, t.cfg.Seed)
	c := &compiled{
		ids:     b.IntInput("ids", n),
		targets: b.IntInput("targets", n),
		mask:    b.Input("mask", n),
	}
	smoothing := 0.0
	if train {
		smoothing = t.cfg.LabelSmoothing
	}
	loss, err := t.loss(c, s, smoothing)
	if err != nil {
		return nil, err
	}
	prog, err := b.Compile(loss)
	if err != nil {
		return nil, fmt.Errorf("trainers: compile batch %d × %d: %w", s.rows, s.T, err)
	}
	if train {
		reached := map[*graph.Param]bool{}
		for _, p := range prog.Trainable() {
			reached[p] = true
		}
		for _, p := range t.trainable {
			if !reached[p] {
				_ = prog.Close()
				if !p.Trainable {
					return nil, fmt.Errorf("trainers: parameter %s was frozen after New; create a new Trainer after changing Trainable flags", p.Name)
				}
				return nil, fmt.Errorf("trainers: parameter %s is trainable but the loss does not depend on it (freeze it, or check the model's Logits)", p.Name)
			}
		}
		if len(reached) != len(t.trainable) {
			_ = prog.Close()
			return nil, errors.New("trainers: a parameter became trainable after New; create a new Trainer after changing Trainable flags")
		}
	}
	if train && t.initDrop == nil {
		if t.initDrop, err = prog.RNGState(); err != nil {
			_ = prog.Close()
			return nil, fmt.Errorf("trainers: dropout RNG: %w", err)
		}
	}
	prog.SetTraining(train)
	c.prog = prog
	progs[s] = c
	return c, nil
}

// feed copies a batch into c's inputs.
func (c *compiled) feed(b *batch) error {
	if err := c.prog.SetInput(c.ids, b.ids); err != nil {
		return err
	}
	if err := c.prog.SetInput(c.targets, b.targets); err != nil {
		return err
	}
	return c.prog.SetInput(c.mask, b.mask)
}

// totalSteps is Config.Steps, or the steps Config.Epochs passes over n
// examples take.
func (t *Trainer) totalSteps(n int) int {
	if t.cfg.Steps > 0 {
		return t.cfg.Steps
	}
	per := float64(t.cfg.Batch) * float64(t.cfg.Accumulate)
	steps := math.Ceil(float64(t.cfg.Epochs) * float64(n) / per)
	if steps >= math.MaxInt/2 { // no overflow: a run longer than anyone waits for
		return math.MaxInt / 2
	}
	return int(steps)
}

// Schedule is the learning-rate schedule of a run over n training examples.
func (t *Trainer) Schedule(n int) Schedule {
	total := t.totalSteps(n)
	return Schedule{Kind: t.cfg.Schedule, LR: t.cfg.LR, MinLR: t.cfg.MinLR, Warmup: min(t.cfg.Warmup, total), Total: total}
}

// Evaluate scores ds with the current parameters: the mean cross-entropy over
// every loss token (mask-weighted, no label smoothing) and its perplexity,
// in batches of Config.EvalBatch sequences run forward only with dropout
// off. It changes no parameter and no training state.
func (t *Trainer) Evaluate(ds Dataset) (EvalResult, error) {
	if err := t.checkData(ds, "validation"); err != nil {
		return EvalResult{}, err
	}
	rows := t.cfg.EvalBatch
	if rows == 0 {
		rows = t.cfg.Batch
	}
	var b batch
	exs := make([]Example, 0, rows)
	idx := make([]int, 0, rows)
	var sum, weight float64
	n := ds.Len()
	progress := t.cfg.Observer.OnEvalProgress
	if progress != nil {
		progress(EvalProgress{Step: t.step, Total: n})
	}
	for lo := 0; lo < n; lo += rows {
		if progress != nil && lo > 0 {
			progress(EvalProgress{Step: t.step, Done: lo, Total: n})
		}
		exs, idx = exs[:0], idx[:0]
		for i := lo; i < min(lo+rows, n); i++ {
			exs = append(exs, ds.Example(i))
			idx = append(idx, i)
		}
		if err := b.fill(exs, idx, "validation", rows, t.cfg.Context, t.cfg.BucketMultiple, t.vocab); err != nil {
			return EvalResult{}, err
		}
		if b.weight == 0 {
			continue
		}
		c, err := t.program(shape{b.rows, b.T}, false)
		if err != nil {
			return EvalResult{}, err
		}
		if err := c.feed(&b); err != nil {
			return EvalResult{}, err
		}
		if err := c.prog.Forward(); err != nil {
			return EvalResult{}, fmt.Errorf("trainers: evaluate examples %d–%d: %w", lo, lo+len(exs)-1, err)
		}
		l := c.prog.Loss()
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return EvalResult{}, fmt.Errorf("trainers: evaluate examples %d–%d: loss is %v: %w", lo, lo+len(exs)-1, l, ErrNonFinite)
		}
		sum += l * b.weight
		weight += b.weight
	}
	if progress != nil {
		progress(EvalProgress{Step: t.step, Done: n, Total: n})
	}
	if weight == 0 {
		return EvalResult{}, errors.New("trainers: evaluate: the dataset has no loss tokens")
	}
	loss := sum / weight
	return EvalResult{Loss: loss, Perplexity: math.Exp(loss), Tokens: weight, Examples: n}, nil
}
