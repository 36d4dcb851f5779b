package gpt

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/golora/golora/graph"

	"github.com/golora/golora/internal/memlimit"
)

// ErrTooLarge is wrapped by the errors of Generate (and of the command-line
// tool's checks) when a request needs more memory than the process has
// available: it is refused up front, before anything is allocated, instead
// of ending in the Go runtime's unrecoverable "out of memory".
var ErrTooLarge = errors.New("not enough memory")

// The estimates below count the buffers a compiled program keeps: every
// node of golora's graph owns its output (see docs/design.md), so the sum of
// the node sizes is what a run holds. They are upper bounds for golora's own
// models, checked against the peak resident memory of real runs in
// docs/reliability.md; a LoRA wrapper adds a few rank-r buffers per adapted
// layer, covered by the margin.
const estimateMargin = 1.25

// clampBytes turns a float64 byte count into an int64, saturating.
func clampBytes(x float64) int64 {
	if !(x < math.MaxInt64) { // also NaN
		return math.MaxInt64
	}
	return int64(x)
}

// paramsF is NumParams in float64, which cannot overflow for any shape.
func (c Config) paramsF() float64 {
	d := float64(c.NEmbd)
	block := 4*d + 3*d*d + 3*d + d*d + d + 4*d*d + 4*d + 4*d*d + d
	return float64(c.VocabSize)*d + float64(c.BlockSize)*d + float64(c.NLayer)*block + 2*d
}

// ModelBytes is the memory of the weights of a model of this shape in a
// dtype of elemSize bytes (4 for float32); it cannot overflow.
func (c Config) ModelBytes(elemSize int) int64 {
	return clampBytes(c.paramsF() * float64(elemSize))
}

// TrainBytes estimates the memory of one training step (train true: the
// forward pass, its gradients, the optimizer's state) or one evaluation
// batch (train false) on batch sequences of ctx tokens, for a model of this
// shape in a dtype of elemSize bytes with trainable parameters that train
// (their gradients and AdamW's two moments). The model's weights are not
// included (ModelBytes). It saturates instead of overflowing, so absurd
// flags give an absurd estimate, not a negative one.
func (c Config) TrainBytes(batch, ctx, trainable, elemSize int, train bool) int64 {
	n := float64(batch) * float64(ctx) // tokens per step
	d, s := float64(c.NEmbd), float64(elemSize)
	layers := float64(c.NLayer)
	// Per block: ln_1, c_attn (3d), attention output, c_proj, residual,
	// ln_2, c_fc and GELU (4d each), c_proj, residual: 18 values per
	// token; dropout masks add up to 3 more. Attention keeps its
	// probabilities, batch·heads·ctx², for the backward pass (twice with
	// attention dropout).
	perToken := layers*21*d + 4*d // blocks, embeddings and ln_f
	attn := layers * float64(batch) * float64(c.NHead) * float64(ctx) * float64(ctx)
	if c.AttnDropout > 0 {
		attn *= 2
	}
	logits := n * float64(c.VocabSize) // [N, V]
	values := n*perToken + attn + logits
	ints := n * 8 * 4 // ids, positions, targets, mask
	if !train {
		return clampBytes(estimateMargin * (values*s + ints))
	}
	// The backward pass adds one gradient per value (the softmax state of
	// the loss included); the optimizer keeps a gradient copy and two
	// moments per trainable parameter, and the graph one gradient.
	optimizer := 4 * float64(trainable)
	return clampBytes(estimateMargin * ((2*values+logits+optimizer)*s + ints))
}

// DecoderBytes estimates the memory of NewDecoder(rows, tokens, capacity):
// its key/value cache, 2·NLayer·rows·capacity·NEmbd values, and the
// activations of one step over rows·tokens positions.
func (m *Model) DecoderBytes(rows, tokens, capacity int) int64 {
	c := m.cfg
	s := float64(m.dtype.Size())
	n := float64(rows) * float64(tokens)
	d, layers := float64(c.NEmbd), float64(c.NLayer)
	cache := 2 * layers * float64(rows) * float64(capacity) * d
	out := float64(rows) // logits rows: the last token of each row
	if tokens == 1 {
		out = n
	}
	values := cache + n*(layers*18*d+4*d) + out*float64(c.VocabSize) +
		layers*float64(runtime.GOMAXPROCS(0))*float64(tokens)*float64(capacity) // attention scratch per worker
	return clampBytes(estimateMargin * (values*s + n*8*4))
}

// decoderSizer is implemented by a Decodable that estimates its own
// decoders' memory (as *Model does).
type decoderSizer interface {
	DecoderBytes(rows, tokens, capacity int) int64
}

// decoderBytes is m's DecoderBytes, or for a model without one an estimate
// from its cache shape: the cache, and 32 values per cached width per layer
// and position for the activations (a gated MLP and grouped attention keep
// more per position than GPT-2's 18 per width).
func decoderBytes(m Decodable, rows, tokens, capacity int) int64 {
	if ds, ok := m.(decoderSizer); ok {
		return ds.DecoderBytes(rows, tokens, capacity)
	}
	layers, width := m.CacheShape()
	n := float64(rows) * float64(tokens)
	l, w := float64(layers), float64(width)
	values := 2*l*float64(rows)*float64(capacity)*w + n*l*32*w + n*float64(m.VocabSize())
	return clampBytes(estimateMargin * (values*float64(m.DType().Size()) + n*8*4))
}

// GenerateBytes estimates the memory Generate needs for prompts prompts of up
// to longest tokens each (after cropping) with opts: the step decoder for
// its rows (BatchSize prompts, each on max(1, Beams) rows), the prefill
// decoder, and beam search's candidates and hypotheses. opts is not checked.
func (m *Model) GenerateBytes(prompts, longest int, opts GenerateOptions) int64 {
	return GenerateBytesFor(m, prompts, longest, opts)
}

// GenerateBytesFor is GenerateBytes for any Decodable model.
func GenerateBytesFor(m Decodable, prompts, longest int, opts GenerateOptions) int64 {
	bs := m.ContextSize()
	beams := max(1, opts.Beams)
	groups := opts.BatchSize
	if groups == 0 {
		groups = max(1, rowsPerBatch/beams)
	}
	groups = max(1, min(groups, prompts))
	longest = max(1, min(longest, bs))
	newTokens := max(1, min(opts.MaxNewTokens, bs))
	rows := float64(groups) * float64(beams)
	if rows > math.MaxInt32 { // beyond any machine; keep the arithmetic in range
		return math.MaxInt64
	}
	step := decoderBytes(m, int(rows), 1, roundUp(longest+newTokens-1, bs))
	pneed := roundUp(longest, bs)
	pre := decoderBytes(m, 1, min(prefillChunk, pneed), pneed)
	// Beam search: per group and step, Beams² candidates of 24 bytes, and
	// the token lists of the live beams and the best hypothesis.
	search := rows*float64(beams)*24 + rows*float64(newTokens)*8*2
	return clampBytes(float64(step) + float64(pre) + search)
}

// checkGenerateMemory refuses a Generate call whose estimate exceeds the
// memory available.
func (g *Generator) checkGenerateMemory(prompts, longest int) error {
	need := GenerateBytesFor(g.m, prompts, longest, g.opts)
	what := fmt.Sprintf("generating %d prompt(s) with %d beam(s), batch %d and %d new tokens", prompts, max(1, g.opts.Beams), g.opts.BatchSize, g.opts.MaxNewTokens)
	if err := memlimit.Check(need, what); err != nil {
		return fmt.Errorf("gpt: generate: %w: %w", err, ErrTooLarge)
	}
	return nil
}

// maxConfigSize bounds config.json (GPT-2's is under 1 kB).
const maxConfigSize = 1 << 20

// checkWeightsFit runs before a model of cfg is built for a weights file
// whose tensors hold dataBytes bytes: a file too small to hold cfg's
// parameters (2 bytes each at least, in F16 or BF16) means a config.json
// that does not describe these weights, and is refused before anything is
// allocated; so is a model that does not fit the memory available.
func checkWeightsFit(cfg Config, dt graph.DType, dataBytes int64) error {
	if min := cfg.ModelBytes(2); dataBytes < min {
		return fmt.Errorf("%s describes %s parameters (n_layer %d, n_embd %d, n_positions %d, vocab_size %d), but the tensors of %s hold only %d bytes, fewer than that many parameters take even in 16 bits: the config does not match the weights",
			ConfigFile, paramCount(cfg), cfg.NLayer, cfg.NEmbd, cfg.BlockSize, cfg.VocabSize, WeightsFile, dataBytes)
	}
	if err := memlimit.Check(cfg.ModelBytes(dt.Size()), fmt.Sprintf("a model of %s parameters", paramCount(cfg))); err != nil {
		return fmt.Errorf("%w: %w", err, ErrTooLarge)
	}
	return nil
}

// paramCount writes the parameter count of cfg, which may not fit an int.
func paramCount(cfg Config) string {
	if p := cfg.paramsF(); p < 1e15 {
		return fmt.Sprintf("%.0f", p)
	}
	return fmt.Sprintf("%.3g", cfg.paramsF())
}
