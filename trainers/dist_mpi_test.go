//go:build mpi

package trainers

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/mpi"
)

// The TestMPI tests run under an MPI launcher (.ci/run: mpirun -np 2 on the
// test binary built with -tags mpi); in a plain process they skip.

var mpiWorld *mpi.World

func TestMain(m *testing.M) {
	if mpi.Launched() {
		w, err := mpi.Init(mpi.ThreadFunneled, 2*time.Minute)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		mpiWorld = w
	}
	code := m.Run()
	if mpiWorld != nil {
		if code != 0 && mpiWorld.Size() > 1 {
			mpiWorld.Abort(code) // the other ranks may be waiting for this one
		}
		if err := mpiWorld.Finalize(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// world returns the MPI world, skipping the test unless there are ≥ 2 ranks.
func world(t *testing.T) *mpi.World {
	t.Helper()
	if mpiWorld == nil || mpiWorld.Size() < 2 {
		t.Skip("needs an MPI launcher: mpirun -np 2 on the test binary built with -tags mpi")
	}
	return mpiWorld
}

// sameOnEveryRank fails unless every rank holds the same bits in p.
func sameOnEveryRank(t *testing.T, w *mpi.World, p *graph.Param) {
	t.Helper()
	mine := p.Values()
	lead := append([]float64(nil), mine...)
	if err := w.BroadcastFloat64(lead, 0); err != nil {
		t.Fatal(err)
	}
	if !equalBits(mine, lead) {
		t.Fatalf("rank %d's %s differs from rank 0's", w.Rank(), p.Name)
	}
}

// TestMPIDataParallelMatchesOneProcess: training over MPI with global batch
// B gives each rank the final loss and weights of one process with batch B
// (computed by each rank on its own) to 1e-5 relative, every rank the same
// bits, and each step all-reduces trainable count × dtype size bytes.
func TestMPIDataParallelMatchesOneProcess(t *testing.T) {
	w := world(t)
	data := promptData(96, 12, 1)
	valid := promptData(23, 12, 2)
	for _, c := range []struct {
		name string
		dt   graph.DType
		lora bool
	}{{"lora/float32", graph.Float32, true}, {"lora/float64", graph.Float64, true}, {"full/float32", graph.Float32, false}} {
		t.Run(c.name, func(t *testing.T) {
			mk := func() *tinyLM {
				m := newTinyLM(c.dt, 12, 6, 3, 0, 1)
				if c.lora {
					m.freezeBase()
				}
				return m
			}
			cfg := distConfig()
			cfg.Batch = 4 * w.Size()
			one := mk()
			want, err := newTrainer(t, one, cfg).Train(data, valid)
			if err != nil {
				t.Fatal(err)
			}
			m := mk()
			var steps []StepInfo
			cfg.Observer.OnStep = func(s StepInfo) { steps = append(steps, s) }
			tr := newTrainer(t, m, cfg)
			if err := tr.SetCollective(w); err != nil {
				t.Fatal(err)
			}
			got, err := tr.Train(data, valid)
			if err != nil {
				t.Fatal(err)
			}
			last := len(want.Losses) - 1
			if d := relScalar(got.Losses[last], want.Losses[last]); d > 1e-5 {
				t.Fatalf("final loss %v over %d ranks, %v on one process (relative %g)", got.Losses[last], w.Size(), want.Losses[last], d)
			}
			if d := relScalar(got.Valid.Loss, want.Valid.Loss); d > 1e-5 {
				t.Fatalf("validation loss %v, one process %v", got.Valid.Loss, want.Valid.Loss)
			}
			worst := 0.0
			for _, p := range one.Params() {
				d := relDiff(m.paramValues(p.Name), p.Values())
				if d > 1e-5 {
					t.Fatalf("%s differs from one process by %g (relative)", p.Name, d)
				}
				worst = math.Max(worst, d)
			}
			for _, p := range m.Params() {
				sameOnEveryRank(t, w, p)
			}
			var count int64
			for _, p := range tr.Trainable() {
				count += int64(p.Len())
			}
			size := map[graph.DType]int64{graph.Float32: 4, graph.Float64: 8}[c.dt]
			for _, s := range steps {
				if s.AllReducedBytes != count*size || s.Ranks != w.Size() {
					t.Fatalf("step %d: %d bytes over %d ranks, want %d × %d over %d", s.Step, s.AllReducedBytes, s.Ranks, count, size, w.Size())
				}
			}
			t.Logf("rank %d of %d: final loss %.9g (one process %.9g), largest relative weight difference %.2g, %d bytes/step",
				w.Rank(), w.Size(), got.Losses[last], want.Losses[last], worst, count*size)
		})
	}
}

// TestMPIResumeOnOneProcess: a checkpoint that rank 0 of an MPI run wrote
// mid-run, resumed on one process, ends with the MPI run's weights.
func TestMPIResumeOnOneProcess(t *testing.T) {
	w := world(t)
	data := promptData(96, 12, 1)
	dir := t.TempDir()
	mid := filepath.Join(dir, "step3.safetensors")
	mk := func() (*tinyLM, Config) {
		m := newTinyLM(graph.Float32, 12, 6, 3, 0, 1)
		m.freezeBase()
		cfg := distConfig()
		cfg.Batch = 4 * w.Size()
		cfg.EvalEvery = 0
		cfg.CheckpointPath, cfg.CheckpointEvery = filepath.Join(dir, "run.safetensors"), 3
		return m, cfg
	}
	m, cfg := mk()
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
	tr := newTrainer(t, m, cfg)
	if err := tr.SetCollective(w); err != nil {
		t.Fatal(err)
	}
	full, err := tr.Train(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Rank() != 0 {
		if _, err := os.Stat(mid); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("rank %d wrote a checkpoint", w.Rank())
		}
		return
	}
	m1, cfg1 := mk()
	cfg1.CheckpointPath = filepath.Join(dir, "one.safetensors")
	tr1 := newTrainer(t, m1, cfg1)
	if err := tr1.Resume(mid); err != nil {
		t.Fatal(err)
	}
	res, err := tr1.Train(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstStep != 3 {
		t.Fatalf("resumed at step %d, want 3", res.FirstStep)
	}
	for i, l := range res.Losses {
		if d := relScalar(l, full.Losses[3+i]); d > 1e-5 {
			t.Fatalf("step %d: loss %v on one process, %v over %d ranks", 4+i, l, full.Losses[3+i], w.Size())
		}
	}
	for _, p := range m.Params() {
		if d := relDiff(m1.paramValues(p.Name), p.Values()); d > 1e-5 {
			t.Fatalf("%s: resumed on one process differs by %g from the %d-rank run", p.Name, d, w.Size())
		}
	}
}

// TestMPINaNOnOneRankStopsAll: a NaN on the last rank stops every rank at the
// same step with an error wrapping ErrNonFinite; none hangs.
func TestMPINaNOnOneRankStopsAll(t *testing.T) {
	w := world(t)
	data := promptData(96, 12, 1)
	m := newTinyLM(graph.Float64, 12, 6, 0, 0, 1)
	cfg := distConfig()
	cfg.Batch = 4 * w.Size()
	cfg.EvalEvery = 0
	if w.Rank() == w.Size()-1 {
		cfg.Observer.OnStep = func(s StepInfo) {
			if s.Step == 2 {
				m.w.Float64s()[0] = math.NaN()
			}
		}
	}
	tr := newTrainer(t, m, cfg)
	if err := tr.SetCollective(w); err != nil {
		t.Fatal(err)
	}
	_, err := tr.Train(data, nil)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "step 3") {
		t.Fatalf("rank %d: %v; want ErrNonFinite at step 3", w.Rank(), err)
	}
	if w.Rank() == 0 && !strings.Contains(err.Error(), fmt.Sprintf("rank %d of %d", w.Size()-1, w.Size())) {
		t.Fatalf("rank 0's error does not name the failed rank: %v", err)
	}
	if err := w.Barrier(); err != nil { // every rank is still in step
		t.Fatal(err)
	}
}
