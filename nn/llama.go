package nn

import (
	"fmt"

	"github.com/golora/golora/graph"
)

// The modules of Llama-family decoders (Llama, Mistral, Qwen2, Qwen3):
// RMSNorm, the gated SiLU MLP and grouped-query attention with rotary
// embeddings. Their parameter names are Hugging Face's module paths
// ("model.layers.0.self_attn.q_proj" gives "….q_proj.weight"), but their
// weights keep golora's [in, out] layout: a checkpoint's [out, in] Linear
// weights are transposed when they are read (see models/llama).

var (
	_ Layer = (*RMSNorm)(nil)
	_ Layer = (*GatedMLP)(nil)
)

// RMSNorm scales each row of x by the inverse of its root mean square and a
// learnt weight: y = w ⊙ x/√(mean(x²) + eps) (see graph.RMSNorm).
type RMSNorm struct {
	Name   string
	Weight *graph.Param // [d], named Name+".weight", starts at 1
	Eps    float64
}

// NewRMSNorm returns an RMSNorm of width d with w = 1.
func NewRMSNorm(name string, dt graph.DType, d int, eps float64) *RMSNorm {
	n := &RMSNorm{Name: name, Weight: graph.NewParam(join(name, "weight"), dt, d), Eps: eps}
	graph.InitConstant(n.Weight, 1)
	return n
}

// Forward normalises x [N, k·d] in groups of d: → [N, k·d]. k = 1 is a row
// norm; a head-width weight with k = heads normalises each head (Qwen3).
func (n *RMSNorm) Forward(x *graph.Node) *graph.Node {
	if x.Err() != nil {
		return x
	}
	return graph.RMSNorm(x, x.Builder().Param(n.Weight), n.Eps)
}

// Params returns [weight].
func (n *RMSNorm) Params() []*graph.Param { return []*graph.Param{n.Weight} }

// GatedMLP is the feed-forward block of Llama-family models (SwiGLU):
//
//	down_proj(SiLU(gate_proj(x)) ⊙ up_proj(x))
//
// with gate_proj, up_proj [d, hidden] and down_proj [hidden, d].
type GatedMLP struct {
	Name     string
	GateProj Layer // [d, hidden], named Name+".gate_proj"
	UpProj   Layer // [d, hidden], named Name+".up_proj"
	DownProj Layer // [hidden, d], named Name+".down_proj"
}

// NewGatedMLP returns a zero gated MLP of width d and hidden width hidden;
// bias gives all three projections a bias (Llama's mlp_bias).
func NewGatedMLP(name string, dt graph.DType, d, hidden int, bias bool) *GatedMLP {
	return &GatedMLP{
		Name:     name,
		GateProj: NewLinear(join(name, "gate_proj"), dt, d, hidden, bias),
		UpProj:   NewLinear(join(name, "up_proj"), dt, d, hidden, bias),
		DownProj: NewLinear(join(name, "down_proj"), dt, hidden, d, bias),
	}
}

// Forward maps x [N, d] → [N, d].
func (m *GatedMLP) Forward(x *graph.Node) *graph.Node {
	h := graph.Mul(graph.SiLU(m.GateProj.Forward(x)), m.UpProj.Forward(x)) // [N, hidden]
	return m.DownProj.Forward(h)                                           // [N, d]
}

// Params returns gate_proj's, up_proj's, then down_proj's parameters.
func (m *GatedMLP) Params() []*graph.Param { return Collect(m.GateProj, m.UpProj, m.DownProj) }

// AttentionConfig is the shape of a grouped-query attention block. Heads,
// KVHeads and HeadDim have no default: the zero value is no block, and
// NewGroupedAttention panics on it as graph.NewParam does on a zero size (a
// programmer error; llama.Config.Validate checks the sizes a checkpoint
// gives). The other fields' zero values are off: no biases, no q/k norms,
// plain RoPE with graph.RoPEConfig's defaults.
type AttentionConfig struct {
	Heads   int // query heads H
	KVHeads int // key/value heads KV; must divide Heads
	HeadDim int // width hd of every head (even, for RoPE)
	// QKVBias gives q_proj, k_proj and v_proj a bias (Qwen2; Llama's
	// attention_bias), OBias gives one to o_proj (Llama's attention_bias).
	QKVBias, OBias bool
	// QKNorm adds Qwen3's per-head RMSNorms q_norm and k_norm [hd], applied
	// to the queries and keys before the rotary embedding, with ε NormEps.
	QKNorm  bool
	NormEps float64
	// RoPE is the rotary embedding of queries and keys.
	RoPE graph.RoPEConfig
}

// GroupedAttention is the self-attention block of Llama-family models:
//
//	q = q_proj(x), k = k_proj(x), v = v_proj(x)       [N, H·hd], [N, KV·hd], [N, KV·hd]
//	q, k = q_norm(q), k_norm(k)                       per head (Qwen3 only)
//	q, k = RoPE(q, pos), RoPE(k, pos)
//	y = o_proj(GQA(q, k, v))                          causal, scale 1/√hd → [N, d]
type GroupedAttention struct {
	Name  string
	QProj Layer    // [d, H·hd], named Name+".q_proj"
	KProj Layer    // [d, KV·hd], named Name+".k_proj"
	VProj Layer    // [d, KV·hd], named Name+".v_proj"
	OProj Layer    // [H·hd, d], named Name+".o_proj"
	QNorm *RMSNorm // [hd], named Name+".q_norm"; nil without QKNorm
	KNorm *RMSNorm // [hd], named Name+".k_norm"; nil without QKNorm
	Cfg   AttentionConfig
}

// NewGroupedAttention returns a zero attention block of model width d.
func NewGroupedAttention(name string, dt graph.DType, d int, c AttentionConfig) *GroupedAttention {
	a := &GroupedAttention{
		Name:  name,
		QProj: NewLinear(join(name, "q_proj"), dt, d, c.Heads*c.HeadDim, c.QKVBias),
		KProj: NewLinear(join(name, "k_proj"), dt, d, c.KVHeads*c.HeadDim, c.QKVBias),
		VProj: NewLinear(join(name, "v_proj"), dt, d, c.KVHeads*c.HeadDim, c.QKVBias),
		OProj: NewLinear(join(name, "o_proj"), dt, c.Heads*c.HeadDim, d, c.OBias),
		Cfg:   c,
	}
	if c.QKNorm {
		a.QNorm = NewRMSNorm(join(name, "q_norm"), dt, c.HeadDim, c.NormEps)
		a.KNorm = NewRMSNorm(join(name, "k_norm"), dt, c.HeadDim, c.NormEps)
	}
	return a
}

// qkv projects x and prepares the queries and keys: q_norm, k_norm (if
// any) and the rotary embedding at positions pos.
func (a *GroupedAttention) qkv(x, pos *graph.Node) (q, k, v *graph.Node) {
	q, k, v = a.QProj.Forward(x), a.KProj.Forward(x), a.VProj.Forward(x) // [N, H·hd], [N, KV·hd] ×2
	if a.QNorm != nil {
		q, k = a.QNorm.Forward(q), a.KNorm.Forward(k)
	}
	c := a.Cfg
	return graph.RoPE(q, pos, c.HeadDim, c.RoPE), graph.RoPE(k, pos, c.HeadDim, c.RoPE), v
}

// Forward maps x [batch·T, d] (batch sequences of T tokens, row-major) at
// positions pos (an integer node [batch·T], usually 0 … T−1 per sequence)
// to [batch·T, d]; token t attends to tokens ≤ t of its own sequence.
func (a *GroupedAttention) Forward(x, pos *graph.Node, batch int) *graph.Node {
	if err := a.check(x); err != nil {
		return err
	}
	q, k, v := a.qkv(x, pos)
	att := graph.GroupedQueryAttention(q, k, v, batch, a.Cfg.Heads, a.Cfg.KVHeads) // [N, H·hd]
	return a.OProj.Forward(att)                                                    // [N, d]
}

// CachedForward is Forward for incremental decoding (see
// graph.CachedGroupedQueryAttention): x [R·T, d] holds T new tokens per row
// at rotary positions pos [R·T], written to the caches kc, vc
// [R·C, KV·hd] at cachePos [R, T] (−1 skips a padding token).
func (a *GroupedAttention) CachedForward(x, pos, cachePos, kc, vc *graph.Node) *graph.Node {
	if err := a.check(x); err != nil {
		return err
	}
	q, k, v := a.qkv(x, pos)
	att := graph.CachedGroupedQueryAttention(q, k, v, kc, vc, cachePos, a.Cfg.Heads, a.Cfg.KVHeads) // [N, H·hd]
	return a.OProj.Forward(att)
}

// check returns a failed node when x is failed or the config is unusable.
func (a *GroupedAttention) check(x *graph.Node) *graph.Node {
	if x.Err() != nil {
		return x
	}
	c := a.Cfg
	if c.Heads <= 0 || c.KVHeads <= 0 || c.Heads%c.KVHeads != 0 || c.HeadDim <= 0 {
		return x.Builder().Fail(fmt.Errorf("nn: attention %s: %d heads, %d key/value heads of width %d: want positive sizes with KV dividing H", a.Name, c.Heads, c.KVHeads, c.HeadDim))
	}
	return nil
}

// Params returns q_proj's, k_proj's, v_proj's and o_proj's parameters,
// then q_norm's and k_norm's when present.
func (a *GroupedAttention) Params() []*graph.Param {
	ms := []Module{a.QProj, a.KProj, a.VProj, a.OProj}
	if a.QNorm != nil {
		ms = append(ms, a.QNorm, a.KNorm)
	}
	return Collect(ms...)
}
