package llama

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/tokenizer"
)

// The files of a Hugging Face model folder that this package reads and
// writes.
const (
	ConfigFile           = "config.json"
	GenerationConfigFile = "generation_config.json"
	WeightsFile          = "model.safetensors"
	WeightsIndexFile     = "model.safetensors.index.json"
)

// tokenizerKey records the tokenizer of a model golora trained with its own
// tokenizer; transformers keeps unknown keys and ignores them.
const tokenizerKey = "golora_tokenizer"

// maxJSONSize bounds the JSON files read (real configs are a few kB, shard
// indexes tens of kB).
const maxJSONSize = 64 << 20

// hfConfig is the part of config.json golora reads. Pointers tell an absent
// or null key from a zero; keys that may hold several JSON types are raw.
type hfConfig struct {
	ModelType             *string         `json:"model_type"`
	NumHiddenLayers       *int            `json:"num_hidden_layers"`
	HiddenSize            *int            `json:"hidden_size"`
	IntermediateSize      *int            `json:"intermediate_size"`
	NumAttentionHeads     *int            `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	VocabSize             *int            `json:"vocab_size"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	HiddenAct             *string         `json:"hidden_act"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`
	RopeParameters        json.RawMessage `json:"rope_parameters"`
	PartialRotaryFactor   *float64        `json:"partial_rotary_factor"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               *bool           `json:"mlp_bias"`
	AttentionDropout      *float64        `json:"attention_dropout"`
	SlidingWindow         json.RawMessage `json:"sliding_window"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`
	MaxWindowLayers       *int            `json:"max_window_layers"`
	LayerTypes            []string        `json:"layer_types"`
	BosTokenID            json.RawMessage `json:"bos_token_id"`
	EosTokenID            json.RawMessage `json:"eos_token_id"`
	InitializerRange      *float64        `json:"initializer_range"`
	Tokenizer             *string         `json:"golora_tokenizer"`
}

// archDefaults are transformers' defaults for keys a config.json may leave
// out: max_position_embeddings, sliding_window (Mistral's applies unless
// null; Qwen's only with use_sliding_window) and head_dim (0: hidden/heads;
// Qwen3Config's default is 128).
var archDefaults = map[string]struct{ maxPos, window, headDim int }{
	ArchLlama:   {2048, 0, 0},
	ArchMistral: {4096 * 32, 4096, 0},
	ArchQwen2:   {32768, 4096, 0},
	ArchQwen3:   {32768, 4096, 128},
}

// ReadConfig reads dir's config.json into a Config:
//
//   - model_type must be llama, mistral, qwen2 or qwen3; num_hidden_layers,
//     hidden_size, intermediate_size, num_attention_heads and vocab_size
//     are required; the other keys take transformers' defaults for that
//     model_type when absent (num_key_value_heads: num_attention_heads;
//     head_dim: hidden_size/num_attention_heads, 128 for qwen3;
//     rms_norm_eps 1e-6; rope_theta 10000; tie_word_embeddings false; …).
//   - RoPE comes from rope_theta and rope_scaling (transformers v4) or from
//     rope_parameters (v5; rope_scaling wins when both are given). Rules
//     default, linear and llama3 are implemented; any other (dynamic, yarn,
//     longrope, …) is an error naming it, as is partial_rotary_factor ≠ 1
//     or an attention_factor ≠ 1.
//   - hidden_act must be silu, attention_dropout 0.
//   - Biases: llama and qwen3 read attention_bias (q, k, v and o) and llama
//     mlp_bias; qwen2's q, k, v biases are not in its config: they are set
//     here and Load keeps them only if the checkpoint has them.
//   - sliding_window (mistral, or qwen2/qwen3 with use_sliding_window, or a
//     layer_types list with sliding_attention) becomes SlidingWindow:
//     longer contexts are refused.
//   - eos_token_id may be an id or a list; golora_tokenizer names a
//     tokenizer golora trained the model with ("bytes" or "none"); without
//     it the tokenizer is the folder's files ("hf") when it has them, else
//     "none".
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	raw, err := readSmall(path)
	if err != nil {
		return Config{}, fmt.Errorf("llama: read config: %w", err)
	}
	cfg, err := parseConfig(raw, tokenizer.HasFiles(dir))
	if err != nil {
		return Config{}, fmt.Errorf("llama: read config %s: %w", path, err)
	}
	return cfg, nil
}

// Archs lists the model_type values this package reads.
func Archs() []string { return []string{ArchLlama, ArchMistral, ArchQwen2, ArchQwen3} }

// ModelType returns the model_type of dir's config.json ("" when the key is
// absent), whatever the architecture: what a caller that handles several
// model families reads first to pick the package that loads the folder.
func ModelType(dir string) (string, error) {
	raw, err := readSmall(filepath.Join(dir, ConfigFile))
	if err != nil {
		return "", fmt.Errorf("llama: model type: %w", err)
	}
	var h struct {
		ModelType *string `json:"model_type"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", fmt.Errorf("llama: model type: %s: not a model config: %w", filepath.Join(dir, ConfigFile), err)
	}
	if h.ModelType == nil {
		return "", nil
	}
	return *h.ModelType, nil
}

// readSmall reads a JSON file of at most maxJSONSize bytes.
func readSmall(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxJSONSize {
		return nil, fmt.Errorf("%s: %d bytes, more than a JSON file of this kind needs (%d)", path, st.Size(), maxJSONSize)
	}
	return os.ReadFile(path)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// parseConfig reads a config.json; tokFiles says whether its folder has
// tokenizer files (the tokenizer when golora_tokenizer is absent).
func parseConfig(raw []byte, tokFiles bool) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(raw, &h); err != nil {
		return Config{}, fmt.Errorf("not a model config: %w", err)
	}
	if h.ModelType == nil {
		return Config{}, errors.New("no model_type (want llama, mistral, qwen2 or qwen3)")
	}
	arch := *h.ModelType
	def, ok := archDefaults[arch]
	if !ok {
		return Config{}, fmt.Errorf("model_type %q is not a Llama-family decoder golora reads (llama, mistral, qwen2, qwen3)", arch)
	}
	for _, r := range []struct {
		key string
		v   *int
	}{{"num_hidden_layers", h.NumHiddenLayers}, {"hidden_size", h.HiddenSize}, {"intermediate_size", h.IntermediateSize},
		{"num_attention_heads", h.NumAttentionHeads}, {"vocab_size", h.VocabSize}} {
		if r.v == nil {
			return Config{}, fmt.Errorf("no %s", r.key)
		}
	}
	if h.HiddenAct != nil && *h.HiddenAct != "silu" {
		return Config{}, fmt.Errorf("hidden_act %q: golora's Llama MLP uses silu", *h.HiddenAct)
	}
	if h.AttentionDropout != nil && *h.AttentionDropout != 0 {
		return Config{}, fmt.Errorf("attention_dropout %v: golora's grouped-query attention has no dropout (set it to 0)", *h.AttentionDropout)
	}
	cfg := Config{
		Arch: arch, NumLayers: *h.NumHiddenLayers, Hidden: *h.HiddenSize, Intermediate: *h.IntermediateSize,
		Heads: *h.NumAttentionHeads, KVHeads: *h.NumAttentionHeads, HeadDim: def.headDim, VocabSize: *h.VocabSize,
		MaxPositions: def.maxPos, RMSNormEps: 1e-6, BOS: -1,
	}
	if h.NumKeyValueHeads != nil {
		cfg.KVHeads = *h.NumKeyValueHeads
	}
	if h.HeadDim != nil {
		cfg.HeadDim = *h.HeadDim
	}
	if h.MaxPositionEmbeddings != nil {
		cfg.MaxPositions = *h.MaxPositionEmbeddings
	}
	if h.RMSNormEps != nil {
		cfg.RMSNormEps = *h.RMSNormEps
	}
	if h.TieWordEmbeddings != nil {
		cfg.TieEmbeddings = *h.TieWordEmbeddings
	}
	if h.InitializerRange != nil {
		cfg.InitStd = *h.InitializerRange
	}
	switch {
	case h.Tokenizer != nil:
		cfg.Tokenizer = *h.Tokenizer
	case tokFiles:
		cfg.Tokenizer = TokenizerHF
	default:
		cfg.Tokenizer = TokenizerNone
	}
	attnBias := h.AttentionBias != nil && *h.AttentionBias
	switch arch {
	case ArchLlama:
		cfg.QKVBias, cfg.OBias = attnBias, attnBias
		cfg.MLPBias = h.MLPBias != nil && *h.MLPBias
	case ArchQwen2:
		cfg.QKVBias = true // Qwen2Attention always has them; Load checks the checkpoint
	case ArchQwen3:
		cfg.QKVBias, cfg.OBias, cfg.QKNorm = attnBias, attnBias, true
	}
	var err error
	if cfg.RoPE, err = parseRoPE(h, cfg.MaxPositions); err != nil {
		return Config{}, err
	}
	if cfg.SlidingWindow, err = parseWindow(h, arch, def.window); err != nil {
		return Config{}, err
	}
	if cfg.BOS, err = parseID(h.BosTokenID, "bos_token_id"); err != nil {
		return Config{}, err
	}
	if cfg.EOS, err = parseIDs(h.EosTokenID, "eos_token_id"); err != nil {
		return Config{}, err
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	cfg.HeadDim = cfg.HeadWidth()
	return cfg, nil
}

// parseWindow returns the sliding window that applies, 0 for none.
func parseWindow(h hfConfig, arch string, def int) (int, error) {
	window := def
	if len(h.SlidingWindow) > 0 {
		if isNull(h.SlidingWindow) {
			window = 0
		} else if err := json.Unmarshal(h.SlidingWindow, &window); err != nil || window < 0 {
			return 0, fmt.Errorf("sliding_window %s: want an integer ≥ 0 or null", h.SlidingWindow)
		}
	}
	sliding := arch == ArchMistral
	if arch == ArchQwen2 || arch == ArchQwen3 {
		// Layers max_window_layers … num_hidden_layers−1 use the window
		// (transformers' layer_types; max_window_layers defaults to 28).
		from := 28
		if h.MaxWindowLayers != nil {
			from = *h.MaxWindowLayers
		}
		sliding = h.UseSlidingWindow != nil && *h.UseSlidingWindow && from < *h.NumHiddenLayers
	}
	if h.LayerTypes != nil {
		sliding = false
		for i, t := range h.LayerTypes {
			switch t {
			case "full_attention":
			case "sliding_attention":
				sliding = true
			default:
				return 0, fmt.Errorf("layer_types[%d] = %q: golora's decoder layers are full_attention (or sliding_attention within the window)", i, t)
			}
		}
		if len(h.LayerTypes) != *h.NumHiddenLayers {
			return 0, fmt.Errorf("layer_types has %d entries for %d layers", len(h.LayerTypes), *h.NumHiddenLayers)
		}
	}
	if !sliding {
		return 0, nil
	}
	return window, nil
}

// ropeRule names the scaling rule: rope_type in current configs, type in
// older ones.
type ropeRule struct {
	RopeType *string `json:"rope_type"`
	Type     *string `json:"type"`
}

// ropeKeys are the rope_scaling / rope_parameters keys: the rule and its
// parameters.
type ropeKeys struct {
	ropeRule
	// transformers v5 moves rope_theta and partial_rotary_factor in here.
	RopeTheta *float64 `json:"rope_theta"`
	Partial   *float64 `json:"partial_rotary_factor"`
	// linear: factor; llama3: factor, the two frequency factors and the
	// original context.
	Factor         *float64 `json:"factor"`
	LowFreqFactor  *float64 `json:"low_freq_factor"`
	HighFreqFactor *float64 `json:"high_freq_factor"`
	OriginalMax    *int     `json:"original_max_position_embeddings"`
	// Read to refuse a factor other than 1 (golora scales attention by
	// 1/√head_dim only).
	AttnFactor *float64 `json:"attention_factor"`
}

// parseRoPE reads the rotary embedding from either config layout.
func parseRoPE(h hfConfig, maxPos int) (graph.RoPEConfig, error) {
	source, raw := "rope_parameters", h.RopeParameters
	if !isNull(h.RopeScaling) {
		source, raw = "rope_scaling", h.RopeScaling
	}
	var k ropeKeys
	if !isNull(raw) {
		var err error
		if k, err = decodeRoPE(raw, source); err != nil {
			return graph.RoPEConfig{}, err
		}
	}
	c := graph.RoPEConfig{Theta: 10000, Type: "default"} // transformers' defaults
	switch {
	case k.RopeTheta != nil:
		c.Theta = *k.RopeTheta
	case h.RopeTheta != nil:
		c.Theta = *h.RopeTheta
	}
	switch {
	case k.RopeType != nil:
		c.Type = *k.RopeType
	case k.Type != nil:
		c.Type = *k.Type
	}
	partial := k.Partial
	if partial == nil {
		partial = h.PartialRotaryFactor
	}
	if partial != nil && *partial != 1 {
		return c, fmt.Errorf("partial_rotary_factor %v: golora rotates whole heads (factor 1)", *partial)
	}
	if k.AttnFactor != nil && *k.AttnFactor != 1 {
		return c, fmt.Errorf("%s: attention_factor %v is not supported for rope_type %q", source, *k.AttnFactor, c.Type)
	}
	switch c.Type {
	case "linear", "llama3":
		if k.Factor == nil {
			return c, fmt.Errorf("%s: rope_type %q needs factor", source, c.Type)
		}
		c.Factor = *k.Factor
	}
	if c.Type == "llama3" {
		if k.LowFreqFactor == nil || k.HighFreqFactor == nil {
			return c, fmt.Errorf("%s: rope_type \"llama3\" needs low_freq_factor and high_freq_factor", source)
		}
		c.LowFreqFactor, c.HighFreqFactor = *k.LowFreqFactor, *k.HighFreqFactor
		c.OriginalMaxPositions = maxPos // transformers v5's default
		if k.OriginalMax != nil {
			c.OriginalMaxPositions = *k.OriginalMax
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %s", source, strings.TrimPrefix(err.Error(), "graph: rope: "))
	}
	if c.Type == "default" {
		c.Type = "" // golora's name for no scaling
	}
	return c, nil
}

// decodeRoPE reads one rope dict; transformers v5's per-layer-type form
// ({"full_attention": {…}, "sliding_attention": {…}}) is accepted when every
// layer type has the same parameters.
func decodeRoPE(raw json.RawMessage, source string) (ropeKeys, error) {
	var k ropeKeys
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return k, fmt.Errorf("%s: want an object or null: %v", source, err)
	}
	nested := len(obj) > 0
	for key, v := range obj {
		t := bytes.TrimSpace(v)
		nested = nested && strings.HasSuffix(key, "_attention") && len(t) > 0 && t[0] == '{'
	}
	if !nested {
		if err := json.Unmarshal(raw, &k); err != nil {
			return k, fmt.Errorf("%s: %v", source, err)
		}
		return k, nil
	}
	first := true
	for key, v := range obj {
		var kk ropeKeys
		if err := json.Unmarshal(v, &kk); err != nil {
			return k, fmt.Errorf("%s.%s: %v", source, key, err)
		}
		if !first && !reflect.DeepEqual(kk, k) {
			return k, fmt.Errorf("%s: layer types have different rotary embeddings, which golora does not implement", source)
		}
		k, first = kk, false
	}
	return k, nil
}

// parseID reads an optional token id (−1 when absent or null).
func parseID(raw json.RawMessage, key string) (int, error) {
	if isNull(raw) {
		return -1, nil
	}
	var id int
	if err := json.Unmarshal(raw, &id); err != nil || id < 0 {
		ids, lerr := parseIDs(raw, key)
		if lerr == nil && len(ids) > 0 {
			return ids[0], nil // a list: the first (transformers' generate does the same)
		}
		return 0, fmt.Errorf("%s %s: want a token id", key, raw)
	}
	return id, nil
}

// parseIDs reads an optional id or list of ids.
func parseIDs(raw json.RawMessage, key string) ([]int, error) {
	if isNull(raw) {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		if one < 0 {
			return nil, fmt.Errorf("%s %d: want an id ≥ 0", key, one)
		}
		return []int{one}, nil
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%s %s: want an id or a list of ids", key, raw)
	}
	for _, id := range list {
		if id < 0 {
			return nil, fmt.Errorf("%s %s: want ids ≥ 0", key, raw)
		}
	}
	return list, nil
}

// architectures are the class names transformers records per model_type.
var architectures = map[string]string{
	ArchLlama: "LlamaForCausalLM", ArchMistral: "MistralForCausalLM",
	ArchQwen2: "Qwen2ForCausalLM", ArchQwen3: "Qwen3ForCausalLM",
}

// marshalConfig writes c as a transformers config.json in the classic
// layout (rope_theta and rope_scaling, which transformers v4 and v5 both
// read), with torch_dtype naming the weights' dtype.
func marshalConfig(c Config, torchDType string) ([]byte, error) {
	out := map[string]any{
		"architectures":           []string{architectures[c.Arch]},
		"model_type":              c.Arch,
		"num_hidden_layers":       c.NumLayers,
		"hidden_size":             c.Hidden,
		"intermediate_size":       c.Intermediate,
		"num_attention_heads":     c.Heads,
		"num_key_value_heads":     c.KVHeads,
		"head_dim":                c.HeadWidth(),
		"vocab_size":              c.VocabSize,
		"max_position_embeddings": c.MaxPositions,
		"rms_norm_eps":            c.RMSNormEps,
		"hidden_act":              "silu",
		"rope_theta":              c.RoPE.Theta,
		"rope_scaling":            nil,
		"tie_word_embeddings":     c.TieEmbeddings,
		"attention_dropout":       0.0,
		"initializer_range":       c.InitStd,
		"torch_dtype":             torchDType,
		"use_cache":               true,
	}
	if c.InitStd == 0 {
		out["initializer_range"] = 0.02
	}
	switch c.RoPE.Type {
	case "linear":
		out["rope_scaling"] = map[string]any{"rope_type": "linear", "factor": c.RoPE.Factor}
	case "llama3":
		out["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": c.RoPE.Factor,
			"low_freq_factor": c.RoPE.LowFreqFactor, "high_freq_factor": c.RoPE.HighFreqFactor,
			"original_max_position_embeddings": c.RoPE.OriginalMaxPositions}
	}
	switch c.Arch {
	case ArchLlama:
		out["attention_bias"], out["mlp_bias"] = c.OBias, c.MLPBias
	case ArchQwen3:
		out["attention_bias"] = c.OBias
	}
	window := any(nil)
	if c.SlidingWindow > 0 {
		window = c.SlidingWindow
	}
	switch c.Arch {
	case ArchMistral:
		out["sliding_window"] = window
	case ArchQwen2, ArchQwen3:
		out["use_sliding_window"] = c.SlidingWindow > 0
		out["sliding_window"] = window
		out["max_window_layers"] = 0 // every layer uses the window when it is on
	}
	if c.BOS >= 0 {
		out["bos_token_id"] = c.BOS
	}
	switch len(c.EOS) {
	case 0:
	case 1:
		out["eos_token_id"] = c.EOS[0]
	default:
		out["eos_token_id"] = c.EOS
	}
	if c.Tokenizer != TokenizerHF { // "hf" is what the folder's files say
		out[tokenizerKey] = c.Tokenizer
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// finite reports whether x is neither NaN nor ±Inf.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
