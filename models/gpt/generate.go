package gpt

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/golora/golora/graph"
)

// GenerateOptions configures Generate. The zero value is not usable:
// MaxNewTokens must be set. Every other field's zero value is a documented
// default, and an option that would have no effect with the others (TopK
// without sampling, LengthPenalty without beams) is an error rather than
// silently ignored.
type GenerateOptions struct {
	// MaxNewTokens is the most tokens generated per prompt, 1 … the
	// model's context (BlockSize for GPT-2).
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

// genRun is one Generate call in progress.
type genRun struct {
	g       *Generator
	prompts [][]int
	keep    int
	out     []Generation
	groups  []*genGroup
	next    int   // next prompt to start
	src     []int // pending cache reorder, row ← row
	ids     [][]int
	one     [][1]int
}

// genGroup is the rows [first, first+beams) of the step decoder and the
// prompt they decode.
type genGroup struct {
	first  int
	prompt int // −1 when free
	steps  int // tokens generated so far
	beams  []genBeam
	best   *genBeam // best finished hypothesis (beam search)
	bestSc float64  // its score
	stop   int      // its stop token, −1 for none
	rng    *rand.Rand
}

// genBeam is one live sequence (or a finished hypothesis).
type genBeam struct {
	alive  bool
	tokens []int
	logp   float64
}

func (r *genRun) loop() error {
	g := r.g
	rows := g.step.rows
	r.src = make([]int, rows)
	for i := range r.src {
		r.src[i] = i
	}
	r.ids = make([][]int, rows)
	r.one = make([][1]int, rows)
	g.stepCache.Reset()
	for {
		for _, gr := range r.groups {
			for gr.prompt < 0 && r.next < len(r.prompts) {
				if err := r.start(gr, r.next); err != nil {
					return err
				}
				r.next++
			}
		}
		active := false
		for i := range r.ids {
			r.ids[i] = nil
		}
		for _, gr := range r.groups {
			if gr.prompt < 0 {
				continue
			}
			active = true
			for k, b := range gr.beams {
				if b.alive {
					row := gr.first + k
					r.one[row][0] = b.tokens[len(b.tokens)-1]
					r.ids[row] = r.one[row][:]
				}
			}
		}
		if !active {
			return nil
		}
		if err := r.flushReorder(); err != nil {
			return err
		}
		logits, _, err := g.step.Decode(g.stepCache, r.ids)
		if err != nil {
			return fmt.Errorf("gpt: generate: %w", err)
		}
		v := g.m.VocabSize()
		for _, gr := range r.groups {
			if gr.prompt < 0 {
				continue
			}
			if err := r.advance(gr, func(k int) logitsRow { return rowOf(logits, (gr.first+k)*v, v) }); err != nil {
				return err
			}
		}
	}
}

// flushReorder applies the pending row copies of the last advance.
func (r *genRun) flushReorder() error {
	moved := false
	for i, s := range r.src {
		moved = moved || s != i
	}
	if !moved {
		return nil
	}
	if err := r.g.stepCache.Reorder(r.src); err != nil {
		return fmt.Errorf("gpt: generate: %w", err)
	}
	for i := range r.src {
		r.src[i] = i
	}
	return nil
}

// logitsRow is one row of a logits Array.
type logitsRow struct {
	f32 []float32
	f64 []float64
}

func rowOf(a graph.Array, off, n int) logitsRow {
	if a.F64 != nil {
		return logitsRow{f64: a.F64[off : off+n]}
	}
	return logitsRow{f32: a.F32[off : off+n]}
}

// copyTo writes the row into dst as float64s.
func (l logitsRow) copyTo(dst []float64) {
	if l.f64 != nil {
		copy(dst, l.f64)
		return
	}
	for i, x := range l.f32 {
		dst[i] = float64(x)
	}
}

// start feeds prompt p through the prefill decoder into the group's first
// row and takes the first generation step from its logits.
func (r *genRun) start(gr *genGroup, p int) error {
	g := r.g
	prompt := r.prompts[p]
	cropped := max(0, len(prompt)-r.keep)
	prompt = prompt[cropped:]
	g.preCache.Reset()
	var logits graph.Array
	for at := 0; at < len(prompt); at += g.pre.tokens {
		var err error
		chunk := prompt[at:min(at+g.pre.tokens, len(prompt))]
		if logits, _, err = g.pre.Decode(g.preCache, [][]int{chunk}); err != nil {
			return fmt.Errorf("gpt: generate: prompt %d: %w", p, err)
		}
	}
	from := make([]int, g.stepCache.rows)
	for i := range from {
		from[i] = -1
	}
	from[gr.first] = 0
	if err := g.stepCache.CopyRows(g.preCache, from); err != nil {
		return fmt.Errorf("gpt: generate: prompt %d: %w", p, err)
	}
	*gr = genGroup{first: gr.first, prompt: p, beams: make([]genBeam, g.beams), stop: -1}
	gr.beams[0].alive = true
	if g.opts.Temperature > 0 {
		gr.rng = rand.New(rand.NewPCG(g.opts.Seed, uint64(p)))
	}
	r.out[p].Cropped = cropped
	return r.advance(gr, func(int) logitsRow { return rowOf(logits, 0, g.m.VocabSize()) })
}

// advance takes one generation step for the group from the logits of its
// live rows, and finishes the group when it is done.
func (r *genRun) advance(gr *genGroup, logits func(k int) logitsRow) error {
	if r.g.opts.Beams > 0 {
		return r.advanceBeams(gr, logits)
	}
	g := r.g
	b := &gr.beams[0]
	x := g.row
	logits(0).copyTo(x)
	g.ban(x, b.tokens)
	lse, err := logSumExp(x)
	if err != nil {
		return fmt.Errorf("gpt: generate: prompt %d step %d: %w", gr.prompt, gr.steps, err)
	}
	if math.IsInf(lse, -1) { // every token banned
		return r.finish(gr, b.tokens, b.logp, -1)
	}
	var tok int
	if g.opts.Temperature > 0 {
		tok = g.sample(x, gr.rng)
	} else {
		tok = argmax(x)
	}
	b.logp += x[tok] - lse
	gr.steps++
	if slices.Contains(g.stops, tok) {
		return r.finish(gr, b.tokens, b.logp, tok)
	}
	b.tokens = append(b.tokens, tok)
	halt := g.opts.OnToken != nil && !g.opts.OnToken(gr.prompt, tok)
	if halt || gr.steps == g.opts.MaxNewTokens {
		return r.finish(gr, b.tokens, b.logp, -1)
	}
	return nil
}

// finish records the group's result and frees its rows.
func (r *genRun) finish(gr *genGroup, tokens []int, logp float64, stop int) error {
	n := len(tokens)
	if stop >= 0 {
		n++
	}
	out := &r.out[gr.prompt]
	out.Tokens = slices.Clone(tokens)
	if out.Tokens == nil {
		out.Tokens = []int{}
	}
	out.Stop = stop
	out.LogProb = logp
	out.Score = logp
	if r.g.opts.Beams > 0 && n > 0 {
		out.Score = logp / math.Pow(float64(n), r.g.opts.LengthPenalty)
	}
	gr.prompt = -1
	return nil
}

// ban sets to −Inf the logit of every token that would repeat an n-gram of
// the generated tokens hist: each token that followed an earlier occurrence
// of hist's last n−1 tokens.
func (g *Generator) ban(x []float64, hist []int) {
	n := g.opts.NoRepeatNGram
	if n == 0 || len(hist)+1 < n {
		return
	}
	tail := hist[len(hist)-(n-1):]
	for i := 0; i+n-1 < len(hist); i++ {
		if slices.Equal(hist[i:i+n-1], tail) {
			x[hist[i+n-1]] = math.Inf(-1)
		}
	}
}

// logSumExp returns log Σ exp(x), with the max taken out; −Inf when every
// entry is −Inf, and an error for a NaN or +Inf logit.
func logSumExp(x []float64) (float64, error) {
	m := math.Inf(-1)
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 1) {
			return 0, fmt.Errorf("logit %d is %v", i, v)
		}
		m = max(m, v)
	}
	if math.IsInf(m, -1) {
		return m, nil
	}
	var s float64
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s), nil
}

// argmax is the index of the largest entry, the lowest on ties.
func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// sample draws a token from softmax(x/Temperature) restricted to the TopK
// most likely tokens and then to the smallest most likely set whose
// probability reaches TopP. Candidates are ordered by logit (lowest id
// first on ties), so TopK = 1 or a tiny TopP pick the greedy token.
func (g *Generator) sample(x []float64, rng *rand.Rand) int {
	o := g.opts
	g.idx = g.idx[:0]
	for i, v := range x {
		if !math.IsInf(v, -1) {
			g.idx = append(g.idx, i)
		}
	}
	cands := g.idx
	if (o.TopK > 0 && o.TopK < len(cands)) || (o.TopP > 0 && o.TopP < 1) {
		slices.SortFunc(cands, func(a, b int) int {
			switch {
			case x[a] > x[b]:
				return -1
			case x[a] < x[b]:
				return 1
			}
			return a - b
		})
		if o.TopK > 0 && o.TopK < len(cands) {
			cands = cands[:o.TopK]
		}
	}
	m := math.Inf(-1)
	for _, i := range cands {
		m = max(m, x[i])
	}
	g.prob = grow(g.prob, len(cands))[:len(cands)]
	var total float64
	for j, i := range cands {
		g.prob[j] = math.Exp((x[i] - m) / o.Temperature)
		total += g.prob[j]
	}
	if o.TopP > 0 && o.TopP < 1 {
		var acc float64
		for j := range cands {
			acc += g.prob[j]
			if acc >= o.TopP*total {
				cands, total = cands[:j+1], acc
				break
			}
		}
	}
	u := rng.Float64() * total
	for j, i := range cands {
		u -= g.prob[j]
		if u < 0 {
			return i
		}
	}
	return cands[len(cands)-1] // rounding left u ≥ 0 after the last one
}

// candidate is a possible next beam: the parent's slot, the token and the
// new log-probability.
type candidate struct {
	parent, token int
	logp          float64
}

// advanceBeams takes one beam search step, as the LoRA paper's script does:
// the Beams best (parent, token) continuations over all live beams become
// the next beams; those ending in a stop token are finished hypotheses,
// scored logP/n^α, and stop taking part. After MaxNewTokens steps the live
// beams are finished too. The best finished hypothesis wins. The group
// stops early once no live beam can still beat it.
func (r *genRun) advanceBeams(gr *genGroup, logits func(k int) logitsRow) error {
	g := r.g
	nb := g.beams
	x := g.row
	var cands []candidate
	for k := range gr.beams {
		b := &gr.beams[k]
		if !b.alive {
			continue
		}
		logits(k).copyTo(x)
		g.ban(x, b.tokens)
		lse, err := logSumExp(x)
		if err != nil {
			return fmt.Errorf("gpt: generate: prompt %d step %d beam %d: %w", gr.prompt, gr.steps, k, err)
		}
		if math.IsInf(lse, -1) {
			continue
		}
		cands = append(cands, topTokens(x, nb, k, b.logp-lse)...)
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		switch {
		case a.logp > b.logp:
			return -1
		case a.logp < b.logp:
			return 1
		case a.parent != b.parent:
			return a.parent - b.parent
		}
		return a.token - b.token
	})
	cands = cands[:min(nb, len(cands))]
	gr.steps++
	alpha := g.opts.LengthPenalty
	offer := func(parent []int, tok int, logp float64, n int) {
		score := logp / math.Pow(float64(n), alpha)
		if gr.best == nil || score > gr.bestSc {
			gr.best = &genBeam{tokens: slices.Clone(parent), logp: logp}
			gr.bestSc, gr.stop = score, tok
		}
	}
	// The next beams: a continuation stays in its parent's row when it is
	// the parent's first; the others take free rows, copied from the parent.
	next := make([]genBeam, nb)
	taken := make([]bool, nb)
	var moved []candidate
	for _, c := range cands {
		parent := gr.beams[c.parent].tokens
		if slices.Contains(g.stops, c.token) {
			offer(parent, c.token, c.logp, gr.steps)
			continue
		}
		if !taken[c.parent] {
			taken[c.parent] = true
			next[c.parent] = genBeam{alive: true, tokens: append(slices.Clone(parent), c.token), logp: c.logp}
			continue
		}
		moved = append(moved, c)
	}
	free := 0
	for _, c := range moved {
		for taken[free] {
			free++
		}
		taken[free] = true
		next[free] = genBeam{alive: true, tokens: append(slices.Clone(gr.beams[c.parent].tokens), c.token), logp: c.logp}
		r.src[gr.first+free] = gr.first + c.parent
	}
	gr.beams = next
	if gr.steps == g.opts.MaxNewTokens {
		for _, b := range gr.beams {
			if b.alive {
				offer(b.tokens, -1, b.logp, gr.steps)
			}
		}
		return r.finishBeams(gr)
	}
	// Stop when no live beam can beat the best: a live beam's log-probability
	// s ≤ 0 only falls, so over the lengths n it may still finish at,
	// s/n^α is at most max(s/(steps+1)^α, s/MaxNewTokens^α).
	done := true
	for _, b := range gr.beams {
		if !b.alive {
			continue
		}
		bound := max(b.logp/math.Pow(float64(gr.steps+1), alpha), b.logp/math.Pow(float64(g.opts.MaxNewTokens), alpha))
		if gr.best == nil || bound > gr.bestSc {
			done = false
			break
		}
	}
	if done {
		return r.finishBeams(gr)
	}
	return nil
}

// finishBeams records the best hypothesis and undoes the group's pending
// row copies, which no longer matter.
func (r *genRun) finishBeams(gr *genGroup) error {
	for k := range gr.beams {
		r.src[gr.first+k] = gr.first + k
	}
	if gr.best == nil {
		return r.finish(gr, nil, math.Inf(-1), -1)
	}
	return r.finish(gr, gr.best.tokens, gr.best.logp, gr.stop)
}

// topTokens returns the n candidates with the largest x from parent slot k,
// with log-probability base + x (lowest id first on ties).
func topTokens(x []float64, n, k int, base float64) []candidate {
	top := make([]candidate, 0, n+1)
	for i, v := range x {
		if math.IsInf(v, -1) || (len(top) == n && v <= top[n-1].logp) {
			continue
		}
		j := len(top)
		for j > 0 && top[j-1].logp < v {
			j--
		}
		top = slices.Insert(top, j, candidate{parent: k, token: i, logp: v})
		if len(top) > n {
			top = top[:n]
		}
	}
	for i := range top {
		top[i].logp += base
	}
	return top
}
