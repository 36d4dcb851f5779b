package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The fixtures in testdata are small tokenizer.json files of golora's own,
// one of each family, made by the functions below (not copied from any
// model). TestFixturesUpToDate fails when they drift; regenerate with
//
//	GOLORA_WRITE_FIXTURES=1 go test ./tokenizer -run TestFixturesUpToDate

// byteLevelFixture is a GPT-2-style byte-level BPE: the 256 byte
// characters (ids 0…255), a few merges, and <|endoftext|> as a special
// added token.
func byteLevelFixture() map[string]any {
	vocab := map[string]int{}
	for b := range 256 {
		vocab[byteChars[b]] = b
	}
	merges := []string{"Ġ t", "h e", "Ġt he", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld", "i n", "Ġ in", "e r", "l l", "ĠĠ ĠĠ", "H e", "He ll", "Hell o", "Ġ Ġ"}
	for _, m := range merges {
		var a, b string
		fmt.Sscanf(m, "%s %s", &a, &b)
		if _, ok := vocab[a+b]; !ok {
			vocab[a+b] = len(vocab)
		}
	}
	eot := len(vocab)
	return map[string]any{
		"version":    "1.0",
		"truncation": nil,
		"padding":    nil,
		"added_tokens": []any{map[string]any{"id": eot, "content": "<|endoftext|>", "single_word": false,
			"lstrip": false, "rstrip": false, "normalized": false, "special": true}},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": merges},
	}
}

// sentencePieceFixture is a Llama-2-style SentencePiece BPE: <unk>, <s>,
// </s>, the 256 <0xNN> byte tokens, a few pieces and merges; ▁ in front
// and for spaces (normalizer), <s> in front (post-processor), and the
// decoder chain that undoes it.
func sentencePieceFixture() map[string]any {
	vocab := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := range 256 {
		vocab[fmt.Sprintf("<0x%02X>", b)] = 3 + b
	}
	for _, p := range []string{"▁", "t", "h", "e", "w", "o", "r", "l", "d", "H", "i", "世", "界"} {
		vocab[p] = len(vocab)
	}
	merges := [][2]string{{"▁", "t"}, {"h", "e"}, {"▁t", "he"}, {"▁", "w"}, {"o", "r"}, {"▁w", "or"}, {"l", "d"}, {"▁wor", "ld"}, {"▁", "▁"}, {"世", "界"}}
	for _, m := range merges {
		if _, ok := vocab[m[0]+m[1]]; !ok {
			vocab[m[0]+m[1]] = len(vocab)
		}
	}
	special := func(id int, s string) map[string]any {
		return map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
	}
	return map[string]any{
		"version":      "1.0",
		"truncation":   nil,
		"padding":      nil,
		"added_tokens": []any{special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")},
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 1}}, map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}}},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": "<unk>", "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "vocab": vocab, "merges": merges},
	}
}

var fixtures = map[string]func() map[string]any{
	"testdata/bytelevel.json":     byteLevelFixture,
	"testdata/sentencepiece.json": sentencePieceFixture,
}

func marshalFixture(t testing.TB, m map[string]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFixturesUpToDate(t *testing.T) {
	for path, f := range fixtures {
		want := marshalFixture(t, f())
		if os.Getenv("GOLORA_WRITE_FIXTURES") != "" {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is missing or stale (%v): regenerate with GOLORA_WRITE_FIXTURES=1 go test ./tokenizer -run TestFixturesUpToDate", path, err)
		}
	}
}

// fixture loads a fixture with changes applied to its JSON object.
func fixture(t testing.TB, base func() map[string]any, change func(m map[string]any)) *Tokenizer {
	t.Helper()
	tok, err := fixtureErr(t, base, change)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func fixtureErr(t testing.TB, base func() map[string]any, change func(m map[string]any)) (*Tokenizer, error) {
	t.Helper()
	m := base()
	if change != nil {
		change(m)
	}
	return FromJSON(marshalFixture(t, m))
}

var _ = filepath.Join
