package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// snapshotDir reads every file under dir (relative name → bytes).
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// copyTree copies the folder src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	for rel, b := range snapshotDir(t, src) {
		p := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMergeNeverModifiesInputs: merge refuses an --out that is the base (or
// the adapter), however it is spelled, or lies inside it or holds it; the
// base stays byte-identical. (A merge into its own base used to overwrite it
// and exit 0; loading the adapter on it again applied the update twice.)
func TestMergeNeverModifiesInputs(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	base, adapter := filepath.Join(dir, "base"), filepath.Join(dir, "adapter")
	copyTree(t, f.base, base)
	copyTree(t, f.adapter, adapter)
	if err := os.Symlink(base, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	relBase, err := filepath.Rel(wd, base)
	if err != nil {
		t.Fatal(err)
	}
	before, beforeAd := snapshotDir(t, base), snapshotDir(t, adapter)
	cases := []struct {
		name, base, out string
		want            string
	}{
		{"out is the base", base, base, "is the --base folder"},
		{"trailing slash", base, base + "/", "is the --base folder"},
		{"dot segments", base, filepath.Join(dir, "sub", "..", "base"), "is the --base folder"},
		{"relative path", base, relBase, "is the --base folder"},
		{"symbolic link to the base", base, filepath.Join(dir, "link"), "is the --base folder"},
		{"base given through the link", filepath.Join(dir, "link"), base, "is the --base folder"},
		{"inside the base", base, filepath.Join(base, "merged"), "lies inside the --base folder"},
		{"inside, through the link", base, filepath.Join(dir, "link", "merged"), "lies inside the --base folder"},
		{"a folder holding the base", base, dir, "holds the --base folder"},
		{"out is the adapter", base, adapter, "is the --adapter folder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := golora("merge", "--base", c.base, "--adapter", adapter, "--out", c.out)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "--out") || r.stdout != "" {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, c.want)
			}
			if !sameSnapshot(before, snapshotDir(t, base)) || !sameSnapshot(beforeAd, snapshotDir(t, adapter)) {
				t.Fatal("the base or the adapter changed")
			}
		})
	}
	// The same guard protects finetune's inputs.
	for _, args := range [][]string{
		{"finetune", "--base", base, "--data", f.prose, "--out", base, "--steps", "1"},
		{"finetune", "--full", "--base", filepath.Join(dir, "link"), "--data", f.prose, "--out", base, "--steps", "1"},
		{"finetune", "--base", base, "--data", f.prose, "--out", filepath.Join(dir, "o"), "--checkpoint", f.prose, "--steps", "1"},
		{"pretrain", "--data", f.code, "--out", filepath.Join(dir, "p"), "--metrics", f.code, "--steps", "1"},
		{"pretrain", "--data", filepath.Join(base, gpt.ConfigFile), "--out", base, "--steps", "1"},
	} {
		if r := golora(args...); r.code != 2 || !strings.Contains(r.stderr, "would") {
			t.Errorf("%s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if !sameSnapshot(before, snapshotDir(t, base)) {
		t.Fatal("the base changed")
	}
	// A merge elsewhere works and leaves both inputs as they were.
	out := filepath.Join(dir, "merged")
	mustRun(t, "merge", "--base", filepath.Join(dir, "link"), "--adapter", adapter, "--out", out)
	if !sameSnapshot(before, snapshotDir(t, base)) || !sameSnapshot(beforeAd, snapshotDir(t, adapter)) {
		t.Fatal("a merge changed its inputs")
	}
	if _, err := os.Stat(filepath.Join(out, lora.ConfigFile)); err == nil {
		t.Error("the merged folder holds an adapter config")
	}
}

// process runs the command as a separate process (the test binary in
// command mode), with extra environment variables, so that a Go runtime
// fatal error would show as such instead of killing the test.
func process(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asGolora+"=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// noCrash fails when stderr shows a Go panic or runtime fatal error.
func noCrash(t *testing.T, r result) {
	t.Helper()
	for _, s := range []string{"fatal error", "panic:", "goroutine ", "runtime error"} {
		if strings.Contains(r.stderr, s) {
			t.Fatalf("the command crashed (%q):\n%s", s, r.stderr)
		}
	}
}

// TestGenerateBounded: generation requests beyond what the model allows or
// the memory holds get one clear line and exit code 2, never a runtime fatal
// error (--beams 100000 used to die with "fatal error: out of memory").
func TestGenerateBounded(t *testing.T) {
	f := getFixture(t)
	cases := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"beams beyond the vocabulary", nil, []string{"--beams", "100000"}, []string{"--beams 100000", "at most 257"}},
		{"beams at the int limit", nil, []string{"--beams", "9223372036854775807"}, []string{"--beams 9223372036854775807"}},
		{"beams beyond int", nil, []string{"--beams", "99999999999999999999"}, []string{"-beams", "out of range"}},
		{"memory: beams", []string{"GOLORA_MEMORY_LIMIT=1MiB"}, []string{"--beams", "200"}, []string{"--beams 200", "needs about", "lower --beams or --max-new-tokens"}},
		{"max new tokens beyond the context", nil, []string{"--max-new-tokens", "1000000"}, []string{"--max-new-tokens 1000000", "at most 32"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"generate", "--base", f.base, "--prompt", "The cat"}, c.args...)
			r := process(t, c.env, args...)
			noCrash(t, r)
			line := strings.TrimSuffix(r.stderr, "\n")
			if r.code != 2 || strings.Contains(line, "\n") || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and one line", r.code, r.stdout, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q lacks %q", line, w)
				}
			}
		})
	}
	// The largest request the vocabulary allows runs when memory allows.
	r := process(t, nil, "generate", "--base", f.base, "--prompt", "The cat", "--beams", "257", "--max-new-tokens", "4")
	noCrash(t, r)
	if r.code != 0 {
		t.Errorf("--beams 257: exit %d, %s", r.code, r.stderr)
	}
}

// TestInspectShowsRankAsked: inspect and adapter_config.json give the rank
// and α the user asked for next to PEFT's block form, with the explanation.
func TestInspectShowsRankAsked(t *testing.T) {
	f := getFixture(t)
	var ad inspected
	decodeJSON(t, mustRun(t, "inspect", f.adapter, "--json").stdout, &ad)
	for _, want := range []string{"r 8, α 16", "targets q,v", "PEFT's block form as r 16, α 32"} {
		if !strings.Contains(ad.Summary, want) {
			t.Errorf("summary %q lacks %q", ad.Summary, want)
		}
	}
	if !strings.Contains(ad.Explanation, "q,v parts of each fused c_attn") || !strings.Contains(ad.Explanation, "golora reads back r 8, α 16") {
		t.Errorf("explanation %q", ad.Explanation)
	}
	text := mustRun(t, "inspect", f.adapter).stdout
	if lines := strings.Split(text, "\n"); len(lines) < 2 || !strings.HasPrefix(lines[1], "  PEFT has no per-part LoRA") {
		t.Errorf("inspect printed %q", text)
	}
	b, err := os.ReadFile(filepath.Join(f.adapter, lora.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		R      int `json:"r"`
		Golora struct {
			R    int    `json:"r"`
			Note string `json:"note"`
		} `json:"golora"`
	}
	decodeJSON(t, string(b), &cfg)
	if cfg.R != 16 || cfg.Golora.R != 8 || !strings.Contains(cfg.Golora.Note, "r = 16 and lora_alpha = 32 above are PEFT's block form") {
		t.Errorf("adapter_config.json: r %d, golora r %d, note %q", cfg.R, cfg.Golora.R, cfg.Golora.Note)
	}
	// A plain adapter has no block form to explain.
	var plain inspected
	decodeJSON(t, mustRun(t, "inspect", f.adapterAll, "--json").stdout, &plain)
	if plain.Explanation != "" || !strings.Contains(plain.Summary, "r 4, α 16") {
		t.Errorf("plain adapter: %q / %q", plain.Summary, plain.Explanation)
	}
}

// TestInterruptedRunResumes: Ctrl-C stops a run after its step, writes the
// checkpoint and the metrics so far and says how to continue; the resumed
// run goes on from there.
func TestInterruptedRunResumes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGINT")
	}
	f := getFixture(t)
	dir := t.TempDir()
	ckpt, metrics := filepath.Join(dir, "run.safetensors"), filepath.Join(dir, "m.jsonl")
	args := []string{"finetune", "--base", f.base, "--data", f.prose, "--context", "16", "--batch", "2",
		"--checkpoint", ckpt, "--metrics", metrics, "--eval-every", "1000000"}
	cmd := exec.Command(os.Args[0], append(args, "--steps", "100000000", "--out", filepath.Join(dir, "a"))...)
	cmd.Env = append(os.Environ(), asGolora+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var log strings.Builder
	for sc.Scan() { // the first progress line: training has started
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "/100000000 loss") {
			break
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(log.String(), "continue with --resume "+ckpt) {
		t.Fatalf("after Ctrl-C: %v\n%s", err, log.String())
	}
	meta, err := trainers.ReadCheckpointMeta(ckpt)
	if err != nil || meta.Step < 1 {
		t.Fatalf("checkpoint after Ctrl-C: step %d, %v", meta.Step, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Error("an interrupted run wrote --out")
	}
	// The metrics file is written, with a line per 10 steps up to the
	// checkpoint's step.
	steps := metricSteps(t, metrics)
	if len(steps) != meta.Step/10 {
		t.Errorf("metrics after Ctrl-C at step %d: %v", meta.Step, steps)
	}
	// Resume with the same flags and 2 more steps.
	r := mustRun(t, append(args, "--steps", fmt.Sprint(meta.Step+2), "--out", filepath.Join(dir, "b"), "--resume", ckpt, "--quiet")...)
	if !strings.Contains(r.stdout, "(2 in this run)") {
		t.Errorf("resumed run: %q", r.stdout)
	}
}
