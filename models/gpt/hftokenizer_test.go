package gpt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/tokenizer"
)

// gpt2Files builds GPT-2's tokenizer as Hugging Face ships it, in both
// forms (vocab.json + merges.txt, and tokenizer.json), from the r50k_base
// vocabulary the built-in tokenizer embeds. GPT-2's merge list is not in
// that table, but token 256 + r is the product of merge r, so merge r is
// what the earlier merges reduce that token to (tools/bpe_reference.py
// does the same). The files are GPT-2's data, so they are made here and
// never committed.
var gpt2Files = sync.OnceValues(func() (map[string][]byte, error) {
	tok, err := GPT2Tokenizer()
	if err != nil {
		return nil, err
	}
	g := tok.(*gpt2Tokenizer)
	var bc [256]string // GPT-2's byte → printable character table
	next := rune(256)
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			bc[b] = string(rune(b))
		} else {
			bc[b] = string(next)
			next++
		}
	}
	chars := func(s string) []string {
		out := make([]string, len(s))
		for i := 0; i < len(s); i++ {
			out[i] = bc[s[i]]
		}
		return out
	}
	vocab := map[string]int{}
	ranks := map[[2]string]int{}
	var merges []string
	for id := range gpt2EOT {
		syms := chars(g.piece(id))
		vocab[strings.Join(syms, "")] = id
		if id < 256 {
			continue
		}
		for len(syms) > 2 { // apply the earlier merges, lowest rank first
			best, at := -1, -1
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := ranks[[2]string{syms[i], syms[i+1]}]; ok && (best < 0 || r < best) {
					best, at = r, i
				}
			}
			if at < 0 {
				break
			}
			syms = slices.Replace(syms, at, at+2, syms[at]+syms[at+1])
		}
		if len(syms) != 2 {
			return nil, os.ErrInvalid
		}
		ranks[[2]string{syms[0], syms[1]}] = id - 256
		merges = append(merges, syms[0]+" "+syms[1])
	}
	vocab[endOfText] = gpt2EOT
	vj, err := json.Marshal(vocab)
	if err != nil {
		return nil, err
	}
	tj, err := json.Marshal(map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil,
		"added_tokens": []any{map[string]any{"id": gpt2EOT, "content": endOfText, "single_word": false,
			"lstrip": false, "rstrip": false, "normalized": true, "special": true}},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "vocab": vocab, "merges": merges},
	})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		tokenizer.VocabFile:  vj,
		tokenizer.MergesFile: []byte("#version: 0.2\n" + strings.Join(merges, "\n") + "\n"),
		tokenizer.JSONFile:   tj,
	}, nil
})

// hubFolder writes a small GPT-2-shaped model (GPT-2's vocabulary) as a
// hub folder would hold it: config.json without golora's key, the weights,
// and the tokenizer files named.
func hubFolder(t *testing.T, names ...string) string {
	t.Helper()
	files, err := gpt2Files()
	if err != nil {
		t.Fatalf("building GPT-2's tokenizer files: %v", err)
	}
	cfg := Config{NLayer: 1, NHead: 1, NEmbd: 4, BlockSize: 16, VocabSize: gpt2Vocab, LayerNormEps: 1e-5, Tokenizer: "gpt2"}
	m, err := New(cfg, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(graph.NewRand(1)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "gpt2")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	json.Unmarshal(raw, &keys)
	delete(keys, tokenizerKey)
	raw, _ = json.Marshal(keys)
	os.WriteFile(filepath.Join(dir, ConfigFile), raw, 0o644)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHFTokenizerFolders: a GPT-2 folder that ships tokenizer.json, or
// vocab.json + merges.txt, loads its tokenizer through package tokenizer,
// which gives GPT-2's ids on the independent reference cases; saving
// keeps the files, and the saved folder reloads with them.
func TestHFTokenizerFolders(t *testing.T) {
	data, err := os.ReadFile("testdata/bpe_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []tokBPECase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, form := range [][]string{{tokenizer.JSONFile}, {tokenizer.VocabFile, tokenizer.MergesFile}} {
		t.Run(strings.Join(form, "+"), func(t *testing.T) {
			dir := hubFolder(t, form...)
			m, err := Load(dir, graph.Float32)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Config().Tokenizer; got != TokenizerHF {
				t.Fatalf("Tokenizer = %q, want %q", got, TokenizerHF)
			}
			tok, err := m.Tokenizer()
			if err != nil {
				t.Fatal(err)
			}
			if tok.Name() != TokenizerHF || tok.EOT() != gpt2EOT || tok.VocabSize() != gpt2Vocab {
				t.Errorf("Name %q EOT %d VocabSize %d", tok.Name(), tok.EOT(), tok.VocabSize())
			}
			for _, c := range cases {
				if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
					t.Errorf("Encode(%q)\n got %v\nwant %v (tools/bpe_reference.py)", c.Text, got, c.IDs)
				}
				if got := tok.Decode(c.IDs); got != c.Text {
					t.Errorf("Decode(ids of %q) = %q", c.Text, got)
				}
			}
			if got := tok.Decode([]int{gpt2Vocab, 15496}); got != replacementChar+"Hello" {
				t.Errorf("Decode with an unknown id = %q", got)
			}
			// Saving keeps the files and records "hf"; the copy reloads.
			out := filepath.Join(t.TempDir(), "saved")
			if err := m.Save(out); err != nil {
				t.Fatal(err)
			}
			for _, n := range form {
				if _, err := os.Stat(filepath.Join(out, n)); err != nil {
					t.Errorf("saved folder lacks %s: %v", n, err)
				}
			}
			raw, _ := os.ReadFile(filepath.Join(out, ConfigFile))
			if !strings.Contains(string(raw), `"golora_tokenizer": "hf"`) {
				t.Errorf("saved config.json does not record the tokenizer:\n%s", raw)
			}
			if err := m.Save(out); err != nil { // again, over its own files
				t.Errorf("saving over the folder it wrote: %v", err)
			}
			again, err := LoadTokenizer(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := again.Encode(cases[2].Text); !slices.Equal(got, cases[2].IDs) {
				t.Errorf("reloaded tokenizer: %v, want %v", got, cases[2].IDs)
			}
			gen, err := m.NewGenerator(GenerateOptions{MaxNewTokens: 2})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gen.stops, []int{gpt2EOT}) {
				t.Errorf("default stop tokens %v, want [%d]", gen.stops, gpt2EOT)
			}
			gen.Close()
		})
	}
}

func TestHFTokenizerErrors(t *testing.T) {
	dir := hubFolder(t, tokenizer.JSONFile)
	// A golora_tokenizer key wins over the files.
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	var keys map[string]any
	json.Unmarshal(raw, &keys)
	keys[tokenizerKey] = "gpt2"
	raw, _ = json.Marshal(keys)
	os.WriteFile(filepath.Join(dir, ConfigFile), raw, 0o644)
	if cfg, err := ReadConfig(dir); err != nil || cfg.Tokenizer != "gpt2" {
		t.Errorf("explicit key: %q, %v", cfg.Tokenizer, err)
	}
	// "hf" with no files is an error naming what is missing.
	keys[tokenizerKey] = TokenizerHF
	raw, _ = json.Marshal(keys)
	os.WriteFile(filepath.Join(dir, ConfigFile), raw, 0o644)
	os.Remove(filepath.Join(dir, tokenizer.JSONFile))
	if _, err := Load(dir, graph.Float32); err == nil || !strings.Contains(err.Error(), "no tokenizer.json") {
		t.Errorf("hf without files: err = %v", err)
	}
	// A broken tokenizer.json is an error, not a fallback to GPT-2's.
	os.WriteFile(filepath.Join(dir, tokenizer.JSONFile), []byte(`{"model": {"type": "WordPiece"}}`), 0o644)
	if _, err := LoadTokenizer(dir); err == nil || !strings.Contains(err.Error(), "WordPiece") {
		t.Errorf("broken tokenizer.json: err = %v", err)
	}
	if _, err := NewTokenizer(TokenizerHF); err == nil || !strings.Contains(err.Error(), "LoadTokenizer") {
		t.Errorf("NewTokenizer(hf): err = %v", err)
	}
	// SetTokenizer gives a new model the files and Save writes them.
	files, _ := gpt2Files()
	ht, err := tokenizer.FromJSON(files[tokenizer.JSONFile])
	if err != nil {
		t.Fatal(err)
	}
	small, _ := New(Config{NLayer: 1, NHead: 1, NEmbd: 4, BlockSize: 8, VocabSize: 257, LayerNormEps: 1e-5, Tokenizer: "bytes"}, graph.Float32)
	if err := small.SetTokenizer(ht, gpt2EOT); err == nil || !strings.Contains(err.Error(), "VocabSize is 257") {
		t.Errorf("SetTokenizer on a smaller vocabulary: err = %v", err)
	}
}
