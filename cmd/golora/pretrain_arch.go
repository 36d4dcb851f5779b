package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/models/llama"
)

// pretrainArchs are the values of pretrain's --arch: GPT-2 and the
// Llama-family model types (mistral has the same layers as llama).
func pretrainArchs() []string { return append([]string{"gpt2"}, llama.Archs()...) }

// pretrainShape returns the model pretrain builds: --arch and --preset
// give the shape (a Llama-family preset is llama-nano or llama-micro, and
// "nano" or "micro" name them with a Llama --arch), and the size flags
// change it. For qwen2 the preset gets Qwen2's q, k, v biases, for qwen3
// its per-head q/k norms.
func pretrainShape(arch, preset string, layers, heads, embd, blockSize int, dropout float64) (modelShape, error) {
	if arch == "" {
		arch = "gpt2"
		if strings.HasPrefix(preset, "llama-") || preset == "smollm2-135M" {
			arch = llama.ArchLlama
		}
	}
	if !slices.Contains(pretrainArchs(), arch) {
		return nil, usagef("--arch %q: want one of %s", arch, strings.Join(pretrainArchs(), ", "))
	}
	for _, o := range []struct {
		name string
		v    int
	}{{"layers", layers}, {"heads", heads}, {"embd", embd}, {"block-size", blockSize}} {
		if o.v < 0 {
			return nil, usagef("--%s %d: want ≥ 1 (or 0 for the preset's)", o.name, o.v)
		}
	}
	given := map[string]bool{"layers": layers > 0, "heads": heads > 0, "embd": embd > 0, "block-size": blockSize > 0, "dropout": dropout != -1}
	if arch == "gpt2" {
		cfg, err := gpt.Preset(preset)
		if err != nil {
			return nil, usagef("--preset %q: want one of %s (or --arch llama with nano or micro)", preset, strings.Join(gpt.PresetNames(), ", "))
		}
		for _, o := range []struct {
			v   int
			dst *int
		}{{layers, &cfg.NLayer}, {heads, &cfg.NHead}, {embd, &cfg.NEmbd}, {blockSize, &cfg.BlockSize}} {
			if o.v > 0 {
				*o.dst = o.v
			}
		}
		if dropout != -1 {
			if !(dropout >= 0 && dropout < 1) {
				return nil, usagef("--dropout %v: want in [0, 1)", dropout)
			}
			cfg.EmbdDropout, cfg.ResidDropout, cfg.AttnDropout = dropout, dropout, dropout
		}
		if err := cfg.ValidateAs(presetFlagName(preset, given)); err != nil {
			return nil, usageError{err}
		}
		return gptShape{cfg}, nil
	}
	name := preset
	if !strings.HasPrefix(name, "llama-") && name != "smollm2-135M" {
		name = "llama-" + name
	}
	cfg, err := llama.Preset(name)
	if err != nil {
		return nil, usagef("--preset %q: with --arch %s want nano or micro (llama-nano, llama-micro)", preset, arch)
	}
	if cfg.Tokenizer == llama.TokenizerNone {
		return nil, usagef("--preset %s: a shape for benchmarks, without a tokenizer to read --data; want llama-nano or llama-micro", preset)
	}
	if dropout != -1 {
		return nil, usagef("--dropout: Llama-family models have no dropout (--arch %s)", arch)
	}
	cfg.Arch = arch
	switch arch {
	case llama.ArchQwen2:
		cfg.QKVBias = true
	case llama.ArchQwen3:
		cfg.QKNorm = true
	}
	if layers > 0 {
		cfg.NumLayers = layers
	}
	if embd > 0 {
		// The MLP keeps the preset's width ratio, rounded to a multiple of 8.
		cfg.Intermediate = max(8, (embd*cfg.Intermediate/cfg.Hidden+4)/8*8)
		cfg.Hidden = embd
	}
	if heads > 0 {
		cfg.Heads = heads
		if heads%cfg.KVHeads != 0 {
			cfg.KVHeads = heads
		}
	}
	if blockSize > 0 {
		cfg.MaxPositions = blockSize
	}
	switch {
	case cfg.Hidden%cfg.Heads != 0:
		return nil, usagef("--embd %d is not divisible by --heads %d", cfg.Hidden, cfg.Heads)
	case cfg.Hidden/cfg.Heads%2 != 0:
		return nil, usagef("--embd %d / --heads %d = %d: rotary embeddings need an even head width", cfg.Hidden, cfg.Heads, cfg.Hidden/cfg.Heads)
	}
	if err := cfg.Validate(); err != nil {
		return nil, usagef("--arch %s --preset %s%s: %v", arch, preset, sizeFlags(layers, heads, embd, blockSize), err)
	}
	return llamaShape{cfg}, nil
}

// sizeFlags renders the size flags given, for messages.
func sizeFlags(layers, heads, embd, blockSize int) string {
	var s string
	for _, o := range []struct {
		name string
		v    int
	}{{"layers", layers}, {"heads", heads}, {"embd", embd}, {"block-size", blockSize}} {
		if o.v > 0 {
			s += fmt.Sprintf(" --%s %d", o.name, o.v)
		}
	}
	return s
}

// newRandom builds a model of shape s with random weights drawn from seed
// as its architecture initialises them.
func newRandom(s modelShape, seed uint64) (*loadedModel, error) {
	switch s := s.(type) {
	case gptShape:
		m, err := gpt.New(s.c, graph.Float32)
		if err != nil {
			return nil, err
		}
		if err := m.Init(graph.NewRand(seed)); err != nil {
			return nil, err
		}
		return &loadedModel{m, s}, nil
	case llamaShape:
		m, err := llama.New(s.c, graph.Float32)
		if err != nil {
			return nil, err
		}
		if err := m.Init(graph.NewRand(seed)); err != nil {
			return nil, err
		}
		return &loadedModel{m, s}, nil
	}
	return nil, fmt.Errorf("no model of shape %T", s)
}

// tokenizerName is the tokenizer a preset trains with ("bytes").
func tokenizerName(s modelShape) string {
	switch s := s.(type) {
	case gptShape:
		return s.c.Tokenizer
	case llamaShape:
		return s.c.Tokenizer
	}
	return ""
}
