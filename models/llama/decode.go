package llama

import (
	"errors"
	"slices"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
)

// Generation runs on package gpt's decoding machinery (one Decoder, KV
// cache, sampler and beam search for every model): Model implements
// gpt.Decodable.
var _ gpt.Decodable = (*Model)(nil)

// CacheShape is NumLayers layers of KVHeads·HeadDim columns: the cache
// holds the key/value heads, not the repeated ones (GQA's memory saving).
func (m *Model) CacheShape() (layers, width int) {
	return m.cfg.NumLayers, m.cfg.KVHeads * m.cfg.HeadDim
}

// StepGraph is the forward pass of one decoding step (see gpt.Decodable):
// the token lookup, then each layer with graph.CachedGroupedQueryAttention
// at rotary positions pos and cache positions cachePos. → [N, d].
func (m *Model) StepGraph(ids, pos, cachePos *graph.Node, keys, values []*graph.Node) *graph.Node {
	x := m.tokens.Forward(ids) // [N, d]
	for i, blk := range m.Blocks {
		h := blk.Attn.CachedForward(blk.InputNorm.Forward(x), pos, cachePos, keys[i], values[i])
		x = graph.Add(x, h)                                        // x + self_attn(input_layernorm(x))
		x = graph.Add(x, blk.MLP.Forward(blk.PostNorm.Forward(x))) // x + mlp(post_attention_layernorm(x))
	}
	return x
}

// StepHead is Head.
func (m *Model) StepHead(x *graph.Node) *graph.Node { return m.Head(x) }

// StopTokens are the end-of-sequence ids: generation_config.json's
// eos_token_id when the model has one, else config.json's (Config.EOS).
func (m *Model) StopTokens() ([]int, error) {
	if m.gen != nil && len(m.gen.EOS) > 0 {
		return slices.Clone(m.gen.EOS), nil
	}
	if len(m.cfg.EOS) > 0 {
		return slices.Clone(m.cfg.EOS), nil
	}
	return nil, errors.New("llama: the model has no eos_token_id (config.json or generation_config.json): give GenerateOptions.StopTokens")
}

// NewDecoder compiles a decoding step for rows rows of up to tokens new
// tokens each against caches of capacity positions per row
// (1 ≤ tokens ≤ capacity ≤ ContextSize) and returns it with an empty cache
// (see gpt.Decoder). It runs the layers installed now (LoRA wrappers
// included).
func (m *Model) NewDecoder(rows, tokens, capacity int) (*gpt.Decoder, *gpt.KVCache, error) {
	return gpt.NewDecoderFor(m, rows, tokens, capacity)
}

// NewGenerator checks opts against the model and returns a generator that
// keeps its compiled decoders between calls (see gpt.Generator). Greedy
// decoding, sampling (temperature, top-k, top-p), beam search and
// no-repeat n-grams work as for GPT-2; StopTokens nil means StopTokens().
func (m *Model) NewGenerator(opts gpt.GenerateOptions) (*gpt.Generator, error) {
	return gpt.NewGeneratorFor(m, opts)
}

// Generate runs prompts (token ids, at least one each) through the model and
// returns one generation per prompt, in order (see gpt.Generator.Generate).
func (m *Model) Generate(prompts [][]int, opts gpt.GenerateOptions) ([]gpt.Generation, error) {
	g, err := m.NewGenerator(opts)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return g.Generate(prompts)
}
