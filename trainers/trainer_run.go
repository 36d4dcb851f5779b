package trainers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Train runs optimizer steps until the step budget (Config.Steps, or
// Config.Epochs over train) is reached, validating on valid (nil: no
// validation) every Config.EvalEvery steps and at the end. It continues
// from the trainer's step and data position, so a Trainer that was Resumed,
// or that trained before, carries on where it stopped. See TrainContext.
func (t *Trainer) Train(train, valid Dataset) (Result, error) {
	return t.TrainContext(context.Background(), train, valid)
}

// TrainContext is Train that stops early when ctx is done: after the step in
// progress it writes a checkpoint to Config.CheckpointPath (when set) and
// returns an error wrapping ctx.Err(). A run stopped this way and resumed
// from that checkpoint gives the same losses and parameters as one never
// stopped.
//
// When a loss or gradient is not finite, it returns an error wrapping
// ErrNonFinite that names the step (and the parameter, for a gradient); the
// step is not applied and no checkpoint is written, so the last checkpoint
// on disk stays the last good one.
func (t *Trainer) TrainContext(ctx context.Context, train, valid Dataset) (res Result, err error) {
	start := time.Now()
	res = Result{FirstStep: t.step, Steps: t.step}
	if err := t.checkData(train, "training"); err != nil {
		return res, err
	}
	if valid != nil {
		if err := t.checkData(valid, "validation"); err != nil {
			return res, err
		}
	}
	if len(t.trainable) == 0 {
		return res, errors.New("trainers: no trainable parameters (set Trainable on some before New)")
	}
	if err := t.syncRanks(ctx); err != nil {
		return res, err
	}
	smp := newSampler(train.Len(), t.cfg.Seed)
	if t.pos.Len != 0 {
		if err := smp.restore(t.pos); err != nil {
			return res, err
		}
	}
	sched := t.Schedule(train.Len())
	if err := sched.Validate(); err != nil {
		return res, err
	}
	r := run{t: t, res: &res, start: start, winStart: start, smp: smp}
	defer func() {
		res.Steps = t.step
		res.Epochs = smp.epochs()
		res.Elapsed = time.Since(start)
		res.BestStep = t.bestStep
		res.BestValidLoss = t.bestLoss
		if t.bestStep == 0 {
			res.BestValidLoss = 0
		}
	}()
	lastEval, lastCkpt := -1, -1
	for t.step < sched.Total {
		if err := t.stopCause(ctx); err != nil {
			if t.cfg.CheckpointPath != "" && lastCkpt != t.step {
				if err := r.checkpoint(t.cfg.CheckpointPath, false); err != nil {
					return res, err
				}
			}
			return res, fmt.Errorf("trainers: stopped after step %d: %w", t.step, err)
		}
		info, err := r.optimizerStep(train, sched)
		if err != nil {
			return res, t.stepFailed(err)
		}
		res.Losses = append(res.Losses, info.Loss)
		if t.step%t.cfg.LogEvery == 0 || t.step == sched.Total {
			if err := writeMetric(t.metricsOut(), info); err != nil {
				return res, err
			}
			r.winStart, r.winTokens = time.Now(), 0
		}
		if valid != nil && ((t.cfg.EvalEvery > 0 && t.step%t.cfg.EvalEvery == 0) || t.step == sched.Total) {
			if err := r.validate(valid); err != nil {
				return res, err
			}
			lastEval = t.step
		}
		if t.cfg.CheckpointPath != "" && ((t.cfg.CheckpointEvery > 0 && t.step%t.cfg.CheckpointEvery == 0) || t.step == sched.Total) {
			if err := r.checkpoint(t.cfg.CheckpointPath, false); err != nil {
				return res, err
			}
			lastCkpt = t.step
		}
	}
	if valid != nil && lastEval != t.step {
		// A run that had nothing left to do still reports its score.
		if err := r.validate(valid); err != nil {
			return res, err
		}
	}
	return res, nil
}

// checkData rejects an empty dataset, and text windows longer than Context.
func (t *Trainer) checkData(ds Dataset, what string) error {
	if ds == nil {
		return fmt.Errorf("trainers: nil %s dataset", what)
	}
	if ds.Len() == 0 {
		return fmt.Errorf("trainers: %s dataset is empty", what)
	}
	if td, ok := ds.(*TextDataset); ok && td.Context() > t.cfg.Context {
		return fmt.Errorf("trainers: %s text windows of %d tokens need Config.Context ≥ %d, have %d", what, td.Context()+1, td.Context(), t.cfg.Context)
	}
	return nil
}

// run is the state of one Train call.
type run struct {
	t         *Trainer
	res       *Result
	smp       *sampler
	start     time.Time
	winStart  time.Time // start of the throughput window
	winTokens int64
	exs       []Example
	idx       []int
}

// optimizerStep runs Accumulate micro-batches, checks, clips and applies
// one AdamW update.
func (r *run) optimizerStep(train Dataset, sched Schedule) (StepInfo, error) {
	t, cfg := r.t, r.t.cfg
	step := t.step + 1
	// Draw and pad every micro-batch first: the weights n_j/N need N.
	if len(t.batches) != cfg.Accumulate {
		t.batches = make([]batch, cfg.Accumulate)
	}
	var lossTokens float64
	lo, hi := t.shard(cfg.Batch) // this rank's rows of the global batch
	for k := range t.batches {
		r.exs, r.idx = r.exs[:0], r.idx[:0]
		for i := 0; i < cfg.Batch; i++ {
			j := r.smp.next()
			if i < lo || i >= hi {
				continue
			}
			r.exs = append(r.exs, train.Example(j))
			r.idx = append(r.idx, j)
		}
		b := &t.batches[k]
		if err := b.fill(r.exs, r.idx, "training", hi-lo, cfg.Context, cfg.BucketMultiple, t.vocab); err != nil {
			return StepInfo{}, fmt.Errorf("trainers: step %d: %w", step, err)
		}
		lossTokens += b.weight
	}
	if lossTokens == 0 && t.dist == nil { // data-parallel: checked over every rank
		return StepInfo{}, fmt.Errorf("trainers: step %d: the batch has no loss tokens (every target is masked)", step)
	}
	var loss float64
	drop := t.stepDropout(step) // committed only when the step succeeds
	for k := range t.batches {
		b := &t.batches[k]
		c, err := t.program(shape{b.rows, b.T}, true)
		if err != nil {
			return StepInfo{}, err
		}
		if err := c.feed(b); err != nil {
			return StepInfo{}, fmt.Errorf("trainers: step %d: %w", step, err)
		}
		if drop == nil { // a fresh run: the seeded state of a program never run
			drop = t.initDrop
		}
		if err := c.prog.SetRNGState(drop); err != nil {
			return StepInfo{}, err
		}
		if err := c.prog.Run(); err != nil {
			return StepInfo{}, fmt.Errorf("trainers: step %d: %w", step, err)
		}
		if drop, err = c.prog.RNGState(); err != nil {
			return StepInfo{}, fmt.Errorf("trainers: step %d: dropout RNG: %w", step, err)
		}
		l := c.prog.Loss()
		if math.IsNaN(l) || math.IsInf(l, 0) {
			return StepInfo{}, fmt.Errorf("trainers: step %d: training loss is %v: %w", step, l, ErrNonFinite)
		}
		// g = Σ_k (n_k/N)·g_k; one micro-batch is copied as is (w = 1).
		w := t.microWeight(b.weight, lossTokens)
		for i, p := range t.trainable {
			g, ok := c.prog.Grad(p)
			if !ok {
				return StepInfo{}, fmt.Errorf("trainers: step %d: no gradient for %s", step, p.Name)
			}
			accumulate(t.grads[i], g, w, k == 0)
		}
		loss += w * l
		r.winTokens += int64(b.tokens)
		r.res.Tokens += int64(b.tokens)
	}
	loss, err := r.reduceStep(step, loss, lossTokens) // data-parallel: sum over ranks, ÷ N
	if err != nil {
		return StepInfo{}, err
	}
	norm := globalNorm(t.grads)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		for i, g := range t.grads {
			if j, v, bad := firstNonFinite(g); bad {
				return StepInfo{}, fmt.Errorf("trainers: step %d: gradient of %s is %v at element %d: %w", step, t.trainable[i].Name, v, j, ErrNonFinite)
			}
		}
		return StepInfo{}, fmt.Errorf("trainers: step %d: gradient norm overflows: %w", step, ErrNonFinite)
	}
	clipped := clip(t.grads, norm, cfg.MaxGradNorm)
	lr := sched.At(step)
	if err := t.opt.Step(t.trainable, t.grads, lr); err != nil {
		return StepInfo{}, fmt.Errorf("trainers: step %d: %w", step, err)
	}
	t.step = step
	t.pos = r.smp.position()
	t.dropState = drop
	now := time.Now()
	info := StepInfo{
		Step:       step,
		TotalSteps: sched.Total,
		Epoch:      r.smp.epochs(),
		Loss:       loss,
		LR:         lr,
		GradNorm:   norm,
		Clipped:    clipped,
		Tokens:     r.res.Tokens,
		ElapsedSec: now.Sub(r.start).Seconds(),
	}
	if t.dist != nil {
		info.Ranks, info.AllReducedBytes = t.dist.size, t.dist.stepBytes
	}
	if dt := now.Sub(r.winStart).Seconds(); dt > 0 {
		info.TokensPerSec = float64(r.winTokens) / dt
	}
	if f := cfg.Observer.OnStep; f != nil {
		f(info)
	}
	return info, nil
}

// validate scores valid, reports it and keeps the best checkpoint.
func (r *run) validate(valid Dataset) error {
	t := r.t
	began := time.Now()
	defer func() { r.res.EvalTime += time.Since(began) }()
	ev, err := t.evaluate(valid)
	if err != nil {
		return fmt.Errorf("trainers: validation after step %d: %w", t.step, err)
	}
	r.res.Valid = ev
	info := EvalInfo{Step: t.step, EvalResult: ev}
	if ev.Loss < t.bestLoss {
		t.bestLoss, t.bestStep = ev.Loss, t.step
		info.Best = true
	}
	info.ElapsedSec = time.Since(r.start).Seconds()
	if err := writeMetric(t.metricsOut(), info); err != nil {
		return err
	}
	if f := t.cfg.Observer.OnEval; f != nil {
		f(info)
	}
	if info.Best && t.cfg.BestPath != "" {
		if err := r.checkpoint(t.cfg.BestPath, true); err != nil {
			return err
		}
	}
	r.winStart, r.winTokens = time.Now(), 0 // validation time is not training throughput
	return nil
}

// checkpoint writes one and tells the observer.
func (r *run) checkpoint(path string, best bool) error {
	if !r.t.leads() { // data-parallel: rank 0 writes
		return nil
	}
	if err := r.t.SaveCheckpoint(path); err != nil {
		return err
	}
	if f := r.t.cfg.Observer.OnCheckpoint; f != nil {
		f(CheckpointInfo{Step: r.t.step, Path: path, Best: best})
	}
	return nil
}
