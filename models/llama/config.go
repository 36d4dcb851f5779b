package llama

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/golora/golora/graph"
)

// The Hugging Face model_type values this package reads.
const (
	ArchLlama   = "llama"
	ArchMistral = "mistral"
	ArchQwen2   = "qwen2"
	ArchQwen3   = "qwen3"
)

// Config is the shape of a Llama-family decoder. Hugging Face's config.json
// names are given in brackets; ReadConfig documents how they are read.
// The zero Config is not a model (it has no layers): New reports the
// first size that is missing. Start from a preset or ReadConfig.
type Config struct {
	// Arch is the architecture [model_type]: ArchLlama, ArchMistral,
	// ArchQwen2 or ArchQwen3. It fixes which options a checkpoint of it can
	// have (see Validate).
	Arch         string
	NumLayers    int // decoder layers [num_hidden_layers]
	Hidden       int // model width d [hidden_size]
	Intermediate int // MLP width [intermediate_size]
	Heads        int // query heads H [num_attention_heads]
	KVHeads      int // key/value heads KV; must divide Heads [num_key_value_heads]
	HeadDim      int // width of a head, even [head_dim]; 0 means Hidden/Heads
	VocabSize    int // rows of embed_tokens, columns of the logits [vocab_size]
	MaxPositions int // longest context [max_position_embeddings]
	// RMSNormEps is ε of every RMSNorm [rms_norm_eps].
	RMSNormEps float64
	// RoPE is the rotary embedding: θ and scaling rule [rope_theta and
	// rope_scaling, or transformers v5's rope_parameters].
	RoPE graph.RoPEConfig
	// TieEmbeddings makes the LM head the transposed token embedding
	// [tie_word_embeddings]; otherwise lm_head has its own weight.
	TieEmbeddings bool
	// QKVBias gives q_proj, k_proj and v_proj a bias (Qwen2, and Llama or
	// Qwen3 with attention_bias); OBias gives o_proj one (Llama or Qwen3
	// with attention_bias); MLPBias gives the three MLP projections one
	// (Llama's mlp_bias).
	QKVBias, OBias, MLPBias bool
	// QKNorm adds Qwen3's per-head RMSNorms of queries and keys.
	QKNorm bool
	// SlidingWindow is the attention window of Mistral (and of Qwen2/Qwen3
	// with use_sliding_window), 0 for none. golora does not implement the
	// window: contexts longer than it are refused, and within it the
	// window changes nothing.
	SlidingWindow int
	// BOS is the beginning-of-sequence id, −1 for none [bos_token_id].
	BOS int
	// EOS are the end-of-sequence ids, which end generation
	// [eos_token_id, an id or a list; generation_config.json's wins].
	EOS []int
	// InitStd is the standard deviation of Init's normal weights
	// [initializer_range]; 0 means 0.02.
	InitStd float64
	// Tokenizer names the tokenizer: TokenizerHF ("hf", the folder's
	// tokenizer.json, read with package tokenizer), "bytes" (golora's 257-id
	// byte tokenizer) or TokenizerNone ("none", ids only)
	// [golora_tokenizer; absent: "hf" when the folder has tokenizer files,
	// else "none"].
	Tokenizer string
}

// TokenizerNone names a model that reads token ids directly, with no text
// tokenizer (benchmarks, synthetic tasks).
const TokenizerNone = "none"

// HeadWidth is HeadDim, or Hidden/Heads when HeadDim is 0.
func (c Config) HeadWidth() int {
	if c.HeadDim != 0 {
		return c.HeadDim
	}
	if c.Heads == 0 {
		return 0
	}
	return c.Hidden / c.Heads
}

// ContextSize is the longest context the model runs: MaxPositions, or
// SlidingWindow when that is smaller (longer contexts would need the
// window, which golora does not implement).
func (c Config) ContextSize() int {
	if c.SlidingWindow > 0 && c.SlidingWindow < c.MaxPositions {
		return c.SlidingWindow
	}
	return c.MaxPositions
}

// presets are the named configurations: a tiny Llama-style model for tests,
// examples and `golora pretrain` (golora's byte tokenizer, 257 ids), and the
// shape of SmolLM2-135M for benchmarks (ids only).
var presets = map[string]Config{
	// 3 layers of width 48, 4 query heads sharing 2 key/value heads of width
	// 12: GPT-2 "nano"'s size, with every Llama feature (GQA, RoPE, RMSNorm,
	// SwiGLU, tied head).
	"llama-nano": {Arch: ArchLlama, NumLayers: 3, Hidden: 48, Intermediate: 128, Heads: 4, KVHeads: 2, VocabSize: 257,
		MaxPositions: 128, RMSNormEps: 1e-5, RoPE: graph.RoPEConfig{Theta: 10000}, TieEmbeddings: true,
		BOS: 256, EOS: []int{256}, Tokenizer: "bytes"},
	"llama-micro": {Arch: ArchLlama, NumLayers: 4, Hidden: 128, Intermediate: 352, Heads: 4, KVHeads: 2, VocabSize: 257,
		MaxPositions: 256, RMSNormEps: 1e-5, RoPE: graph.RoPEConfig{Theta: 10000}, TieEmbeddings: true,
		BOS: 256, EOS: []int{256}, Tokenizer: "bytes"},
	// SmolLM2-135M's config.json: 30 layers, d 576, 9 heads, 3 key/value
	// heads, FFN 1536, vocab 49152, θ 1e5, tied, context 8192.
	"smollm2-135M": {Arch: ArchLlama, NumLayers: 30, Hidden: 576, Intermediate: 1536, Heads: 9, KVHeads: 3, VocabSize: 49152,
		MaxPositions: 8192, RMSNormEps: 1e-5, RoPE: graph.RoPEConfig{Theta: 100000}, TieEmbeddings: true,
		BOS: 0, EOS: []int{0}, Tokenizer: TokenizerNone},
}

// Preset returns the configuration called name (see PresetNames):
//
//	name          layers  d    heads/kv  FFN   context  vocab  tokenizer
//	llama-nano    3       48   4/2       128   128      257    bytes
//	llama-micro   4       128  4/2       352   256      257    bytes
//	smollm2-135M  30      576  9/3       1536  8192     49152  none (ids)
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("llama: unknown preset %q (want one of %v)", name, PresetNames())
	}
	c.EOS = slices.Clone(c.EOS)
	return c, nil
}

// PresetNames lists the preset names, smallest model first.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return presets[names[i]].NumParams() < presets[names[j]].NumParams() })
	return names
}

// NumParams is the number of parameters of a model of this shape, a tied
// head counted once: 134,515,008 for "smollm2-135M".
func (c Config) NumParams() int {
	d, hd, f := c.Hidden, c.HeadWidth(), c.Intermediate
	q, kv := c.Heads*hd, c.KVHeads*hd
	block := 2*d + // input_layernorm, post_attention_layernorm
		d*q + 2*d*kv + q*d + // q_proj, k_proj, v_proj, o_proj
		3*d*f // gate_proj, up_proj, down_proj
	if c.QKVBias {
		block += q + 2*kv
	}
	if c.OBias {
		block += d
	}
	if c.MLPBias {
		block += 2*f + d
	}
	if c.QKNorm {
		block += 2 * hd
	}
	n := c.VocabSize*d + c.NumLayers*block + d
	if !c.TieEmbeddings {
		n += c.VocabSize * d
	}
	return n
}

// Validate reports the first problem with c: a size that is not positive,
// heads that do not divide, an odd head width, an ε that is not finite and
// > 0, an unusable RoPE, ids outside the vocabulary, or an option the
// architecture does not have in transformers (so that a saved folder means
// the same there):
//
//	llama    attention_bias covers q, k, v and o (QKVBias = OBias); no QKNorm
//	mistral  no biases, no QKNorm
//	qwen2    q, k, v biases only (QKVBias may be false: transformers then
//	         starts them at zero); no QKNorm, no MLPBias
//	qwen3    QKNorm; attention_bias covers q, k, v and o; no MLPBias
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("llama: config: %w", err)
	}
	return nil
}

func (c Config) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"NumLayers", c.NumLayers}, {"Hidden", c.Hidden}, {"Intermediate", c.Intermediate}, {"Heads", c.Heads},
		{"KVHeads", c.KVHeads}, {"VocabSize", c.VocabSize}, {"MaxPositions", c.MaxPositions}} {
		if f.v <= 0 {
			return fmt.Errorf("%s = %d, want > 0", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name  string
		v, mx int
	}{{"NumLayers", c.NumLayers, 1 << 12}, {"Hidden", c.Hidden, 1 << 20}, {"Intermediate", c.Intermediate, 1 << 22},
		{"Heads", c.Heads, 1 << 16}, {"HeadDim", c.HeadDim, 1 << 16}, {"VocabSize", c.VocabSize, 1 << 24}} {
		if f.v > f.mx {
			return fmt.Errorf("%s = %d is beyond any model golora can hold (at most %d)", f.name, f.v, f.mx)
		}
	}
	hd := c.HeadWidth()
	switch {
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("Heads = %d is not a multiple of KVHeads = %d", c.Heads, c.KVHeads)
	case c.HeadDim < 0:
		return fmt.Errorf("HeadDim = %d, want > 0 (or 0 for Hidden/Heads)", c.HeadDim)
	case c.HeadDim == 0 && c.Hidden%c.Heads != 0:
		return fmt.Errorf("Hidden = %d is not divisible by Heads = %d (set HeadDim)", c.Hidden, c.Heads)
	case hd%2 != 0:
		return fmt.Errorf("head width %d is odd: rotary embeddings need an even width", hd)
	case math.IsNaN(c.RMSNormEps) || math.IsInf(c.RMSNormEps, 0) || c.RMSNormEps <= 0:
		return fmt.Errorf("RMSNormEps = %v, want a finite value > 0", c.RMSNormEps)
	case c.SlidingWindow < 0:
		return fmt.Errorf("SlidingWindow = %d, want ≥ 0", c.SlidingWindow)
	case math.IsNaN(c.InitStd) || math.IsInf(c.InitStd, 0) || c.InitStd < 0:
		return fmt.Errorf("InitStd = %v, want a finite value ≥ 0", c.InitStd)
	}
	if err := c.RoPE.Validate(); err != nil {
		return fmt.Errorf("RoPE: %w", err)
	}
	if c.BOS < -1 || c.BOS >= c.VocabSize {
		return fmt.Errorf("BOS = %d outside [0, %d) (−1 for none)", c.BOS, c.VocabSize)
	}
	for i, e := range c.EOS {
		if e < 0 || e >= c.VocabSize {
			return fmt.Errorf("EOS[%d] = %d outside [0, %d)", i, e, c.VocabSize)
		}
	}
	switch c.Tokenizer {
	case TokenizerHF, "bytes", TokenizerNone:
	default:
		return fmt.Errorf("Tokenizer = %q, want %q (the folder's tokenizer.json), \"bytes\" or %q", c.Tokenizer, TokenizerHF, TokenizerNone)
	}
	if c.Tokenizer == "bytes" && c.VocabSize < 257 {
		return fmt.Errorf("the bytes tokenizer has 257 ids but VocabSize = %d", c.VocabSize)
	}
	return c.archRules()
}

// archRules checks the options against what the architecture can express.
func (c Config) archRules() error {
	no := func(opt string) error {
		return fmt.Errorf("%s has no %s in transformers (model_type %q)", c.Arch, opt, c.Arch)
	}
	switch c.Arch {
	case ArchLlama:
		if c.QKVBias != c.OBias {
			return errors.New("llama's attention_bias covers q, k, v and o_proj together (QKVBias must equal OBias)")
		}
		if c.QKNorm {
			return no("q_norm/k_norm (QKNorm)")
		}
	case ArchMistral:
		switch {
		case c.QKVBias || c.OBias || c.MLPBias:
			return no("attention or MLP biases")
		case c.QKNorm:
			return no("q_norm/k_norm (QKNorm)")
		}
	case ArchQwen2:
		switch {
		case c.OBias:
			return no("o_proj bias")
		case c.MLPBias:
			return no("MLP biases")
		case c.QKNorm:
			return no("q_norm/k_norm (QKNorm)")
		}
	case ArchQwen3:
		switch {
		case !c.QKNorm:
			return errors.New("qwen3 always has q_norm and k_norm (set QKNorm)")
		case c.QKVBias != c.OBias:
			return errors.New("qwen3's attention_bias covers q, k, v and o_proj together (QKVBias must equal OBias)")
		case c.MLPBias:
			return no("MLP biases")
		}
	default:
		return fmt.Errorf("Arch = %q, want %q, %q, %q or %q", c.Arch, ArchLlama, ArchMistral, ArchQwen2, ArchQwen3)
	}
	return nil
}
