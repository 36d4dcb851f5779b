package gpt

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// GenerateOptions configures Generate. Every field's zero value is a
// documented default, so the zero value is usable: greedy decoding of up
// to DefaultMaxNewTokens tokens (at most half the model's context) per
// prompt, ended by the model's stop tokens. An option that would have no
// effect with the others (TopK without sampling, LengthPenalty without
// beams) is an error rather than silently ignored.
type GenerateOptions struct {
	// MaxNewTokens is the most tokens generated per prompt, 1 … the
	// model's context (BlockSize for GPT-2). 0 means DefaultMaxNewTokens,
	// or half the context when that is smaller (so a prompt of up to half
	// the context is not cropped).
	MaxNewTokens int

	// Temperature selects the decoding rule when Beams is 0: 0 is greedy
	// decoding (the most likely token, the lowest id on ties); > 0 samples
	// from softmax(logits / Temperature), restricted by TopK and TopP.
	Temperature float64
	// TopK keeps only the TopK most likely tokens when sampling (0: all).
	TopK int
	// TopP keeps, when sampling, the smallest set of most likely tokens
	// whose probability (after TopK) reaches TopP, in (0, 1]; 0 means 1, all.
	TopP float64
	// Seed seeds the sampler. Prompt i draws from its own stream,
	// PCG(Seed, i), so its sample depends on the seed and its index only.
	// Greedy decoding and beam search use no randomness.
	Seed uint64

	// Beams ≥ 1 turns on beam search with that many beams (Temperature
	// must be 0); 0 decodes one sequence per prompt.
	Beams int
	// LengthPenalty is α of beam search: a finished hypothesis of n tokens
	// (its stop token counted) scores logP / n^α. 0, the default, ranks by
	// logP alone; the LoRA paper uses 0.9 on E2E. Beam search only.
	LengthPenalty float64
	// NoRepeatNGram > 0 forbids generating any n-gram of this size twice
	// within a sequence's generated tokens (the prompt is not counted, as in
	// the LoRA paper's decoding script): a token that would complete an
	// n-gram already generated gets probability 0. Every decoding rule.
	NoRepeatNGram int
	// StopTokens end a sequence when generated. nil means the model's own
	// (Decodable.StopTokens: for GPT-2 the end-of-text token of its
	// tokenizer, Config.Tokenizer); an empty non-nil slice means none, so
	// sequences run to MaxNewTokens.
	StopTokens []int

	// OnToken, when set, is called with each token as soon as it is
	// generated (stop tokens excluded) and the index of its prompt, so
	// that a caller can stream the text; returning false ends that
	// prompt's sequence there, as MaxNewTokens would (Stop = −1).
	// Not with beam search, whose tokens are known only at the end.
	OnToken func(prompt, token int) bool

	// BatchSize is the number of prompts decoded together, each on Beams
	// rows (one without beams) of one compiled step. 0 picks enough prompts
	// for about 16 rows. When a prompt finishes, the next one takes its
	// rows at once.
	BatchSize int
}

// E2EDecoding returns the LoRA paper's decoding for E2E NLG (Hu et al.
// 2021, Table 11; the paper's script microsoft/LoRA
// examples/NLG/src/gpt2_beam.py): beam search with 10 beams, length penalty
// 0.9, no repeated 4-grams, at most 64 new tokens (its --eval_len), stopping
// at the end-of-text token. The paper's script also stops at token 628
// ("\n\n" in GPT-2's vocabulary); add it to StopTokens when references in
// the training data end with a blank line.
func E2EDecoding() GenerateOptions {
	return GenerateOptions{MaxNewTokens: 64, Beams: 10, LengthPenalty: 0.9, NoRepeatNGram: 4}
}

// Generation is what Generate produced for one prompt.
type Generation struct {
	// Tokens are the generated tokens, without the stop token.
	Tokens []int
	// Stop is the stop token that ended the sequence, or −1 when
	// MaxNewTokens (or, rarely, a ban on every token) ended it.
	Stop int
	// LogProb is Σ log p of the generated tokens, stop token included,
	// under the model's distribution with banned n-grams removed (before
	// temperature, TopK and TopP).
	LogProb float64
	// Score ranks beam search hypotheses: LogProb / n^LengthPenalty with n
	// the number of tokens, stop token included. It equals LogProb without
	// beams.
	Score float64
	// Cropped is the number of prompt tokens dropped from the front so that
	// the prompt and MaxNewTokens fit the context (see Generate).
	Cropped int
}

// prefillChunk is the most prompt tokens fed to the model in one run of the
// prefill decoder (docs/generation.md has the measurements behind it).
const prefillChunk = 64

// rowsPerBatch is the default number of rows of a generation step.
const rowsPerBatch = 16

// Generator generates text from batches of prompts with one set of options,
// keeping its compiled decoders and key/value caches from call to call.
// Weights updated in place are seen; when what the layers compute changes
// (a LoRA adapter switched, merged or disabled: the decoders' programs are
// then stale, see graph.ErrStale) the next Generate compiles new decoders.
// A Generator is not safe for concurrent use.
type Generator struct {
	m     Decodable
	opts  GenerateOptions
	beams int // rows per prompt
	stops []int

	step      *Decoder // rows × 1 token
	stepCache *KVCache
	pre       *Decoder // 1 row × prefillChunk tokens
	preCache  *KVCache

	row  []float64 // one row of logits, float64, reused
	idx  []int     // sampling scratch
	prob []float64 // sampling scratch
}

// DefaultMaxNewTokens is the number of tokens a zero
// GenerateOptions.MaxNewTokens generates, when the model's context holds
// twice as many.
const DefaultMaxNewTokens = 64

// NewGenerator checks opts against the model and returns a Generator.
// Programs are compiled by the first Generate call, for the shapes it needs.
func (m *Model) NewGenerator(opts GenerateOptions) (*Generator, error) {
	return NewGeneratorFor(m, opts)
}

// NewGeneratorFor is NewGenerator for any Decodable model (GPT-2, or a
// Llama-family model of package llama).
func NewGeneratorFor(m Decodable, opts GenerateOptions) (*Generator, error) {
	if m == nil {
		return nil, errors.New("gpt: generate: nil model")
	}
	if opts.MaxNewTokens == 0 {
		opts.MaxNewTokens = max(1, min(DefaultMaxNewTokens, m.ContextSize()/2))
	}
	if err := checkOptions(m, opts); err != nil {
		return nil, err
	}
	g := &Generator{m: m, opts: opts, beams: max(1, opts.Beams), stops: opts.StopTokens}
	if g.stops == nil {
		stops, err := m.StopTokens()
		if err != nil {
			return nil, fmt.Errorf("gpt: generate: default stop tokens: %w", err)
		}
		g.stops = stops
	}
	g.stops = slices.Clone(g.stops)
	return g, nil
}

// Generate runs prompts (token ids, at least one each) through the model and
// returns one Generation per prompt, in order, following opts (see
// GenerateOptions). It is NewGenerator followed by Generator.Generate.
func (m *Model) Generate(prompts [][]int, opts GenerateOptions) ([]Generation, error) {
	g, err := m.NewGenerator(opts)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return g.Generate(prompts)
}

// eot is the end-of-text id of the model's tokenizer.
func (m *Model) eot() (int, error) {
	switch m.cfg.Tokenizer {
	case "bytes":
		return byteEOT, nil
	case "gpt2":
		return gpt2EOT, nil
	}
	tok, err := m.Tokenizer()
	if err != nil {
		return 0, err
	}
	return tok.EOT(), nil
}

func checkOptions(m Decodable, o GenerateOptions) error {
	bad := func(format string, args ...interface{}) error {
		return fmt.Errorf("gpt: generate: %s", fmt.Sprintf(format, args...))
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	sampling := o.Temperature > 0
	switch {
	case o.MaxNewTokens < 1 || o.MaxNewTokens > m.ContextSize():
		return bad("MaxNewTokens = %d, want 1 … %d (the model's context)", o.MaxNewTokens, m.ContextSize())
	case !finite(o.Temperature) || o.Temperature < 0:
		return bad("Temperature = %v, want 0 (greedy) or a finite value > 0", o.Temperature)
	case o.TopK < 0:
		return bad("TopK = %d, want ≥ 0", o.TopK)
	case !(o.TopP >= 0 && o.TopP <= 1):
		return bad("TopP = %v, want 0 … 1", o.TopP)
	case (o.TopK > 0 || o.TopP > 0) && !sampling:
		return bad("TopK = %d and TopP = %v need sampling (Temperature > 0)", o.TopK, o.TopP)
	case o.Beams < 0:
		return bad("Beams = %d, want ≥ 0", o.Beams)
	case o.Beams > m.VocabSize():
		return bad("Beams = %d, want at most VocabSize = %d (each beam continues with a different token)", o.Beams, m.VocabSize())
	case o.Beams > 0 && sampling:
		return bad("Beams = %d with Temperature = %v: beam search is deterministic (set Temperature to 0)", o.Beams, o.Temperature)
	case !finite(o.LengthPenalty):
		return bad("LengthPenalty = %v, want a finite value", o.LengthPenalty)
	case o.LengthPenalty != 0 && o.Beams == 0:
		return bad("LengthPenalty = %v applies to beam search only (Beams ≥ 1)", o.LengthPenalty)
	case o.NoRepeatNGram < 0:
		return bad("NoRepeatNGram = %d, want ≥ 0", o.NoRepeatNGram)
	case o.BatchSize < 0:
		return bad("BatchSize = %d, want ≥ 0", o.BatchSize)
	case o.OnToken != nil && o.Beams > 0:
		return bad("OnToken streams tokens as they are chosen, which beam search does not do (Beams = %d)", o.Beams)
	}
	for i, s := range o.StopTokens {
		if s < 0 || s >= m.VocabSize() {
			return bad("StopTokens[%d] = %d outside [0, %d)", i, s, m.VocabSize())
		}
	}
	return nil
}

// Generate decodes every prompt and returns its Generation, in order.
//
// A prompt longer than ContextSize() − MaxNewTokens + 1 tokens is cropped to
// that many of its last tokens (Generation.Cropped counts the rest), so
// that every new token is predicted from the whole kept prompt and all the
// tokens generated before it. Each prompt is fed in chunks of up to 64
// tokens through a one-row prefill decoder, copied into its rows of the
// step cache, and then extended one token per step, all prompts of a batch
// in one run of the step decoder.
func (g *Generator) Generate(prompts [][]int) ([]Generation, error) {
	if len(prompts) == 0 {
		return nil, nil
	}
	ctx, vocab := g.m.ContextSize(), g.m.VocabSize()
	keep := ctx - g.opts.MaxNewTokens + 1
	longest := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("gpt: generate: prompt %d is empty (start it with the end-of-text token to generate from nothing)", i)
		}
		for t, id := range p {
			if id < 0 || id >= vocab {
				return nil, fmt.Errorf("gpt: generate: prompt %d token %d: id %d outside [0, %d)", i, t, id, vocab)
			}
		}
		longest = max(longest, min(len(p), keep))
	}
	groups := g.opts.BatchSize
	if groups == 0 {
		groups = max(1, rowsPerBatch/g.beams)
	}
	groups = min(groups, len(prompts))
	if err := g.prepare(groups*g.beams, longest); err != nil {
		return nil, err
	}

	run := &genRun{g: g, prompts: prompts, keep: keep, out: make([]Generation, len(prompts))}
	run.groups = make([]*genGroup, groups)
	for i := range run.groups {
		run.groups[i] = &genGroup{first: i * g.beams, prompt: -1}
	}
	if err := run.loop(); err != nil {
		return nil, err
	}
	return run.out, nil
}

// roundUp rounds n up to a multiple of 16, at most limit.
func roundUp(n, limit int) int { return min((n+15)/16*16, limit) }

// prepare makes sure the step decoder has rows rows and room for prompts of
// up to longest tokens plus MaxNewTokens − 1 generated ones, and the prefill
// decoder room for the prompts; decoders that already fit are kept.
func (g *Generator) prepare(rows, longest int) error {
	bs := g.m.ContextSize()
	need := roundUp(longest+g.opts.MaxNewTokens-1, bs)
	for _, d := range []**Decoder{&g.step, &g.pre} {
		if *d != nil && (*d).prog.Stale() != nil { // compiled before the layers changed
			_ = (*d).Close()
			*d = nil
		}
	}
	if g.step == nil || g.step.rows != rows || g.step.capacity < need {
		if g.step != nil {
			_ = g.step.Close()
			g.step = nil
		}
		if err := g.checkGenerateMemory(rows/g.beams, longest); err != nil {
			return err
		}
		var err error
		if g.step, g.stepCache, err = NewDecoderFor(g.m, rows, 1, need); err != nil {
			g.step = nil
			return fmt.Errorf("gpt: generate: %w", err)
		}
	}
	pneed := roundUp(longest, bs)
	if g.pre == nil || g.pre.capacity < pneed {
		if g.pre != nil {
			_ = g.pre.Close()
		}
		var err error
		if g.pre, g.preCache, err = NewDecoderFor(g.m, 1, min(prefillChunk, pneed), pneed); err != nil {
			g.pre = nil
			return fmt.Errorf("gpt: generate: %w", err)
		}
	}
	g.row = grow(g.row, g.m.VocabSize())[:g.m.VocabSize()]
	return nil
}

// Close releases the compiled decoders.
func (g *Generator) Close() error {
	var errs []error
	for _, d := range []*Decoder{g.step, g.pre} {
		if d != nil {
			errs = append(errs, d.Close())
		}
	}
	g.step, g.pre = nil, nil
	return errors.Join(errs...)
}
