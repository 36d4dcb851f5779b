package nn

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/golora/golora/graph"
)

// Module is anything that owns parameters.
type Module interface {
	// Params lists the module's parameters in a fixed order.
	Params() []*graph.Param
}

// Layer maps activations [N, in] to [N, out]: a projection that a LoRA
// wrapper can stand in for.
type Layer interface {
	Module
	Forward(x *graph.Node) *graph.Node
}

var (
	_ Layer = (*Linear)(nil)
	_ Layer = (*LayerNorm)(nil)
	_ Layer = (*MLP)(nil)
	_ Layer = (*Dropout)(nil)
	_ Layer = (*Embedding)(nil)
)

// Collect concatenates the parameters of ms in order.
func Collect(ms ...Module) []*graph.Param {
	var out []*graph.Param
	for _, m := range ms {
		out = append(out, m.Params()...)
	}
	return out
}

// Unique returns ps without repeats, each parameter where it first appears
// (a tied weight that two modules report is listed once).
func Unique(ps []*graph.Param) []*graph.Param {
	seen := make(map[*graph.Param]bool, len(ps))
	out := ps[:0:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// SetTrainable sets the Trainable flag of every parameter in ps.
func SetTrainable(ps []*graph.Param, on bool) {
	for _, p := range ps {
		p.Trainable = on
	}
}

// ParamMap indexes ps by name; a repeated name is an error.
func ParamMap(ps []*graph.Param) (map[string]*graph.Param, error) {
	m := make(map[string]*graph.Param, len(ps))
	for _, p := range ps {
		if _, dup := m[p.Name]; dup {
			return nil, fmt.Errorf("nn: parameter name %q used twice", p.Name)
		}
		m[p.Name] = p
	}
	return m, nil
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Linear is y = x·W + b with W [in, out] and an optional b [out].
type Linear struct {
	Name   string       // dotted path, e.g. "h.0.attn.c_attn"
	Weight *graph.Param // [in, out], named Name+".weight"
	Bias   *graph.Param // [out], named Name+".bias"; nil for none
}

// NewLinear returns a zero Linear layer of dtype dt. Sizes must be
// positive: a zero or negative one is a programmer error and panics, as
// graph.NewParam does (model configs check their sizes before this).
func NewLinear(name string, dt graph.DType, in, out int, bias bool) *Linear {
	l := &Linear{Name: name, Weight: graph.NewParam(join(name, "weight"), dt, in, out)}
	if bias {
		l.Bias = graph.NewParam(join(name, "bias"), dt, out)
	}
	return l
}

// In is the input width.
func (l *Linear) In() int { return l.Weight.Shape()[0] }

// Out is the output width.
func (l *Linear) Out() int { return l.Weight.Shape()[1] }

// Init draws W from N(0, std²) and zeroes b (GPT-2 uses std 0.02).
func (l *Linear) Init(rng *rand.Rand, std float64) {
	graph.InitNormal(l.Weight, rng, std)
	if l.Bias != nil {
		l.Bias.Zero()
	}
}

// Forward computes x·W + b: [N, in] → [N, out].
func (l *Linear) Forward(x *graph.Node) *graph.Node {
	if x.Err() != nil {
		return x
	}
	b := x.Builder()
	var bias *graph.Node
	if l.Bias != nil {
		bias = b.Param(l.Bias)
	}
	return graph.Linear(x, b.Param(l.Weight), bias)
}

// Params returns [weight, bias] (bias omitted when nil).
func (l *Linear) Params() []*graph.Param {
	if l.Bias == nil {
		return []*graph.Param{l.Weight}
	}
	return []*graph.Param{l.Weight, l.Bias}
}

// Embedding looks up rows of a table: ids [N] → [N, d].
type Embedding struct {
	Name   string
	Weight *graph.Param // [vocab, d], named Name+".weight"
}

// NewEmbedding returns a zero embedding table of dtype dt.
func NewEmbedding(name string, dt graph.DType, vocab, d int) *Embedding {
	return &Embedding{Name: name, Weight: graph.NewParam(join(name, "weight"), dt, vocab, d)}
}

// Init draws the table from N(0, std²).
func (e *Embedding) Init(rng *rand.Rand, std float64) { graph.InitNormal(e.Weight, rng, std) }

// Forward gathers the rows of ids (an integer input [N]): → [N, d].
func (e *Embedding) Forward(ids *graph.Node) *graph.Node {
	if ids.Err() != nil {
		return ids
	}
	return graph.Embedding(ids.Builder().Param(e.Weight), ids)
}

// Params returns [weight].
func (e *Embedding) Params() []*graph.Param { return []*graph.Param{e.Weight} }

// LayerNorm normalises over the last axis: (x − μ)/√(σ² + eps)·γ + β.
type LayerNorm struct {
	Name   string
	Weight *graph.Param // γ [d], named Name+".weight", starts at 1
	Bias   *graph.Param // β [d], named Name+".bias", starts at 0
	Eps    float64
}

// NewLayerNorm returns γ = 1, β = 0.
func NewLayerNorm(name string, dt graph.DType, d int, eps float64) *LayerNorm {
	ln := &LayerNorm{Name: name, Weight: graph.NewParam(join(name, "weight"), dt, d), Bias: graph.NewParam(join(name, "bias"), dt, d), Eps: eps}
	graph.InitConstant(ln.Weight, 1)
	return ln
}

// Forward normalises x [N, d] → [N, d].
func (ln *LayerNorm) Forward(x *graph.Node) *graph.Node {
	if x.Err() != nil {
		return x
	}
	b := x.Builder()
	return graph.LayerNorm(x, b.Param(ln.Weight), b.Param(ln.Bias), ln.Eps)
}

// Params returns [weight, bias].
func (ln *LayerNorm) Params() []*graph.Param { return []*graph.Param{ln.Weight, ln.Bias} }

// Dropout zeroes each element with probability P in training runs and scales
// the rest by 1/(1−P). It has no parameters.
type Dropout struct{ P float64 }

// Forward applies dropout to x.
func (d *Dropout) Forward(x *graph.Node) *graph.Node {
	if x.Err() != nil {
		return x
	}
	return graph.Dropout(x, d.P)
}

// Params returns nil.
func (d *Dropout) Params() []*graph.Param { return nil }

// MLP is GPT-2's feed-forward block: Dropout(c_proj(GELU(c_fc(x)))).
type MLP struct {
	Name    string
	CFc     Layer   // [d, 4d], named Name+".c_fc"
	CProj   Layer   // [4d, d], named Name+".c_proj"
	Dropout float64 // residual dropout after c_proj
}

// NewMLP returns an MLP of width d with hidden width hidden (GPT-2: 4d).
func NewMLP(name string, dt graph.DType, d, hidden int, dropout float64) *MLP {
	return &MLP{
		Name:    name,
		CFc:     NewLinear(join(name, "c_fc"), dt, d, hidden, true),
		CProj:   NewLinear(join(name, "c_proj"), dt, hidden, d, true),
		Dropout: dropout,
	}
}

// Forward maps x [N, d] → [N, d].
func (m *MLP) Forward(x *graph.Node) *graph.Node {
	h := graph.GELU(m.CFc.Forward(x)) // [N, hidden]
	return graph.Dropout(m.CProj.Forward(h), m.Dropout)
}

// Params returns c_fc's then c_proj's parameters.
func (m *MLP) Params() []*graph.Param { return Collect(m.CFc, m.CProj) }

// CausalSelfAttention is GPT-2's attention block with a fused q|k|v
// projection: c_proj(attention(c_attn(x))), then residual dropout.
type CausalSelfAttention struct {
	Name         string
	CAttn        Layer // [d, 3d], named Name+".c_attn"; output columns q | k | v
	CProj        Layer // [d, d], named Name+".c_proj"
	Heads        int
	AttnDropout  float64 // on the attention probabilities
	ResidDropout float64 // after c_proj
}

// NewCausalSelfAttention returns a block of width d with the given heads.
func NewCausalSelfAttention(name string, dt graph.DType, d, heads int, attnDropout, residDropout float64) *CausalSelfAttention {
	return &CausalSelfAttention{
		Name:         name,
		CAttn:        NewLinear(join(name, "c_attn"), dt, d, 3*d, true),
		CProj:        NewLinear(join(name, "c_proj"), dt, d, d, true),
		Heads:        heads,
		AttnDropout:  attnDropout,
		ResidDropout: residDropout,
	}
}

// Forward maps x [batch·T, d] (batch sequences of T positions, row-major) to
// [batch·T, d]; position t attends to positions ≤ t of its own sequence.
func (a *CausalSelfAttention) Forward(x *graph.Node, batch int) *graph.Node {
	qkv := a.CAttn.Forward(x)                                            // [B·T, 3d]
	att := graph.CausalSelfAttention(qkv, batch, a.Heads, a.AttnDropout) // [B·T, d]
	return graph.Dropout(a.CProj.Forward(att), a.ResidDropout)
}

// Params returns c_attn's then c_proj's parameters.
func (a *CausalSelfAttention) Params() []*graph.Param { return Collect(a.CAttn, a.CProj) }

// NamedLayer is a layer and its dotted path in a model ("h.0.attn.c_attn").
type NamedLayer struct {
	Path  string
	Layer Layer
}

// Host is a model whose layers can be listed by path and replaced: what LoRA
// injection needs. An Embedding is a Layer too (its input is a node of ids).
type Host interface {
	Module
	// Layers lists the replaceable layers in a fixed order.
	Layers() []NamedLayer
	// SetLayer puts l at path, replacing what was there; an unknown path is an
	// error.
	SetLayer(path string, l Layer) error
}

// SplitLayerPath parses prefix + "{i}.{field}", the path of a replaceable
// layer inside block i ("h.3.attn.c_attn" with prefix "h."): i must be
// written in canonical decimal and be below blocks, and field must be one of
// fields. ok is false for any other path. Hosts use it in SetLayer.
func SplitLayerPath(path, prefix string, blocks int, fields []string) (i int, field string, ok bool) {
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return 0, "", false
	}
	num, field, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, "", false
	}
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 || i >= blocks || strconv.Itoa(i) != num || !slices.Contains(fields, field) {
		return 0, "", false
	}
	return i, field, true
}

// Replaced lists, in the order of layers, the paths whose layer is no longer
// base[path], the layer the host was built with: the layers SetLayer
// replaced (by LoRA injection, say).
func Replaced(layers []NamedLayer, base map[string]Layer) []string {
	var out []string
	for _, l := range layers {
		if l.Layer != base[l.Path] {
			out = append(out, l.Path)
		}
	}
	return out
}
