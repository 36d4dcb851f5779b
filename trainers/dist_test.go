package trainers

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golora/golora/graph"
)

// rankRun is one rank of a data-parallel test run.
type rankRun struct {
	m     *tinyLM
	tr    *Trainer
	res   Result
	err   error
	steps []StepInfo
}

// runRanks trains n ranks of a LocalGroup, each on a model and Config from
// mk, with before (when set) called on each Trainer before Train. A rank
// that fails aborts the group, and every wait is bounded, so a bug fails the
// test instead of hanging it.
func runRanks(t *testing.T, n int, mk func(rank int) (*tinyLM, Config), before func(rank int, tr *Trainer) error, train, valid Dataset) []*rankRun {
	t.Helper()
	g, err := NewLocalGroup(n)
	if err != nil {
		t.Fatal(err)
	}
	g.Timeout = 20 * time.Second
	runs := make([]*rankRun, n)
	var wg sync.WaitGroup
	for r := 0; r < n; r++ {
		m, cfg := mk(r)
		rr := &rankRun{m: m}
		runs[r] = rr
		user := cfg.Observer.OnStep
		cfg.Observer.OnStep = func(s StepInfo) {
			rr.steps = append(rr.steps, s)
			if user != nil {
				user(s)
			}
		}
		if rr.tr, rr.err = New(m, cfg); rr.err != nil {
			t.Fatalf("rank %d: %v", r, rr.err)
		}
		t.Cleanup(func() { _ = rr.tr.Close() })
		if err := rr.tr.SetCollective(g.Rank(r)); err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if before != nil {
				if rr.err = before(r, rr.tr); rr.err != nil {
					g.Abort(rr.err)
					return
				}
			}
			rr.res, rr.err = rr.tr.Train(train, valid)
			if rr.err != nil {
				g.Abort(rr.err)
			}
		}()
	}
	wg.Wait()
	return runs
}

// distConfig is the data-parallel tests' run: a global batch of 8 in two
// micro-batches, each padded to its own longest row, with clipping active.
func distConfig() Config {
	cfg := testConfig()
	cfg.Batch, cfg.Accumulate, cfg.BucketMultiple = 8, 2, 1
	cfg.Steps = 6
	cfg.MaxGradNorm = 0.5
	cfg.EvalEvery = 3
	cfg.EvalBatch = 5
	return cfg
}

// relDiff is max|a−b| / max|b|: the difference relative to the tensor's scale.
func relDiff(a, b []float64) float64 {
	var d, s float64
	for i := range b {
		d = math.Max(d, math.Abs(a[i]-b[i]))
		s = math.Max(s, math.Abs(b[i]))
	}
	if s == 0 {
		return d
	}
	return d / s
}

func relScalar(a, b float64) float64 { return math.Abs(a-b) / math.Max(math.Abs(b), 1e-300) }

// TestDataParallelMatchesOneProcess: N ranks with a global batch B give the
// losses, validation scores and parameters of one process with batch B, for
// LoRA and full training, in float64 and float32, with prompts of random
// length (ranks hold different numbers of loss tokens), accumulation,
// per-rank padding and clipping. Every rank ends with the same bits, and
// each step all-reduces exactly trainable count × dtype size bytes.
func TestDataParallelMatchesOneProcess(t *testing.T) {
	data := promptData(96, 12, 1)
	valid := promptData(23, 12, 2)
	cases := []struct {
		name  string
		ranks int
		dt    graph.DType
		lora  bool
		tol   float64 // relative; float64 rounding vs float32's, AdamW amplifies it a little
	}{
		{"lora/2 ranks/float64", 2, graph.Float64, true, 1e-9},
		{"lora/4 ranks/float64", 4, graph.Float64, true, 1e-9},
		{"full/2 ranks/float64", 2, graph.Float64, false, 1e-9},
		{"lora/2 ranks/float32", 2, graph.Float32, true, 1e-5},
		{"full/4 ranks/float32", 4, graph.Float32, false, 1e-5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mk := func(int) (*tinyLM, Config) {
				m := newTinyLM(c.dt, 12, 6, 3, 0, 1)
				if c.lora {
					m.freezeBase()
				}
				return m, distConfig()
			}
			m1, cfg1 := mk(0)
			var single []StepInfo
			cfg1.Observer.OnStep = func(s StepInfo) { single = append(single, s) }
			one, err := newTrainer(t, m1, cfg1).Train(data, valid)
			if err != nil {
				t.Fatal(err)
			}
			runs := runRanks(t, c.ranks, mk, nil, data, valid)
			for r, rr := range runs {
				if rr.err != nil {
					t.Fatalf("rank %d: %v", r, rr.err)
				}
				for i := range one.Losses {
					if d := relScalar(rr.res.Losses[i], one.Losses[i]); d > c.tol {
						t.Fatalf("rank %d step %d: loss %v, one process %v (relative %g)", r, i+1, rr.res.Losses[i], one.Losses[i], d)
					}
				}
				if d := relScalar(rr.res.Valid.Loss, one.Valid.Loss); d > c.tol || rr.res.Valid.Examples != one.Valid.Examples || rr.res.Valid.Tokens != one.Valid.Tokens {
					t.Fatalf("rank %d: validation %+v, one process %+v", r, rr.res.Valid, one.Valid)
				}
				if rr.res.Tokens != one.Tokens {
					t.Fatalf("rank %d counts %d tokens, one process %d", r, rr.res.Tokens, one.Tokens)
				}
				for _, p := range m1.Params() {
					got := rr.m.Params()
					for _, q := range got {
						if q.Name == p.Name {
							if d := relDiff(q.Values(), p.Values()); d > c.tol {
								t.Fatalf("rank %d: %s differs from one process by %g (relative)", r, p.Name, d)
							}
							if r > 0 && !equalBits(q.Values(), runs[0].m.paramValues(p.Name)) {
								t.Fatalf("rank %d's %s differs from rank 0's", r, p.Name)
							}
						}
					}
				}
				size := int64(4)
				if c.dt == graph.Float64 {
					size = 8
				}
				var count int64
				for _, p := range rr.tr.Trainable() {
					count += int64(p.Len())
				}
				for _, s := range rr.steps {
					if s.AllReducedBytes != count*size || s.Ranks != c.ranks {
						t.Fatalf("rank %d step %d: %d bytes over %d ranks, want %d × %d over %d", r, s.Step, s.AllReducedBytes, s.Ranks, count, size, c.ranks)
					}
				}
				if got := rr.tr.GradientBytes(); got != count*size {
					t.Fatalf("GradientBytes %d, want %d", got, count*size)
				}
			}
			if single[0].Ranks != 0 || single[0].AllReducedBytes != 0 {
				t.Fatalf("one process reports %d ranks, %d bytes", single[0].Ranks, single[0].AllReducedBytes)
			}
		})
	}
}

// paramValues returns the values of the named parameter.
func (m *tinyLM) paramValues(name string) []float64 {
	for _, p := range m.Params() {
		if p.Name == name {
			return p.Values()
		}
	}
	return nil
}

// TestDataParallelBroadcastsRankZero: ranks whose models start from
// different values train rank 0's: the result is one process's from rank
// 0's initialisation.
func TestDataParallelBroadcastsRankZero(t *testing.T) {
	data := promptData(64, 12, 3)
	m1 := newTinyLM(graph.Float64, 12, 6, 2, 0, 1)
	one, err := newTrainer(t, m1, distConfig()).Train(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	runs := runRanks(t, 2, func(r int) (*tinyLM, Config) {
		return newTinyLM(graph.Float64, 12, 6, 2, 0, uint64(1+10*r)), distConfig()
	}, nil, data, nil)
	for r, rr := range runs {
		if rr.err != nil {
			t.Fatalf("rank %d: %v", r, rr.err)
		}
		if d := relScalar(rr.res.Losses[len(rr.res.Losses)-1], one.Losses[len(one.Losses)-1]); d > 1e-9 {
			t.Fatalf("rank %d: final loss differs by %g from one process started at rank 0's values", r, d)
		}
		for _, p := range m1.Params() {
			if d := relDiff(rr.m.paramValues(p.Name), p.Values()); d > 1e-9 {
				t.Fatalf("rank %d: %s differs by %g", r, p.Name, d)
			}
		}
	}
}

// TestDataParallelResumeOnOtherRanks: a checkpoint written by a 2-rank run
// resumes on 1 and on 4 ranks, and a 1-process checkpoint on 2 ranks; each
// continues the same run (same losses and final parameters as a 2-rank run
// never stopped).
func TestDataParallelResumeOnOtherRanks(t *testing.T) {
	data := promptData(96, 12, 1)
	dir := t.TempDir()
	mid := filepath.Join(dir, "step3.safetensors")
	mk := func(ckpt string) func(int) (*tinyLM, Config) {
		return func(int) (*tinyLM, Config) {
			m := newTinyLM(graph.Float64, 12, 6, 3, 0, 1)
			m.freezeBase()
			cfg := distConfig()
			cfg.EvalEvery = 0
			cfg.CheckpointPath, cfg.CheckpointEvery = ckpt, 3
			cfg.Observer.OnCheckpoint = func(c CheckpointInfo) {
				if c.Step == 3 {
					b, err := os.ReadFile(c.Path)
					if err == nil {
						err = os.WriteFile(mid, b, 0o644)
					}
					if err != nil {
						t.Error(err)
					}
				}
			}
			return m, cfg
		}
	}
	full := runRanks(t, 2, mk(filepath.Join(dir, "two.safetensors")), nil, data, nil)
	if full[0].err != nil || full[1].err != nil {
		t.Fatalf("uninterrupted run: %v, %v", full[0].err, full[1].err)
	}
	if _, err := os.Stat(filepath.Join(dir, "two.safetensors")); err != nil {
		t.Fatalf("rank 0 wrote no checkpoint: %v", err)
	}
	want := full[0]
	check := func(label string, rr *rankRun) {
		t.Helper()
		if rr.err != nil {
			t.Fatalf("%s: %v", label, rr.err)
		}
		if rr.res.FirstStep != 3 {
			t.Fatalf("%s: resumed at step %d, want 3", label, rr.res.FirstStep)
		}
		for i, l := range rr.res.Losses {
			if d := relScalar(l, want.res.Losses[3+i]); d > 1e-9 {
				t.Fatalf("%s: step %d loss %v, uninterrupted %v", label, 4+i, l, want.res.Losses[3+i])
			}
		}
		for _, p := range want.m.Params() {
			if d := relDiff(rr.m.paramValues(p.Name), p.Values()); d > 1e-9 {
				t.Fatalf("%s: %s differs by %g from the uninterrupted run", label, p.Name, d)
			}
		}
	}
	// 2 ranks → 1 process.
	m, cfg := mk(filepath.Join(dir, "one.safetensors"))(0)
	tr := newTrainer(t, m, cfg)
	if err := tr.Resume(mid); err != nil {
		t.Fatal(err)
	}
	res, err := tr.Train(data, nil)
	check("2 ranks → 1", &rankRun{m: m, res: res, err: err})
	// 2 ranks → 4 ranks.
	four := runRanks(t, 4, mk(filepath.Join(dir, "four.safetensors")), func(_ int, tr *Trainer) error { return tr.Resume(mid) }, data, nil)
	for r, rr := range four {
		check("2 ranks → 4, rank "+string(rune('0'+r)), rr)
	}
	// 1 process → 2 ranks: a single-process checkpoint at step 3.
	m1, cfg1 := mk(filepath.Join(dir, "single.safetensors"))(0)
	cfg1.Steps = 3
	if _, err := newTrainer(t, m1, cfg1).Train(data, nil); err != nil {
		t.Fatal(err)
	}
	two := runRanks(t, 2, mk(filepath.Join(dir, "again.safetensors")), func(_ int, tr *Trainer) error {
		return tr.Resume(filepath.Join(dir, "single.safetensors"))
	}, data, nil)
	for r, rr := range two {
		check("1 process → 2, rank "+string(rune('0'+r)), rr)
	}
}

// TestDataParallelNaNStopsEveryRank: a NaN on one rank stops every rank at
// the same step with an error wrapping ErrNonFinite (rank 0's names the
// rank), and rank 0's last checkpoint is the last good one.
func TestDataParallelNaNStopsEveryRank(t *testing.T) {
	data := promptData(96, 12, 1)
	ckpt := filepath.Join(t.TempDir(), "ckpt.safetensors")
	runs := runRanks(t, 2, func(r int) (*tinyLM, Config) {
		m := newTinyLM(graph.Float64, 12, 6, 0, 0, 1)
		cfg := distConfig()
		cfg.EvalEvery = 0
		cfg.CheckpointPath, cfg.CheckpointEvery = ckpt, 2
		if r == 1 {
			cfg.Observer.OnStep = func(s StepInfo) {
				if s.Step == 3 {
					for i := range m.w.Float64s() {
						m.w.Float64s()[i] = math.NaN()
					}
				}
			}
		}
		return m, cfg
	}, nil, data, nil)
	for r, rr := range runs {
		if !errors.Is(rr.err, ErrNonFinite) || !strings.Contains(rr.err.Error(), "step 4") {
			t.Fatalf("rank %d: error %v, want ErrNonFinite naming step 4", r, rr.err)
		}
	}
	if !strings.Contains(runs[0].err.Error(), "rank 1 of 2") {
		t.Fatalf("rank 0's error does not name rank 1: %v", runs[0].err)
	}
	meta, err := ReadCheckpointMeta(ckpt)
	if err != nil || meta.Step != 2 {
		t.Fatalf("checkpoint after the failure: step %d, %v; want step 2", meta.Step, err)
	}
}

// TestDataParallelStopsTogether: a context cancelled on one rank stops every
// rank after the same step; rank 0 checkpoints it, and the run resumed from
// there ends where a run never stopped does.
func TestDataParallelStopsTogether(t *testing.T) {
	data := promptData(96, 12, 1)
	dir := t.TempDir()
	mk := func(ckpt string, cancelAt int, cancel context.CancelFunc) func(int) (*tinyLM, Config) {
		return func(r int) (*tinyLM, Config) {
			m := newTinyLM(graph.Float64, 12, 6, 2, 0.1, 1) // dropout on: per-rank streams
			m.freezeBase()
			cfg := distConfig()
			cfg.EvalEvery = 0
			cfg.CheckpointPath = ckpt
			if r == 1 && cancel != nil {
				cfg.Observer.OnStep = func(s StepInfo) {
					if s.Step == cancelAt {
						cancel()
					}
				}
			}
			return m, cfg
		}
	}
	ref := runRanks(t, 2, mk(filepath.Join(dir, "ref.safetensors"), 0, nil), nil, data, nil)
	if ref[0].err != nil {
		t.Fatal(ref[0].err)
	}
	// The same run again is the same (dropout included).
	again := runRanks(t, 2, mk(filepath.Join(dir, "again.safetensors"), 0, nil), nil, data, nil)
	for _, p := range ref[0].m.Params() {
		if !equalBits(again[0].m.paramValues(p.Name), p.Values()) {
			t.Fatalf("two identical 2-rank runs with dropout differ in %s", p.Name)
		}
	}
	// Cancel rank 1's context (its only) during step 2: the ranks learn it in
	// step 3's control vector and all stop after step 3.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ckpt := filepath.Join(dir, "stopped.safetensors")
	g, _ := NewLocalGroup(2)
	g.Timeout = 20 * time.Second
	var wg sync.WaitGroup
	errs := make([]error, 2)
	steps := make([]int, 2)
	for r := 0; r < 2; r++ {
		m, cfg := mk(ckpt, 2, cancel)(r)
		tr := newTrainer(t, m, cfg)
		if err := tr.SetCollective(g.Rank(r)); err != nil {
			t.Fatal(err)
		}
		c := context.Background()
		if r == 1 {
			c = ctx
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[r] = tr.TrainContext(c, data, nil)
			steps[r] = tr.Step()
		}()
	}
	wg.Wait()
	for r := range errs {
		if !errors.Is(errs[r], context.Canceled) || steps[r] != 3 {
			t.Fatalf("rank %d: stopped at step %d with %v; want step 3, context.Canceled", r, steps[r], errs[r])
		}
	}
	rest := runRanks(t, 2, mk(ckpt, 0, nil), func(_ int, tr *Trainer) error { return tr.Resume(ckpt) }, data, nil)
	for r, rr := range rest {
		if rr.err != nil {
			t.Fatalf("rank %d: %v", r, rr.err)
		}
		for _, p := range ref[0].m.Params() {
			if !equalBits(rr.m.paramValues(p.Name), p.Values()) {
				t.Fatalf("rank %d: the stopped and resumed run differs in %s", r, p.Name)
			}
		}
	}
}

// TestDataParallelStartMismatch: ranks that start from different states
// (one resumed, one fresh) all fail at once, naming what differs.
func TestDataParallelStartMismatch(t *testing.T) {
	data := promptData(64, 12, 1)
	ckpt := filepath.Join(t.TempDir(), "c.safetensors")
	m := newTinyLM(graph.Float64, 12, 6, 0, 0, 1)
	cfg := distConfig()
	cfg.Steps, cfg.CheckpointPath = 2, ckpt
	if _, err := newTrainer(t, m, cfg).Train(data, nil); err != nil {
		t.Fatal(err)
	}
	runs := runRanks(t, 2, func(int) (*tinyLM, Config) { return newTinyLM(graph.Float64, 12, 6, 0, 0, 1), distConfig() },
		func(r int, tr *Trainer) error {
			if r == 1 {
				return tr.Resume(ckpt)
			}
			return nil
		}, data, nil)
	if runs[1].err == nil || !strings.Contains(runs[1].err.Error(), "rank 1 has step 2, rank 0 has 0") {
		t.Fatalf("rank 1: %v; want it to name the step that differs", runs[1].err)
	}
	if runs[0].err == nil || !strings.Contains(runs[0].err.Error(), "1 of 2 ranks start from a state other than rank 0's") {
		t.Fatalf("rank 0: %v", runs[0].err)
	}
}

// TestDataParallelWritesOnlyOnRankZero: metrics and checkpoints come from
// rank 0 alone; the metrics lines carry the ranks and bytes.
func TestDataParallelWritesOnlyOnRankZero(t *testing.T) {
	data := promptData(64, 12, 1)
	dir := t.TempDir()
	var metrics [2]bytes.Buffer
	runs := runRanks(t, 2, func(r int) (*tinyLM, Config) {
		m := newTinyLM(graph.Float32, 12, 6, 2, 0, 1)
		m.freezeBase()
		cfg := distConfig()
		cfg.Metrics = &metrics[r]
		cfg.CheckpointPath = filepath.Join(dir, "rank"+string(rune('0'+r))+".safetensors")
		cfg.BestPath = filepath.Join(dir, "best"+string(rune('0'+r))+".safetensors")
		return m, cfg
	}, nil, data, promptData(10, 12, 2))
	for r, rr := range runs {
		if rr.err != nil {
			t.Fatalf("rank %d: %v", r, rr.err)
		}
	}
	for _, name := range []string{"rank0", "best0"} {
		if _, err := os.Stat(filepath.Join(dir, name+".safetensors")); err != nil {
			t.Fatalf("rank 0 did not write %s: %v", name, err)
		}
	}
	for _, name := range []string{"rank1", "best1"} {
		if _, err := os.Stat(filepath.Join(dir, name+".safetensors")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("rank 1 wrote %s (%v)", name, err)
		}
	}
	if metrics[1].Len() != 0 {
		t.Fatalf("rank 1 wrote metrics: %q", metrics[1].String())
	}
	// r=2 on A [6,2] and B [2,12]: 36 float32 values.
	if !strings.Contains(metrics[0].String(), `"ranks":2,"allreduced_bytes":144`) {
		t.Fatalf("rank 0's metrics lack the ranks and bytes: %s", metrics[0].String())
	}
}

func TestSetCollectiveChecks(t *testing.T) {
	m := newTinyLM(graph.Float64, 12, 6, 0, 0, 1)
	cfg := testConfig()
	cfg.Batch = 6
	tr := newTrainer(t, m, cfg)
	g, _ := NewLocalGroup(4)
	err := tr.SetCollective(g.Rank(1))
	if err == nil || !strings.Contains(err.Error(), "batch of 6 sequences does not split over 4 ranks") {
		t.Fatalf("batch 6 over 4 ranks: %v", err)
	}
	g3, _ := NewLocalGroup(3)
	if err := tr.SetCollective(g3.Rank(2)); err != nil || tr.Rank() != 2 || tr.Ranks() != 3 {
		t.Fatalf("3 ranks: %v (rank %d of %d)", err, tr.Rank(), tr.Ranks())
	}
	g1, _ := NewLocalGroup(1)
	if err := tr.SetCollective(g1.Rank(0)); err != nil || tr.Ranks() != 1 || tr.dist != nil {
		t.Fatalf("a group of one is one process: %v", err)
	}
	if err := tr.SetCollective(nil); err != nil || tr.Ranks() != 1 {
		t.Fatalf("nil: %v", err)
	}
	if _, err := NewLocalGroup(0); err == nil {
		t.Fatal("a group of 0 ranks was accepted")
	}
}

func TestBatchShard(t *testing.T) {
	for _, c := range []struct{ n, rows, size int }{{23, 5, 2}, {23, 5, 4}, {10, 5, 2}, {3, 5, 2}, {40, 4, 3}, {1, 1, 2}} {
		ds := promptData(c.n, 12, 1)
		seen := make([]int, c.n)
		for r := 0; r < c.size; r++ {
			s := &batchShard{ds: ds, rows: c.rows, rank: r, size: c.size}
			for i := 0; i < s.Len(); i++ {
				ex := s.Example(i)
				for j := range ds.Examples {
					if &ds.Examples[j].Tokens[0] == &ex.Tokens[0] {
						seen[j]++
						if b := j / c.rows; b%c.size != r {
							t.Fatalf("%+v: rank %d got example %d of batch %d", c, r, j, b)
						}
					}
				}
			}
		}
		for j, k := range seen {
			if k != 1 {
				t.Fatalf("%+v: example %d scored %d times", c, j, k)
			}
		}
	}
}

func TestLocalGroup(t *testing.T) {
	g, _ := NewLocalGroup(3)
	var wg sync.WaitGroup
	out := make([][]float32, 3)
	out64 := make([][]float64, 3)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := g.Rank(r)
			out[r] = []float32{float32(r), 1}
			out64[r] = []float64{float64(10 * r)}
			if err := c.AllReduceSumFloat32(out[r]); err != nil {
				t.Error(err)
			}
			if err := c.BroadcastFloat64(out64[r], 2); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for r := range out {
		if out[r][0] != 3 || out[r][1] != 3 || out64[r][0] != 20 {
			t.Fatalf("rank %d: sum %v, broadcast %v", r, out[r], out64[r])
		}
	}
	if g.Rank(3) != nil || g.Rank(-1) != nil || g.Size() != 3 {
		t.Fatal("Rank outside the group")
	}

	t.Run("out of step", func(t *testing.T) {
		g, _ := NewLocalGroup(2)
		errs := make(chan error, 2)
		go func() { errs <- g.Rank(0).AllReduceSumFloat64(make([]float64, 3)) }()
		go func() { errs <- g.Rank(1).AllReduceSumFloat32(make([]float32, 3)) }()
		for i := 0; i < 2; i++ {
			if err := <-errs; err == nil || !strings.Contains(err.Error(), "out of step") {
				t.Fatalf("mismatched calls: %v", err)
			}
		}
	})
	t.Run("abort releases the waiting", func(t *testing.T) {
		g, _ := NewLocalGroup(2)
		errs := make(chan error, 1)
		go func() { errs <- g.Rank(0).AllReduceSumFloat64([]float64{1}) }()
		time.Sleep(10 * time.Millisecond)
		g.Abort(errors.New("rank 1 failed"))
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "rank 1 failed") {
			t.Fatalf("waiting rank after Abort: %v", err)
		}
		if err := g.Rank(1).BroadcastFloat32([]float32{1}, 0); err == nil {
			t.Fatal("a call after Abort succeeded")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		g, _ := NewLocalGroup(2)
		g.Timeout = 20 * time.Millisecond
		err := g.Rank(0).AllReduceSumFloat64([]float64{1})
		if err == nil || !strings.Contains(err.Error(), "another rank stopped or hangs") {
			t.Fatalf("lone rank: %v", err)
		}
	})
}
