package trainers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/safetensors"
)

// TestCheckpointLayout: the file holds param/, adam.m/ and adam.v/ tensors
// of the trainable parameters and the run state as JSON metadata.
func TestCheckpointLayout(t *testing.T) {
	tr, _ := textData(t, 2000, 12, 8)
	m := newTinyLM(graph.Float32, 12, 6, 0, 0.1, 1)
	m.emb.Trainable = false
	cfg := testConfig()
	cfg.Steps = 3
	cfg.CheckpointPath = filepath.Join(t.TempDir(), "c.safetensors")
	trn := newTrainer(t, m, cfg)
	if _, err := trn.Train(tr, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(cfg.CheckpointPath)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"adam.m/head.bias", "adam.m/head.weight", "adam.v/head.bias", "adam.v/head.weight", "param/head.bias", "param/head.weight"}
	if got := f.Names(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("tensors %v, want %v", got, want)
	}
	w, shape, err := f.Float32s("param/head.weight")
	if err != nil || !slices.Equal(shape, []int{6, 12}) {
		t.Fatal(err, shape)
	}
	for i, v := range m.w.Float32s() {
		if w[i] != v {
			t.Fatal("param/head.weight differs from the parameter")
		}
	}
	mv, _, _ := f.Float64s("adam.v/head.weight")
	_, v, _ := trn.Optimizer().Moments("head.weight")
	if !equalBits(mv, v) {
		t.Fatal("adam.v/head.weight differs from the optimizer state")
	}
	var raw map[string]interface{}
	if err := json.Unmarshal([]byte(f.Metadata["golora.trainer"]), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"step", "optimizer_step", "data", "dropout_rng", "config", "params", "dtype"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("metadata lacks %q", k)
		}
	}
	meta, err := ReadCheckpointMeta(cfg.CheckpointPath)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Step != 3 || meta.OptimizerStep != 3 || meta.Data.Cursor != 12 || meta.Data.Epoch != 1 || meta.Config.Steps != 3 || len(meta.DropoutRNG) == 0 {
		t.Fatalf("metadata %+v", meta)
	}
	// LoadParams copies the trained values into another model.
	other := newTinyLM(graph.Float32, 12, 6, 0, 0, 9)
	if err := LoadParams(cfg.CheckpointPath, other.Params()); err != nil {
		t.Fatal(err)
	}
	if !equalBits(other.w.Values(), m.w.Values()) || equalBits(other.emb.Values(), m.emb.Values()) {
		t.Fatal("LoadParams copied the wrong parameters")
	}
	if err := LoadParams(cfg.CheckpointPath, []*graph.Param{other.w}); err == nil || !strings.Contains(err.Error(), "no parameter named head.bias") {
		t.Fatalf("LoadParams with a missing parameter: %v", err)
	}
}

// failAfter passes n bytes through and then fails.
type failAfter struct {
	w io.Writer
	n int
}

var errDiskFull = errors.New("disk full (test)")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		f.n = 0
		return k, errDiskFull
	}
	f.n -= len(p)
	return f.w.Write(p)
}

// TestInterruptedCheckpointKeepsOld: a write that fails halfway returns the
// error, leaves the previous checkpoint byte for byte and no temporary file.
func TestInterruptedCheckpointKeepsOld(t *testing.T) {
	tr, _ := textData(t, 2000, 12, 8)
	dir := t.TempDir()
	path := filepath.Join(dir, "c.safetensors")
	cfg := testConfig()
	cfg.Steps = 2
	cfg.CheckpointPath = path
	trn := newTrainer(t, newTinyLM(graph.Float64, 12, 6, 0, 0, 1), cfg)
	if _, err := trn.Train(tr, nil); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	trn.cfg.Steps, trn.cfg.CheckpointPath = 4, ""
	if _, err := trn.Train(tr, nil); err != nil { // the parameters move on
		t.Fatal(err)
	}
	// The size of the checkpoint about to be written, to fail inside it.
	scratch := filepath.Join(t.TempDir(), "scratch.safetensors")
	if err := trn.SaveCheckpoint(scratch); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(scratch)
	if err != nil {
		t.Fatal(err)
	}
	size := int(st.Size())
	for _, n := range []int{0, 10, size / 2, size - 1} {
		err := trn.writeCheckpoint(path, func(w io.Writer) io.Writer { return &failAfter{w: w, n: n} })
		if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), path) {
			t.Fatalf("failing after %d bytes: error %v", n, err)
		}
		now, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(now, good) {
			t.Fatalf("failing after %d bytes replaced the checkpoint", n)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("folder holds %d entries, want only the checkpoint", len(entries))
	}
	meta, err := ReadCheckpointMeta(path)
	if err != nil || meta.Step != 2 {
		t.Fatalf("checkpoint step %d, err %v", meta.Step, err)
	}
}

// childEnv names the checkpoint path a re-executed test binary writes to.
const childEnv = "GOLORA_TRAINERS_CHECKPOINT_CHILD"

// TestKilledCheckpointWriter kills a child process in the middle of
// rewriting a large checkpoint and checks that the file is always a complete
// checkpoint of one step. The child rewrites the checkpoint in a loop, each
// time with every value equal to its step, and reports each completed write
// on stdout; the parent times the kill at a different fraction of the write
// cycle in each attempt.
func TestKilledCheckpointWriter(t *testing.T) {
	if path := os.Getenv(childEnv); path != "" {
		checkpointLoop(path)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	for attempt, frac := range []float64{0.2, 0.5, 0.8} {
		dir := t.TempDir()
		path := filepath.Join(dir, "c.safetensors")
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledCheckpointWriter$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for writes 1–3; kill frac of a cycle after the third.
		sc := bufio.NewScanner(out)
		var done []time.Time
		for len(done) < 3 && sc.Scan() {
			if strings.HasPrefix(sc.Text(), "done ") {
				done = append(done, time.Now())
			}
		}
		if len(done) < 3 {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("attempt %d: the child stopped after %d checkpoints", attempt, len(done))
		}
		cycle := done[2].Sub(done[1])
		time.Sleep(time.Duration(frac * float64(cycle)))
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		meta, err := ReadCheckpointMeta(path)
		if err != nil {
			t.Fatalf("attempt %d: checkpoint unreadable after the kill: %v", attempt, err)
		}
		if meta.Step < 3 {
			t.Fatalf("attempt %d: checkpoint of step %d, want ≥ 3", attempt, meta.Step)
		}
		m := bigModel()
		if err := LoadParams(path, m.Params()); err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params() {
			for _, v := range p.Float64s() {
				if v != float64(meta.Step) {
					t.Fatalf("attempt %d: %s holds %v in the checkpoint of step %d", attempt, p.Name, v, meta.Step)
				}
			}
		}
	}
}

// bigModel has 2·256·256 float64 values: a 1 MB checkpoint (the child
// never trains, so there are no moments).
func bigModel() *tinyLM { return newTinyLM(graph.Float64, 512, 512, 0, 0, 1) }

// checkpointLoop is the child: write checkpoints of steps 1, 2, … forever.
func checkpointLoop(path string) {
	m := bigModel()
	trn, err := New(m, testConfig())
	if err != nil {
		os.Exit(2)
	}
	for step := 1; ; step++ {
		for _, p := range m.Params() {
			d := p.Float64s()
			for i := range d {
				d[i] = float64(step)
			}
		}
		trn.step = step
		if err := trn.SaveCheckpoint(path); err != nil {
			os.Stderr.WriteString("child: " + err.Error() + "\n")
			os.Exit(3)
		}
		os.Stdout.WriteString("done " + strconv.Itoa(step) + "\n")
	}
}
