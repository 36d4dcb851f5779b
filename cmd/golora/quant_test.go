package main

import (
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// TestBasePrecision: finetune, eval and generate run on a quantized base;
// the adapter trained on an nf4 base evaluates on the float base; eval on
// a bf16 base is within 1% of f32; the progress line reports the memory
// split; a bad value is a one-line error naming the flag.
func TestBasePrecision(t *testing.T) {
	f := getFixture(t)
	out := filepath.Join(t.TempDir(), "ad")
	r := mustRun(t, "finetune", "--base", f.base, "--data", f.prose, "--out", out, "--steps", "3", "--context", "16", "--batch", "4",
		"--base-precision", "nf4", "--quantize-embeddings")
	if !strings.Contains(r.stderr, "base nf4") || !strings.Contains(r.stderr, "activations") || !strings.Contains(r.stderr, "rss") {
		t.Errorf("progress line without the memory split:\n%s", r.stderr)
	}
	loss := map[string]float64{}
	for _, prec := range []string{"f32", "bf16", "int8", "nf4"} {
		var ev evalResult
		decodeJSON(t, mustRun(t, "eval", "--base", f.base, "--adapter", out, "--data", f.prose, "--base-precision", prec, "--json").stdout, &ev)
		loss[prec] = ev.Loss
	}
	if d := math.Abs(loss["bf16"]-loss["f32"]) / loss["f32"]; d > 0.01 {
		t.Errorf("eval loss %v on a bf16 base, %v on f32", loss["bf16"], loss["f32"])
	}
	if d := math.Abs(loss["nf4"]-loss["f32"]) / loss["f32"]; d > 0.1 || loss["nf4"] == loss["f32"] {
		t.Errorf("eval loss %v on an nf4 base, %v on f32", loss["nf4"], loss["f32"])
	}
	g := mustRun(t, "generate", "--base", f.base, "--adapter", out, "--prompt", "The cat", "--max-new-tokens", "5", "--base-precision", "int8", "--quantize-embeddings")
	if g.stdout == "" {
		t.Error("generate on an int8 base printed nothing")
	}
	for _, args := range [][]string{
		{"finetune", "--base", f.base, "--data", f.prose, "--out", out + "2", "--base-precision", "nf3"},
		{"eval", "--base", f.base, "--data", f.prose, "--base-precision", "q4"},
		{"generate", "--base", f.base, "--prompt", "x", "--base-precision", ""},
		{"finetune", "--full", "--base", f.base, "--data", f.prose, "--out", out + "3", "--base-precision", "nf4"},
	} {
		r := golora(args...)
		if r.code == 0 || !strings.Contains(r.stderr, "--base-precision") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
			t.Errorf("golora %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
