package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golora/golora/experiments"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
	"github.com/golora/golora/trainers"
)

func TestFinetuneWritesPEFTAdapter(t *testing.T) {
	f := getFixture(t)
	if got := entries(t, f.adapter); !slices.Equal(got, []string{lora.ConfigFile, lora.WeightsFile}) {
		t.Fatalf("adapter folder holds %v, want exactly PEFT's two files", got)
	}
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(f.adapter, lora.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(t, string(b), &cfg)
	if cfg["peft_type"] != "LORA" || cfg["task_type"] != "CAUSAL_LM" || cfg["base_model_name_or_path"] != f.base {
		t.Errorf("adapter_config.json: peft_type %v, task_type %v, base %v", cfg["peft_type"], cfg["task_type"], cfg["base_model_name_or_path"])
	}
	// q,v at r = 8 is stored as PEFT's rank-2r update of the whole c_attn:
	// lora_A [2r, d] and lora_B [3d, 2r] (d = 16), on both layers.
	sf, err := safetensors.ReadFile(filepath.Join(f.adapter, lora.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range []string{"0", "1"} {
		for _, ab := range []string{"A", "B"} {
			want = append(want, "base_model.model.transformer.h."+l+".attn.c_attn.lora_"+ab+".weight")
		}
	}
	if got := sf.Names(); !slices.Equal(got, want) {
		t.Fatalf("tensors %v, want %v", got, want)
	}
	for name, shape := range map[string][]int{want[0]: {16, 16}, want[1]: {48, 16}} {
		if tt, _ := sf.Tensor(name); !slices.Equal(tt.Shape, shape) || tt.DType != "F32" {
			t.Errorf("%s: %s %v, want F32 %v", name, tt.DType, tt.Shape, shape)
		}
	}
}

// TestEvalJSONIsTheLoss checks eval --json against the mean next-token
// cross-entropy computed here from the model's logits, window by window.
func TestEvalJSONIsTheLoss(t *testing.T) {
	f := getFixture(t)
	for _, adapter := range []string{"", f.adapter} {
		args := []string{"eval", "--base", f.base, "--data", f.prose, "--context", "16", "--json"}
		if adapter != "" {
			args = append(args, "--adapter", adapter)
		}
		var got evalResult
		decodeJSON(t, mustRun(t, args...).stdout, &got)

		m := loadModel(t, f.base, adapter)
		text, _ := os.ReadFile(f.prose)
		ids := gpt.ByteTokenizer().Encode(string(text))
		const ctx = 16
		sum, n := 0.0, 0
		for lo := 0; lo+ctx+1 <= len(ids); lo += ctx {
			logits := logitsOf(t, m, ids[lo:lo+ctx])
			V := m.VocabSize()
			for p := 0; p < ctx; p++ {
				sum += nll(logits[p*V:(p+1)*V], ids[lo+p+1])
				n++
			}
		}
		want := sum / float64(n)
		// float32 logits, summed in a different order: agree to ~1e-6 relative.
		if math.Abs(got.Loss-want) > 1e-5*want || got.Tokens != float64(n) || got.Format != "text" {
			t.Errorf("adapter %q: eval --json gave loss %v over %v tokens (%s), want %v over %d (text)", adapter, got.Loss, got.Tokens, got.Format, want, n)
		}
		// Perplexity against the loss computed here, not the command's own.
		if wantPPL := math.Exp(want); math.Abs(got.Perplexity-wantPPL) > 1e-4*wantPPL {
			t.Errorf("perplexity %v, want exp(%v) = %v from the loss computed here", got.Perplexity, want, wantPPL)
		}
	}
}

func TestEvalTextOutput(t *testing.T) {
	f := getFixture(t)
	r := mustRun(t, "eval", "--base", f.base, "--data", f.prose)
	if !strings.HasPrefix(r.stdout, "loss ") || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("eval printed %q, want one line starting with \"loss \"", r.stdout)
	}
}

// TestAdapterLearnsItsData checks that fine-tuning moved the loss the right
// way: the prose adapter scores the prose better than the base does.
func TestAdapterLearnsItsData(t *testing.T) {
	f := getFixture(t)
	var base, tuned evalResult
	decodeJSON(t, mustRun(t, "eval", "--base", f.base, "--data", f.prose, "--json").stdout, &base)
	decodeJSON(t, mustRun(t, "eval", "--base", f.base, "--adapter", f.adapter, "--data", f.prose, "--json").stdout, &tuned)
	if !(tuned.Loss < base.Loss) {
		t.Errorf("prose loss with the adapter %.4f, base %.4f: the adapter did not learn", tuned.Loss, base.Loss)
	}
}

// TestMergeMatchesBasePlusAdapter checks that the merged model folder
// computes what the base with the adapter computes.
func TestMergeMatchesBasePlusAdapter(t *testing.T) {
	f := getFixture(t)
	for _, adapter := range []string{f.adapter, f.adapterAll} {
		out := filepath.Join(t.TempDir(), "merged")
		mustRun(t, "merge", "--base", f.base, "--adapter", adapter, "--out", out)
		if got := entries(t, out); !slices.Equal(got, []string{gpt.ConfigFile, gpt.WeightsFile}) {
			t.Fatalf("merged folder holds %v", got)
		}
		ids := gpt.ByteTokenizer().Encode("func f3(x int) int {\n\treturn x*3 + 1\n}")[:32]
		base := logitsOf(t, loadModel(t, f.base, ""), ids)
		unmerged := logitsOf(t, loadModel(t, f.base, adapter), ids)
		merged := logitsOf(t, loadModel(t, out, ""), ids)
		diff, scale, err := experiments.MaxAbsDiff(unmerged, merged)
		if err != nil {
			t.Fatal(err)
		}
		moved, _, _ := experiments.MaxAbsDiff(base, unmerged)
		// One float32 rounding of W + s·A·B, carried through two blocks.
		if diff > 1e-4*math.Max(1, scale) {
			t.Errorf("%s: merged and unmerged logits differ by %g (max |logit| %g)", adapter, diff, scale)
		}
		if moved < 1e-3 {
			t.Errorf("%s: the adapter changes the logits by only %g: the comparison would prove nothing", adapter, moved)
		}
	}
}

func TestCompletionsData(t *testing.T) {
	f := getFixture(t)
	out := filepath.Join(t.TempDir(), "ad")
	var s trainSummary
	decodeJSON(t, mustRun(t, "finetune", "--base", f.base, "--data", f.compl, "--out", out, "--steps", "3", "--context", "32", "--quiet", "--json").stdout, &s)
	if s.Format != "completions" || s.Kind != "adapter" || s.Steps != 3 || s.Out != out {
		t.Errorf("finetune --json: %+v", s)
	}
	var ev evalResult
	decodeJSON(t, mustRun(t, "eval", "--base", f.base, "--data", f.compl, "--json").stdout, &ev)
	// The loss covers each completion and its end-of-text token only.
	text, _ := os.ReadFile(f.compl)
	want := 0
	for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		_, completion, _ := strings.Cut(line, "||")
		want += len(completion) + 1
	}
	if ev.Format != "completions" || ev.Tokens != float64(want) {
		t.Errorf("eval of completions: format %s, %v loss tokens, want completions and %d", ev.Format, ev.Tokens, want)
	}
	// --format text forces plain text on the same file.
	var asText evalResult
	decodeJSON(t, mustRun(t, "eval", "--base", f.base, "--data", f.compl, "--format", "text", "--json").stdout, &asText)
	if asText.Format != "text" || asText.Tokens <= ev.Tokens {
		t.Errorf("--format text: format %s with %v tokens", asText.Format, asText.Tokens)
	}
}

// TestResumeContinuesExactly checks that a run stopped at a checkpoint and
// resumed ends with the same adapter as a run never stopped, and that the
// same seed gives the same adapter.
func TestResumeContinuesExactly(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	common := []string{"finetune", "--base", f.base, "--data", f.prose, "--context", "16", "--batch", "4",
		"--schedule", "constant", "--lr", "1e-2", "--quiet", "--seed", "7"}
	straight, again := filepath.Join(dir, "straight"), filepath.Join(dir, "again")
	resumed, ckpt := filepath.Join(dir, "resumed"), filepath.Join(dir, "run.safetensors")
	mustRun(t, append(common, "--steps", "6", "--out", straight)...)
	mustRun(t, append(common, "--steps", "6", "--out", again)...)
	mustRun(t, append(common, "--steps", "3", "--out", filepath.Join(dir, "half"), "--checkpoint", ckpt)...)
	mustRun(t, append(common, "--steps", "6", "--out", resumed, "--resume", ckpt)...)
	read := func(d string) []byte {
		b, err := os.ReadFile(filepath.Join(d, lora.WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(read(straight), read(again)) {
		t.Error("two runs with the same seed wrote different adapters")
	}
	if !bytes.Equal(read(straight), read(resumed)) {
		t.Error("a run resumed from its step-3 checkpoint ended with another adapter than a run never stopped")
	}
	var other trainSummary
	decodeJSON(t, mustRun(t, append(common[:len(common)-1], "8", "--steps", "6", "--out", filepath.Join(dir, "seed8"), "--json")...).stdout, &other)
	if bytes.Equal(read(straight), read(filepath.Join(dir, "seed8"))) {
		t.Error("seeds 7 and 8 wrote the same adapter")
	}
}

func TestFullFinetuneWritesModel(t *testing.T) {
	f := getFixture(t)
	out := filepath.Join(t.TempDir(), "full")
	var s trainSummary
	decodeJSON(t, mustRun(t, "finetune", "--full", "--base", f.base, "--data", f.prose, "--out", out, "--steps", "2", "--context", "16", "--quiet", "--json").stdout, &s)
	if s.Kind != "model" || s.TrainableParams != s.AllParams || s.AllParams == 0 {
		t.Errorf("full fine-tuning summary %+v", s)
	}
	if got := entries(t, out); !slices.Equal(got, []string{gpt.ConfigFile, gpt.WeightsFile}) {
		t.Fatalf("full fine-tuning folder holds %v", got)
	}
	loadModel(t, out, "")
}

// TestBadInputs checks that each mistake gives one line on stderr naming
// the flag or file, a non-zero exit code, and no output left behind.
func TestBadInputs(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	blank := filepath.Join(dir, "blank.txt")
	if err := os.WriteFile(blank, []byte("\n \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.txt")
	if err := os.WriteFile(short, []byte("too short"), 0o644); err != nil {
		t.Fatal(err)
	}
	badCompl := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(badCompl, []byte("a||b\n||c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	occupied := filepath.Join(dir, "occupied")
	if err := os.MkdirAll(occupied, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(occupied, "notes.txt"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An adapter trained on the width-24 model, used with the width-16 base.
	foreign := filepath.Join(dir, "foreign")
	mustRun(t, "finetune", "--base", f.otherBase, "--data", f.prose, "--out", foreign, "--steps", "1", "--context", "16", "--quiet")
	missing := filepath.Join(dir, "missing.txt")
	out := filepath.Join(dir, "out")
	ft := func(args ...string) []string {
		return append([]string{"finetune", "--base", f.base, "--steps", "1", "--quiet"}, args...)
	}
	cases := []struct {
		name  string
		args  []string
		code  int
		wants []string // substrings of the error line
	}{
		{"missing data file", ft("--data", missing, "--out", out), 1, []string{"--data", "missing.txt", "no such file"}},
		{"empty data file", ft("--data", empty, "--out", out), 1, []string{"--data", "empty.txt", "empty"}},
		{"blank data file", ft("--data", blank, "--out", out), 1, []string{"blank.txt", "empty"}},
		{"text shorter than a window", ft("--data", short, "--out", out), 1, []string{"short.txt", "window"}},
		{"bad completions line", ft("--data", badCompl, "--out", out), 1, []string{"bad.txt", "line 2", "empty context"}},
		{"negative rank", ft("--data", f.prose, "--out", out, "--rank", "-2"), 2, []string{"--rank -2", "≥ 1"}},
		{"zero rank", ft("--data", f.prose, "--out", out, "--rank", "0"), 2, []string{"--rank 0"}},
		{"unknown target", ft("--data", f.prose, "--out", out, "--targets", "q,frobnicate"), 1, []string{"--targets", `"frobnicate"`}},
		{"missing base", []string{"finetune", "--base", filepath.Join(dir, "nobase"), "--data", f.prose, "--out", out}, 1, []string{"--base", "nobase"}},
		{"out folder holds other files", ft("--data", f.prose, "--out", occupied), 1, []string{"--out", "notes.txt", "refusing"}},
		{"adapter of another shape: eval", []string{"eval", "--base", f.base, "--adapter", foreign, "--data", f.prose}, 1, []string{"--adapter", "foreign", "shape"}},
		{"adapter of another shape: merge", []string{"merge", "--base", f.base, "--adapter", foreign, "--out", out}, 1, []string{"--adapter", "foreign"}},
		{"adapter of another shape: generate", []string{"generate", "--base", f.base, "--adapter", foreign, "--prompt", "x"}, 1, []string{"--adapter", "foreign"}},
		{"missing adapter", []string{"eval", "--base", f.base, "--adapter", filepath.Join(dir, "noadapter"), "--data", f.prose}, 1, []string{"--adapter", "noadapter"}},
		{"pretrain on a missing file", []string{"pretrain", "--data", missing, "--out", out}, 1, []string{"--data", "missing.txt"}},
		{"pretrain with a bad preset", []string{"pretrain", "--preset", "huge", "--data", f.code, "--out", out}, 2, []string{"--preset", "huge"}},
		{"checkpoint inside --out", ft("--data", f.prose, "--out", out, "--checkpoint", filepath.Join(out, "ck.safetensors")), 2, []string{"--checkpoint", "outside --out"}},
		{"negative steps", ft("--data", f.prose, "--out", out, "--steps", "-1"), 2, []string{"--steps -1"}},
		{"context beyond the model", ft("--data", f.prose, "--out", out, "--context", "999"), 2, []string{"--context 999"}},
		{"unknown flag", ft("--data", f.prose, "--out", out, "--rnak", "4"), 2, []string{"-rnak"}},
		{"bad flag value", ft("--data", f.prose, "--out", out, "--rank", "four"), 2, []string{"-rank", "four"}},
		{"required flag", []string{"eval", "--base", f.base}, 2, []string{"--data is required"}},
		{"bad format", []string{"eval", "--base", f.base, "--data", f.prose, "--format", "csv"}, 2, []string{"--format", "csv"}},
		{"max new tokens beyond the context", []string{"generate", "--base", f.base, "--prompt", "x", "--max-new-tokens", "99"}, 2, []string{"--max-new-tokens 99"}},
		{"top-k without sampling", []string{"generate", "--base", f.base, "--prompt", "x", "--top-k", "5"}, 2, []string{"--top-k", "--temperature"}},
		{"inspect a missing path", []string{"inspect", missing}, 1, []string{"missing.txt"}},
		{"inspect a folder of other things", []string{"inspect", occupied}, 1, []string{"occupied", "not a model folder"}},
		{"analyze without an adapter", []string{"analyze"}, 2, []string{"--adapter"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{`"frobnicate"`}},
		{"bench: unknown config", []string{"bench", "--configs", "huge"}, 2, []string{"--configs", "huge"}},
		{"tokenize without a model", []string{"tokenize", "--text", "x"}, 2, []string{"--base"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := entries(t, dir)
			r := golora(c.args...)
			if r.code != c.code {
				t.Errorf("exit code %d, want %d (stderr %q)", r.code, c.code, r.stderr)
			}
			line := strings.TrimSuffix(r.stderr, "\n")
			if line == "" || strings.Contains(line, "\n") {
				t.Errorf("stderr is %q, want exactly one line", r.stderr)
			}
			for _, w := range c.wants {
				if !strings.Contains(line, w) {
					t.Errorf("error %q does not mention %q", line, w)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing on failure", r.stdout)
			}
			if after := entries(t, dir); !slices.Equal(before, after) {
				t.Errorf("the folder changed from %v to %v: a failed command left output behind", before, after)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(occupied, "notes.txt")); err != nil || string(b) != "keep me" {
		t.Errorf("the occupied folder was touched: %q, %v", b, err)
	}
}

func TestGenerate(t *testing.T) {
	f := getFixture(t)
	var g generation
	decodeJSON(t, mustRun(t, "generate", "--base", f.base, "--adapter", f.adapter, "--prompt", "The cat", "--max-new-tokens", "12", "--json").stdout, &g)
	if g.Prompt != "The cat" || len(g.Tokens) > 12 || (g.StopToken == -1 && len(g.Tokens) != 12) {
		t.Fatalf("generate --json: %+v", g)
	}
	if want := gpt.ByteTokenizer().Decode(g.Tokens); g.Text != strings.ToValidUTF8(want, "\uFFFD") {
		t.Errorf("text %q is not the decoded tokens %q", g.Text, want)
	}
	// Greedy decoding takes the argmax after the prompt: check the first
	// token against the model's logits.
	m := loadModel(t, f.base, f.adapter)
	ids := gpt.ByteTokenizer().Encode("The cat")
	logits := logitsOf(t, m, ids)
	V := m.VocabSize()
	last := logits[(len(ids)-1)*V:]
	best := 0
	for v := range last {
		if last[v] > last[best] {
			best = v
		}
	}
	if first := append(g.Tokens, g.StopToken)[0]; first != best {
		t.Errorf("first greedy token %d, want the argmax %d", first, best)
	}
	plain := mustRun(t, "generate", "--base", f.base, "--adapter", f.adapter, "--prompt", "The cat", "--max-new-tokens", "12")
	if plain.stdout != "The cat"+g.Text+"\n" {
		t.Errorf("generate printed %q, want the prompt and the continuation %q", plain.stdout, g.Text)
	}
	// Sampling is seeded.
	s1 := mustRun(t, "generate", "--base", f.base, "--prompt", "x", "--temperature", "1", "--top-k", "20", "--seed", "3")
	s2 := mustRun(t, "generate", "--base", f.base, "--prompt", "x", "--temperature", "1", "--top-k", "20", "--seed", "3")
	if s1.stdout != s2.stdout {
		t.Errorf("same seed, different samples: %q and %q", s1.stdout, s2.stdout)
	}
}

func TestTokenize(t *testing.T) {
	f := getFixture(t)
	r := mustRun(t, "tokenize", "--base", f.base, "--text", "héllo")
	if r.stdout != "104 195 169 108 108 111\n" {
		t.Errorf("tokenize printed %q", r.stdout)
	}
	var ids []int
	decodeJSON(t, mustRun(t, "tokenize", "--tokenizer", "gpt2", "--text", "Hello world", "--json").stdout, &ids)
	if !slices.Equal(ids, []int{15496, 995}) { // GPT-2's ids for "Hello" and " world"
		t.Errorf("gpt2 ids %v", ids)
	}
	// A tokenizer.json (the package's own small byte-level fixture): "Hello",
	// " the", " world" are tokens of it, and <|endoftext|> is its special token.
	decodeJSON(t, mustRun(t, "tokenize", "--tokenizer", "../../tokenizer/testdata/bytelevel.json",
		"--text", "Hello the world<|endoftext|>", "--json").stdout, &ids)
	if !slices.Equal(ids, []int{271, 258, 263, 273}) {
		t.Errorf("tokenizer.json ids %v", ids)
	}
	if r := golora("tokenize", "--tokenizer", "no-such-file.json", "--text", "x"); r.code == 0 || !strings.Contains(r.stderr, "no-such-file.json") {
		t.Errorf("missing --tokenizer file: code %d, stderr %q", r.code, r.stderr)
	}
}

func TestInspect(t *testing.T) {
	f := getFixture(t)
	cfg, err := gpt.ReadConfig(f.base)
	if err != nil {
		t.Fatal(err)
	}
	var model inspected
	decodeJSON(t, mustRun(t, "inspect", f.base, "--json").stdout, &model)
	if model.Kind != "model" || model.Params != cfg.NumParams() || len(model.Tensors) != 4+12*cfg.NLayer {
		t.Errorf("inspect model: kind %s, %d params in %d tensors; want model, %d in %d", model.Kind, model.Params, len(model.Tensors), cfg.NumParams(), 4+12*cfg.NLayer)
	}
	var ad inspected
	decodeJSON(t, mustRun(t, "inspect", f.adapter, "--json").stdout, &ad)
	// q and v at r = 8, d = 16, two layers: 2·2·(16·8 + 8·16) in golora's
	// compact form, stored as lora_A [16, 16] + lora_B [48, 16] per layer.
	if ad.Kind != "adapter" || ad.Params != 2*(16*16+48*16) || ad.Config["r"] != float64(16) {
		t.Errorf("inspect adapter: kind %s, %d params, r %v", ad.Kind, ad.Params, ad.Config["r"])
	}
	file := mustRun(t, "inspect", filepath.Join(f.adapter, lora.WeightsFile))
	if !strings.Contains(file.stdout, "safetensors file") || !strings.Contains(file.stdout, "lora_A.weight") {
		t.Errorf("inspect of a .safetensors file printed %q", file.stdout)
	}
	ckpt := filepath.Join(t.TempDir(), "ck.safetensors")
	mustRun(t, "finetune", "--base", f.base, "--data", f.prose, "--out", filepath.Join(t.TempDir(), "a"), "--steps", "2", "--quiet", "--checkpoint", ckpt)
	var ck inspected
	decodeJSON(t, mustRun(t, "inspect", ckpt, "--json").stdout, &ck)
	if ck.Kind != "checkpoint" || !strings.Contains(ck.Summary, "step 2") {
		t.Errorf("inspect checkpoint: %s %q", ck.Kind, ck.Summary)
	}
}

func TestAnalyze(t *testing.T) {
	f := getFixture(t)
	var a analysis
	decodeJSON(t, mustRun(t, "analyze", "--adapter", f.adapter, "--adapter", f.adapterAll, "--base", f.base, "--json").stdout, &a)
	if len(a.Adapters) != 2 || a.Base != f.base {
		t.Fatalf("analyze: %d adapters, base %q", len(a.Adapters), a.Base)
	}
	// q,v on 2 layers: 4 updates; c_attn and c_fc on 2 layers: 4 updates.
	for i, want := range []int{4, 4} {
		if got := len(a.Adapters[i].Updates); got != want {
			t.Errorf("adapter %d: %d updates, want %d", i, got, want)
		}
	}
	for _, ad := range a.Adapters {
		for _, u := range ad.Updates {
			ss := 0.0
			for i, s := range u.Spectrum {
				ss += s * s
				if i > 0 && s > u.Spectrum[i-1] {
					t.Errorf("%s %s: spectrum %v not decreasing", u.Layer, u.Part, u.Spectrum)
				}
			}
			// ‖ΔW‖_F² is the sum of the squared singular values.
			if math.Abs(ss-u.NormDeltaW*u.NormDeltaW) > 1e-9*math.Max(1, ss) || !(u.Amplification > 0) {
				t.Errorf("%s %s: Σσ² = %g, ‖ΔW‖² = %g, amplification %g", u.Layer, u.Part, ss, u.NormDeltaW*u.NormDeltaW, u.Amplification)
			}
		}
	}
	// The adapters share no part (q,v against the whole c_attn): nothing
	// to compare. Compare the prose adapter with itself instead: φ = 1.
	if len(a.Similarity) != 0 {
		t.Errorf("similarity of disjoint parts: %v", a.Similarity)
	}
	var self analysis
	decodeJSON(t, mustRun(t, "analyze", "--adapter", f.adapter, "--adapter", f.adapter, "--json").stdout, &self)
	if len(self.Similarity) != 4 {
		t.Fatalf("self-similarity: %d items, want 4", len(self.Similarity))
	}
	for _, s := range self.Similarity {
		for i := range s.Grid {
			if math.Abs(s.Grid[i][i]-1) > 1e-9 {
				t.Errorf("%s %s: φ(A, A, %d, %d) = %v, want 1", s.Layer, s.Part, i+1, i+1, s.Grid[i][i])
			}
		}
	}
	// Without --base the adapter's base_model_name_or_path is used; without
	// that either, a stand-in of the right shape (no amplification).
	moved := filepath.Join(t.TempDir(), "ad")
	if err := os.MkdirAll(moved, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{lora.ConfigFile, lora.WeightsFile} {
		b, _ := os.ReadFile(filepath.Join(f.adapter, n))
		if n == lora.ConfigFile {
			b = bytes.ReplaceAll(b, []byte(strconv.Quote(f.base)), []byte(`"elsewhere"`))
		}
		if err := os.WriteFile(filepath.Join(moved, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var alone analysis
	decodeJSON(t, mustRun(t, "analyze", "--adapter", moved, "--json").stdout, &alone)
	if alone.Base != "" || len(alone.Adapters[0].Updates) != 4 {
		t.Fatalf("stand-in analysis: base %q, %d updates", alone.Base, len(alone.Adapters[0].Updates))
	}
	for i, u := range alone.Adapters[0].Updates {
		if w := a.Adapters[0].Updates[i]; math.Abs(u.NormDeltaW-w.NormDeltaW) > 1e-12 || u.Amplification != 0 {
			t.Errorf("stand-in %s %s: ‖ΔW‖ %g (with base %g), amplification %g", u.Layer, u.Part, u.NormDeltaW, w.NormDeltaW, u.Amplification)
		}
	}
	text := mustRun(t, "analyze", "--adapter", f.adapter)
	if !strings.Contains(text.stdout, "h.1.attn.c_attn") || !strings.Contains(text.stdout, "amplification") {
		t.Errorf("analyze printed %q", text.stdout)
	}
}

func TestHelp(t *testing.T) {
	top := mustRun(t, "--help")
	for _, c := range commands() {
		if !strings.Contains(top.stdout, "golora "+c.name) {
			t.Errorf("golora --help does not list %s", c.name)
		}
		r := mustRun(t, c.name, "--help")
		if !strings.HasPrefix(r.stdout, "usage: golora "+c.name) || !strings.Contains(r.stdout, "example:\n  golora "+c.name) {
			t.Errorf("golora %s --help printed %q", c.name, r.stdout)
		}
		if strings.Contains(r.stdout, hidden) {
			t.Errorf("golora %s --help shows a hidden flag", c.name)
		}
	}
	if r := golora(); r.code != 2 || !strings.Contains(r.stderr, "usage:") {
		t.Errorf("no arguments: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestBench(t *testing.T) {
	r := mustRun(t, "bench", "--configs", "tiny", "--steps", "1", "--warmup", "1", "--latency-runs", "1", "--json")
	var res experiments.BenchResult
	decodeJSON(t, r.stdout, &res)
	if len(res.Configs) != 1 {
		t.Fatalf("bench: %d configs", len(res.Configs))
	}
	c := res.Configs[0]
	if c.Name != "tiny" || c.Layers != 2 || c.Embd != 64 || c.Context != 64 || c.Batch != 16 {
		t.Errorf("tiny config %+v", c.BenchConfig)
	}
	for name, v := range map[string]float64{"LoRA tokens/s": c.LoRATokensPerSec, "full tokens/s": c.FullTokensPerSec,
		"base latency": c.LatencyBaseMs, "unmerged latency": c.LatencyUnmergedMs, "merged latency": c.LatencyMergedMs,
		"LoRA heap": c.LoRAPeakHeapMiB, "full heap": c.FullPeakHeapMiB} {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	// r = 8 on q and v of 2 layers of width 64: 2·2·(64·8 + 8·64).
	if c.LoRATrainable != 4096 || c.MergedMaxAbsDiff > 1e-4 {
		t.Errorf("LoRA trainable %d (want 4096), merged vs unmerged %g", c.LoRATrainable, c.MergedMaxAbsDiff)
	}
	if !strings.Contains(r.stderr, "bench: tiny") {
		t.Errorf("bench printed no progress: %q", r.stderr)
	}
}

// TestDemoQuick runs the whole demo pipeline on a shortened budget and
// checks the report's claims from its numbers.
func TestDemoQuick(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "report")
	r := mustRun(t, "demo", "--quick", "--out", out)
	if !strings.Contains(r.stdout, "every check passed") || !strings.Contains(r.stderr, "pretrain") {
		t.Errorf("demo output:\n%s\nprogress:\n%s", r.stdout, r.stderr)
	}
	var res experiments.DemoResult
	b, err := os.ReadFile(filepath.Join(out, experiments.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	decodeJSON(t, string(b), &res)
	if !res.Passed || len(res.Checks) == 0 || len(res.LoRA) < 2 {
		t.Fatalf("metrics.json: passed %v, %d checks, %d adapters", res.Passed, len(res.Checks), len(res.LoRA))
	}
	tasks := res.Domains[1:]
	for _, task := range tasks {
		own := res.ValidLoss["lora:"+task][task]
		if base := res.ValidLoss["base"][task]; !(own < base) {
			t.Errorf("lora:%s on %s: %.4f, base %.4f", task, task, own, base)
		}
		for _, other := range tasks {
			if other != task && !(own < res.ValidLoss["lora:"+other][task]) {
				t.Errorf("lora:%s on %s: %.4f, lora:%s %.4f", task, task, own, other, res.ValidLoss["lora:"+other][task])
			}
			// Task switching on one base reproduces each adapter's scores.
			if s, v := res.Switching[task][other], res.ValidLoss["lora:"+task][other]; math.Abs(s-v) > 1e-6*v {
				t.Errorf("switching to %s, loss on %s %v, right after training %v", task, other, s, v)
			}
		}
	}
	for _, l := range res.LoRA {
		if !(l.Percent < 5) || l.Trainable >= l.All/20 {
			t.Errorf("%s trains %d of %d parameters (%.2f%%)", l.Name, l.Trainable, l.All, l.Percent)
		}
	}
	if res.Full.Trainable != res.Model.Params {
		t.Errorf("full fine-tuning trains %d of %d", res.Full.Trainable, res.Model.Params)
	}
	for _, m := range res.Merge {
		if !(m.MaxAbsDiff <= 1e-4*math.Max(1, m.MaxAbsLogit)) {
			t.Errorf("%s: merged vs unmerged %g", m.Adapter, m.MaxAbsDiff)
		}
	}
	for _, task := range tasks {
		if a := res.Files.AdapterBytes[task]; !(a > 0 && a < res.Files.BaseModelBytes) {
			t.Errorf("adapter %s file %d bytes, base %d", task, a, res.Files.BaseModelBytes)
		}
	}
	if len(res.Samples) != (1+len(tasks))*len(tasks) || res.Latency.BaseMs <= 0 {
		t.Errorf("%d samples, base latency %v", len(res.Samples), res.Latency.BaseMs)
	}
	md, err := os.ReadFile(filepath.Join(out, experiments.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Every check passed", "Task switching", "| base |", "loss-pretrain.png"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, p := range experiments.PlotFiles(&res) {
		png, err := os.ReadFile(filepath.Join(out, p))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG (%v)", p, err)
		}
	}
	// The adapters in the report load onto the saved base, and name it, so
	// analyze finds it.
	loadModel(t, filepath.Join(out, experiments.DemoBaseDir), filepath.Join(out, experiments.DemoAdaptersDir, tasks[1]))
	var an analysis
	decodeJSON(t, mustRun(t, "analyze", "--adapter", filepath.Join(out, experiments.DemoAdaptersDir, tasks[0]),
		"--adapter", filepath.Join(out, experiments.DemoAdaptersDir, tasks[1]), "--json").stdout, &an)
	if an.Base != filepath.Join(out, experiments.DemoBaseDir) || len(an.Similarity) == 0 || !(an.Adapters[0].Updates[0].Amplification > 0) {
		t.Errorf("analyze of the demo's adapters: base %q, %d similarity items", an.Base, len(an.Similarity))
	}
	// Nothing but the report folder is left in its parent (no temporaries).
	if got := entries(t, dir); !slices.Equal(got, []string{"report"}) {
		t.Errorf("the parent folder holds %v", got)
	}
	// A second run replaces the report; JSON output is metrics.json.
	var again experiments.DemoResult
	decodeJSON(t, mustRun(t, "demo", "--quick", "--out", out, "--json", "--quiet").stdout, &again)
	if again.ValidLoss["base"][tasks[0]] != res.ValidLoss["base"][tasks[0]] {
		t.Errorf("the same seed gave another base loss: %v, then %v", res.ValidLoss["base"][tasks[0]], again.ValidLoss["base"][tasks[0]])
	}
	if _, err := json.Marshal(again); err != nil {
		t.Error(err)
	}
}

func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "run", false)
	obs := p.observer()
	for s := 1; s <= 20; s++ {
		p.step(s, 20, 1.5, 100)
		if s == 10 {
			obs.OnEval(trainers.EvalInfo{Step: 10, EvalResult: trainers.EvalResult{Loss: 1.25}})
		}
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// Not a terminal: a line at step 1, at each tenth of the run, and one per
	// validation, no carriage returns.
	if len(lines) != 12 || strings.Contains(b.String(), "\r") {
		t.Fatalf("progress wrote %d lines:\n%s", len(lines), b.String())
	}
	if !strings.HasPrefix(lines[len(lines)-1], "run: 20/20 loss 1.5000 valid 1.2500 (step 10)") {
		t.Errorf("last line %q", lines[len(lines)-1])
	}
	if newProgress(&b, "run", true) != nil {
		t.Error("quiet progress is not nil")
	}
}

// TestValidationProgress: a validation in progress is drawn in place on a
// terminal, and not at all in a log when it is quick.
func TestValidationProgress(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "run", false)
	p.tty = true
	for done := 0; done <= 10; done += 5 {
		p.evalProgress(trainers.EvalProgress{Step: 3, Done: done, Total: 10})
	}
	if !strings.Contains(b.String(), "\r\033[Krun: step 3: validating 0/10 examples") || !strings.Contains(b.String(), "validating 10/10") {
		t.Errorf("terminal: %q", b.String())
	}
	b.Reset()
	q := newProgress(&b, "eval", false) // not a terminal; the eval command: no step
	for done := 0; done <= 10; done += 5 {
		q.evalProgress(trainers.EvalProgress{Done: done, Total: 10})
	}
	if b.Len() != 0 {
		t.Errorf("a quick validation wrote %q to a log", b.String())
	}
	q.evalLast = q.evalLast.Add(-time.Minute) // as if it had run a minute
	q.evalProgress(trainers.EvalProgress{Done: 5, Total: 10})
	if b.String() != "eval: validating, 5/10 examples\n" {
		t.Errorf("a slow validation wrote %q", b.String())
	}
}
