package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// words runs a pre-tokenizer given as JSON on text and returns the words
// and their input offsets.
func words(t *testing.T, spec, text string) ([]string, [][2]int) {
	t.Helper()
	o, err := parseObject("pre_tokenizer", json.RawMessage(spec))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePreTokenizer(o)
	if err != nil {
		t.Fatalf("%s: %v", spec, err)
	}
	ws, err := p.apply(newNstr(text, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	var off [][2]int
	for _, w := range ws {
		s = append(s, w.s)
		lo, hi := w.span(0, len(w.s))
		off = append(off, [2]int{lo, hi})
	}
	return s, off
}

func TestPreTokenizers(t *testing.T) {
	const how = "How are you doing?"
	cases := []struct {
		name, spec, text string
		want             []string
	}{
		// Split behaviours on a single-space delimiter (the cases of
		// Hugging Face's own documentation).
		{"removed", `{"type":"Split","pattern":{"String":" "},"behavior":"Removed","invert":false}`, how, []string{"How", "are", "you", "doing?"}},
		{"isolated", `{"type":"Split","pattern":{"String":" "},"behavior":"Isolated","invert":false}`, how, []string{"How", " ", "are", " ", "you", " ", "doing?"}},
		{"merged with previous", `{"type":"Split","pattern":{"String":" "},"behavior":"MergedWithPrevious","invert":false}`, how, []string{"How ", "are ", "you ", "doing?"}},
		{"merged with next", `{"type":"Split","pattern":{"String":" "},"behavior":"MergedWithNext","invert":false}`, how, []string{"How", " are", " you", " doing?"}},
		{"contiguous", `{"type":"Split","pattern":{"Regex":"-"},"behavior":"Contiguous","invert":false}`, "a--b-c", []string{"a", "--", "b", "-", "c"}},
		{"invert", `{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Removed","invert":true}`, "ab, cd!", []string{"ab", "cd"}},
		{"lookahead keeps the last space", `{"type":"Split","pattern":{"Regex":" ?\\p{L}+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false}`,
			"a   b\n", []string{"a", "  ", " b", "\n"}},
		{"case-insensitive group", `{"type":"Split","pattern":{"Regex":"(?i:'s|'t)|\\p{L}+"},"behavior":"Isolated","invert":false}`,
			"IT'S it's", []string{"IT", "'S", " ", "it", "'s"}},
		{"bytelevel regex", `{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}`, "Hi  you!", []string{"Hi", "Ġ", "Ġyou", "!"}},
		{"bytelevel prefix space", `{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}`, "Hi", []string{"ĠHi"}},
		{"bytelevel no regex", `{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}`, "a b é", []string{"aĠbĠÃ©"}},
		{"digits", `{"type":"Digits","individual_digits":false}`, "ab123c4", []string{"ab", "123", "c", "4"}},
		{"digits individual", `{"type":"Digits","individual_digits":true}`, "a12٣", []string{"a", "1", "2", "٣"}},
		{"metaspace always split", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`, "Hey  friend", []string{"▁Hey", "▁", "▁friend"}},
		{"metaspace never", `{"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":false}`, "Hey friend", []string{"Hey▁friend"}},
		{"metaspace legacy add_prefix_space", `{"type":"Metaspace","replacement":"▁","add_prefix_space":true,"str_rep":"▁"}`, "a b", []string{"▁a", "▁b"}},
		{"sequence", `{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]}`,
			"x 42", []string{"xĠ", "4", "2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _ := words(t, c.spec, c.text)
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestMetaspaceFirst(t *testing.T) {
	o, _ := parseObject("p", json.RawMessage(`{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}`))
	p, err := parsePreTokenizer(o)
	if err != nil {
		t.Fatal(err)
	}
	n := newNstr("ab cd", 0)
	for _, c := range []struct {
		piece nstr
		want  string
	}{{n, "▁ab▁cd"}, {n.slice(3, 5), "cd"}} { // only the piece at input offset 0 gets ▁
		ws, _ := p.apply(c.piece, nil)
		if len(ws) != 1 || ws[0].s != c.want {
			t.Errorf("piece %q: got %v, want %q", c.piece.s, ws, c.want)
		}
	}
}

func TestNormalizers(t *testing.T) {
	cases := []struct {
		name, spec, in, want string
	}{
		{"NFC", `{"type":"NFC"}`, "cafe\u0301 A\u030a", "café Å"},
		{"NFD", `{"type":"NFD"}`, "é", "e\u0301"},
		{"NFKC", `{"type":"NFKC"}`, "ﬁ①", "fi1"},
		{"NFKD", `{"type":"NFKD"}`, "ﬁé", "fie\u0301"},
		{"prepend", `{"type":"Prepend","prepend":"▁"}`, "hi", "▁hi"},
		{"prepend leaves empty text", `{"type":"Prepend","prepend":"▁"}`, "", ""},
		{"replace string", `{"type":"Replace","pattern":{"String":" "},"content":"▁"}`, "a b  c", "a▁b▁▁c"},
		{"replace regex", `{"type":"Replace","pattern":{"Regex":" {2,}"},"content":" "}`, "a  b   c d", "a b c d"},
		{"strip", `{"type":"Strip","strip_left":true,"strip_right":false}`, " \t x \n", "x \n"},
		{"sequence", `{"type":"Sequence","normalizers":[{"type":"NFC"},{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}`,
			"e\u0301 b", "▁é▁b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseObject("normalizer", json.RawMessage(c.spec))
			if err != nil {
				t.Fatal(err)
			}
			n, err := parseNormalizer(o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := n.normalize(newNstr(c.in, 0))
			if err != nil || got.s != c.want {
				t.Fatalf("got %q, %v; want %q", got.s, err, c.want)
			}
			if len(got.lo) != len(got.s) || len(got.hi) != len(got.s) {
				t.Fatalf("alignment has %d/%d entries for %d bytes", len(got.lo), len(got.hi), len(got.s))
			}
			for i := range got.s {
				if got.lo[i] < 0 || got.hi[i] > len(c.in) || got.lo[i] > got.hi[i] {
					t.Fatalf("byte %d aligned to [%d, %d) outside the input", i, got.lo[i], got.hi[i])
				}
			}
		})
	}
}

// TestOffsetsThroughNormalizer: offsets point into the input however the
// normalizers rewrote it.
func TestOffsetsThroughNormalizer(t *testing.T) {
	tok := fixture(t, sentencePieceFixture, func(m map[string]any) {
		m["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "NFC"},
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}}
	})
	text := "the e\u0301 world"
	e, err := tok.EncodeWith(text, EncodeOptions{NoTemplate: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, off := range e.Offsets {
		got = append(got, e.Tokens[i]+"="+text[off[0]:off[1]])
	}
	// "é" is not in the vocabulary: its two UTF-8 bytes fall back to byte
	// tokens, both pointing at the decomposed input "e\u0301" NFC composed.
	want := []string{"▁the=the", "▁= ", "<0xC3>=e\u0301", "<0xA9>=e\u0301", "▁world= world"}
	if !slices.Equal(got, want) {
		t.Errorf("tokens=input\n got %q\nwant %q", got, want)
	}
}

func TestByteLevelFixture(t *testing.T) {
	tok := fixture(t, byteLevelFixture, nil)
	cases := []struct {
		text string
		want []string
	}{
		{"Hello the world", []string{"Hello", "Ġthe", "Ġworld"}},
		{"  in", []string{"Ġ", "Ġin"}},
		{"a<|endoftext|>b", []string{"a", "<|endoftext|>", "b"}},
		{"😀", []string{"ð", "Ł", "ĺ", "Ģ"}},
		{"", nil},
	}
	for _, c := range cases {
		e, err := tok.EncodeWith(c.text, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(e.Tokens, c.want) {
			t.Errorf("%q: tokens %q, want %q", c.text, e.Tokens, c.want)
		}
		if got, err := tok.Decode(e.IDs); err != nil || got != c.text {
			t.Errorf("Decode(Encode(%q)) = %q, %v", c.text, got, err)
		}
	}
	// The four byte tokens of one emoji share its offsets.
	e, _ := tok.EncodeWith("a😀", EncodeOptions{})
	if want := [][2]int{{0, 1}, {1, 5}, {1, 5}, {1, 5}, {1, 5}}; !slices.Equal(e.Offsets, want) {
		t.Errorf("offsets %v, want %v", e.Offsets, want)
	}
}

func TestSentencePieceFixture(t *testing.T) {
	tok := fixture(t, sentencePieceFixture, nil)
	cases := []struct {
		text               string
		want               []string
		decodedTo, skipped string
	}{
		{"the world", []string{"<s>", "▁the", "▁world"}, "<s> the world", "the world"},
		// 'x' is not in the vocabulary: byte fallback, not <unk>.
		{"x", []string{"<s>", "▁", "<0x78>"}, "<s> x", "x"},
		{"世界 </s>", []string{"<s>", "▁", "世界", "▁", "</s>"}, "<s> 世界 </s>", "世界 "},
		{"  the", []string{"<s>", "▁▁", "▁the"}, "<s>   the", "  the"},
		{"", []string{"<s>"}, "<s>", ""},
	}
	for _, c := range cases {
		e, err := tok.EncodeWith(c.text, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(e.Tokens, c.want) {
			t.Errorf("%q: tokens %q, want %q", c.text, e.Tokens, c.want)
		}
		if got, err := tok.Decode(e.IDs); err != nil || got != c.decodedTo {
			t.Errorf("Decode(Encode(%q)) = %q, %v; want %q", c.text, got, err, c.decodedTo)
		}
		if got, err := tok.DecodeWith(e.IDs, DecodeOptions{SkipSpecialTokens: true}); err != nil || got != c.skipped {
			t.Errorf("DecodeWith(Encode(%q), SkipSpecialTokens) = %q, %v; want %q", c.text, got, err, c.skipped)
		}
	}
	if tok.BOS() != 1 || tok.EOS() != -1 || tok.UNK() != 0 {
		t.Errorf("BOS %d EOS %d UNK %d, want 1 -1 0", tok.BOS(), tok.EOS(), tok.UNK())
	}
	if p, s := tok.TemplateIDs(); !slices.Equal(p, []int{1}) || len(s) != 0 {
		t.Errorf("TemplateIDs = %v %v", p, s)
	}
	plain, _ := tok.EncodeWith("the", EncodeOptions{NoTemplate: true})
	if !slices.Equal(plain.Tokens, []string{"▁the"}) {
		t.Errorf("NoTemplate: %q", plain.Tokens)
	}
}

func TestBPEModel(t *testing.T) {
	withModel := func(change func(model map[string]any)) func(map[string]any) {
		return func(m map[string]any) { change(m["model"].(map[string]any)) }
	}
	t.Run("pairs equal strings", func(t *testing.T) {
		a := fixture(t, byteLevelFixture, nil)
		b := fixture(t, byteLevelFixture, withModel(func(model map[string]any) {
			var pairs [][2]string
			for _, s := range model["merges"].([]string) {
				x, y, _ := strings.Cut(s, " ")
				pairs = append(pairs, [2]string{x, y})
			}
			model["merges"] = pairs
		}))
		for _, text := range []string{"Hello the world", "   inner"} {
			x, _ := a.Encode(text)
			y, _ := b.Encode(text)
			if !slices.Equal(x, y) {
				t.Errorf("%q: %v vs %v", text, x, y)
			}
		}
	})
	t.Run("lowest rank first", func(t *testing.T) {
		// "Ġt he" outranks "h e"+…: the merge order decides " the".
		tok := fixture(t, byteLevelFixture, nil)
		e, _ := tok.EncodeWith(" the", EncodeOptions{})
		if !slices.Equal(e.Tokens, []string{"Ġthe"}) {
			t.Errorf("%q", e.Tokens)
		}
	})
	t.Run("ignore_merges", func(t *testing.T) {
		// "Hel" has no merge path (Hell needs He+ll) but is a token: with
		// ignore_merges the word is taken whole.
		change := func(ignore bool) func(map[string]any) {
			return withModel(func(model map[string]any) {
				model["vocab"].(map[string]int)["Hel"] = len(model["vocab"].(map[string]int)) + 1
				model["ignore_merges"] = ignore
			})
		}
		for _, c := range []struct {
			ignore bool
			want   []string
		}{{false, []string{"He", "l"}}, {true, []string{"Hel"}}} {
			tok, err := fixtureErr(t, byteLevelFixture, func(m map[string]any) {
				change(c.ignore)(m)
				m["added_tokens"].([]any)[0].(map[string]any)["id"] = len(m["model"].(map[string]any)["vocab"].(map[string]int))
			})
			if err != nil {
				t.Fatal(err)
			}
			e, _ := tok.EncodeWith("Hel", EncodeOptions{})
			if !slices.Equal(e.Tokens, c.want) {
				t.Errorf("ignore_merges %v: %q, want %q", c.ignore, e.Tokens, c.want)
			}
		}
	})
	t.Run("unk and fuse_unk", func(t *testing.T) {
		for _, fuse := range []bool{false, true} {
			tok := fixture(t, sentencePieceFixture, withModel(func(model map[string]any) {
				model["byte_fallback"] = false
				model["fuse_unk"] = fuse
			}))
			e, _ := tok.EncodeWith("xyz", EncodeOptions{NoTemplate: true})
			want := []string{"▁", "<unk>", "<unk>", "<unk>"}
			if fuse {
				want = []string{"▁", "<unk>"}
			}
			if !slices.Equal(e.Tokens, want) {
				t.Errorf("fuse_unk %v: %q, want %q", fuse, e.Tokens, want)
			}
			if fuse && e.Offsets[1] != [2]int{0, 3} {
				t.Errorf("fused unk offsets %v, want [0 3]", e.Offsets[1])
			}
		}
	})
}

func TestAddedTokens(t *testing.T) {
	tok := func(content string, flags ...string) map[string]any {
		a := map[string]any{"content": content, "special": false, "normalized": false}
		for _, f := range flags {
			a[f] = true
		}
		return a
	}
	cases := []struct {
		name   string
		tokens []map[string]any
		text   string
		opts   EncodeOptions
		want   []string
	}{
		{"longest wins", []map[string]any{tok("<a>"), tok("<a><b>")}, "x<a><b>y", EncodeOptions{}, []string{"x", "<a><b>", "y"}},
		{"leftmost wins", []map[string]any{tok("ab"), tok("bcd")}, "abcd", EncodeOptions{}, []string{"ab", "c", "d"}},
		{"lstrip takes spaces", []map[string]any{tok("<m>", "lstrip")}, "a  <m> b", EncodeOptions{}, []string{"a", "<m>", "Ġ", "b"}},
		{"rstrip takes spaces", []map[string]any{tok("<m>", "rstrip")}, "a <m>  b", EncodeOptions{}, []string{"a", "Ġ", "<m>", "b"}},
		{"single_word refuses inside a word", []map[string]any{tok("xy", "single_word")}, "xy pxy xy", EncodeOptions{}, []string{"xy", "Ġp", "x", "y", "Ġ", "xy"}},
		{"split special tokens", nil, "a<|endoftext|>", EncodeOptions{SplitSpecialTokens: true}, []string{"a", "<", "|", "end", "of", "text", "|", ">"}},
		{"non-special still matched when splitting", []map[string]any{tok("<m>")}, "<m><|endoftext|>", EncodeOptions{SplitSpecialTokens: true},
			[]string{"<m>", "<", "|", "end", "of", "text", "|", ">"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := fixture(t, byteLevelFixture, func(m map[string]any) {
				model := m["model"].(map[string]any)
				vocab := model["vocab"].(map[string]int)
				delete(vocab, "<|endoftext|>")
				for _, mg := range []string{"e n", "en d", "o f", "t e", "x t", "te xt", "Ġ p"} {
					a, b, _ := strings.Cut(mg, " ")
					model["merges"] = append(model["merges"].([]string), mg)
					vocab[a+b] = len(vocab)
				}
				list := m["added_tokens"].([]any)
				list[0].(map[string]any)["id"] = len(vocab)
				for i, a := range c.tokens {
					a["id"] = len(vocab) + 1 + i
					list = append(list, a)
				}
				m["added_tokens"] = list
			})
			e, err := tk.EncodeWith(c.text, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(e.Tokens, c.want) {
				t.Errorf("got %q, want %q", e.Tokens, c.want)
			}
		})
	}
	t.Run("normalized token matches normalized text", func(t *testing.T) {
		tk := fixture(t, sentencePieceFixture, func(m map[string]any) {
			m["added_tokens"] = append(m["added_tokens"].([]any),
				map[string]any{"id": len(m["model"].(map[string]any)["vocab"].(map[string]int)), "content": "w o", "special": false, "normalized": true})
		})
		// The token's normalized form is "▁w▁o"; the text's is "▁w▁o▁t".
		e, _ := tk.EncodeWith("w o t", EncodeOptions{NoTemplate: true})
		if !slices.Equal(e.Tokens, []string{"w o", "▁t"}) {
			t.Errorf("got %q", e.Tokens)
		}
	})
}

func TestPostProcessors(t *testing.T) {
	seq := func(m map[string]any) {
		tp := sentencePieceFixture()["post_processor"].(map[string]any)
		tp["single"] = append(tp["single"].([]any), map[string]any{"SpecialToken": map[string]any{"id": "</s>", "type_id": 0}})
		tp["special_tokens"].(map[string]any)["</s>"] = map[string]any{"id": "</s>", "ids": []int{2}, "tokens": []string{"</s>"}}
		m["post_processor"] = map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true}, tp}}
	}
	tok := fixture(t, sentencePieceFixture, seq)
	e, _ := tok.EncodeWith("the", EncodeOptions{})
	if !slices.Equal(e.Tokens, []string{"<s>", "▁the", "</s>"}) || !slices.Equal(e.Template, []bool{true, false, true}) {
		t.Errorf("tokens %q template %v", e.Tokens, e.Template)
	}
	if tok.BOS() != 1 || tok.EOS() != 2 {
		t.Errorf("BOS %d EOS %d, want 1 2", tok.BOS(), tok.EOS())
	}
	// ByteLevel trim_offsets moves offsets past the spaces in a token.
	trim := fixture(t, byteLevelFixture, func(m map[string]any) {
		m["post_processor"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}
	})
	e, _ = trim.EncodeWith("a the", EncodeOptions{})
	if want := [][2]int{{0, 1}, {2, 5}}; !slices.Equal(e.Offsets, want) {
		t.Errorf("trimmed offsets %v, want %v", e.Offsets, want)
	}
}

func TestDecoders(t *testing.T) {
	tok := fixture(t, sentencePieceFixture, nil)
	id := func(s string) int {
		i, ok := tok.TokenID(s)
		if !ok {
			t.Fatalf("no token %q", s)
		}
		return i
	}
	cases := []struct {
		name string
		ids  []int
		want string
	}{
		{"metaspace chain strips one leading space", []int{id("▁the"), id("▁world")}, "the world"},
		{"byte fallback", []int{id("<0xC3>"), id("<0xA9>")}, "é"},
		// Rust's ByteFallback writes one U+FFFD per byte of an invalid run.
		{"byte fallback invalid run", []int{id("<0xE4>"), id("<0xB8>"), id("▁w")}, "\uFFFD\uFFFD w"},
		{"empty", nil, ""},
	}
	for _, c := range cases {
		if got, err := tok.Decode(c.ids); err != nil || got != c.want {
			t.Errorf("%s: Decode(%v) = %q, %v; want %q", c.name, c.ids, got, err, c.want)
		}
	}
	if _, err := tok.Decode([]int{tok.VocabSize()}); err == nil || !strings.Contains(err.Error(), "has no token") {
		t.Errorf("unknown id: err = %v", err)
	}
	bl := fixture(t, byteLevelFixture, nil)
	if got, _ := bl.Decode([]int{0xF0 - 0xA1 + 94 + 0, 65}); got == "" {
		t.Errorf("decode gave nothing")
	}
	// Byte-level: a cut character is U+FFFD in Decode, raw in DecodeBytes.
	ids, _ := bl.Encode("é")
	if got, _ := bl.Decode(ids[:1]); got != "\uFFFD" {
		t.Errorf("Decode(first half of é) = %q", got)
	}
	if got, _ := bl.DecodeBytes(ids[:1], DecodeOptions{}); got != "\xc3" {
		t.Errorf("DecodeBytes(first half of é) = %q", got)
	}
	ms := fixture(t, sentencePieceFixture, func(m map[string]any) {
		m["decoder"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}
	})
	if got, _ := ms.Decode([]int{id("▁▁"), id("▁the")}); got != " the" {
		t.Errorf("Metaspace decoder = %q, want %q (Rust drops every ▁ of the first token)", got, " the")
	}
}

func TestLossyUTF8(t *testing.T) {
	// The Unicode Standard's example (Table 3-8): each maximal ill-formed
	// subsequence is one U+FFFD.
	in := []byte("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64")
	if got, want := lossyUTF8(in), "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd"; got != want {
		t.Errorf("lossyUTF8 = %q, want %q", got, want)
	}
	// Invalid input text is read the same way; offsets point at the bytes.
	tok := fixture(t, byteLevelFixture, nil)
	e, err := tok.EncodeWith("a\xffb", EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tok.Decode(e.IDs); got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8 input decodes to %q", got)
	}
}

func TestDecodeStream(t *testing.T) {
	for _, c := range []struct {
		name string
		base func() map[string]any
	}{{"bytelevel", byteLevelFixture}, {"sentencepiece", sentencePieceFixture}} {
		tok := fixture(t, c.base, nil)
		for _, text := range []string{"the world 😀 x 世界", "  the", "é"} {
			ids, _ := tok.Encode(text)
			want, _ := tok.Decode(ids)
			s := tok.NewDecodeStream(DecodeOptions{})
			var got strings.Builder
			for _, id := range ids {
				piece, err := s.Next(id)
				if err != nil {
					t.Fatal(err)
				}
				if strings.ContainsRune(piece, '\uFFFD') {
					t.Errorf("%s %q: piece %q holds U+FFFD", c.name, text, piece)
				}
				got.WriteString(piece)
			}
			if got.String() != want {
				t.Errorf("%s %q: stream %q, Decode %q", c.name, text, got.String(), want)
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	set := func(path string, v any) func(map[string]any) {
		return func(m map[string]any) {
			keys := strings.Split(path, ".")
			cur := m
			for _, k := range keys[:len(keys)-1] {
				cur = cur[k].(map[string]any)
			}
			if v == nil {
				delete(cur, keys[len(keys)-1])
			} else {
				cur[keys[len(keys)-1]] = v
			}
		}
	}
	cases := []struct {
		name   string
		change func(map[string]any)
		want   string
	}{
		{"truncation", set("truncation", map[string]any{"max_length": 8}), `"truncation" is set`},
		{"padding", set("padding", map[string]any{"strategy": "BatchLongest"}), `"padding" is set`},
		{"version", set("version", "2.0"), `version "2.0"`},
		{"model type", set("model.type", "WordPiece"), `model type "WordPiece" is not supported`},
		{"dropout", set("model.dropout", 0.1), "dropout 0.1"},
		{"unknown model setting", set("model.magic", true), `unsupported setting "magic"`},
		{"normalizer type", set("normalizer", map[string]any{"type": "Lowercase"}), `normalizer type "Lowercase" is not supported`},
		{"pre-tokenizer type", set("pre_tokenizer", map[string]any{"type": "Whitespace"}), `pre-tokenizer type "Whitespace" is not supported`},
		{"decoder type", set("decoder", map[string]any{"type": "WordPiece", "prefix": "##"}), `decoder type "WordPiece" is not supported`},
		{"post-processor type", set("post_processor", map[string]any{"type": "BertProcessing"}), `post-processor type "BertProcessing" is not supported`},
		{"bad regex", set("pre_tokenizer", map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}), `Regex "(unclosed"`},
		{"bad behavior", set("pre_tokenizer", map[string]any{"type": "Split", "pattern": map[string]any{"String": " "}, "behavior": "Sideways", "invert": false}), `behavior "Sideways"`},
		{"merge out of vocabulary", set("model.merges", []string{"q z"}), `merges[0] "q" "z": the merged token "qz" is not in the vocabulary`},
		{"malformed merge", set("model.merges", []string{"abc"}), `merges[0]: "abc" is not two tokens`},
		{"added id mismatch", func(m map[string]any) { m["added_tokens"].([]any)[0].(map[string]any)["id"] = 5000 }, `"<|endoftext|>" has id 5000`},
		{"template token unknown", set("post_processor", map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<x>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{}}), `special token "<x>" is not in special_tokens`},
		{"byte-level alphabet incomplete", func(m map[string]any) {
			vocab := m["model"].(map[string]any)["vocab"].(map[string]int)
			vocab["Āx"] = vocab["Ā"]
			delete(vocab, "Ā")
		}, "lacks the byte-level token"},
		{"no way to encode unknown text", set("pre_tokenizer", nil), "would be dropped silently"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := fixtureErr(t, byteLevelFixture, c.change)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	if _, err := FromJSON([]byte("[1]")); err == nil || !strings.HasPrefix(err.Error(), "tokenizer: ") {
		t.Errorf("non-object: err = %v", err)
	}
	if _, err := LoadFile("testdata/nope.json"); err == nil {
		t.Error("missing file: no error")
	}
	_, err := fixtureErr(t, sentencePieceFixture, set("model.byte_fallback", true))
	if err != nil {
		t.Errorf("sentencepiece fixture: %v", err)
	}
	_, err = fixtureErr(t, sentencePieceFixture, func(m map[string]any) {
		delete(m["model"].(map[string]any)["vocab"].(map[string]int), "<0x41>")
	})
	if err == nil || !strings.Contains(err.Error(), "no token <0x41>") {
		t.Errorf("missing byte token: err = %v", err)
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadDir(dir); !errors.Is(err, ErrNoTokenizer) {
		t.Errorf("empty folder: err = %v, want ErrNoTokenizer", err)
	}
	src, _ := os.ReadFile("testdata/sentencepiece.json")
	os.WriteFile(filepath.Join(dir, JSONFile), src, 0o644)
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"bos_token": {"content": "<s>", "__type": "AddedToken"}, "eos_token": "</s>",
		"pad_token": null, "add_bos_token": true, "chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"}`), 0o644)
	tok, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 1 || tok.EOS() != 2 || tok.PAD() != -1 || !strings.HasPrefix(tok.ChatTemplate(), "{{ bos_token }}") {
		t.Errorf("BOS %d EOS %d PAD %d template %q", tok.BOS(), tok.EOS(), tok.PAD(), tok.ChatTemplate())
	}
	os.WriteFile(filepath.Join(dir, ChatTemplateFile), []byte("jinja file"), 0o644)
	if tok, err = LoadDir(dir); err != nil || tok.ChatTemplate() != "jinja file" {
		t.Errorf("chat_template.jinja: %q, %v", tok.ChatTemplate(), err)
	}
	out := t.TempDir()
	if err := tok.SaveFiles(out); err != nil {
		t.Fatal(err)
	}
	again, err := LoadDir(out)
	if err != nil || again.EOS() != 2 || again.ChatTemplate() != "jinja file" {
		t.Errorf("reloaded from SaveFiles: EOS %d, %v", again.EOS(), err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"add_bos_token": false, "bos_token": "<s>"}`), 0o644)
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "add_bos_token is false") {
		t.Errorf("add_bos_token disagreeing with the template: err = %v", err)
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"eos_token": "<nope>"}`), 0o644)
	if _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), `eos_token "<nope>"`) {
		t.Errorf("unknown eos_token: err = %v", err)
	}
}

// TestVocabMerges: GPT-2's two-file form gives the same tokenizer as the
// tokenizer.json with the same vocabulary and merges.
func TestVocabMerges(t *testing.T) {
	m := byteLevelFixture()
	model := m["model"].(map[string]any)
	vocab := model["vocab"].(map[string]int)
	vocab["<|endoftext|>"] = m["added_tokens"].([]any)[0].(map[string]any)["id"].(int)
	vj, _ := json.Marshal(vocab)
	merges := "#version: 0.2\n" + strings.Join(model["merges"].([]string), "\n") + "\n"
	two, err := FromVocabMerges(vj, []byte(merges))
	if err != nil {
		t.Fatal(err)
	}
	one := fixture(t, byteLevelFixture, nil)
	for _, text := range []string{"Hello the world<|endoftext|>  in😀", ""} {
		a, _ := one.Encode(text)
		b, _ := two.Encode(text)
		if !slices.Equal(a, b) {
			t.Errorf("%q: tokenizer.json %v, vocab.json+merges.txt %v", text, a, b)
		}
	}
	if two.EOS() != vocab["<|endoftext|>"] {
		t.Errorf("EOS = %d", two.EOS())
	}
	if _, err := FromVocabMerges(vj, []byte("a b c\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad merges line: err = %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, VocabFile), vj, 0o644)
	os.WriteFile(filepath.Join(dir, MergesFile), []byte(merges), 0o644)
	if !HasFiles(dir) {
		t.Error("HasFiles = false")
	}
	if tok, err := LoadDir(dir); err != nil || len(tok.Files()) != 2 {
		t.Errorf("LoadDir: %v", err)
	}
}

// TestConcurrentEncode: one Tokenizer serves several goroutines (run with
// -race).
func TestConcurrentEncode(t *testing.T) {
	tok := fixture(t, byteLevelFixture, nil)
	want, _ := tok.Encode("Hello the world in inner")
	done := make(chan []int)
	for range 4 {
		go func() {
			var ids []int
			for range 50 {
				ids, _ = tok.Encode("Hello the world in inner")
			}
			done <- ids
		}()
	}
	for range 4 {
		if got := <-done; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	}
}
