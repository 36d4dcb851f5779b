package trainers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/golora/golora/graph"
)

// Collective is the communication data-parallel training needs from an
// engine that connects N processes (ranks) running the same training: an
// element-wise sum over every rank's buffer, left in every rank's buffer,
// and a broadcast of one rank's buffer to all. Every rank must make the same
// calls in the same order with buffers of the same length. The MPI binding
// (golora built with -tags mpi) and LocalGroup (ranks as goroutines of one
// process) implement it; an engine for accelerators (NCCL, say) would too.
//
// The engine must give every rank the same bits from AllReduceSum (MPI's
// sum does, as the MPI standard asks of implementations): AdamW's state then
// stays identical on every rank without ever being sent.
type Collective interface {
	// Rank is this process's index, 0 ≤ Rank < Size.
	Rank() int
	// Size is the number of ranks.
	Size() int
	// AllReduceSumFloat32 replaces buf by the element-wise sum over ranks.
	AllReduceSumFloat32(buf []float32) error
	// AllReduceSumFloat64 replaces buf by the element-wise sum over ranks.
	AllReduceSumFloat64(buf []float64) error
	// BroadcastFloat32 copies rank root's buf into every rank's buf.
	BroadcastFloat32(buf []float32, root int) error
	// BroadcastFloat64 copies rank root's buf into every rank's buf.
	BroadcastFloat64(buf []float64, root int) error
}

// The control vector every rank all-reduces once per step (float64, before
// the gradients) and once per validation.
const (
	ctrlLossSum    = iota // Σ over ranks of loss × loss tokens
	ctrlLossTokens        // Σ loss tokens (mask weight)
	ctrlTokens            // Σ input tokens that are not padding
	ctrlExamples          // Σ examples scored (validation)
	ctrlFailed            // ranks whose own part failed
	ctrlFailedRank        // Σ (rank+1) over the failed ranks: the rank when one failed
	ctrlNonFinite         // failed ranks whose failure was a NaN or ±Inf
	ctrlStop              // ranks whose context was done (asked to stop)
	ctrlLen
)

// ControlBytes is the size of the control vector each rank all-reduces
// once per step before the gradients: the step's loss sum, its loss and
// input token counts, and the status words that let every rank stop at the
// same step when one fails or is asked to stop (float64 each).
const ControlBytes = 8 * ctrlLen

// distState is a Trainer's data-parallel state (nil: one process).
type distState struct {
	c          Collective
	rank, size int
	flat32     []float32 // every trainable gradient, model order: the one buffer all-reduced
	flat64     []float64
	ctrl       []float64
	ctx        context.Context // of the current TrainContext
	stop       bool            // every rank agreed to stop after the last step
	ctrlStep   int             // step whose control vector was reduced last
	stepBytes  int64           // gradient bytes the last step all-reduced
}

// SetCollective makes t one rank of a data-parallel run over c; nil, or a
// Collective of size 1, makes it a single process again. Every rank builds
// the same model and Trainer (same Config, same training data) and calls
// SetCollective before Train. Then, at each step:
//
//   - Config.Batch is the global batch: every rank draws the same Batch
//     examples and keeps rows [r·Batch/N, (r+1)·Batch/N), so Batch must be a
//     multiple of N (an error otherwise). Accumulation splits likewise.
//   - Each rank sums n_j·g_j over its micro-batches (n_j loss tokens, g_j
//     the mean-loss gradient) into one flat buffer of every trainable
//     gradient, which is all-reduced (summed) and divided by the global loss
//     tokens N = Σ n_j: g = Σ_j n_j·g_j / N, the gradient of the mean loss
//     over the whole global batch, as on one process. Only trainable
//     gradients travel: GradientBytes per step, after a ControlBytes
//     control vector.
//   - Clipping sees the global norm, and every rank applies the same AdamW
//     update, so parameters and optimizer state stay identical.
//   - When a rank's part of a step fails (a NaN loss, a bad example), every
//     rank returns an error at that step; a context done on any rank stops
//     every rank after the same step.
//
// Train first checks that every rank is at the same step and data position
// and copies rank 0's trainable values (and AdamW moments) to the others.
// Only rank 0 writes checkpoints and metrics; the Observer is called on every
// rank with the global figures. Validation is split over the ranks by
// batches and reduced. Dropout draws a fresh mask stream per step and rank
// from Config.Seed, so a run is reproducible for a given number of ranks;
// without dropout, runs on any number of ranks agree to rounding, and a
// checkpoint resumes on any number of ranks that divides the batch.
//
// When Train returns an error that did not come from a step or a
// validation (a checkpoint write on rank 0, a broken connection), the other
// ranks may be waiting: end the job through the engine (MPI: Abort), or
// rely on its timeout.
func (t *Trainer) SetCollective(c Collective) error {
	if c == nil || c.Size() == 1 {
		t.dist = nil
		return nil
	}
	n, r := c.Size(), c.Rank()
	if n < 1 || r < 0 || r >= n {
		return fmt.Errorf("trainers: collective says rank %d of %d", r, n)
	}
	if t.cfg.Batch%n != 0 {
		return fmt.Errorf("trainers: the global batch of %d sequences does not split over %d ranks: choose a batch that is a multiple of %d (each rank takes batch/%d rows)", t.cfg.Batch, n, n, n)
	}
	d := &distState{c: c, rank: r, size: n, ctrl: make([]float64, ctrlLen)}
	total := 0
	for _, p := range t.trainable {
		total += p.Len()
	}
	// The step gradients become views of one buffer: the all-reduce needs no copy.
	if t.dtype == graph.Float64 {
		d.flat64 = make([]float64, total)
	} else {
		d.flat32 = make([]float32, total)
	}
	off := 0
	for i, p := range t.trainable {
		g := graph.Array{Shape: p.Shape()}
		if d.flat64 != nil {
			g.F64 = d.flat64[off : off+p.Len() : off+p.Len()]
		} else {
			g.F32 = d.flat32[off : off+p.Len() : off+p.Len()]
		}
		t.grads[i] = g
		off += p.Len()
	}
	t.dist = d
	return nil
}

// Rank is the trainer's rank in a data-parallel run (0 on one process).
func (t *Trainer) Rank() int {
	if t.dist == nil {
		return 0
	}
	return t.dist.rank
}

// Ranks is the number of ranks of the run (1 on one process).
func (t *Trainer) Ranks() int {
	if t.dist == nil {
		return 1
	}
	return t.dist.size
}

// GradientBytes is the size of the gradient buffer a data-parallel step
// all-reduces: the trainable parameter count × the dtype's size.
func (t *Trainer) GradientBytes() int64 {
	n := int64(0)
	for _, p := range t.trainable {
		n += int64(p.Len())
	}
	if t.dtype == graph.Float64 {
		return 8 * n
	}
	return 4 * n
}

// leads reports whether this trainer writes files: on one process, or rank 0.
func (t *Trainer) leads() bool { return t.dist == nil || t.dist.rank == 0 }

// metricsOut is where metrics go: Config.Metrics on the leading rank only.
func (t *Trainer) metricsOut() io.Writer {
	if !t.leads() {
		return nil
	}
	return t.cfg.Metrics
}

// shard is the rows [lo, hi) of a global batch of n that this rank trains on.
func (t *Trainer) shard(n int) (lo, hi int) {
	if t.dist == nil {
		return 0, n
	}
	per := n / t.dist.size
	return t.dist.rank * per, (t.dist.rank + 1) * per
}

// microWeight is the weight of a micro-batch's mean-loss gradient and loss
// in the step's sum: its share n_k/N of the loss tokens on one process (1
// when it is the only one, so the gradient is copied exactly), and n_k in a
// data-parallel run, which divides by the global N after the all-reduce.
func (t *Trainer) microWeight(nk, lossTokens float64) float64 {
	switch {
	case t.dist != nil:
		return nk
	case t.cfg.Accumulate == 1:
		return 1
	}
	return nk / lossTokens
}

// dropoutRankStream separates the per-step dropout streams of a
// data-parallel run from every other use of the seed.
const dropoutRankStream = 0x64726f70 // "drop"

// stepDropout is the dropout RNG state a step starts from: the run's
// continuing state on one process; in a data-parallel run a fresh PCG per
// step and rank, seeded from Config.Seed, so ranks draw different masks for
// their different rows and a run resumed on any number of ranks needs no
// saved state.
func (t *Trainer) stepDropout(step int) []byte {
	if t.dist == nil {
		return t.dropState
	}
	h := splitmix(splitmix(t.cfg.Seed) ^ uint64(step))
	s, _ := rand.NewPCG(h, dropoutRankStream^splitmix(uint64(t.dist.rank))).MarshalBinary()
	return s
}

// splitmix is SplitMix64's output function: a bijective 64-bit mix.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// stopCause is why the training loop stops before the next step: ctx's
// error on one process; in a data-parallel run the agreement, reached in
// the last step's control vector, that some rank was asked to stop.
func (t *Trainer) stopCause(ctx context.Context) error {
	if t.dist == nil {
		return ctx.Err()
	}
	if !t.dist.stop {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("another rank was asked to stop: %w", context.Canceled)
}

// reduceStep is the data-parallel part of step: it all-reduces the control
// vector (this rank's loss sum, loss tokens and input tokens), then the
// flat gradient buffer, and divides both by the global loss tokens. It
// returns the step's global mean loss. r's token counts become global.
func (r *run) reduceStep(step int, lossSum, lossTokens float64) (float64, error) {
	t := r.t
	d := t.dist
	if d == nil {
		return lossSum, nil
	}
	tokens := 0
	for k := range t.batches {
		tokens += t.batches[k].tokens
	}
	ctrl := d.ctrl
	clear(ctrl)
	ctrl[ctrlLossSum], ctrl[ctrlLossTokens], ctrl[ctrlTokens] = lossSum, lossTokens, float64(tokens)
	if d.ctx != nil && d.ctx.Err() != nil {
		ctrl[ctrlStop] = 1
	}
	if err := d.c.AllReduceSumFloat64(ctrl); err != nil {
		return 0, fmt.Errorf("trainers: step %d: all-reduce the control vector: %w", step, err)
	}
	d.ctrlStep = step
	if ctrl[ctrlFailed] > 0 {
		return 0, d.peerFailed(fmt.Sprintf("step %d", step), ctrl)
	}
	d.stop = ctrl[ctrlStop] > 0
	n := ctrl[ctrlLossTokens]
	if n == 0 {
		return 0, fmt.Errorf("trainers: step %d: the global batch has no loss tokens (every target is masked)", step)
	}
	more := int64(ctrl[ctrlTokens]) - int64(tokens)
	r.res.Tokens += more
	r.winTokens += more
	if d.flat64 != nil {
		if err := d.c.AllReduceSumFloat64(d.flat64); err != nil {
			return 0, fmt.Errorf("trainers: step %d: all-reduce %d gradients: %w", step, len(d.flat64), err)
		}
		for i := range d.flat64 {
			d.flat64[i] /= n
		}
	} else {
		if err := d.c.AllReduceSumFloat32(d.flat32); err != nil {
			return 0, fmt.Errorf("trainers: step %d: all-reduce %d gradients: %w", step, len(d.flat32), err)
		}
		n32 := float32(n)
		for i := range d.flat32 {
			d.flat32[i] /= n32
		}
	}
	d.stepBytes = t.GradientBytes()
	r.res.Ranks = d.size
	r.res.AllReducedBytes += d.stepBytes
	return ctrl[ctrlLossSum] / n, nil
}

// peerFailed is the error of a rank that learned from the control vector
// that some rank's part of what (a step, a validation) failed.
func (d *distState) peerFailed(what string, ctrl []float64) error {
	failed := int(ctrl[ctrlFailed])
	var err error
	if failed == 1 {
		err = fmt.Errorf("trainers: %s failed on rank %d of %d (its own error says why)", what, int(ctrl[ctrlFailedRank])-1, d.size)
	} else {
		err = fmt.Errorf("trainers: %s failed on %d of %d ranks (their own errors say why)", what, failed, d.size)
	}
	if ctrl[ctrlNonFinite] > 0 {
		err = fmt.Errorf("%w: %w", err, ErrNonFinite)
	}
	return err
}

// stepFailed is called with the error of a step that failed on this rank.
// When the failure came before the step's control vector was reduced, the
// other ranks are waiting in that reduction: this rank joins it with its
// failure, so that they stop at the same step instead of waiting forever.
// It returns err.
func (t *Trainer) stepFailed(err error) error {
	d := t.dist
	if d == nil || d.ctrlStep == t.step+1 {
		return err
	}
	d.ctrlStep = t.step + 1
	d.tellFailure(err)
	return err
}

// tellFailure all-reduces a control vector that reports this rank's failure.
func (d *distState) tellFailure(err error) {
	ctrl := d.ctrl
	clear(ctrl)
	ctrl[ctrlFailed], ctrl[ctrlFailedRank] = 1, float64(d.rank+1)
	if errors.Is(err, ErrNonFinite) {
		ctrl[ctrlNonFinite] = 1
	}
	_ = d.c.AllReduceSumFloat64(ctrl) // best effort: the engine may be the failure
}

// syncRanks starts a data-parallel Train: every rank must be at the same
// step, optimizer step and data position with the same trainable shapes
// (an error on every rank otherwise, naming what differs on this one); then
// rank 0's trainable values and AdamW moments are copied to every rank.
func (t *Trainer) syncRanks(ctx context.Context) error {
	d := t.dist
	if d == nil {
		return nil
	}
	d.ctx, d.stop, d.ctrlStep = ctx, false, t.step
	h := fnv.New64a()
	h.Write(t.pos.RNG)
	sum := h.Sum64()
	elems := 0
	for _, p := range t.trainable {
		elems += p.Len()
	}
	names := []string{"step", "optimizer step", "data epoch", "data cursor", "training set size",
		"trainable parameters", "trainable elements", "parameters with optimizer state", "data RNG state", "data RNG state"}
	mine := []float64{float64(t.step), float64(t.opt.StepCount()), float64(t.pos.Epoch), float64(t.pos.Cursor), float64(t.pos.Len),
		float64(len(t.trainable)), float64(elems), float64(len(t.opt.state)), float64(sum >> 32), float64(sum & math.MaxUint32)}
	lead := slices.Clone(mine)
	if err := d.c.BroadcastFloat64(lead, 0); err != nil {
		return fmt.Errorf("trainers: start on rank %d: broadcast the run state: %w", d.rank, err)
	}
	var mismatch error
	for i := range mine {
		if mine[i] != lead[i] {
			mismatch = fmt.Errorf("trainers: rank %d has %s %v, rank 0 has %v: every rank must start from the same state (resume the same checkpoint on every rank)", d.rank, names[i], mine[i], lead[i])
			break
		}
	}
	flag := []float64{0}
	if mismatch != nil {
		flag[0] = 1
	}
	if err := d.c.AllReduceSumFloat64(flag); err != nil {
		return fmt.Errorf("trainers: start on rank %d: %w", d.rank, err)
	}
	if mismatch != nil {
		return mismatch
	}
	if flag[0] > 0 {
		return fmt.Errorf("trainers: %d of %d ranks start from a state other than rank 0's (their errors say which): resume the same checkpoint on every rank", int(flag[0]), d.size)
	}
	bcast := func(p *graph.Param) error {
		if p.DType() == graph.Float64 {
			return d.c.BroadcastFloat64(p.Float64s(), 0)
		}
		return d.c.BroadcastFloat32(p.Float32s(), 0)
	}
	for _, p := range t.trainable {
		if err := bcast(p); err != nil {
			return fmt.Errorf("trainers: start: broadcast %s from rank 0: %w", p.Name, err)
		}
	}
	for _, p := range t.trainable {
		s, ok := t.opt.state[p.Name]
		if !ok {
			continue // same count on every rank, checked above
		}
		if err := bcast(s.m); err != nil {
			return fmt.Errorf("trainers: start: broadcast the AdamW moments of %s: %w", p.Name, err)
		}
		if err := bcast(s.v); err != nil {
			return fmt.Errorf("trainers: start: broadcast the AdamW moments of %s: %w", p.Name, err)
		}
	}
	return nil
}

// evaluate is Evaluate, split over the ranks of a data-parallel run: rank r
// scores validation batches r, r+N, r+2N, … (of Config.EvalBatch
// sequences, the single-process order) and the sums are all-reduced, so
// every rank gets the same result. A failure on any rank fails every rank.
func (t *Trainer) evaluate(ds Dataset) (EvalResult, error) {
	d := t.dist
	if d == nil {
		return t.Evaluate(ds)
	}
	rows := t.cfg.EvalBatch
	if rows == 0 {
		rows = t.cfg.Batch
	}
	view := &batchShard{ds: ds, rows: rows, rank: d.rank, size: d.size}
	var local EvalResult
	var err error
	if view.Len() > 0 && hasLossTokens(view, t.cfg.Context) {
		if local, err = t.Evaluate(view); err != nil {
			err = fmt.Errorf("rank %d's validation batches (%d, %d+%d, …): %w", d.rank, d.rank, d.rank, d.size, err)
		}
	}
	ctrl := d.ctrl
	clear(ctrl)
	if err != nil {
		ctrl[ctrlFailed], ctrl[ctrlFailedRank] = 1, float64(d.rank+1)
		if errors.Is(err, ErrNonFinite) {
			ctrl[ctrlNonFinite] = 1
		}
	} else {
		ctrl[ctrlLossSum], ctrl[ctrlLossTokens] = local.Loss*local.Tokens, local.Tokens
	}
	ctrl[ctrlExamples] = float64(view.Len())
	if rerr := d.c.AllReduceSumFloat64(ctrl); rerr != nil {
		return EvalResult{}, fmt.Errorf("trainers: validation: all-reduce: %w", rerr)
	}
	if err != nil {
		return EvalResult{}, err
	}
	if ctrl[ctrlFailed] > 0 {
		return EvalResult{}, d.peerFailed("validation", ctrl)
	}
	if ctrl[ctrlLossTokens] == 0 {
		return EvalResult{}, errors.New("trainers: evaluate: the dataset has no loss tokens")
	}
	loss := ctrl[ctrlLossSum] / ctrl[ctrlLossTokens]
	return EvalResult{Loss: loss, Perplexity: math.Exp(loss), Tokens: ctrl[ctrlLossTokens], Examples: int(ctrl[ctrlExamples])}, nil
}

// hasLossTokens reports whether any example of ds has a target the loss
// counts once cut to ctx (Evaluate fails on a dataset without one).
func hasLossTokens(ds Dataset, ctx int) bool {
	for i := 0; i < ds.Len(); i++ {
		toks, p := fit(ds.Example(i), ctx)
		if len(toks) > max(p, 1) {
			return true
		}
	}
	return false
}

// batchShard is the examples of ds in batches rank, rank+size, … of rows
// examples each.
type batchShard struct {
	ds               Dataset
	rows, rank, size int
}

// Len is the number of examples in the shard's batches.
func (s *batchShard) Len() int {
	n := s.ds.Len()
	full, last := n/s.rows, n%s.rows
	k := 0
	if full > s.rank {
		k = (full - s.rank + s.size - 1) / s.size // full batches b ≡ rank (mod size)
	}
	count := k * s.rows
	if last > 0 && full%s.size == s.rank {
		count += last
	}
	return count
}

// Example returns the i-th example of the shard.
func (s *batchShard) Example(i int) Example {
	b := s.rank + (i/s.rows)*s.size
	return s.ds.Example(b*s.rows + i%s.rows)
}
