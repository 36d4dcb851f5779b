package gpt

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Config is the shape and regularisation of a GPT-2 model. The field names
// follow nanoGPT; Hugging Face's config.json names are given in brackets.
// The zero Config is not a model (it has no layers): New and Validate
// report the first size that is missing. Start from Preset ("nano",
// "gpt2", …) and change fields.
type Config struct {
	NLayer       int     // transformer blocks [n_layer]
	NHead        int     // attention heads per block; must divide NEmbd [n_head]
	NEmbd        int     // model width d [n_embd]
	BlockSize    int     // longest context, the rows of wpe [n_positions]
	VocabSize    int     // rows of wte, columns of the logits [vocab_size]
	LayerNormEps float64 // ε of every LayerNorm; GPT-2 uses 1e-5 [layer_norm_epsilon]
	EmbdDropout  float64 // dropout on token + position embeddings [embd_pdrop]
	ResidDropout float64 // dropout on each block's attention and MLP output [resid_pdrop]
	AttnDropout  float64 // dropout on the attention probabilities [attn_pdrop]
	Tokenizer    string  // "bytes" or "gpt2" (for NewTokenizer), "hf": the folder's Hugging Face files (TokenizerHF), or "none": ids only
}

// presets are the named configurations. The three small ones use the
// "bytes" tokenizer (257 ids) and are meant for tests, examples and training
// from scratch on a CPU; "gpt2" and "gpt2-medium" are the shapes of OpenAI's
// 124M and 355M checkpoints (the dropouts are those of their config.json).
var presets = map[string]Config{
	// minGPT's gpt-nano: 3 layers, 3 heads, 48 dims (≈ 0.1M parameters).
	"nano": {NLayer: 3, NHead: 3, NEmbd: 48, BlockSize: 128, VocabSize: 257, LayerNormEps: 1e-5, Tokenizer: "bytes"},
	"micro": {NLayer: 4, NHead: 4, NEmbd: 128, BlockSize: 256, VocabSize: 257, LayerNormEps: 1e-5,
		EmbdDropout: 0.1, ResidDropout: 0.1, AttnDropout: 0.1, Tokenizer: "bytes"},
	"mini": {NLayer: 6, NHead: 6, NEmbd: 192, BlockSize: 256, VocabSize: 257, LayerNormEps: 1e-5,
		EmbdDropout: 0.1, ResidDropout: 0.1, AttnDropout: 0.1, Tokenizer: "bytes"},
	"gpt2": {NLayer: 12, NHead: 12, NEmbd: 768, BlockSize: 1024, VocabSize: 50257, LayerNormEps: 1e-5,
		EmbdDropout: 0.1, ResidDropout: 0.1, AttnDropout: 0.1, Tokenizer: "gpt2"},
	"gpt2-medium": {NLayer: 24, NHead: 16, NEmbd: 1024, BlockSize: 1024, VocabSize: 50257, LayerNormEps: 1e-5,
		EmbdDropout: 0.1, ResidDropout: 0.1, AttnDropout: 0.1, Tokenizer: "gpt2"},
}

// TokenizerNone names a model that reads token ids directly, with no text
// tokenizer: any VocabSize is allowed, and commands that need text refuse it.
const TokenizerNone = "none"

// Preset returns the configuration called name (see PresetNames):
//
//	name         layers  heads  d     context  vocab   tokenizer  dropout
//	nano         3       3      48    128      257     bytes      0
//	micro        4       4      128   256      257     bytes      0.1
//	mini         6       6      192   256      257     bytes      0.1
//	gpt2         12      12     768   1024     50257   gpt2       0.1
//	gpt2-medium  24      16     1024  1024     50257   gpt2       0.1
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("gpt: unknown preset %q (want one of %v)", name, PresetNames())
	}
	return c, nil
}

// PresetNames lists the preset names, smallest model first.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := presets[names[i]], presets[names[j]]
		return a.NumParams() < b.NumParams()
	})
	return names
}

// NumParams is the number of parameters of a model of this shape, the tied
// LM head counted once: 124,439,808 for "gpt2".
func (c Config) NumParams() int {
	d := c.NEmbd
	block := 2*2*d + // ln_1, ln_2
		d*3*d + 3*d + // attn.c_attn
		d*d + d + // attn.c_proj
		d*4*d + 4*d + // mlp.c_fc
		4*d*d + d // mlp.c_proj
	return c.VocabSize*d + c.BlockSize*d + c.NLayer*block + 2*d
}

// Validate reports the first problem with c: a size that is not positive,
// NEmbd not divisible by NHead, a LayerNorm ε that is not a finite value
// ≥ 0, a dropout outside [0, 1), or a tokenizer that is unknown or has more
// ids than VocabSize.
func (c Config) Validate() error {
	if err := c.validate(goName); err != nil {
		return fmt.Errorf("gpt: config: %w", err)
	}
	return nil
}

// ValidateAs is Validate with each value named the way the user gave it:
// name(field, value) renders a Config field (by its Go name, e.g. "NEmbd")
// and its value, so that a command-line tool says "--embd 50" and a
// config.json reader "n_embd 50". The error has no "gpt: " prefix.
func (c Config) ValidateAs(name func(field string, value any) string) error {
	return c.validate(name)
}

// goName renders a field as Go code names it: "NEmbd = 50".
func goName(field string, v any) string { return fmt.Sprintf("%s = %v", field, v) }

// HFName renders a field as config.json names it: "n_embd 50".
func HFName(field string, v any) string {
	keys := map[string]string{"NLayer": "n_layer", "NHead": "n_head", "NEmbd": "n_embd", "BlockSize": "n_positions",
		"VocabSize": "vocab_size", "LayerNormEps": "layer_norm_epsilon", "EmbdDropout": "embd_pdrop",
		"ResidDropout": "resid_pdrop", "AttnDropout": "attn_pdrop", "Tokenizer": tokenizerKey}
	if k, ok := keys[field]; ok {
		field = k
	}
	return fmt.Sprintf("%s %v", field, v)
}

func (c Config) validate(name func(string, any) string) error {
	for _, f := range []struct {
		name string
		v    int
	}{{"NLayer", c.NLayer}, {"NHead", c.NHead}, {"NEmbd", c.NEmbd}, {"BlockSize", c.BlockSize}, {"VocabSize", c.VocabSize}} {
		if f.v <= 0 {
			return fmt.Errorf("%s: want > 0", name(f.name, f.v))
		}
	}
	if c.NEmbd%c.NHead != 0 {
		return fmt.Errorf("%s is not divisible by %s (each head takes an equal share of the width)", name("NEmbd", c.NEmbd), name("NHead", c.NHead))
	}
	if math.IsNaN(c.LayerNormEps) || math.IsInf(c.LayerNormEps, 0) || c.LayerNormEps < 0 {
		return fmt.Errorf("%s: want a finite value ≥ 0", name("LayerNormEps", c.LayerNormEps))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"EmbdDropout", c.EmbdDropout}, {"ResidDropout", c.ResidDropout}, {"AttnDropout", c.AttnDropout}} {
		if !(f.v >= 0 && f.v < 1) {
			return fmt.Errorf("%s: want 0 ≤ p < 1", name(f.name, f.v))
		}
	}
	if c.Tokenizer == "" {
		return fmt.Errorf(`%s: empty (want "bytes", "gpt2", "hf" or "none")`, name("Tokenizer", `""`))
	}
	if c.Tokenizer == TokenizerNone || c.Tokenizer == TokenizerHF {
		return nil
	}
	tok, err := NewTokenizer(c.Tokenizer)
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "gpt: "))
	}
	if v := tok.VocabSize(); v > c.VocabSize {
		return fmt.Errorf("tokenizer %q has %d ids but %s", c.Tokenizer, v, name("VocabSize", c.VocabSize))
	}
	return nil
}
