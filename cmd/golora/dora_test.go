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
