package trainers

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
)

// Example is one training sequence: Tokens, of which the first PromptLen are
// a prompt that carries no loss. The model reads Tokens[:n-1] and is scored
// on predicting Tokens[j] for every j ≥ max(PromptLen, 1).
//
// Mask, when not nil, replaces PromptLen: it has one entry per token and
// the model is scored on Tokens[j] for every j ≥ 1 with Mask[j] set (the
// assistant turns of a conversation, which need not be one block).
type Example struct {
	Tokens    []int
	PromptLen int
	Mask      []bool
}

// Target reports whether token j of ex is scored (j ≥ 1).
func (ex Example) Target(j int) bool {
	if j < 1 || j >= len(ex.Tokens) {
		return false
	}
	if ex.Mask != nil {
		return j < len(ex.Mask) && ex.Mask[j]
	}
	return j >= ex.PromptLen
}

// Dataset is a fixed, ordered list of examples that Train draws batches
// from and Evaluate scores. Implementations must return the same example
// for the same index every time; the slices they return are only read.
//
// Batching rules (shared by training and validation): each example becomes
// one row of the batch, inputs Tokens[:n-1] and targets Tokens[1:], right-
// padded to the batch length with id 0 and mask 0; the mask is 1 on targets
// at positions ≥ PromptLen. An example longer than Config.Context+1 tokens
// loses prompt tokens from the left (keeping at least one), and if it is
// still too long, tokens from its end.
type Dataset interface {
	// Len is the number of examples.
	Len() int
	// Example returns example i, 0 ≤ i < Len().
	Example(i int) Example
}

// ExampleSet is a Dataset held in memory.
type ExampleSet struct {
	// Name says where the examples came from (a file name), for errors.
	Name     string
	Examples []Example
}

// Len is the number of examples.
func (s *ExampleSet) Len() int { return len(s.Examples) }

// Example returns example i.
func (s *ExampleSet) Example(i int) Example { return s.Examples[i] }

// TextDataset cuts one token stream into windows of Context+1 tokens that
// overlap by one token, so every token after the first is a target exactly
// once per epoch: window i is Tokens[i·Context : i·Context+Context+1]. The
// trainer visits the windows in a seeded random order.
type TextDataset struct {
	tokens []int
	ctx    int
}

// NewTextDataset returns the windows of ctx+1 tokens of tokens. It needs at
// least ctx+1 tokens.
func NewTextDataset(tokens []int, ctx int) (*TextDataset, error) {
	if ctx < 1 {
		return nil, fmt.Errorf("trainers: text dataset context %d, want ≥ 1", ctx)
	}
	if len(tokens) < ctx+1 {
		return nil, fmt.Errorf("trainers: text dataset of %d tokens is shorter than one window of %d", len(tokens), ctx+1)
	}
	return &TextDataset{tokens: tokens, ctx: ctx}, nil
}

// LoadText reads a UTF-8 text file, encodes it whole with tok and returns
// its windows of ctx+1 tokens. Its arguments follow LoadCompletions': the
// file, the tokenizer, then the option (here the context length). A
// tokenizer whose codec can fail (gpt.CheckedEncoder) has its error
// returned, naming the file.
func LoadText(path string, tok Encoder, ctx int) (*TextDataset, error) {
	if tok == nil {
		return nil, fmt.Errorf("trainers: load text %s: nil tokenizer", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trainers: load text: %w", err)
	}
	ids, err := encodeText(tok, string(b))
	if err != nil {
		return nil, fmt.Errorf("trainers: load text %s: %w", path, err)
	}
	d, err := NewTextDataset(ids, ctx)
	if err != nil {
		return nil, fmt.Errorf("trainers: load text %s: %w", path, err)
	}
	return d, nil
}

// checkedEncoder is gpt.CheckedEncoder's method: a tokenizer whose codec can
// fail reports the error here.
type checkedEncoder interface {
	EncodeChecked(text string) ([]int, error)
}

// encodeText encodes text with tok, returning the codec's error when tok
// can report one.
func encodeText(tok Encoder, text string) ([]int, error) {
	if c, ok := tok.(checkedEncoder); ok {
		return c.EncodeChecked(text)
	}
	return tok.Encode(text), nil
}

// Context is the window length minus one: the model's input length.
func (d *TextDataset) Context() int { return d.ctx }

// Tokens is the whole token stream.
func (d *TextDataset) Tokens() []int { return d.tokens }

// Len is the number of windows, ⌊(len(Tokens) − 1)/Context⌋.
func (d *TextDataset) Len() int { return (len(d.tokens) - 1) / d.ctx }

// Example returns window i, with no prompt.
func (d *TextDataset) Example(i int) Example {
	lo := i * d.ctx
	return Example{Tokens: d.tokens[lo : lo+d.ctx+1]}
}

// CompletionSep is the separator between context and completion on each line
// of an E2E-format file.
const CompletionSep = "||"

// ParseCompletions reads "context||completion" lines (the E2E NLG format)
// from r; name (a file name) is used in errors. Each line becomes
//
//	Encode(context) + Encode(sep) + Encode(completion) + [EOT]
//
// with the context and separator as the prompt, so the loss covers exactly the
// completion and EOT. sep may be "" (nothing between them). A line is split at
// its first "||"; a trailing "\r" is dropped and blank lines are skipped. A
// line without "||", with an empty context or an empty completion is an
// error naming the file and line.
func ParseCompletions(r io.Reader, name string, tok Encoder, sep string) (*ExampleSet, error) {
	if tok == nil {
		return nil, fmt.Errorf("trainers: parse %s: nil tokenizer", name)
	}
	var sepIDs []int
	if sep != "" {
		var err error
		if sepIDs, err = encodeText(tok, sep); err != nil {
			return nil, fmt.Errorf("trainers: parse %s: separator: %w", name, err)
		}
	}
	set := &ExampleSet{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		ctxText, completion, ok := strings.Cut(text, CompletionSep)
		switch {
		case !ok:
			return nil, fmt.Errorf("trainers: %s line %d: no %q between context and completion", name, line, CompletionSep)
		case strings.TrimSpace(ctxText) == "":
			return nil, fmt.Errorf("trainers: %s line %d: empty context", name, line)
		case strings.TrimSpace(completion) == "":
			return nil, fmt.Errorf("trainers: %s line %d: empty completion", name, line)
		}
		ctxIDs, err := encodeText(tok, ctxText)
		if err != nil {
			return nil, fmt.Errorf("trainers: %s line %d: context: %w", name, line, err)
		}
		compIDs, err := encodeText(tok, completion)
		if err != nil {
			return nil, fmt.Errorf("trainers: %s line %d: completion: %w", name, line, err)
		}
		// A fresh slice: the tokenizer may own what Encode returns.
		toks := append([]int(nil), ctxIDs...)
		toks = append(toks, sepIDs...)
		promptLen := len(toks)
		toks = append(toks, compIDs...)
		toks = append(toks, tok.EOT())
		set.Examples = append(set.Examples, Example{Tokens: toks, PromptLen: promptLen})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trainers: read %s: %w", name, err)
	}
	if len(set.Examples) == 0 {
		return nil, fmt.Errorf("trainers: %s has no examples", name)
	}
	return set, nil
}

// LoadCompletions is ParseCompletions on the file at path.
func LoadCompletions(path string, tok Encoder, sep string) (*ExampleSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trainers: load completions: %w", err)
	}
	defer f.Close()
	return ParseCompletions(f, path, tok, sep)
}

// subset is a view of some examples of a Dataset, in a given order.
type subset struct {
	ds  Dataset
	idx []int
}

func (s *subset) Len() int              { return len(s.idx) }
func (s *subset) Example(i int) Example { return s.ds.Example(s.idx[i]) }

// Split divides ds at random (seeded) into a training and a validation set
// holding round(validFraction·N) examples (at least 1); each keeps the
// original relative order. validFraction must be in (0, 1) and both parts
// must be non-empty.
func Split(ds Dataset, validFraction float64, seed uint64) (train, valid Dataset, err error) {
	if ds == nil {
		return nil, nil, errors.New("trainers: split: nil dataset")
	}
	if !(validFraction > 0 && validFraction < 1) {
		return nil, nil, fmt.Errorf("trainers: split: validation fraction %v, want in (0, 1)", validFraction)
	}
	n := ds.Len()
	nv := max(1, int(math.Round(validFraction*float64(n))))
	if nv >= n {
		return nil, nil, fmt.Errorf("trainers: split: %d examples cannot give %v of them to validation and keep some for training", n, validFraction)
	}
	perm := make([]int, n)
	permute(perm, rand.NewPCG(seed, splitStream))
	isValid := make([]bool, n)
	for _, i := range perm[:nv] {
		isValid[i] = true
	}
	tr, va := &subset{ds: ds}, &subset{ds: ds}
	for i := 0; i < n; i++ {
		if isValid[i] {
			va.idx = append(va.idx, i)
		} else {
			tr.idx = append(tr.idx, i)
		}
	}
	return tr, va, nil
}

// Streams of the seeded PCG generators, so that one seed gives independent
// sequences for each use.
const (
	splitStream = 0x73706c6974 // "split"
	dataStream  = 0x64617461   // "data"
)
