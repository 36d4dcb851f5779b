package gpt

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/golora/golora/tokenizer"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
)

// Model is GPT-2: token and position embeddings, NLayer pre-LayerNorm
// transformer blocks, a final LayerNorm and an LM head tied to the token
// embedding. Every parameter is named by its Hugging Face GPT-2 key
// ("wte.weight", "h.0.attn.c_attn.weight", …, "ln_f.bias"), so loading a
// checkpoint is copying tensors by name.
//
// The fields are the base modules. The projections inside the blocks and the
// token lookup are held as nn.Layer values, which package lora replaces
// through SetLayer; the LM head always multiplies by the base WTE weight.
type Model struct {
	WTE *nn.Embedding // wte: token embedding [V, d], also the LM head's weight
	WPE *nn.Embedding // wpe: position embedding [BlockSize, d]
	H   []*Block      // h.0 … h.{NLayer−1}
	LnF *nn.LayerNorm // ln_f: the final LayerNorm

	cfg    Config
	dtype  graph.DType
	tokens nn.Layer            // the token lookup: WTE, or what SetLayer("wte", …) put there
	base   map[string]nn.Layer // the layers New made, by path

	hfFiles *tokenizer.Tokenizer // the Hugging Face tokenizer files, when cfg.Tokenizer is "hf"
	hfTok   Tokenizer            // hfFiles as a Tokenizer

	recompute  int  // activation recomputation: blocks per checkpoint (0: none)
	lossBlocks bool // Loss computes the head and the loss in blocks (SetLossInBlocks)
}

// SetRecompute makes graphs built from now on keep only the input of every
// every-th block and recompute the blocks' activations in the backward
// pass (see nn.Blocks and graph.Checkpoint); 0 turns it off. Gradients are
// bit for bit the same; memory falls, time rises by about a forward pass.
func (m *Model) SetRecompute(every int) error {
	if every < 0 {
		return fmt.Errorf("gpt: recompute every %d blocks, want ≥ 0", every)
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

// Block is one transformer block, h.{i}:
//
//	x = x + attn(ln_1(x))
//	x = x + mlp(ln_2(x))
//
// Its pieces are exported so that code that runs a block differently (a
// decoder with a key/value cache) can call them one by one.
type Block struct {
	Ln1  *nn.LayerNorm           // h.{i}.ln_1
	Attn *nn.CausalSelfAttention // h.{i}.attn: c_attn [d, 3d] (q | k | v), c_proj [d, d]
	Ln2  *nn.LayerNorm           // h.{i}.ln_2
	MLP  *nn.MLP                 // h.{i}.mlp: c_fc [d, 4d], c_proj [4d, d]
}

var _ nn.Host = (*Model)(nil)

// New returns a model of shape cfg with parameters of dtype dt. The weights
// are zero and the LayerNorm scales one: call Init for GPT-2's random
// initialisation, or use Load to read a checkpoint.
func New(cfg Config, dt graph.DType) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return assemble(cfg, dt)
}

// assemble is New for a validated cfg.
func assemble(cfg Config, dt graph.DType) (*Model, error) {
	if dt != graph.Float32 && dt != graph.Float64 {
		return nil, fmt.Errorf("gpt: new model: dtype %v, want float32 or float64", dt)
	}
	d := cfg.NEmbd
	m := &Model{
		WTE:   nn.NewEmbedding("wte", dt, cfg.VocabSize, d),
		WPE:   nn.NewEmbedding("wpe", dt, cfg.BlockSize, d),
		LnF:   nn.NewLayerNorm("ln_f", dt, d, cfg.LayerNormEps),
		cfg:   cfg,
		dtype: dt,
	}
	m.tokens = m.WTE
	for i := 0; i < cfg.NLayer; i++ {
		h := "h." + strconv.Itoa(i)
		m.H = append(m.H, &Block{
			Ln1:  nn.NewLayerNorm(h+".ln_1", dt, d, cfg.LayerNormEps),
			Attn: nn.NewCausalSelfAttention(h+".attn", dt, d, cfg.NHead, cfg.AttnDropout, cfg.ResidDropout),
			Ln2:  nn.NewLayerNorm(h+".ln_2", dt, d, cfg.LayerNormEps),
			MLP:  nn.NewMLP(h+".mlp", dt, d, 4*d, cfg.ResidDropout),
		})
	}
	m.base = map[string]nn.Layer{}
	for _, l := range m.Layers() {
		m.base[l.Path] = l.Layer
	}
	return m, nil
}

// Init draws GPT-2's initial weights from rng: every Linear weight and both
// embeddings from N(0, 0.02²), except the two c_proj weights of each block
// (the projections into the residual stream), which use
// N(0, (0.02/√(2·NLayer))²) as in the GPT-2 paper; biases 0, LayerNorm
// scales 1 and shifts 0. Parameters are drawn in BaseParams order, so a seed
// gives the same model on every machine. Init writes the base weights even
// where SetLayer installed a wrapper.
func (m *Model) Init(rng *rand.Rand) error {
	if rng == nil {
		return errors.New("gpt: init: nil random source")
	}
	const std = 0.02
	projStd := std / math.Sqrt(2*float64(m.cfg.NLayer))
	m.WTE.Init(rng, std)
	m.WPE.Init(rng, std)
	resetLN := func(ln *nn.LayerNorm) {
		graph.InitConstant(ln.Weight, 1)
		ln.Bias.Zero()
	}
	for i, blk := range m.H {
		p := "h." + strconv.Itoa(i)
		resetLN(blk.Ln1)
		m.baseLinear(p+".attn.c_attn").Init(rng, std)
		m.baseLinear(p+".attn.c_proj").Init(rng, projStd)
		resetLN(blk.Ln2)
		m.baseLinear(p+".mlp.c_fc").Init(rng, std)
		m.baseLinear(p+".mlp.c_proj").Init(rng, projStd)
	}
	resetLN(m.LnF)
	return nil
}

// baseLinear returns the projection New made at path.
func (m *Model) baseLinear(path string) *nn.Linear { return m.base[path].(*nn.Linear) }

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// DType is the element type of the parameters.
func (m *Model) DType() graph.DType { return m.dtype }

// VocabSize is the number of token ids, the width of the logits.
func (m *Model) VocabSize() int { return m.cfg.VocabSize }

// BaseParams lists GPT-2's own parameters in the order of a Hugging Face
// checkpoint: wte, wpe, then for each block ln_1, attn.c_attn, attn.c_proj,
// ln_2, mlp.c_fc, mlp.c_proj (weight before bias), then ln_f. These are what
// Save writes and Load reads, whatever wrappers SetLayer installed.
func (m *Model) BaseParams() []*graph.Param {
	ps := []*graph.Param{m.WTE.Weight, m.WPE.Weight}
	for i, blk := range m.H {
		p := "h." + strconv.Itoa(i)
		ps = append(ps, blk.Ln1.Params()...)
		ps = append(ps, m.base[p+".attn.c_attn"].Params()...)
		ps = append(ps, m.base[p+".attn.c_proj"].Params()...)
		ps = append(ps, blk.Ln2.Params()...)
		ps = append(ps, m.base[p+".mlp.c_fc"].Params()...)
		ps = append(ps, m.base[p+".mlp.c_proj"].Params()...)
	}
	return append(ps, m.LnF.Params()...)
}

// Params lists every parameter the model's graph uses, each once: those of
// the token lookup (WTE's weight, plus a wrapper's own), wpe, each block's
// ln_1, attention projections, ln_2 and MLP projections as the current
// layers report them (LoRA wrappers add their A and B), and ln_f. Without
// wrappers it equals BaseParams. A trainer updates those that are Trainable.
func (m *Model) Params() []*graph.Param {
	ps := append([]*graph.Param(nil), m.tokens.Params()...)
	ps = append(ps, m.WTE.Weight, m.WPE.Weight) // WTE: the LM head's weight, whatever the lookup reports
	for _, blk := range m.H {
		ps = append(ps, nn.Collect(blk.Ln1, blk.Attn, blk.Ln2, blk.MLP)...)
	}
	return nn.Unique(append(ps, m.LnF.Params()...))
}

// Layers lists the layers LoRA can wrap, in this order: "wte" (the token
// lookup; its Forward takes a node of ids), then for each block i
// "h.{i}.attn.c_attn", "h.{i}.attn.c_proj", "h.{i}.mlp.c_fc" and
// "h.{i}.mlp.c_proj".
func (m *Model) Layers() []nn.NamedLayer {
	out := []nn.NamedLayer{{Path: "wte", Layer: m.tokens}}
	for i, blk := range m.H {
		p := "h." + strconv.Itoa(i)
		out = append(out,
			nn.NamedLayer{Path: p + ".attn.c_attn", Layer: blk.Attn.CAttn},
			nn.NamedLayer{Path: p + ".attn.c_proj", Layer: blk.Attn.CProj},
			nn.NamedLayer{Path: p + ".mlp.c_fc", Layer: blk.MLP.CFc},
			nn.NamedLayer{Path: p + ".mlp.c_proj", Layer: blk.MLP.CProj},
		)
	}
	return out
}

// SetLayer puts l at path, one of the paths Layers lists. A wrapper at "wte"
// changes only the token lookup: the LM head keeps using WTE's weight.
// Passing the layer New made (from BaseLayer) restores it.
func (m *Model) SetLayer(path string, l nn.Layer) error {
	if l == nil {
		return fmt.Errorf("gpt: set layer %s: nil layer", path)
	}
	if path == "wte" {
		m.tokens = l
		return nil
	}
	i, field, err := m.splitPath(path)
	if err != nil {
		return fmt.Errorf("gpt: set layer: %w", err)
	}
	blk := m.H[i]
	switch field {
	case "attn.c_attn":
		blk.Attn.CAttn = l
	case "attn.c_proj":
		blk.Attn.CProj = l
	case "mlp.c_fc":
		blk.MLP.CFc = l
	case "mlp.c_proj":
		blk.MLP.CProj = l
	}
	return nil
}

// BaseLayer returns the layer New made at path (an *nn.Embedding for "wte",
// an *nn.Linear otherwise), whatever SetLayer has put there since.
func (m *Model) BaseLayer(path string) (nn.Layer, error) {
	l, ok := m.base[path]
	if !ok {
		return nil, fmt.Errorf("gpt: base layer: unknown path %q (want \"wte\" or h.{i}.attn.c_attn, h.{i}.attn.c_proj, h.{i}.mlp.c_fc, h.{i}.mlp.c_proj with i < %d)", path, m.cfg.NLayer)
	}
	return l, nil
}

// blockFields are the replaceable layers of a block, by path inside it.
var blockFields = []string{"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}

// splitPath parses "h.{i}.{field}" for a replaceable field.
func (m *Model) splitPath(path string) (int, string, error) {
	i, field, ok := nn.SplitLayerPath(path, "h.", len(m.H), blockFields)
	if !ok {
		return 0, "", fmt.Errorf("unknown layer path %q (want \"wte\" or h.{i}.attn.c_attn, h.{i}.attn.c_proj, h.{i}.mlp.c_fc, h.{i}.mlp.c_proj with i < %d)", path, m.cfg.NLayer)
	}
	return i, field, nil
}

// replaced lists the paths whose layer is not the one New made.
func (m *Model) replaced() []string { return nn.Replaced(m.Layers(), m.base) }

// Logits builds the forward pass for batch sequences of ctx tokens:
// ids is an integer node [batch·ctx] (sequence b's token t at row b·ctx + t)
// and the result is [batch·ctx, VocabSize], the logits of the next token at
// every position. Position t of every sequence uses wpe row t. A ctx larger
// than BlockSize, or ids of another shape, gives a failed node whose error
// says so (see graph's error rules). The graph is ids' builder's.
func (m *Model) Logits(ids *graph.Node, batch, ctx int) *graph.Node {
	return m.Head(m.hidden(ids, batch, ctx)) // [B·T, V]
}

// hidden is the last block's output [batch·ctx, d], the input of Head.
func (m *Model) hidden(ids *graph.Node, batch, ctx int) *graph.Node {
	if err := ids.Err(); err != nil {
		return ids
	}
	b := ids.Builder()
	if batch <= 0 || ctx <= 0 {
		return failNode(b, fmt.Errorf("gpt: logits: batch %d and context %d, want both > 0", batch, ctx))
	}
	if ctx > m.cfg.BlockSize {
		return failNode(b, fmt.Errorf("gpt: logits: context %d exceeds the model's BlockSize %d", ctx, m.cfg.BlockSize))
	}
	if s := ids.Shape(); len(s) != 1 || s[0] != batch*ctx {
		return failNode(b, fmt.Errorf("gpt: logits: ids %s has shape %v, want [%d] (batch %d × context %d)", ids.Name(), s, batch*ctx, batch, ctx))
	}
	pos := make([]int, batch*ctx) // 0 … ctx−1, once per sequence
	for i := range pos {
		pos[i] = i % ctx
	}

	x := m.Embed(ids, b.IntConstant("pos", pos, batch*ctx)) // [B·T, d]
	return nn.Blocks(x, len(m.H), m.recompute, func(i int, x *graph.Node) *graph.Node {
		return m.H[i].Forward(x, batch) // [B·T, d]
	})
}

// Loss builds the masked mean next-token cross-entropy of Logits against
// targets (an integer node [batch·ctx]), with row weights mask (a float node
// [batch·ctx], or nil for all ones) and label smoothing ε (see
// graph.SoftmaxCrossEntropy). The result is a scalar node. With
// SetLossInBlocks the head and the loss are one graph.LinearCrossEntropy.
func (m *Model) Loss(ids, targets, mask *graph.Node, batch, ctx int, smoothing float64) *graph.Node {
	if !m.lossBlocks {
		return graph.SoftmaxCrossEntropy(m.Logits(ids, batch, ctx), targets, mask, smoothing)
	}
	x := m.hidden(ids, batch, ctx)
	if err := x.Err(); err != nil {
		return x
	}
	w := x.Builder().Param(m.WTE.Weight) // the tied head
	return graph.LinearCrossEntropy(m.LnF.Forward(x), w, targets, mask, smoothing)
}

// Embed returns the input of the first block, dropout(wte[ids] + wpe[pos]),
// for integer nodes ids and pos of the same shape [N]: → [N, d]. The token
// lookup goes through the layer at "wte" (a LoRA wrapper, if one is set).
func (m *Model) Embed(ids, pos *graph.Node) *graph.Node {
	if err := ids.Err(); err != nil {
		return ids
	}
	tok := m.tokens.Forward(ids) // [N, d]
	p := m.WPE.Forward(pos)      // [N, d]
	x := graph.Add(tok, p)       // [N, d]
	return graph.Dropout(x, m.cfg.EmbdDropout)
}

// Forward runs the block on x [B·T, d], batch sequences of T positions
// each, causally: → [B·T, d].
func (blk *Block) Forward(x *graph.Node, batch int) *graph.Node {
	x = graph.Add(x, blk.Attn.Forward(blk.Ln1.Forward(x), batch)) // x + attn(ln_1(x))
	return graph.Add(x, blk.MLP.Forward(blk.Ln2.Forward(x)))      // x + mlp(ln_2(x))
}

// Head returns the logits ln_f(x)·wteᵀ for x [N, d]: → [N, V]. The head is
// tied to the base token embedding.
func (m *Model) Head(x *graph.Node) *graph.Node {
	if err := x.Err(); err != nil {
		return x
	}
	h := m.LnF.Forward(x)                                         // [N, d]
	return graph.LinearT(h, x.Builder().Param(m.WTE.Weight), nil) // [N, d]·[V, d]ᵀ → [N, V]
}

// failNode returns a failed node of b carrying err.
func failNode(b *graph.Builder, err error) *graph.Node { return b.Fail(err) }
