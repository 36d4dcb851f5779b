package gpt

import "github.com/golora/golora/graph"

// Decodable is a decoder-only language model that this package's Decoder,
// KVCache and Generator can run one step at a time: GPT-2 (*Model) and the
// Llama family (models/llama) implement it, so both share one decoding
// loop, sampler and beam search.
//
// A decoding step feeds N = rows·tokens new tokens. StepGraph adds, for
// integer nodes ids [N] (the tokens; 0 for padding), pos [N] (each token's
// position in its sequence; 0 for padding) and cachePos [R, T] (its cache
// position; −1 for padding), and for every cached layer i the frozen
// key/value cache nodes keys[i], values[i] [R·C, width], the model's
// forward pass with cached attention (graph.CachedSelfAttention or
// graph.CachedGroupedQueryAttention), and returns the final hidden state
// [N, d]. The Decoder then keeps each row's last new token and calls
// StepHead on those rows, [R, d] → [R, VocabSize].
type Decodable interface {
	// VocabSize is the number of logits per position.
	VocabSize() int
	// ContextSize is the longest sequence the model attends over, prompt
	// and generated tokens together (GPT-2: BlockSize).
	ContextSize() int
	// DType is the element type of the parameters, the graph and the caches.
	DType() graph.DType
	// CacheShape is the number of cached layers and the width of one cached
	// key (or value) row.
	CacheShape() (layers, width int)
	// StepGraph builds one decoding step up to the final hidden state.
	StepGraph(ids, pos, cachePos *graph.Node, keys, values []*graph.Node) *graph.Node
	// StepHead maps hidden states [R, d] to logits [R, VocabSize].
	StepHead(x *graph.Node) *graph.Node
	// StopTokens are the ids that end a generated sequence when
	// GenerateOptions.StopTokens is nil, or an error saying why the model
	// has none.
	StopTokens() ([]int, error)
}

var _ Decodable = (*Model)(nil)

// ContextSize is BlockSize, the rows of wpe.
func (m *Model) ContextSize() int { return m.cfg.BlockSize }

// CacheShape is NLayer layers of width NEmbd.
func (m *Model) CacheShape() (layers, width int) { return m.cfg.NLayer, m.cfg.NEmbd }

// StepGraph is Embed and every block with cached attention (see
// Decodable); dropout is left out, decoding is inference.
func (m *Model) StepGraph(ids, pos, cachePos *graph.Node, keys, values []*graph.Node) *graph.Node {
	x := m.Embed(ids, pos) // [N, d]
	for i, blk := range m.H {
		x = blk.cachedForward(x, keys[i], values[i], cachePos) // [N, d]
	}
	return x
}

// StepHead is Head.
func (m *Model) StepHead(x *graph.Node) *graph.Node { return m.Head(x) }

// StopTokens is the end-of-text token of the model's tokenizer; a model
// with tokenizer "none" has none (an error).
func (m *Model) StopTokens() ([]int, error) {
	eot, err := m.eot()
	if err != nil {
		return nil, err
	}
	return []int{eot}, nil
}

// cachedForward is Block.Forward for incremental decoding: the attention
// reads earlier positions from the caches kc, vc and appends the new ones at
// pos (see graph.CachedSelfAttention). Dropout is left out: decoding is
// inference. x [N, d] → [N, d].
func (blk *Block) cachedForward(x, kc, vc, pos *graph.Node) *graph.Node {
	qkv := blk.Attn.CAttn.Forward(blk.Ln1.Forward(x))                  // [N, 3d]
	att := graph.CachedSelfAttention(qkv, kc, vc, pos, blk.Attn.Heads) // [N, d]
	x = graph.Add(x, blk.Attn.CProj.Forward(att))                      // x + attn(ln_1(x))
	return graph.Add(x, blk.MLP.Forward(blk.Ln2.Forward(x)))           // x + mlp(ln_2(x))
}
