//go:build mpi

package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golora/golora/internal/mpi"
	"github.com/golora/golora/safetensors"
	"github.com/golora/golora/trainers"
)

// These tests start the test binary as golora under mpirun (built with
// -tags mpi; Open MPI's openbin on PATH). Each checks one promise of a
// data-parallel run from the outside.

// mpirun starts np ranks of golora with args; out and errOut collect rank
// output (mpirun forwards every rank's).
func mpirun(t *testing.T, np int, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Skip("mpirun not on PATH (scripts/setup-mpi.sh installs Open MPI)")
	}
	if mpi.Launched() {
		t.Skip("already inside an MPI launcher")
	}
	full := append([]string{"-np", strconv.Itoa(np), "--oversubscribe"}, os.Args[0])
	cmd := exec.Command("mpirun", append(full, args...)...)
	cmd.Env = append(os.Environ(), asGolora+"=1")
	if os.Geteuid() == 0 {
		cmd.Env = append(cmd.Env, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	return cmd, &out, &errOut
}

// mustMPI runs golora on np ranks and fails the test unless it succeeds.
func mustMPI(t *testing.T, np int, args ...string) string {
	t.Helper()
	cmd, out, errOut := mpirun(t, np, args...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("mpirun -np %d golora %s: %v\nstderr: %s", np, strings.Join(args, " "), err, errOut)
	}
	return out.String()
}

// tensors reads every tensor of a .safetensors file as float64.
func tensors(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, name := range f.Names() {
		v, _, err := f.Float64s(name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = v
	}
	return out
}

// sameTensors fails unless a and b hold the same tensors to rel (max|a−b| /
// max|b| per tensor).
func sameTensors(t *testing.T, what string, a, b map[string][]float64, rel float64) {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%s: %d and %d tensors", what, len(a), len(b))
	}
	for name, want := range b {
		got, ok := a[name]
		if !ok || len(got) != len(want) {
			t.Fatalf("%s: tensor %s missing or of another size", what, name)
		}
		var d, s float64
		for i := range want {
			d = math.Max(d, math.Abs(got[i]-want[i]))
			s = math.Max(s, math.Abs(want[i]))
		}
		if d > rel*math.Max(s, 1e-30) {
			t.Fatalf("%s: %s differs by %g (scale %g), want ≤ %g relative", what, name, d, s, rel)
		}
	}
}

// TestMPIFinetuneMatchesOneProcess: mpirun -np 2 golora finetune with global
// batch B writes the adapter (and with --full the model) that one process
// writes with batch B, to 1e-5 relative, with the same final loss; and a
// checkpoint the 2-rank run wrote midway, resumed on one process, ends there
// too.
func TestMPIFinetuneMatchesOneProcess(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	common := func(out string, steps int, extra ...string) []string {
		return append([]string{"finetune", "--base", f.base, "--data", f.prose, "--out", out, "--steps", strconv.Itoa(steps),
			"--batch", "4", "--context", "16", "--lr", "1e-2", "--schedule", "constant", "--valid-fraction", "0.1", "--quiet", "--json"}, extra...)
	}
	var one, two trainSummary
	decodeJSON(t, mustRun(t, common(filepath.Join(dir, "one"), 6)...).stdout, &one)
	decodeJSON(t, mustMPI(t, 2, common(filepath.Join(dir, "two"), 6)...), &two)
	if two.Ranks != 2 || two.AllReducedBytesPerStep != int64(4*two.TrainableParams) {
		t.Fatalf("2-rank summary: %d ranks, %d bytes per step for %d float32 parameters", two.Ranks, two.AllReducedBytesPerStep, two.TrainableParams)
	}
	if one.TrainLoss == nil || two.TrainLoss == nil {
		t.Fatalf("no train loss in the summaries: %+v, %+v", one, two)
	}
	if d := math.Abs(*two.TrainLoss-*one.TrainLoss) / *one.TrainLoss; d > 1e-5 || math.Abs(two.ValidLoss-one.ValidLoss)/one.ValidLoss > 1e-5 {
		t.Fatalf("2 ranks: train loss %v, validation %v; one process %v, %v", *two.TrainLoss, two.ValidLoss, *one.TrainLoss, one.ValidLoss)
	}
	adapter := func(d string) map[string][]float64 {
		return tensors(t, filepath.Join(dir, d, "adapter_model.safetensors"))
	}
	sameTensors(t, "LoRA adapter, 2 ranks vs 1", adapter("two"), adapter("one"), 1e-5)

	t.Run("full fine-tuning", func(t *testing.T) {
		mustRun(t, common(filepath.Join(dir, "full-one"), 2, "--full")...)
		mustMPI(t, 2, common(filepath.Join(dir, "full-two"), 2, "--full")...)
		model := func(d string) map[string][]float64 { return tensors(t, filepath.Join(dir, d, "model.safetensors")) }
		sameTensors(t, "full fine-tuning, 2 ranks vs 1", model("full-two"), model("full-one"), 1e-5)
	})
	t.Run("2-rank checkpoint resumed on 1 process", func(t *testing.T) {
		ckpt := filepath.Join(dir, "half.safetensors")
		mustMPI(t, 2, common(filepath.Join(dir, "half"), 3, "--checkpoint", ckpt)...)
		mustRun(t, common(filepath.Join(dir, "resumed"), 6, "--resume", ckpt)...)
		sameTensors(t, "2 ranks for 3 steps then 1 process for 3, vs 2 ranks for 6", adapter("resumed"), adapter("two"), 1e-5)
	})
}

// TestMPIBatchMustDivide: a global batch that does not split over the ranks
// stops every rank with an error that says so.
func TestMPIBatchMustDivide(t *testing.T) {
	f := getFixture(t)
	cmd, _, errOut := mpirun(t, 2, "finetune", "--base", f.base, "--data", f.prose, "--out", filepath.Join(t.TempDir(), "a"),
		"--steps", "2", "--batch", "3", "--context", "16", "--quiet")
	err := cmd.Run()
	if err == nil || !strings.Contains(errOut.String(), "does not split over 2 ranks") || !strings.Contains(errOut.String(), "--batch 3") {
		t.Fatalf("mpirun: %v\nstderr: %s", err, errOut)
	}
}

// TestMPIKilledRankStopsJob: killing one rank mid-run ends the other with an
// error within seconds (never a hang), and the last checkpoint loads and
// resumes on one process.
func TestMPIKilledRankStopsJob(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("needs /proc to find the ranks")
	}
	f := getFixture(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.safetensors")
	args := []string{"finetune", "--base", f.base, "--data", f.prose, "--out", filepath.Join(dir, "a"), "--batch", "4", "--context", "16",
		"--steps", "1000000", "--checkpoint", ckpt, "--checkpoint-every", "10", "--quiet"}
	cmd, _, errOut := mpirun(t, 2, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(ckpt); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended before its first checkpoint: %v\n%s", err, errOut)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after 2 minutes")
		}
	}
	victim, err := rankPID(cmd.Process.Pid, 1)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("rank 0 still running 60 s after rank 1 was killed\n%s", errOut)
	}
	took := time.Since(killed)
	t.Logf("mpirun exited %v after the kill: %v", took.Round(time.Millisecond), err)
	if err == nil {
		t.Fatal("mpirun exited 0 after a rank was killed")
	}
	if !strings.Contains(errOut.String(), "rank 0 of 2: terminated by the MPI launcher") && !strings.Contains(errOut.String(), "exited on signal 9") {
		t.Fatalf("no message about the killed rank:\n%s", errOut)
	}
	meta, err := trainers.ReadCheckpointMeta(ckpt)
	if err != nil || meta.Step < 10 || meta.Step%10 != 0 {
		t.Fatalf("checkpoint after the kill: step %d, %v", meta.Step, err)
	}
	resume := append(args[:len(args):len(args)], "--resume", ckpt, "--json")
	for i, a := range resume {
		if a == "1000000" {
			resume[i] = strconv.Itoa(meta.Step + 3)
		}
	}
	var s trainSummary
	decodeJSON(t, mustRun(t, resume...).stdout, &s)
	if s.Steps != meta.Step+3 {
		t.Fatalf("resumed run ended at step %d, want %d", s.Steps, meta.Step+3)
	}
}

// rankPID finds the child of the mpirun process ppid that is rank rank.
func rankPID(ppid, rank int) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := []byte(fmt.Sprintf("OMPI_COMM_WORLD_RANK=%d\x00", rank))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// stat: pid (comm) state ppid …; comm may hold spaces, so split after ')'.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		fields := strings.Fields(string(rest))
		if len(fields) < 2 || fields[1] != strconv.Itoa(ppid) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, want) {
			return pid, nil
		}
	}
	return 0, errors.New("no process of rank " + strconv.Itoa(rank) + " under mpirun")
}

// TestMPIInterruptOneRank: SIGINT to one rank (not to mpirun) stops every
// rank after the same step; rank 0 writes a checkpoint there and says how to
// continue, and the ranks finalise MPI together (no abort).
func TestMPIInterruptOneRank(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("needs /proc to find the ranks")
	}
	f := getFixture(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.safetensors")
	cmd, _, errOut := mpirun(t, 2, "finetune", "--base", f.base, "--data", f.prose, "--out", filepath.Join(dir, "a"),
		"--batch", "4", "--context", "16", "--steps", "1000000", "--checkpoint", ckpt, "--checkpoint-every", "10", "--quiet")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	for start := time.Now(); ; {
		if _, err := os.Stat(ckpt); err == nil {
			break
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatal("no checkpoint after 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	victim, err := rankPID(cmd.Process.Pid, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(victim, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("still running 60 s after SIGINT to rank 1\n%s", errOut)
	}
	out := errOut.String()
	if err == nil || !strings.Contains(out, "another rank was asked to stop") || !strings.Contains(out, "continue with --resume") || strings.Contains(out, "MPI_ABORT") {
		t.Fatalf("mpirun: %v; want rank 0's stop message and no abort:\n%s", err, out)
	}
	meta, err := trainers.ReadCheckpointMeta(ckpt)
	if err != nil || !strings.Contains(out, fmt.Sprintf("stopped after step %d", meta.Step)) {
		t.Fatalf("checkpoint at step %d (%v) is not where the run stopped:\n%s", meta.Step, err, out)
	}
}
