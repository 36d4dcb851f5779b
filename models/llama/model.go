package llama

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/tokenizer"
)

// Model is a Llama-family decoder (LlamaForCausalLM and its Mistral, Qwen2
// and Qwen3 relatives): a token embedding, NumLayers pre-RMSNorm blocks of
// grouped-query attention and a gated MLP, a final RMSNorm and an LM head,
// tied to the embedding or separate. Every parameter is named by its
// Hugging Face key ("model.embed_tokens.weight",
// "model.layers.0.self_attn.q_proj.weight", …, "lm_head.weight"); Linear
// weights are held [in, out] and transposed at the file boundary.
//
// The fields are the base modules. The projections and the token lookup
// are held as nn.Layer values, which package lora replaces through
// SetLayer; a tied head always multiplies by the base embedding weight.
type Model struct {
	Embed  *nn.Embedding // model.embed_tokens [V, d]
	Blocks []*Block      // model.layers.{i}
	Norm   *nn.RMSNorm   // model.norm
	// LMHead is lm_head [d, V], nil when the head is tied to Embed.
	LMHead *nn.Linear

	cfg     Config
	dtype   graph.DType
	gen     *GenerationConfig    // generation_config.json, nil when unknown
	hfTok   gpt.Tokenizer        // the tokenizer of tokenizer "hf"
	hfFiles *tokenizer.Tokenizer // its files, written back by Save
	tokens  nn.Layer             // the token lookup: Embed, or a wrapper
	head    nn.Layer             // the untied head: LMHead, or a wrapper
	base    map[string]nn.Layer  // the layers New made, by path

	recompute  int  // activation recomputation: blocks per checkpoint (0: none)
	lossBlocks bool // Loss computes the head and the loss in blocks (SetLossInBlocks)
}

// Block is one decoder layer, model.layers.{i}:
//
//	x = x + self_attn(input_layernorm(x))
//	x = x + mlp(post_attention_layernorm(x))
type Block struct {
	InputNorm *nn.RMSNorm          // model.layers.{i}.input_layernorm
	Attn      *nn.GroupedAttention // model.layers.{i}.self_attn
	PostNorm  *nn.RMSNorm          // model.layers.{i}.post_attention_layernorm
	MLP       *nn.GatedMLP         // model.layers.{i}.mlp
}

var _ nn.Host = (*Model)(nil)

// New returns a model of shape cfg with parameters of dtype dt (Float32 or
// Float64). Weights are zero and the RMSNorm weights one: call Init for
// random weights, or use Load to read a checkpoint.
func New(cfg Config, dt graph.DType) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dt != graph.Float32 && dt != graph.Float64 {
		return nil, fmt.Errorf("llama: new model: dtype %v, want float32 or float64", dt)
	}
	cfg.EOS = append([]int(nil), cfg.EOS...)
	if cfg.HeadDim == 0 {
		cfg.HeadDim = cfg.HeadWidth()
	}
	d := cfg.Hidden
	m := &Model{
		Embed: nn.NewEmbedding("model.embed_tokens", dt, cfg.VocabSize, d),
		Norm:  nn.NewRMSNorm("model.norm", dt, d, cfg.RMSNormEps),
		cfg:   cfg,
		dtype: dt,
	}
	m.tokens = m.Embed
	if !cfg.TieEmbeddings {
		m.LMHead = nn.NewLinear("lm_head", dt, d, cfg.VocabSize, false)
		m.head = m.LMHead
	}
	attn := nn.AttentionConfig{Heads: cfg.Heads, KVHeads: cfg.KVHeads, HeadDim: cfg.HeadDim,
		QKVBias: cfg.QKVBias, OBias: cfg.OBias, QKNorm: cfg.QKNorm, NormEps: cfg.RMSNormEps, RoPE: cfg.RoPE}
	for i := range cfg.NumLayers {
		p := layerPath(i)
		m.Blocks = append(m.Blocks, &Block{
			InputNorm: nn.NewRMSNorm(p+".input_layernorm", dt, d, cfg.RMSNormEps),
			Attn:      nn.NewGroupedAttention(p+".self_attn", dt, d, attn),
			PostNorm:  nn.NewRMSNorm(p+".post_attention_layernorm", dt, d, cfg.RMSNormEps),
			MLP:       nn.NewGatedMLP(p+".mlp", dt, d, cfg.Intermediate, cfg.MLPBias),
		})
	}
	m.base = map[string]nn.Layer{}
	for _, l := range m.Layers() {
		m.base[l.Path] = l.Layer
	}
	return m, nil
}

func layerPath(i int) string { return "model.layers." + strconv.Itoa(i) }

// Init draws weights as transformers' initialisation does: every Linear
// weight and the embedding from N(0, InitStd²) (InitStd 0: 0.02), biases
// 0, RMSNorm weights 1. Parameters are drawn in BaseParams order, so a seed
// gives the same model everywhere. Init writes the base weights even where
// SetLayer installed a wrapper.
func (m *Model) Init(rng *rand.Rand) error {
	if rng == nil {
		return errors.New("llama: init: nil random source")
	}
	std := m.cfg.InitStd
	if std == 0 {
		std = 0.02
	}
	for _, p := range m.BaseParams() {
		switch {
		case strings.HasSuffix(p.Name, "norm.weight"):
			graph.InitConstant(p, 1)
		case strings.HasSuffix(p.Name, ".bias"):
			p.Zero()
		default:
			graph.InitNormal(p, rng, std)
		}
	}
	return nil
}

// Config returns the model's configuration (HeadDim filled in).
func (m *Model) Config() Config {
	c := m.cfg
	c.EOS = append([]int(nil), c.EOS...)
	return c
}

// DType is the element type of the parameters.
func (m *Model) DType() graph.DType { return m.dtype }

// VocabSize is the number of token ids, the width of the logits.
func (m *Model) VocabSize() int { return m.cfg.VocabSize }

// ContextSize is the longest context the model runs (Config.ContextSize).
func (m *Model) ContextSize() int { return m.cfg.ContextSize() }

// Generation returns the generation_config.json the model was loaded with
// (or will be saved with), nil when there is none.
func (m *Model) Generation() *GenerationConfig {
	if m.gen == nil {
		return nil
	}
	g := m.gen.clone()
	return &g
}

// SetGeneration sets the generation config Save writes (nil: none, and
// StopTokens falls back to Config.EOS). Its ids must be in the vocabulary.
func (m *Model) SetGeneration(g *GenerationConfig) error {
	if g == nil {
		m.gen = nil
		return nil
	}
	if err := g.validate(m.cfg.VocabSize); err != nil {
		return fmt.Errorf("llama: generation config: %w", err)
	}
	c := g.clone()
	m.gen = &c
	return nil
}

// PEFTKeyPrefix is "": the layer paths are already the full module paths
// of Hugging Face's *ForCausalLM, so PEFT's adapter keys are
// "base_model.model." + path (package lora reads this method).
func (m *Model) PEFTKeyPrefix() string { return "" }

// BaseParams lists the model's own parameters in checkpoint order:
// model.embed_tokens, then for each layer input_layernorm,
// self_attn.{q,k,v,o}_proj (weight before bias), self_attn.q_norm and
// k_norm (Qwen3), post_attention_layernorm, mlp.{gate,up,down}_proj, then
// model.norm and lm_head (untied only). These are what Save writes and Load
// reads, whatever wrappers SetLayer installed.
func (m *Model) BaseParams() []*graph.Param {
	ps := []*graph.Param{m.Embed.Weight}
	for i, blk := range m.Blocks {
		p := layerPath(i)
		ps = append(ps, blk.InputNorm.Params()...)
		for _, l := range []string{".self_attn.q_proj", ".self_attn.k_proj", ".self_attn.v_proj", ".self_attn.o_proj"} {
			ps = append(ps, m.base[p+l].Params()...)
		}
		if blk.Attn.QNorm != nil {
			ps = append(ps, blk.Attn.QNorm.Weight, blk.Attn.KNorm.Weight)
		}
		ps = append(ps, blk.PostNorm.Params()...)
		for _, l := range []string{".mlp.gate_proj", ".mlp.up_proj", ".mlp.down_proj"} {
			ps = append(ps, m.base[p+l].Params()...)
		}
	}
	ps = append(ps, m.Norm.Weight)
	if m.LMHead != nil {
		ps = append(ps, m.LMHead.Weight)
	}
	return ps
}

// linearWeights is the set of base parameters stored [out, in] in
// checkpoints (the Linear weights), which golora holds transposed.
func (m *Model) linearWeights() map[*graph.Param]bool {
	out := map[*graph.Param]bool{}
	for _, l := range m.base {
		if lin, ok := l.(*nn.Linear); ok {
			out[lin.Weight] = true
		}
	}
	return out
}

// Params lists every parameter the model's graph uses, each once: those of
// the token lookup (the embedding weight, plus a wrapper's own), each
// layer's norms, attention and MLP as the current layers report them (LoRA
// wrappers add their A and B), model.norm and the head. Without wrappers
// it equals BaseParams. A trainer updates those that are Trainable.
func (m *Model) Params() []*graph.Param {
	ps := append([]*graph.Param(nil), m.tokens.Params()...)
	ps = append(ps, m.Embed.Weight) // a tied head's weight, whatever the lookup reports
	for _, blk := range m.Blocks {
		ps = append(ps, nn.Collect(blk.InputNorm, blk.Attn, blk.PostNorm, blk.MLP)...)
	}
	ps = append(ps, m.Norm.Params()...)
	if m.head != nil {
		ps = append(ps, m.head.Params()...)
	}
	return nn.Unique(ps)
}

// Layers lists the layers LoRA can wrap, in this order:
// "model.embed_tokens" (its Forward takes a node of ids), then for each
// layer i "model.layers.{i}.self_attn.q_proj", k_proj, v_proj, o_proj,
// "model.layers.{i}.mlp.gate_proj", up_proj, down_proj, and last
// "lm_head" when the head is not tied. Target names follow PEFT: "q_proj"
// … "down_proj", "embed_tokens", "lm_head", and "all-linear" (every
// projection, not lm_head).
func (m *Model) Layers() []nn.NamedLayer {
	out := []nn.NamedLayer{{Path: "model.embed_tokens", Layer: m.tokens}}
	for i, blk := range m.Blocks {
		p := layerPath(i)
		a, f := blk.Attn, blk.MLP
		out = append(out,
			nn.NamedLayer{Path: p + ".self_attn.q_proj", Layer: a.QProj},
			nn.NamedLayer{Path: p + ".self_attn.k_proj", Layer: a.KProj},
			nn.NamedLayer{Path: p + ".self_attn.v_proj", Layer: a.VProj},
			nn.NamedLayer{Path: p + ".self_attn.o_proj", Layer: a.OProj},
			nn.NamedLayer{Path: p + ".mlp.gate_proj", Layer: f.GateProj},
			nn.NamedLayer{Path: p + ".mlp.up_proj", Layer: f.UpProj},
			nn.NamedLayer{Path: p + ".mlp.down_proj", Layer: f.DownProj},
		)
	}
	if m.head != nil {
		out = append(out, nn.NamedLayer{Path: "lm_head", Layer: m.head})
	}
	return out
}

// SetLayer puts l at path, one of the paths Layers lists. A wrapper at
// "model.embed_tokens" changes only the token lookup: a tied head keeps
// using the embedding's base weight. Passing the layer New made (from
// BaseLayer) restores it.
func (m *Model) SetLayer(path string, l nn.Layer) error {
	if l == nil {
		return fmt.Errorf("llama: set layer %s: nil layer", path)
	}
	switch path {
	case "model.embed_tokens":
		m.tokens = l
		return nil
	case "lm_head":
		if m.head == nil {
			return fmt.Errorf("llama: set layer lm_head: the head is tied to model.embed_tokens (tie_word_embeddings), so it has no layer of its own")
		}
		m.head = l
		return nil
	}
	i, field, err := m.splitPath(path)
	if err != nil {
		return fmt.Errorf("llama: set layer: %w", err)
	}
	a, f := m.Blocks[i].Attn, m.Blocks[i].MLP
	switch field {
	case "self_attn.q_proj":
		a.QProj = l
	case "self_attn.k_proj":
		a.KProj = l
	case "self_attn.v_proj":
		a.VProj = l
	case "self_attn.o_proj":
		a.OProj = l
	case "mlp.gate_proj":
		f.GateProj = l
	case "mlp.up_proj":
		f.UpProj = l
	case "mlp.down_proj":
		f.DownProj = l
	}
	return nil
}

// BaseLayer returns the layer New made at path (an *nn.Embedding for
// "model.embed_tokens", an *nn.Linear otherwise), whatever SetLayer has put
// there since.
func (m *Model) BaseLayer(path string) (nn.Layer, error) {
	l, ok := m.base[path]
	if !ok {
		return nil, fmt.Errorf("llama: base layer: %s", m.pathError(path))
	}
	return l, nil
}

// projections are the replaceable fields of a layer.
var projections = []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
	"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}

func (m *Model) pathError(path string) string {
	head := ""
	if m.head != nil {
		head = ", \"lm_head\""
	}
	return fmt.Sprintf("unknown layer path %q (want \"model.embed_tokens\"%s or model.layers.{i}.{%s} with i < %d)",
		path, head, strings.Join(projections, ","), m.cfg.NumLayers)
}

// splitPath parses "model.layers.{i}.{field}" for a replaceable field.
func (m *Model) splitPath(path string) (int, string, error) {
	i, field, ok := nn.SplitLayerPath(path, "model.layers.", len(m.Blocks), projections)
	if !ok {
		return 0, "", errors.New(m.pathError(path))
	}
	return i, field, nil
}

// replaced lists the paths whose layer is not the one New made.
func (m *Model) replaced() []string { return nn.Replaced(m.Layers(), m.base) }

// Logits builds the forward pass for batch sequences of ctx tokens: ids is
// an integer node [batch·ctx] (sequence b's token t at row b·ctx + t) and
// the result is [batch·ctx, VocabSize], the logits of the next token at
// every position; token t of every sequence sits at rotary position t. A
// ctx beyond ContextSize (MaxPositions, or a Mistral sliding window), or ids
// of another shape, gives a failed node whose error says so (graph's error
// rules).
func (m *Model) Logits(ids *graph.Node, batch, ctx int) *graph.Node {
	return m.Head(m.hidden(ids, batch, ctx)) // [B·T, V]
}

// hidden is the last block's output [batch·ctx, d], the input of Head.
func (m *Model) hidden(ids *graph.Node, batch, ctx int) *graph.Node {
	if err := ids.Err(); err != nil {
		return ids
	}
	b := ids.Builder()
	fail := func(format string, args ...any) *graph.Node {
		return b.Fail(fmt.Errorf("llama: logits: "+format, args...))
	}
	switch {
	case batch <= 0 || ctx <= 0:
		return fail("batch %d and context %d, want both > 0", batch, ctx)
	case m.cfg.SlidingWindow > 0 && ctx > m.cfg.SlidingWindow:
		return fail("context %d exceeds the sliding window %d (sliding_window): golora does not implement windowed attention, so it refuses longer contexts", ctx, m.cfg.SlidingWindow)
	case ctx > m.cfg.MaxPositions:
		return fail("context %d exceeds max_position_embeddings %d", ctx, m.cfg.MaxPositions)
	}
	if s := ids.Shape(); len(s) != 1 || s[0] != batch*ctx {
		return fail("ids %s has shape %v, want [%d] (batch %d × context %d)", ids.Name(), s, batch*ctx, batch, ctx)
	}
	pos := make([]int, batch*ctx) // 0 … ctx−1, once per sequence
	for i := range pos {
		pos[i] = i % ctx
	}
	p := b.IntConstant("positions", pos, batch*ctx)
	x := m.tokens.Forward(ids) // [B·T, d]
	return nn.Blocks(x, len(m.Blocks), m.recompute, func(i int, x *graph.Node) *graph.Node {
		pp := p
		if xb := x.Builder(); xb != b { // inside a checkpoint: its own positions
			pp = xb.IntConstant("positions", pos, batch*ctx)
		}
		return m.Blocks[i].Forward(x, pp, batch) // [B·T, d]
	})
}

// Loss builds the masked mean next-token cross-entropy of Logits against
// targets (an integer node [batch·ctx]), with row weights mask (a float node
// [batch·ctx], or nil for all ones) and label smoothing ε (see
// graph.SoftmaxCrossEntropy). The result is a scalar node. With
// SetLossInBlocks and a head tied to the embedding, the head and the loss
// are one graph.LinearCrossEntropy (an untied head, which a LoRA wrapper may
// replace, keeps its logits).
func (m *Model) Loss(ids, targets, mask *graph.Node, batch, ctx int, smoothing float64) *graph.Node {
	if !m.lossBlocks || m.head != nil {
		return graph.SoftmaxCrossEntropy(m.Logits(ids, batch, ctx), targets, mask, smoothing)
	}
	x := m.hidden(ids, batch, ctx)
	if err := x.Err(); err != nil {
		return x
	}
	w := x.Builder().Param(m.Embed.Weight) // the tied head
	return graph.LinearCrossEntropy(m.Norm.Forward(x), w, targets, mask, smoothing)
}

// Forward runs the layer on x [B·T, d] at rotary positions pos [B·T],
// batch sequences of T tokens, causally: → [B·T, d].
func (blk *Block) Forward(x, pos *graph.Node, batch int) *graph.Node {
	x = graph.Add(x, blk.Attn.Forward(blk.InputNorm.Forward(x), pos, batch)) // x + self_attn(input_layernorm(x))
	return graph.Add(x, blk.MLP.Forward(blk.PostNorm.Forward(x)))            // x + mlp(post_attention_layernorm(x))
}

// Head returns the logits of hidden states x [N, d]: model.norm, then
// lm_head, or the transposed base embedding when tied: → [N, V].
func (m *Model) Head(x *graph.Node) *graph.Node {
	if err := x.Err(); err != nil {
		return x
	}
	h := m.Norm.Forward(x) // [N, d]
	if m.head != nil {
		return m.head.Forward(h) // [N, d]·[d, V]
	}
	return graph.LinearT(h, x.Builder().Param(m.Embed.Weight), nil) // [N, d]·[V, d]ᵀ → [N, V]
}

// SetRecompute makes graphs built from now on keep only the input of every
// every-th block and recompute the blocks' activations in the backward
// pass (see nn.Blocks and graph.Checkpoint); 0 turns it off. Gradients are
// bit for bit the same.
func (m *Model) SetRecompute(every int) error {
	if every < 0 {
		return fmt.Errorf("llama: recompute every %d blocks, want ≥ 0", every)
	}
	m.recompute = every
	return nil
}

// SetLossInBlocks makes losses built from now on (Loss) compute the head and
// the cross-entropy as one graph.LinearCrossEntropy: the logits a block of
// vocabulary rows at a time, never the whole [B·T, V] logits and their
// gradient, at the price of computing the head's product again in the
// backward pass. The loss and gradients equal the plain ones to rounding.
// The command line turns it on with --recompute.
func (m *Model) SetLossInBlocks(on bool) { m.lossBlocks = on }
