package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// The commands on Llama-family folders. Parity with an independent PyTorch
// implementation goes through `golora eval` on the folders and golden
// losses tools/llama_eval_reference.py wrote (its header says how to
// regenerate them); the rest runs every command on models pretrain makes.

// TestLlamaEvalParity: `golora eval` on random checkpoints of each
// architecture (llama with llama3 rope scaling in F32, qwen2 in BF16 with
// q/k/v biases and a tied head, qwen3 in three shards with q/k norms)
// gives PyTorch's loss to 1e-4.
func TestLlamaEvalParity(t *testing.T) {
	dir := filepath.Join("testdata", "llama_eval")
	b, err := os.ReadFile(filepath.Join(dir, "losses.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Context int                `json:"context"`
		Tokens  float64            `json:"tokens"`
		Loss    map[string]float64 `json:"loss"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Loss) != 3 {
		t.Fatalf("losses.json has %d cases, want 3", len(ref.Loss))
	}
	for name, want := range ref.Loss {
		t.Run(name, func(t *testing.T) {
			r := mustRun(t, "eval", "--base", filepath.Join(dir, name), "--data", filepath.Join(dir, "text.txt"),
				"--context", fmt.Sprint(ref.Context), "--json")
			var got evalResult
			decodeJSON(t, r.stdout, &got)
			if got.Tokens != ref.Tokens {
				t.Errorf("scored %v tokens, PyTorch %v", got.Tokens, ref.Tokens)
			}
			if d := math.Abs(got.Loss - want); d > 1e-4 {
				t.Errorf("loss %.8f, PyTorch %.8f (|Δ| %.2g > 1e-4)", got.Loss, want, d)
			}
		})
	}
}

// llamaFixture pretrains a tiny model of arch (1 layer, width 16 or 24 with
// GQA) on the fixture's code and returns its folder.
func llamaFixture(t *testing.T, f *fixture, arch string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), arch)
	mustRun(t, "pretrain", "--arch", arch, "--preset", "nano", "--layers", "1", "--embd", "24", "--block-size", "32",
		"--data", f.code, "--out", out, "--steps", "3", "--context", "16", "--batch", "4", "--quiet")
	return out
}

// TestLlamaCommands runs every command on Llama, Qwen2 and Qwen3 folders
// that pretrain made: LoRA and full fine-tuning, eval, generate (greedy,
// sampling, beam search), merge, inspect, analyze and tokenize.
func TestLlamaCommands(t *testing.T) {
	f := getFixture(t)
	for _, arch := range []string{"llama", "qwen2", "qwen3"} {
		t.Run(arch, func(t *testing.T) {
			base := llamaFixture(t, f, arch)
			tmp := t.TempDir()
			var c map[string]any
			b, _ := os.ReadFile(filepath.Join(base, "config.json"))
			if err := json.Unmarshal(b, &c); err != nil || c["model_type"] != arch {
				t.Fatalf("config.json model_type %v (%v), want %s", c["model_type"], err, arch)
			}
			r := mustRun(t, "inspect", base)
			if !strings.Contains(r.stdout, "model_type "+arch) || !strings.Contains(r.stdout, "1 layers") {
				t.Errorf("inspect: %s", r.stdout)
			}
			ad := filepath.Join(tmp, "ad")
			mustRun(t, "finetune", "--base", base, "--data", f.prose, "--out", ad, "--targets", "all-linear",
				"--steps", "4", "--context", "16", "--batch", "4", "--lr", "1e-2", "--quiet")
			full := filepath.Join(tmp, "full")
			r = mustRun(t, "finetune", "--base", base, "--data", f.prose, "--out", full, "--full",
				"--steps", "2", "--context", "16", "--batch", "4", "--json", "--quiet")
			var s trainSummary
			decodeJSON(t, r.stdout, &s)
			if s.Kind != "model" || s.TrainableParams != s.AllParams {
				t.Errorf("--full: %+v", s)
			}
			evalLoss := func(args ...string) float64 {
				t.Helper()
				r := mustRun(t, append([]string{"eval", "--data", f.prose, "--context", "16", "--json"}, args...)...)
				var e evalResult
				decodeJSON(t, r.stdout, &e)
				return e.Loss
			}
			lBase, lAd, lFull := evalLoss("--base", base), evalLoss("--base", base, "--adapter", ad), evalLoss("--base", full)
			if lAd == lBase || lFull == lBase {
				t.Errorf("training changed nothing: base %v, adapter %v, full %v", lBase, lAd, lFull)
			}
			merged := filepath.Join(tmp, "merged")
			mustRun(t, "merge", "--base", base, "--adapter", ad, "--out", merged)
			if lm := evalLoss("--base", merged); math.Abs(lm-lAd) > 1e-5*max(1, lAd) {
				t.Errorf("merged loss %.7f, unmerged %.7f", lm, lAd)
			}
			checkPEFTMerge(t, base, ad, merged)
			for _, g := range [][]string{{}, {"--temperature", "0.8", "--top-k", "20", "--seed", "3"}, {"--beams", "3"}} {
				r := mustRun(t, append([]string{"generate", "--base", base, "--adapter", ad, "--prompt", "func ", "--max-new-tokens", "5", "--json"}, g...)...)
				var gen generation
				decodeJSON(t, r.stdout, &gen)
				if len(gen.Tokens) == 0 || len(gen.Tokens) > 5 {
					t.Errorf("generate %v: %d tokens", g, len(gen.Tokens))
				}
			}
			r = mustRun(t, "tokenize", "--base", base, "--text", "hé")
			if strings.TrimSpace(r.stdout) != "104 195 169" {
				t.Errorf("tokenize: %q, want the bytes 104 195 169", r.stdout)
			}
			r = mustRun(t, "analyze", "--adapter", ad, "--base", base)
			if !strings.Contains(r.stdout, "model.layers.0.mlp.down_proj") {
				t.Errorf("analyze lists no down_proj: %s", r.stdout)
			}
			// A stand-in of the adapter's shape when the base is not given.
			r = mustRun(t, "analyze", "--adapter", ad, "--adapter", ad)
			if !strings.Contains(r.stdout, "model.layers.0.self_attn.k_proj") {
				t.Errorf("analyze without --base: %s", r.stdout)
			}
		})
	}
}

// checkPEFTMerge checks the merged folder against PEFT's merge rule
// computed here from the files: every adapted [out, in] weight W of the
// base becomes W + (α/r)·B·A, with A [r, in] and B [out, r] as PEFT stores
// them, and every other tensor is unchanged.
func checkPEFTMerge(t *testing.T, base, adapter, merged string) {
	t.Helper()
	var cfg struct {
		R     int     `json:"r"`
		Alpha float64 `json:"lora_alpha"`
	}
	b, err := os.ReadFile(filepath.Join(adapter, lora.ConfigFile))
	if err != nil || json.Unmarshal(b, &cfg) != nil || cfg.R == 0 {
		t.Fatalf("adapter config: %v", err)
	}
	scale := cfg.Alpha / float64(cfg.R)
	read := func(path string) *safetensors.File {
		f, err := safetensors.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	bw, ad, mw := read(filepath.Join(base, "model.safetensors")), read(filepath.Join(adapter, lora.WeightsFile)), read(filepath.Join(merged, "model.safetensors"))
	adapted := 0
	for _, name := range bw.Names() {
		w, shape, err := bw.Float64s(name)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := mw.Float64s(name)
		if err != nil {
			t.Fatalf("merged folder: %v", err)
		}
		want := w
		module := strings.TrimSuffix(name, ".weight")
		if a, ashape, err := ad.Float64s("base_model.model." + module + ".lora_A.weight"); err == nil {
			bm, bshape, err := ad.Float64s("base_model.model." + module + ".lora_B.weight")
			if err != nil {
				t.Fatal(err)
			}
			out, in, r := shape[0], shape[1], ashape[0]
			if ashape[1] != in || bshape[0] != out || bshape[1] != r {
				t.Fatalf("%s: W %v, A %v, B %v: not PEFT's [out, in], [r, in], [out, r]", module, shape, ashape, bshape)
			}
			want = make([]float64, len(w))
			for i := range out {
				for j := range in {
					s := 0.0
					for k := range r {
						s += bm[i*r+k] * a[k*in+j]
					}
					want[i*in+j] = w[i*in+j] + scale*s
				}
			}
			adapted++
		}
		for i := range want {
			if d := math.Abs(got[i] - want[i]); d > 1e-6*max(1, math.Abs(want[i])) {
				t.Fatalf("%s[%d]: merged %v, PEFT's rule %v", name, i, got[i], want[i])
			}
		}
	}
	if adapted != 7 {
		t.Errorf("%d adapted weights, want 7 (all-linear on one layer)", adapted)
	}
}

// TestLlamaGenerateStopsAtAnyEOS: generation stops at any id of
// generation_config.json's eos_token_id list.
func TestLlamaGenerateStopsAtAnyEOS(t *testing.T) {
	f := getFixture(t)
	base := llamaFixture(t, f, "llama")
	gen := func() generation {
		t.Helper()
		r := mustRun(t, "generate", "--base", base, "--prompt", "func ", "--max-new-tokens", "12", "--json")
		var g generation
		decodeJSON(t, r.stdout, &g)
		return g
	}
	g := gen()
	if len(g.Tokens) < 3 {
		t.Fatalf("greedy generation of %d tokens: want 12 to pick a stop token from", len(g.Tokens))
	}
	stop := g.Tokens[2]
	other := (stop + 1) % 256
	for other == g.Tokens[0] || other == g.Tokens[1] || other == stop {
		other = (other + 1) % 256
	}
	cfg := fmt.Sprintf(`{"bos_token_id": 256, "eos_token_id": [%d, %d], "do_sample": false}`, other, stop)
	if err := os.WriteFile(filepath.Join(base, "generation_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	first := 0
	for g.Tokens[first] != stop {
		first++
	}
	g2 := gen()
	if g2.StopToken != stop || len(g2.Tokens) > first+1 {
		t.Errorf("with eos_token_id [%d, %d]: stop %d after %v; want a stop at %d (first at %d of %v)", other, stop, g2.StopToken, g2.Tokens, stop, first, g.Tokens)
	}
}

// TestLlamaMergeEmbeddingUntied: an adapter on embed_tokens of a model with
// a separate lm_head merges (into the embedding alone), and the merged
// model scores as the unmerged adapter does.
func TestLlamaMergeEmbeddingUntied(t *testing.T) {
	dir := filepath.Join("testdata", "llama_eval")
	base, text := filepath.Join(dir, "qwen3"), filepath.Join(dir, "text.txt")
	tmp := t.TempDir()
	ad, merged := filepath.Join(tmp, "ad"), filepath.Join(tmp, "merged")
	mustRun(t, "finetune", "--base", base, "--data", text, "--out", ad, "--targets", "embed_tokens,q_proj,lm_head",
		"--rank", "2", "--steps", "3", "--context", "16", "--batch", "2", "--lr", "1e-2", "--valid-fraction", "0", "--quiet")
	mustRun(t, "merge", "--base", base, "--adapter", ad, "--out", merged)
	loss := func(args ...string) float64 {
		r := mustRun(t, append([]string{"eval", "--data", text, "--context", "16", "--json"}, args...)...)
		var e evalResult
		decodeJSON(t, r.stdout, &e)
		return e.Loss
	}
	if lu, lm := loss("--base", base, "--adapter", ad), loss("--base", merged); math.Abs(lu-lm) > 1e-5 {
		t.Errorf("merged loss %.7f, unmerged %.7f", lm, lu)
	}
}
