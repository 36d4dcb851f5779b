package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// TestResumeRefusesAnotherRun: a resume that would not continue the
// checkpoint's run is refused naming the flag; --force makes it deliberate.
func TestResumeRefusesAnotherRun(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.safetensors")
	common := []string{"finetune", "--base", f.base, "--context", "16", "--batch", "4", "--quiet"}
	run := func(args ...string) result {
		return golora(append(append([]string{}, common...), args...)...)
	}
	if r := run("--data", f.prose, "--steps", "4", "--out", filepath.Join(dir, "a"), "--checkpoint", ckpt, "--seed", "3"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	before, _ := os.ReadFile(ckpt)
	out := filepath.Join(dir, "b")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"fewer steps", []string{"--data", f.prose, "--steps", "2", "--seed", "3"}, []string{"--steps 2", "already done 4 steps", "--force"}},
		{"fewer steps by epochs", []string{"--data", f.prose, "--epochs", "1", "--batch", "100", "--seed", "3"}, []string{"--epochs 1"}},
		{"another seed", []string{"--data", f.prose, "--steps", "8", "--seed", "4"}, []string{"--seed 4", "--seed 3", "--force"}},
		{"the default seed", []string{"--data", f.prose, "--steps", "8"}, []string{"--seed 1", "--seed 3"}},
		{"other data", []string{"--data", f.code, "--steps", "8", "--seed", "3"}, []string{"--data", "other data", "--force"}},
		{"another split", []string{"--data", f.prose, "--steps", "8", "--seed", "3", "--valid-fraction", "0.2"}, []string{"--data", "other data"}},
		{"another context", []string{"--data", f.prose, "--steps", "8", "--seed", "3", "--context", "8"}, []string{"--context 8", "--context 16"}},
		{"another batch", []string{"--data", f.prose, "--steps", "8", "--seed", "3", "--batch", "2"}, []string{"--batch 2", "--batch 4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(append(c.args, "--out", out, "--resume", ckpt)...)
			if r.code != 2 || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("%q lacks %q", r.stderr, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused resume wrote --out")
			}
			if after, _ := os.ReadFile(ckpt); !bytes.Equal(before, after) {
				t.Error("a refused resume changed the checkpoint")
			}
		})
	}
	// --force: resuming with fewer steps writes the checkpoint's state and
	// says no step ran (never "train loss 0.0000").
	r := run("--data", f.prose, "--steps", "2", "--seed", "3", "--out", out, "--resume", ckpt, "--force")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	for _, bad := range []string{"train loss 0.0000", "NaN"} {
		if strings.Contains(r.stdout, bad) {
			t.Errorf("summary %q shows %q", r.stdout, bad)
		}
	}
	if !strings.Contains(r.stdout, "no training steps run") || !strings.Contains(r.stdout, "steps 4 (0 in this run)") {
		t.Errorf("summary of a run with nothing to do: %q", r.stdout)
	}
	var s map[string]any
	decodeJSON(t, run("--data", f.prose, "--steps", "4", "--seed", "3", "--out", out, "--resume", ckpt, "--json").stdout, &s)
	if _, ok := s["train_loss"]; ok || s["steps"] != 4.0 || s["steps_run"] != 0.0 {
		t.Errorf("--json summary of a run with nothing to do: %v", s)
	}
	// --force with another seed trains on.
	if r := run("--data", f.prose, "--steps", "6", "--seed", "5", "--out", out, "--resume", ckpt, "--force", "--checkpoint", filepath.Join(dir, "other.safetensors")); r.code != 0 || !strings.Contains(r.stdout, "2 in this run") {
		t.Errorf("--force with another seed: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// TestResumeAppendsMetrics: --metrics keeps the history of the run resumed
// and goes on from the checkpoint's step.
func TestResumeAppendsMetrics(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	ckpt, metrics := filepath.Join(dir, "run.safetensors"), filepath.Join(dir, "m.jsonl")
	common := []string{"finetune", "--base", f.base, "--data", f.prose, "--context", "16", "--batch", "4", "--quiet",
		"--eval-every", "2", "--metrics", metrics, "--checkpoint", ckpt}
	mustRun(t, append(common, "--steps", "4", "--out", filepath.Join(dir, "a"))...)
	first := metricSteps(t, metrics)
	mustRun(t, append(common, "--steps", "6", "--out", filepath.Join(dir, "b"), "--resume", ckpt)...)
	all := metricSteps(t, metrics)
	// LogEvery 10: a line at the last step, and one per validation.
	want := []string{"val 2", "train 4", "val 4", "train 6", "val 6"}
	if strings.Join(first, ",") != strings.Join(want[:3], ",") || strings.Join(all, ",") != strings.Join(want, ",") {
		t.Errorf("metrics after the first run %v, after the resume %v; want %v", first, all, want)
	}
	// Nothing left to train: the history is kept as it is.
	mustRun(t, append(common, "--steps", "6", "--out", filepath.Join(dir, "c"), "--resume", ckpt)...)
	if again := metricSteps(t, metrics); strings.Join(again, ",") != strings.Join(want, ",") {
		t.Errorf("metrics after a resume with nothing to do: %v", again)
	}
	// A file that is not a metrics history is not overwritten.
	if err := os.WriteFile(metrics, []byte("my notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := golora(append(common, "--steps", "8", "--out", filepath.Join(dir, "d"), "--resume", ckpt)...)
	if r.code != 1 || !strings.Contains(r.stderr, "--metrics") || !strings.Contains(r.stderr, "not a metrics line") {
		t.Errorf("exit %d, %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(metrics); string(b) != "my notes\n" {
		t.Error("the foreign file was overwritten")
	}
}

// metricSteps lists a metrics file as "train N" and "val N" entries.
func metricSteps(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if strings.TrimSpace(string(b)) == "" {
		return nil
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var v map[string]any
		decodeJSON(t, line, &v)
		kind := "train"
		if _, ok := v["val_loss"]; ok {
			kind = "val"
		}
		out = append(out, kind+" "+strings.TrimSuffix(strings.TrimSuffix(jsonNumber(v["step"]), ".0"), ".00"))
	}
	return out
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestStrayTemporariesRemoved: temporary files a killed run left next to
// its checkpoint, metrics and output folder are removed when the next run
// starts, and the run says so.
func TestStrayTemporariesRemoved(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	stray := []string{".run.safetensors.tmp-4242", ".m.jsonl.tmp-77", ".out.tmp-123"}
	for _, s := range stray {
		if err := os.WriteFile(filepath.Join(dir, s), []byte("half a checkpoint"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dir, ".run.safetensors.tmp-notes")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, "finetune", "--base", f.base, "--data", f.prose, "--context", "16", "--steps", "1",
		"--out", filepath.Join(dir, "out"), "--checkpoint", filepath.Join(dir, "run.safetensors"), "--metrics", filepath.Join(dir, "m.jsonl"))
	for _, s := range stray {
		if _, err := os.Stat(filepath.Join(dir, s)); err == nil {
			t.Errorf("%s is still there", s)
		}
		if !strings.Contains(r.stderr, "removed "+filepath.Join(dir, s)) {
			t.Errorf("progress does not say %s was removed: %q", s, r.stderr)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Error("a file that only looks like a temporary was removed")
	}
}

// TestDamagedFilesRefused: a flipped byte in a checkpoint, a model or an
// adapter is refused with the file and tensor named, and nothing is written.
// (A checkpoint with 1,000 flipped bytes used to be resumed from.)
func TestDamagedFilesRefused(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "run.safetensors")
	mustRun(t, "finetune", "--base", f.base, "--data", f.prose, "--context", "16", "--steps", "2", "--quiet",
		"--out", filepath.Join(dir, "a"), "--checkpoint", ckpt)
	base, adapter := filepath.Join(dir, "base"), filepath.Join(dir, "adapter")
	copyTree(t, f.base, base)
	copyTree(t, f.adapter, adapter)
	// flip damages n bytes in the middle of tensor name's data and returns
	// the file's bytes before.
	flip := func(path, name string, n int) {
		t.Helper()
		sf, err := safetensors.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if sf.Metadata[safetensors.ChecksumKey] == "" {
			t.Fatalf("%s has no checksums", path)
		}
		tt, ok := sf.Tensor(name)
		if !ok {
			t.Fatalf("%s has no %s", path, name)
		}
		b, _ := os.ReadFile(path)
		hlen := int(binary.LittleEndian.Uint64(b))
		var header map[string]struct {
			Offsets []int `json:"data_offsets"`
		}
		if err := json.Unmarshal(b[8:8+hlen], &header); err != nil {
			t.Fatal(err)
		}
		off := 8 + hlen + header[name].Offsets[0]
		for i := 0; i < min(n, len(tt.Data)/2); i++ { // each byte once
			b[off+len(tt.Data)/4+i] ^= 0xa5
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ckTensor := "" // the last trainable parameter in the file
	if sf, err := safetensors.ReadFile(ckpt); err == nil {
		for _, n := range sf.Names() {
			if strings.HasPrefix(n, "param/") {
				ckTensor = n
			}
		}
	}
	adTensor := "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"
	flip(ckpt, ckTensor, 1000)
	flip(filepath.Join(base, gpt.WeightsFile), "h.0.mlp.c_fc.weight", 1)
	flip(filepath.Join(adapter, lora.WeightsFile), adTensor, 1)
	out := filepath.Join(dir, "out")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"resume a damaged checkpoint", []string{"finetune", "--base", f.base, "--data", f.prose, "--context", "16", "--steps", "4",
			"--out", out, "--resume", ckpt}, []string{"--resume", "run.safetensors", `tensor "` + ckTensor + `"`, "checksum mismatch"}},
		{"inspect a damaged checkpoint", []string{"inspect", ckpt}, []string{"run.safetensors", ckTensor, "checksum mismatch"}},
		{"eval on a damaged base", []string{"eval", "--base", base, "--data", f.prose}, []string{"--base", `tensor "h.0.mlp.c_fc.weight"`, "checksum mismatch"}},
		{"merge a damaged adapter", []string{"merge", "--base", f.base, "--adapter", adapter, "--out", out}, []string{"--adapter", adTensor, "checksum mismatch"}},
		{"generate with a damaged adapter", []string{"generate", "--base", f.base, "--adapter", adapter, "--prompt", "x"}, []string{adTensor, "checksum mismatch"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := golora(c.args...)
			if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("%q lacks %q", r.stderr, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("output written from a damaged input")
			}
		})
	}
}

// TestEvalSplitValid: eval --split valid scores exactly finetune's
// held-out examples, so its loss equals finetune's validation loss.
func TestEvalSplitValid(t *testing.T) {
	f := getFixture(t)
	out := filepath.Join(t.TempDir(), "ad")
	var s trainSummary
	decodeJSON(t, mustRun(t, "finetune", "--base", f.base, "--data", f.prose, "--out", out, "--steps", "3", "--seed", "5",
		"--valid-fraction", "0.25", "--quiet", "--json").stdout, &s)
	var valid, train, all evalResult
	ev := []string{"eval", "--base", f.base, "--adapter", out, "--data", f.prose, "--json", "--seed", "5", "--valid-fraction", "0.25"}
	decodeJSON(t, mustRun(t, append(ev, "--split", "valid")...).stdout, &valid)
	decodeJSON(t, mustRun(t, append(ev, "--split", "train")...).stdout, &train)
	decodeJSON(t, mustRun(t, append(ev, "--split", "all")...).stdout, &all)
	if valid.Loss != s.ValidLoss || valid.Tokens != s.ValidTokens || valid.Split != "valid" {
		t.Errorf("eval --split valid: loss %v on %v tokens; finetune's validation: %v on %v", valid.Loss, valid.Tokens, s.ValidLoss, s.ValidTokens)
	}
	if train.Examples+valid.Examples != all.Examples || train.Tokens+valid.Tokens != all.Tokens {
		t.Errorf("train %d + valid %d examples ≠ all %d", train.Examples, valid.Examples, all.Examples)
	}
	// --valid-tokens caps finetune's validation; eval follows with the same
	// cap.
	decodeJSON(t, mustRun(t, "finetune", "--base", f.base, "--data", f.prose, "--out", out, "--steps", "1", "--seed", "5",
		"--valid-fraction", "0.25", "--valid-tokens", "300", "--quiet", "--json").stdout, &s)
	decodeJSON(t, mustRun(t, append(ev, "--split", "valid", "--valid-tokens", "300")...).stdout, &valid)
	if s.ValidTokens > 300 || s.ValidTokens == 0 || valid.Loss != s.ValidLoss || valid.Tokens != s.ValidTokens {
		t.Errorf("--valid-tokens 300: finetune scored %v tokens (loss %v), eval %v (loss %v)", s.ValidTokens, s.ValidLoss, valid.Tokens, valid.Loss)
	}
	// Training throughput leaves validation time out.
	if !(s.TokensPerSec > float64(s.Tokens)/s.Seconds) {
		t.Errorf("tokens/s %v, tokens/seconds %v: validation time was counted", s.TokensPerSec, float64(s.Tokens)/s.Seconds)
	}
}
