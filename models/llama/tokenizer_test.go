package llama

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/tokenizer"
)

// byteLevelJSON is package tokenizer's small byte-level BPE fixture: 273
// ids and the added token <|endoftext|> (273).
const byteLevelJSON = "../../tokenizer/testdata/bytelevel.json"

// withTokenizer saves a tiny model of vocabulary 300 (eos 273) whose
// tokenizer is the fixture, and returns the folder and the tokenizer.
func withTokenizer(t *testing.T) (string, *tokenizer.Tokenizer) {
	t.Helper()
	tok, err := tokenizer.LoadFile(byteLevelJSON)
	if err != nil {
		t.Fatal(err)
	}
	c := tinyConfig(ArchLlama)
	c.VocabSize, c.EOS = 300, []int{273}
	m := newModel(t, c, graph.Float32, 3, 0.5)
	if err := m.SetTokenizer(tok, 273); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir, tok
}

func TestTokenizerFolder(t *testing.T) {
	dir, tok := withTokenizer(t)
	if _, err := os.Stat(filepath.Join(dir, tokenizer.JSONFile)); err != nil {
		t.Fatalf("Save wrote no tokenizer.json: %v", err)
	}
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	_ = json.Unmarshal(raw, &cfg)
	if _, ok := cfg[tokenizerKey]; ok {
		t.Errorf("config.json names the tokenizer (%v); the files say it", cfg[tokenizerKey])
	}
	m, err := Load(dir, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config().Tokenizer != TokenizerHF {
		t.Errorf("tokenizer %q, want hf", m.Config().Tokenizer)
	}
	text := "Hello world, hello <|endoftext|>"
	want, err := tok.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, get := range []func() (gpt.Tokenizer, error){
		m.Tokenizer,
		func() (gpt.Tokenizer, error) { return LoadTokenizer(dir) },
	} {
		ft, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if got := ft.Encode(text); !slices.Equal(got, want) || ft.EOT() != 273 || ft.Decode(got) != text {
			t.Errorf("ids %v (want %v), EOT %d, decoded %q", got, want, ft.EOT(), ft.Decode(got))
		}
	}
	// Saving again (into the same folder) keeps the tokenizer files.
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTokenizer(dir); err != nil {
		t.Errorf("after saving again: %v", err)
	}
}

func TestTokenizerKinds(t *testing.T) {
	c := tinyConfig(ArchLlama)
	m, _ := New(c, graph.Float32)
	if _, err := m.Tokenizer(); err == nil || !strings.Contains(err.Error(), "token ids only") {
		t.Errorf("tokenizer none: %v", err)
	}
	c.VocabSize, c.Tokenizer, c.EOS = 257, "bytes", []int{256}
	m, _ = New(c, graph.Float32)
	if tok, err := m.Tokenizer(); err != nil || tok.Name() != "bytes" || tok.EOT() != 256 {
		t.Errorf("bytes: %v, %v", tok, err)
	}
	c.Tokenizer = TokenizerHF
	m, _ = New(c, graph.Float32)
	if _, err := m.Tokenizer(); err == nil || !strings.Contains(err.Error(), "SetTokenizer") {
		t.Errorf("hf without files: %v", err)
	}
	if err := m.Save(filepath.Join(t.TempDir(), "m")); err == nil {
		t.Error("saved an hf model without its tokenizer files")
	}
	tok, _ := tokenizer.LoadFile(byteLevelJSON)
	if err := m.SetTokenizer(tok, 256); err == nil || !strings.Contains(err.Error(), "274 ids") {
		t.Errorf("a tokenizer larger than the vocabulary: %v", err)
	}
}

func TestTokenizerLoadErrors(t *testing.T) {
	dir, _ := withTokenizer(t)
	// A config.json whose vocabulary is smaller than the tokenizer's.
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	_ = json.Unmarshal(raw, &cfg)
	cfg["vocab_size"] = 270
	cfg["eos_token_id"], cfg["bos_token_id"] = 2, 1
	raw, _ = json.Marshal(cfg)
	_ = os.WriteFile(filepath.Join(dir, ConfigFile), raw, 0o644)
	_ = os.Remove(filepath.Join(dir, GenerationConfigFile))
	if _, err := LoadTokenizer(dir); err == nil || !strings.Contains(err.Error(), "274 ids") {
		t.Errorf("tokenizer larger than vocab_size: %v", err)
	}
	// The eos of generation_config.json is the end-of-text id.
	dir, _ = withTokenizer(t)
	g := NewGenerationConfig(5, 273)
	b, _ := g.marshal()
	_ = os.WriteFile(filepath.Join(dir, GenerationConfigFile), b, 0o644)
	if tok, err := LoadTokenizer(dir); err != nil || tok.EOT() != 5 {
		t.Errorf("EOT from generation_config.json: %v, %v", tok, err)
	}
	// A broken tokenizer.json is an error naming the folder.
	_ = os.WriteFile(filepath.Join(dir, tokenizer.JSONFile), []byte("{"), 0o644)
	if _, err := Load(dir, graph.Float32); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("broken tokenizer.json: %v", err)
	}
}
