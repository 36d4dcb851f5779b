package gpt

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// tokTestSeed seeds every random test in this file; a failure prints the case.
const tokTestSeed = 20240611

func tokGPT2(tb testing.TB) Tokenizer {
	tb.Helper()
	tok, err := GPT2Tokenizer()
	if err != nil {
		tb.Fatalf("GPT2Tokenizer: %v", err)
	}
	return tok
}

func TestNewTokenizer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		vocabSize int
		eot       int
	}{
		{"bytes", 257, 256},
		{"gpt2", 50257, 50256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := NewTokenizer(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Name() != tc.name || tok.VocabSize() != tc.vocabSize || tok.EOT() != tc.eot {
				t.Errorf("Name, VocabSize, EOT = %q, %d, %d; want %q, %d, %d",
					tok.Name(), tok.VocabSize(), tok.EOT(), tc.name, tc.vocabSize, tc.eot)
			}
			if got := tok.Encode(endOfText); !slices.Equal(got, []int{tc.eot}) {
				t.Errorf("Encode(%q) = %v, want [%d]", endOfText, got, tc.eot)
			}
			if got := tok.Decode([]int{tc.eot}); got != endOfText {
				t.Errorf("Decode([EOT]) = %q", got)
			}
		})
	}
	for _, name := range []string{"", "GPT2", "gpt-2", "byte", "r50k_base"} {
		tok, err := NewTokenizer(name)
		if err == nil || tok != nil {
			t.Errorf("NewTokenizer(%q) = %v, %v; want an error", name, tok, err)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
			t.Errorf("NewTokenizer(%q) error %q does not name it", name, err)
		}
	}
}

func TestByteTokenizer(t *testing.T) {
	tok := ByteTokenizer()
	for _, tc := range []struct {
		name string
		text string
		ids  []int
	}{
		{"empty", "", []int{}},
		{"ascii", "Hi!", []int{72, 105, 33}},
		{"two-byte rune", "é", []int{0xc3, 0xa9}},
		{"four-byte rune", "🎉", []int{0xf0, 0x9f, 0x8e, 0x89}},
		{"nul and 0xff", "\x00\xff", []int{0, 255}},
		{"invalid utf-8", "a\xc3(\xed\xa0\x80", []int{97, 0xc3, 40, 0xed, 0xa0, 0x80}},
		{"eot alone", "<|endoftext|>", []int{256}},
		{"eot between", "a<|endoftext|>b", []int{97, 256, 98}},
		{"eot twice", "<|endoftext|><|endoftext|>", []int{256, 256}},
		{"eot prefix is text", "<|endoftext|", []int{60, 124, 101, 110, 100, 111, 102, 116, 101, 120, 116, 124}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tok.Encode(tc.text)
			if !slices.Equal(got, tc.ids) {
				t.Fatalf("Encode(%q) = %v, want %v", tc.text, got, tc.ids)
			}
			if back := tok.Decode(got); back != tc.text {
				t.Errorf("Decode(Encode(%q)) = %q", tc.text, back)
			}
		})
	}
	// Ids outside [0, 257) decode to U+FFFD, one each, without disturbing
	// their neighbours.
	got := tok.Decode([]int{-1, 104, 257, 105, 1 << 40, -1 << 40})
	if want := "\uFFFDh\uFFFDi\uFFFD\uFFFD"; got != want {
		t.Errorf("Decode(out of range) = %q, want %q", got, want)
	}
	if got := tok.Decode(nil); got != "" {
		t.Errorf("Decode(nil) = %q", got)
	}
}

// TestByteTokenizerRandom round-trips random byte strings, half of them built
// from pieces of "<|endoftext|>" so that markers (whole and broken) occur.
func TestByteTokenizerRandom(t *testing.T) {
	tok := ByteTokenizer()
	rng := rand.New(rand.NewPCG(tokTestSeed, 1))
	parts := []string{"<|", "endoftext", "|>", "<|endoftext|>", "<", "|", "x"}
	for i := range 5000 {
		var sb strings.Builder
		for range rng.IntN(40) {
			if i%2 == 0 {
				sb.WriteByte(byte(rng.UintN(256)))
			} else {
				sb.WriteString(parts[rng.IntN(len(parts))])
			}
		}
		s := sb.String()
		ids := tok.Encode(s)
		if back := tok.Decode(ids); back != s {
			t.Fatalf("case %d: Decode(Encode(%q)) = %q", i, s, back)
		}
		eots := 0
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("case %d: Encode(%q) gave id %d", i, s, id)
			}
			if id == tok.EOT() {
				eots++
			}
		}
		if want := strings.Count(s, endOfText); eots != want {
			t.Fatalf("case %d: Encode(%q) has %d EOT ids, want %d", i, s, eots, want)
		}
		if len(ids) != len(s)-eots*(len(endOfText)-1) {
			t.Fatalf("case %d: Encode(%q) gave %d ids for %d bytes", i, s, len(ids), len(s))
		}
	}
}

// TestGPT2KnownIDs checks facts about GPT-2's vocabulary that hold whatever
// the testdata says (they are in GPT-2's encoder.json).
func TestGPT2KnownIDs(t *testing.T) {
	tok := tokGPT2(t)
	for _, tc := range []struct {
		text string
		ids  []int
	}{
		{"Hello world", []int{15496, 995}},
		{"<|endoftext|>", []int{50256}},
		{"Hello world<|endoftext|>", []int{15496, 995, 50256}},
		{"!", []int{0}},
		{"\n", []int{198}},
		{"\n\n", []int{628}},
		{" ", []int{220}},
		{" the", []int{262}},
		{"The", []int{464}},
		{"", []int{}},
	} {
		if got := tok.Encode(tc.text); !slices.Equal(got, tc.ids) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.ids)
		}
		if got := tok.Decode(tc.ids); got != tc.text {
			t.Errorf("Decode(%v) = %q, want %q", tc.ids, got, tc.text)
		}
	}
}

// tokBPECase is one entry of testdata/bpe_cases.json, written by
// tools/bpe_reference.py.
type tokBPECase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

// TestGPT2Parity checks the Go tokenizer against the ids of an independent
// Python implementation of GPT-2's encoder (tools/bpe_reference.py).
func TestGPT2Parity(t *testing.T) {
	const path = "testdata/bpe_cases.json"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cases []tokBPECase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(cases) < 40 {
		t.Fatalf("%s: %d cases, want at least 40", path, len(cases))
	}
	tok := tokGPT2(t)
	for i, c := range cases {
		got := tok.Encode(c.Text)
		if !slices.Equal(got, c.IDs) {
			t.Errorf("case %d: Encode(%q)\n got %v\nwant %v", i, c.Text, got, c.IDs)
		}
		if back := tok.Decode(c.IDs); back != c.Text {
			t.Errorf("case %d: Decode(%v) = %q, want %q", i, c.IDs, back, c.Text)
		}
	}
}

// TestGPT2Decode checks that Decode never fails: bad ids become U+FFFD, and a
// character split over several tokens comes back whole once all are joined.
func TestGPT2Decode(t *testing.T) {
	tok := tokGPT2(t)
	got := tok.Decode([]int{-1, 15496, 50257, 995, 1 << 40, 50256, -1 << 40})
	if want := "\uFFFDHello\uFFFD world\uFFFD<|endoftext|>\uFFFD"; got != want {
		t.Errorf("Decode(bad ids) = %q, want %q", got, want)
	}
	if got := tok.Decode(nil); got != "" {
		t.Errorf("Decode(nil) = %q", got)
	}
	// Every token decodes to at least one byte; together they are the vocabulary.
	for id := range tok.EOT() {
		if tok.Decode([]int{id}) == "" {
			t.Fatalf("token %d decodes to nothing", id)
		}
	}
	// Token-by-token decoding (as in streaming generation) gives the same bytes.
	text := "👩‍👩‍👧 家族 naïve"
	ids := tok.Encode(text)
	var sb strings.Builder
	partial := false
	for _, id := range ids {
		piece := tok.Decode([]int{id})
		partial = partial || !utf8.ValidString(piece)
		sb.WriteString(piece)
	}
	if sb.String() != text {
		t.Errorf("token-by-token decode = %q, want %q", sb.String(), text)
	}
	if !partial {
		t.Errorf("no token of %q (%v) holds part of a character; the test checks nothing", text, ids)
	}
}

// TestGPT2InvalidUTF8 checks that invalid bytes are encoded as U+FFFD.
func TestGPT2InvalidUTF8(t *testing.T) {
	tok := tokGPT2(t)
	for _, tc := range []struct{ in, same string }{
		{"a\xffb", "a\uFFFDb"},
		{"\xc3", "\uFFFD"},
		{"x\xed\xa0\x80\xed\xb0\x80y", "x\uFFFDy"}, // surrogate halves: one run
		{"caf\xc3 <|endoftext|>\xfe", "caf\uFFFD <|endoftext|>\uFFFD"},
	} {
		got, want := tok.Encode(tc.in), tok.Encode(tc.same)
		if !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want Encode(%q) = %v", tc.in, got, tc.same, want)
		}
		if back := tok.Decode(got); back != tc.same {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", tc.in, back, tc.same)
		}
	}
}

// TestGPT2DEL: tiktoken-go v0.10.0 drops U+007F; GPT-2 encodes it as 221
// and never merges it. The stand-in byte U+0001 (189) must keep its own id.
func TestGPT2DEL(t *testing.T) {
	tok := tokGPT2(t)
	for _, tc := range []struct {
		text string
		ids  []int
	}{
		{"\x7f", []int{221}},
		{"\x01\x7f\x01", []int{189, 221, 189}},
		{"a\x7fb", []int{64, 221, 65}},
		{"\x7f<|endoftext|>\x7f", []int{221, 50256, 221}},
	} {
		if got := tok.Encode(tc.text); !slices.Equal(got, tc.ids) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.ids)
		}
	}
	s := "x \x7f!\x7f\x7f  \x7f\n\x01\x7f"
	if back := tok.Decode(tok.Encode(s)); back != s {
		t.Errorf("Decode(Encode(%q)) = %q", s, back)
	}
}

// tokRandomText returns n random pieces of awkward text (whitespace runs,
// contractions, digits, accents, combining marks, CJK, emoji with ZWJ,
// broken and whole "<|endoftext|>").
func tokRandomText(rng *rand.Rand, n int) string {
	parts := []string{
		"a", "Z", "word", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u3000",
		"'s", "'", "'re", "9", "12", "345", ".", "!", "?!", "--", "é", "ü", "\u0301",
		"世", "界", "🎉", "\u200d", "👩", "\ufe0f", "🏽", "€", "\x00", "\x01", "\x7f",
		"<|", "endoftext", "|>", "<|endoftext|>",
	}
	var sb strings.Builder
	for range n {
		sb.WriteString(parts[rng.IntN(len(parts))])
	}
	return sb.String()
}

// TestGPT2RoundTripRandom checks Decode(Encode(s)) == s, ids in range and
// one EOT per marker on random valid UTF-8 text, and that markers split the
// text: Encode(a+"<|endoftext|>"+b) == Encode(a), EOT, Encode(b).
func TestGPT2RoundTripRandom(t *testing.T) {
	tok := tokGPT2(t)
	rng := rand.New(rand.NewPCG(tokTestSeed, 2))
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		s := tokRandomText(rng, rng.IntN(60))
		ids := tok.Encode(s)
		if back := tok.Decode(ids); back != s {
			t.Fatalf("case %d: Decode(Encode(%q)) = %q (ids %v)", i, s, back, ids)
		}
		eots := 0
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("case %d: Encode(%q) gave id %d", i, s, id)
			}
			if id == tok.EOT() {
				eots++
			}
		}
		if want := strings.Count(s, endOfText); eots != want {
			t.Fatalf("case %d: Encode(%q) has %d EOT ids, want %d", i, s, eots, want)
		}
		a, b := tokRandomText(rng, 5), tokRandomText(rng, 5)
		joined := tok.Encode(a + endOfText + b)
		want := slices.Concat(tok.Encode(a), []int{tok.EOT()}, tok.Encode(b))
		if !slices.Equal(joined, want) {
			t.Fatalf("case %d: Encode(%q + EOT + %q) = %v, want %v", i, a, b, joined, want)
		}
	}
}

// TestGPT2LongRuns encodes long runs of each character class (the library's
// heap merge path and the pre-tokenizer's backtracking) and checks them
// against runs of their known tokens.
func TestGPT2LongRuns(t *testing.T) {
	tok := tokGPT2(t)
	const n = 100_000
	spaces := tok.Encode(strings.Repeat(" ", n) + "x") // n-1 spaces, then " x"
	if len(spaces) != n || spaces[0] != 220 || spaces[n-2] != 220 || spaces[n-1] != tok.Encode(" x")[0] {
		t.Errorf("Encode(%d spaces + x): %d ids, first %v, last %v", n, len(spaces), spaces[:2], spaces[len(spaces)-2:])
	}
	for _, s := range []string{
		strings.Repeat("a", n), strings.Repeat("7", n), strings.Repeat("!?", n/2),
		strings.Repeat("\n \t", n/3), strings.Repeat("'s", n/2), strings.Repeat("é", n/2),
	} {
		ids := tok.Encode(s)
		if back := tok.Decode(ids); back != s {
			t.Errorf("Decode(Encode(run of %q)) differs", s[:2])
		}
	}
}

// TestGPT2Concurrent uses one tokenizer from several goroutines (run with
// -race) and checks every result against the sequential one.
func TestGPT2Concurrent(t *testing.T) {
	tok := tokGPT2(t)
	rng := rand.New(rand.NewPCG(tokTestSeed, 3))
	texts := make([]string, 64)
	want := make([][]int, len(texts))
	for i := range texts {
		texts[i] = tokRandomText(rng, 200)
		want[i] = tok.Encode(texts[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for k := range texts {
				i := (k + 8*g) % len(texts)
				ids := tok.Encode(texts[i])
				if !slices.Equal(ids, want[i]) {
					errs <- fmt.Errorf("goroutine %d: text %d encodes differently", g, i)
					return
				}
				if tok.Decode(ids) != texts[i] {
					errs <- fmt.Errorf("goroutine %d: text %d decodes differently", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzGPT2RoundTrip: any string encodes to in-range ids that decode to the
// string with invalid UTF-8 replaced by U+FFFD.
func FuzzGPT2RoundTrip(f *testing.F) {
	for _, s := range []string{"", "Hello world", "a\xffb<|endoftext|>", "  \n\t 's 12345 🎉‍x"} {
		f.Add(s)
	}
	tok := tokGPT2(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d", s, id)
			}
		}
		if back, want := tok.Decode(ids), strings.ToValidUTF8(s, "\uFFFD"); back != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, back, want)
		}
	})
}

// TestExportRanks writes the r50k_base rank table that tools/bpe_reference.py
// reads, in tiktoken's format: "<base64 of the token's bytes> <id>" a line.
// It runs only when GOLORA_EXPORT_RANKS names the file to write; see the
// script's header for the command.
func TestExportRanks(t *testing.T) {
	path := os.Getenv("GOLORA_EXPORT_RANKS")
	if path == "" {
		t.Skip("set GOLORA_EXPORT_RANKS=FILE to write the r50k_base rank table")
	}
	tok := tokGPT2(t)
	var sb strings.Builder
	for id := range tok.EOT() {
		piece := tok.Decode([]int{id})
		fmt.Fprintf(&sb, "%s %d\n", base64.StdEncoding.EncodeToString([]byte(piece)), id)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ranks-*")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tmp.WriteString(sb.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		t.Fatalf("write %s: %v", path, err)
	}
	t.Logf("wrote %d ranks to %s", tok.EOT(), path)
}

// tokBenchText returns about n bytes of English-like text with numbers,
// punctuation, line breaks and some non-ASCII words, from a fixed seed.
func tokBenchText(n int) string {
	words := strings.Fields(`the of and to in is that for it as was with be by on not he
		this are or his from at which but have an they you were her she there been
		one all we their has would when if so no what up out said time could about
		model token training gradient adapter weights layer attention learning rate
		naïve café Zürich 東京 данные 🎉 don't it's they're we've 2024 3.14 1,000,000`)
	rng := rand.New(rand.NewPCG(tokTestSeed, 4))
	var sb strings.Builder
	sb.Grow(n + 64)
	for sb.Len() < n {
		for k := 5 + rng.IntN(20); k > 0; k-- {
			w := words[rng.IntN(len(words))]
			if k == 1 || rng.IntN(10) == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			sb.WriteString(w)
			sb.WriteByte(" ,  ;"[rng.IntN(5)])
		}
		sb.WriteString([]string{". ", ".\n", "?\n\n", "!\n    "}[rng.IntN(4)])
	}
	return sb.String()
}

// BenchmarkTokenizer measures Encode and Decode throughput (MB/s of text) on
// 300 KB of generated text: go test ./models/gpt -run '^$' -bench Tokenizer
func BenchmarkTokenizer(b *testing.B) {
	text := tokBenchText(300 << 10)
	for _, name := range []string{"bytes", "gpt2"} {
		tok, err := NewTokenizer(name)
		if err != nil {
			b.Fatal(err)
		}
		ids := tok.Encode(text)
		b.Run(name+"/encode", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.Encode(text)
			}
			b.ReportMetric(float64(len(ids))*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
		b.Run(name+"/decode", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.Decode(ids)
			}
		})
	}
}

// BenchmarkGPT2TokenizerNew measures building a GPT-2 tokenizer.
func BenchmarkGPT2TokenizerNew(b *testing.B) {
	for b.Loop() {
		if _, err := GPT2Tokenizer(); err != nil {
			b.Fatal(err)
		}
	}
}
