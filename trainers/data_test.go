package trainers

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCompletionMasks: each line becomes context + sep + completion + EOT
// and the mask covers exactly the completion and EOT.
func TestCompletionMasks(t *testing.T) {
	src := "name : Aromi | area : city||Aromi is in the city.\r\n\n  \nab||xyz\n"
	set, err := ParseCompletions(strings.NewReader(src), "train.txt", byteTokenizer{}, " ")
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Fatalf("%d examples, want 2 (blank lines skipped)", set.Len())
	}
	tok := byteTokenizer{}
	ex := set.Example(1)
	want := append(append(tok.Encode("ab"), tok.Encode(" ")...), append(tok.Encode("xyz"), 0)...)
	if !reflect.DeepEqual(ex.Tokens, want) || ex.PromptLen != 3 {
		t.Fatalf("example %+v, want tokens %v prompt 3", ex, want)
	}
	if got := set.Example(0).Tokens; got[len(got)-2] != int('.')+1 {
		t.Fatalf("the trailing \\r was kept: %v", got)
	}
	var b batch
	if err := b.fill([]Example{set.Example(0), ex}, []int{0, 1}, "training", 3, 60, 0, 256); err != nil {
		t.Fatal(err)
	}
	for r, e := range []Example{set.Example(0), ex, {}} {
		for j := 0; j < 60; j++ {
			i := r*60 + j
			// input j predicts token j+1; loss exactly on completion + EOT
			inLoss := j+1 >= e.PromptLen && j+1 < len(e.Tokens)
			if (b.mask[i] == 1) != inLoss {
				t.Fatalf("row %d position %d: mask %v, want %v", r, j, b.mask[i], inLoss)
			}
			if j+1 < len(e.Tokens) && (b.ids[i] != e.Tokens[j] || b.targets[i] != e.Tokens[j+1]) {
				t.Fatalf("row %d position %d: id %d target %d", r, j, b.ids[i], b.targets[i])
			}
			if j+1 >= len(e.Tokens) && (b.ids[i] != 0 || b.targets[i] != 0) {
				t.Fatalf("row %d position %d: padding is not 0", r, j)
			}
		}
	}
	if want := float64(len("Aromi is in the city.") + 1 + 3 + 1); b.weight != want {
		t.Fatalf("loss tokens %v, want %v", b.weight, want)
	}
}

func TestCompletionErrors(t *testing.T) {
	cases := map[string]string{
		"a||b\nno separator here\n": "data.txt line 2: no \"||\"",
		"a||b\n\n||c\n":             "data.txt line 3: empty context",
		"a||  \n":                   "data.txt line 1: empty completion",
		"\n\n":                      "data.txt has no examples",
	}
	for src, want := range cases {
		_, err := ParseCompletions(strings.NewReader(src), "data.txt", byteTokenizer{}, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", src, err, want)
		}
	}
	path := filepath.Join(t.TempDir(), "e2e.txt")
	if err := os.WriteFile(path, []byte("ok||fine\nbroken line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCompletions(path, byteTokenizer{}, ""); err == nil || !strings.Contains(err.Error(), path+" line 2") {
		t.Errorf("error %v does not name the file and line", err)
	}
	if _, err := LoadCompletions(filepath.Join(t.TempDir(), "nope"), byteTokenizer{}, ""); err == nil {
		t.Error("missing file accepted")
	}
}

// TestFitTruncates: a long example loses context from the left, then, if
// the completion alone is too long, tokens from its end.
func TestFitTruncates(t *testing.T) {
	ex := Example{Tokens: []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, PromptLen: 5} // completion 6…9
	cases := []struct {
		ctx    int
		toks   []int
		prompt int
	}{
		{8, []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, 5},
		{6, []int{3, 4, 5, 6, 7, 8, 9}, 3},
		{4, []int{5, 6, 7, 8, 9}, 1}, // one context token left
		{3, []int{5, 6, 7, 8}, 1},    // then the end of the completion goes
	}
	for _, c := range cases {
		toks, p := fit(ex, c.ctx)
		if !reflect.DeepEqual(toks, c.toks) || p != c.prompt {
			t.Errorf("ctx %d: %v prompt %d, want %v prompt %d", c.ctx, toks, p, c.toks, c.prompt)
		}
	}
	if toks, p := fit(Example{Tokens: []int{1, 2, 3, 4, 5}}, 2); !reflect.DeepEqual(toks, []int{1, 2, 3}) || p != 0 {
		t.Errorf("no prompt: %v %d", toks, p)
	}
}

// TestBucketedBatch pads to the longest row rounded up to the multiple.
func TestBucketedBatch(t *testing.T) {
	exs := []Example{{Tokens: []int{1, 2, 3}}, {Tokens: []int{1, 2, 3, 4, 5, 6}}}
	var b batch
	for _, c := range []struct{ bucket, ctx, T int }{{0, 16, 16}, {4, 16, 8}, {1, 16, 5}, {4, 6, 6}} {
		if err := b.fill(exs, []int{0, 1}, "x", 2, c.ctx, c.bucket, 10); err != nil {
			t.Fatal(err)
		}
		if b.T != c.T || len(b.ids) != 2*c.T || b.tokens != 2+5 {
			t.Errorf("bucket %d ctx %d: T %d (%d ids, %d tokens), want %d", c.bucket, c.ctx, b.T, len(b.ids), b.tokens, c.T)
		}
	}
}

func TestTextDataset(t *testing.T) {
	toks := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	ds, err := NewTextDataset(toks, 3)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 3 {
		t.Fatalf("%d windows, want 3", ds.Len())
	}
	for i, want := range [][]int{{0, 1, 2, 3}, {3, 4, 5, 6}, {6, 7, 8, 9}} {
		if got := ds.Example(i); !reflect.DeepEqual(got.Tokens, want) || got.PromptLen != 0 {
			t.Errorf("window %d = %+v, want %v", i, got, want)
		}
	}
	if _, err := NewTextDataset(toks[:3], 3); err == nil {
		t.Error("too short a stream accepted")
	}
	path := filepath.Join(t.TempDir(), "t.txt")
	if err := os.WriteFile(path, []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	td, err := LoadText(path, byteTokenizer{}, 4)
	if err != nil || td.Len() != 2 || td.Example(1).Tokens[0] != int('o')+1 {
		t.Fatalf("LoadText: %v, %+v", err, td)
	}
}

func TestSplit(t *testing.T) {
	set := promptData(50, 12, 1)
	tr, va, err := Split(set, 0.2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 40 || va.Len() != 10 {
		t.Fatalf("sizes %d/%d, want 40/10", tr.Len(), va.Len())
	}
	seen := map[int]int{}
	for _, s := range []*subset{tr.(*subset), va.(*subset)} {
		for k, i := range s.idx {
			seen[i]++
			if k > 0 && s.idx[k-1] >= i {
				t.Fatal("a part is not in the original order")
			}
			if !reflect.DeepEqual(s.Example(k), set.Example(i)) {
				t.Fatal("subset example differs")
			}
		}
	}
	if len(seen) != 50 {
		t.Fatalf("the parts cover %d of 50 examples", len(seen))
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("example %d is in %d parts", i, n)
		}
	}
	_, va2, _ := Split(set, 0.2, 3)
	_, va3, _ := Split(set, 0.2, 4)
	if !reflect.DeepEqual(va.(*subset).idx, va2.(*subset).idx) || reflect.DeepEqual(va.(*subset).idx, va3.(*subset).idx) {
		t.Fatal("split is not a function of the seed")
	}
	for _, f := range []float64{0, 1, -0.5, 0.999} {
		if _, _, err := Split(set, f, 1); err == nil {
			t.Errorf("fraction %v accepted", f)
		}
	}
}

// TestSamplerPosition: each epoch is a permutation, and a sampler restored
// from a saved position continues with the same indices.
func TestSamplerPosition(t *testing.T) {
	s := newSampler(7, 11)
	var draws []int
	var saved Position
	for i := 0; i < 30; i++ {
		if i == 17 {
			saved = s.position()
		}
		draws = append(draws, s.next())
	}
	for e := 0; e < 4; e++ {
		seen := map[int]bool{}
		for _, i := range draws[e*7 : min(e*7+7, 30)] {
			seen[i] = true
		}
		if e < 4 && len(seen) != min(7, 30-e*7) {
			t.Fatalf("epoch %d repeats an example: %v", e, draws)
		}
	}
	if reflect.DeepEqual(draws[:7], draws[7:14]) {
		t.Fatal("two epochs in the same order")
	}
	r := newSampler(7, 999) // the seed is overridden by the position
	if err := r.restore(saved); err != nil {
		t.Fatal(err)
	}
	for i := 17; i < 30; i++ {
		if got := r.next(); got != draws[i] {
			t.Fatalf("draw %d after restore: %d, want %d", i, got, draws[i])
		}
	}
	if err := newSampler(8, 1).restore(saved); err == nil {
		t.Fatal("a position for 7 examples restored onto 8")
	}
}

// TestPermuteIsUniform: every position gets every value about equally often.
func TestPermuteIsUniform(t *testing.T) {
	s := newSampler(5, 1)
	var counts [5][5]int
	perm := make([]int, 5)
	for i := 0; i < 20000; i++ {
		permute(perm, s.rng)
		for pos, v := range perm {
			counts[pos][v]++
		}
	}
	for pos := range counts {
		for v, c := range counts[pos] {
			if c < 3600 || c > 4400 { // expected 4000, σ ≈ 57
				t.Fatalf("value %d at position %d %d times of 20000", v, pos, c)
			}
		}
	}
}

// failingTok is an Encoder whose codec fails (a gpt.CheckedEncoder).
type failingTok struct{ byteTokenizer }

var errCodec = errors.New("codec failed")

func (failingTok) EncodeChecked(string) ([]int, error) { return nil, errCodec }

// TestCodecErrorsReachTheCaller: LoadText and LoadCompletions return a
// codec error, naming the file (and line), instead of encoding something
// else.
func TestCodecErrorsReachTheCaller(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "t.txt")
	e2e := filepath.Join(dir, "e2e.txt")
	if err := os.WriteFile(text, []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e2e, []byte("name=x||X is a place.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadText(text, failingTok{}, 4); !errors.Is(err, errCodec) || !strings.Contains(err.Error(), text) {
		t.Fatalf("LoadText with a failing codec: %v", err)
	}
	if _, err := LoadCompletions(e2e, failingTok{}, ""); !errors.Is(err, errCodec) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("LoadCompletions with a failing codec: %v", err)
	}
	if _, err := LoadText(text, nil, 4); err == nil {
		t.Fatal("LoadText with a nil tokenizer returned no error")
	}
}
