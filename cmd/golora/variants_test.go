package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/experiments"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
	"github.com/golora/golora/trainers"
)

// TestFinetuneDoRA: finetune --dora writes a PEFT DoRA adapter ("use_dora":
// true and a magnitude vector per adapted layer), which eval, generate and
// merge read; the merged model computes what the base with the adapter
// computes. --dora with --full is a usage error.
func TestFinetuneDoRA(t *testing.T) {
	f := getFixture(t)
	out := filepath.Join(t.TempDir(), "dora")
	mustRun(t, "finetune", "--dora", "--base", f.base, "--data", f.prose, "--out", out, "--steps", "3", "--context", "16", "--quiet")
	raw, err := os.ReadFile(filepath.Join(out, lora.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["use_dora"] != true {
		t.Errorf("use_dora = %v", cfg["use_dora"])
	}
	sf, err := safetensors.ReadFile(filepath.Join(out, lora.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"0", "1"} { // q,v of c_attn [d=16, 3d]: a magnitude per column of c_attn
		tn, ok := sf.Tensor("base_model.model.transformer.h." + l + ".attn.c_attn.lora_magnitude_vector")
		if !ok || len(tn.Shape) != 1 || tn.Shape[0] != 48 {
			t.Errorf("layer %s: magnitude %v (present %v), want [48]", l, tn.Shape, ok)
		}
	}
	mustRun(t, "eval", "--base", f.base, "--adapter", out, "--data", f.prose, "--context", "16")
	merged := filepath.Join(t.TempDir(), "merged")
	mustRun(t, "merge", "--base", f.base, "--adapter", out, "--out", merged)
	ids := gpt.ByteTokenizer().Encode("func f3(x int) int {\n\treturn x*3 + 1\n}")[:32]
	unmerged := logitsOf(t, loadModel(t, f.base, out), ids)
	m := logitsOf(t, loadModel(t, merged, ""), ids)
	if diff, scale, err := experiments.MaxAbsDiff(unmerged, m); err != nil || diff > 1e-4*math.Max(1, scale) {
		t.Errorf("merged DoRA model differs from base + adapter by %g (err %v)", diff, err)
	}
	r := golora("finetune", "--dora", "--full", "--base", f.base, "--data", f.prose, "--out", filepath.Join(t.TempDir(), "x"), "--quiet")
	if r.code != 2 || !strings.Contains(r.stderr, "--dora") {
		t.Errorf("--dora --full: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestFinetuneLoRAPlus: --loraplus-lr-ratio R reaches the trainer (the
// checkpoint's config records it, and a resumed run keeps it), and bad
// values are usage errors.
func TestFinetuneLoRAPlus(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ck.safetensors")
	mustRun(t, "finetune", "--loraplus-lr-ratio", "16", "--base", f.base, "--data", f.prose, "--out", filepath.Join(dir, "a"),
		"--steps", "2", "--context", "16", "--quiet", "--checkpoint", ckpt)
	meta, err := trainers.ReadCheckpointMeta(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Config.LoRAPlusRatio != 16 {
		t.Errorf("checkpoint config: LoRA+ ratio %v, want 16", meta.Config.LoRAPlusRatio)
	}
	mustRun(t, "finetune", "--loraplus-lr-ratio", "16", "--base", f.base, "--data", f.prose, "--out", filepath.Join(dir, "b"),
		"--steps", "3", "--context", "16", "--quiet", "--resume", ckpt)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--loraplus-lr-ratio", "-2"}, "--loraplus-lr-ratio -2"},
		{[]string{"--loraplus-lr-ratio", "+Inf"}, "--loraplus-lr-ratio +Inf"},
		{[]string{"--loraplus-lr-ratio", "4", "--full"}, "--full"},
	} {
		args := append([]string{"finetune", "--base", f.base, "--data", f.prose, "--out", filepath.Join(dir, "x"), "--quiet"}, c.args...)
		if r := golora(args...); r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, r.code, r.stderr)
		}
	}
}
