package llama

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
)

// The config.json files of real checkpoints (values as published).
const (
	llama32Config = `{"architectures":["LlamaForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":128000,
"eos_token_id":128001,"head_dim":64,"hidden_act":"silu","hidden_size":2048,"initializer_range":0.02,"intermediate_size":8192,
"max_position_embeddings":131072,"mlp_bias":false,"model_type":"llama","num_attention_heads":32,"num_hidden_layers":16,
"num_key_value_heads":8,"pretraining_tp":1,"rms_norm_eps":1e-05,"rope_scaling":{"factor":32.0,"high_freq_factor":4.0,
"low_freq_factor":1.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},"rope_theta":500000.0,
"tie_word_embeddings":true,"torch_dtype":"bfloat16","transformers_version":"4.45.0.dev0","use_cache":true,"vocab_size":128256}`
	qwen25Config = `{"architectures":["Qwen2ForCausalLM"],"attention_dropout":0.0,"bos_token_id":151643,"eos_token_id":151643,
"hidden_act":"silu","hidden_size":896,"initializer_range":0.02,"intermediate_size":4864,"max_position_embeddings":32768,
"max_window_layers":24,"model_type":"qwen2","num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,
"rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":32768,"tie_word_embeddings":true,"torch_dtype":"bfloat16",
"use_cache":true,"use_sliding_window":false,"vocab_size":151936}`
	qwen3Config = `{"architectures":["Qwen3ForCausalLM"],"attention_bias":false,"attention_dropout":0.0,"bos_token_id":151643,
"eos_token_id":151645,"head_dim":128,"hidden_act":"silu","hidden_size":1024,"initializer_range":0.02,"intermediate_size":3072,
"max_position_embeddings":40960,"max_window_layers":28,"model_type":"qwen3","num_attention_heads":16,"num_hidden_layers":28,
"num_key_value_heads":8,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000,"sliding_window":null,
"tie_word_embeddings":true,"torch_dtype":"bfloat16","use_cache":true,"use_sliding_window":false,"vocab_size":151936}`
	mistralConfig = `{"architectures":["MistralForCausalLM"],"bos_token_id":1,"eos_token_id":2,"hidden_act":"silu","hidden_size":4096,
"initializer_range":0.02,"intermediate_size":14336,"max_position_embeddings":32768,"model_type":"mistral","num_attention_heads":32,
"num_hidden_layers":32,"num_key_value_heads":8,"rms_norm_eps":1e-05,"rope_theta":10000.0,"sliding_window":4096,
"tie_word_embeddings":false,"torch_dtype":"bfloat16","use_cache":true,"vocab_size":32000}`
	// transformers v5 writes the rotary settings into rope_parameters.
	llama3V5Config = `{"model_type":"llama","hidden_size":2048,"intermediate_size":8192,"num_attention_heads":32,"num_hidden_layers":16,
"num_key_value_heads":8,"vocab_size":128256,"max_position_embeddings":131072,"rms_norm_eps":1e-05,"tie_word_embeddings":true,
"bos_token_id":128000,"eos_token_id":[128001,128008,128009],"rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,
"factor":32.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}`
)

func TestParseRealConfigs(t *testing.T) {
	llama3 := graph.RoPEConfig{Theta: 500000, Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}
	cases := []struct {
		name   string
		json   string
		check  func(c Config) bool
		params int
	}{
		{"Llama-3.2-1B", llama32Config, func(c Config) bool {
			return c.Arch == ArchLlama && c.HeadDim == 64 && c.KVHeads == 8 && c.RoPE == llama3 && c.TieEmbeddings &&
				!c.QKVBias && c.BOS == 128000 && reflect.DeepEqual(c.EOS, []int{128001}) && c.SlidingWindow == 0 && c.RMSNormEps == 1e-5
		}, 1_235_814_400},
		{"Llama 3 in v5 layout", llama3V5Config, func(c Config) bool {
			return c.RoPE == llama3 && reflect.DeepEqual(c.EOS, []int{128001, 128008, 128009}) && c.HeadDim == 64
		}, 1_235_814_400},
		{"Qwen2.5-0.5B", qwen25Config, func(c Config) bool {
			return c.Arch == ArchQwen2 && c.QKVBias && !c.OBias && c.HeadDim == 64 && c.RoPE == graph.RoPEConfig{Theta: 1e6} &&
				c.SlidingWindow == 0 && c.TieEmbeddings && c.RMSNormEps == 1e-6
		}, 494_032_768},
		{"Qwen3-0.6B", qwen3Config, func(c Config) bool {
			return c.Arch == ArchQwen3 && c.QKNorm && c.HeadDim == 128 && !c.QKVBias && reflect.DeepEqual(c.EOS, []int{151645}) && c.ContextSize() == 40960
		}, 0},
		{"Mistral-7B", mistralConfig, func(c Config) bool {
			return c.Arch == ArchMistral && c.SlidingWindow == 4096 && c.ContextSize() == 4096 && !c.TieEmbeddings && c.HeadDim == 128
		}, 7_241_732_096},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseConfig([]byte(c.json), false)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(cfg) {
				t.Errorf("parsed %+v", cfg)
			}
			if c.params > 0 && cfg.NumParams() != c.params {
				t.Errorf("%d parameters, want %d", cfg.NumParams(), c.params)
			}
		})
	}
}

// TestConfigDefaults checks transformers' defaults for absent keys,
// including Qwen3's head_dim of 128 and Mistral's window of 4096.
func TestConfigDefaults(t *testing.T) {
	base := `"hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":100`
	for _, c := range []struct {
		arch                        string
		headDim, kv, maxPos, window int
	}{{"llama", 16, 4, 2048, 0}, {"qwen2", 16, 4, 32768, 0}, {"qwen3", 128, 4, 32768, 0}, {"mistral", 16, 4, 131072, 4096}} {
		cfg, err := parseConfig([]byte(`{"model_type":"`+c.arch+`",`+base+`}`), false)
		if err != nil {
			t.Fatalf("%s: %v", c.arch, err)
		}
		if cfg.HeadDim != c.headDim || cfg.KVHeads != c.kv || cfg.MaxPositions != c.maxPos || cfg.SlidingWindow != c.window ||
			cfg.RMSNormEps != 1e-6 || cfg.RoPE.Theta != 10000 || cfg.TieEmbeddings || cfg.BOS != -1 || cfg.EOS != nil {
			t.Errorf("%s: defaults %+v", c.arch, cfg)
		}
	}
	// Qwen with use_sliding_window: the window applies when a layer at or
	// past max_window_layers exists.
	for _, c := range []struct {
		extra  string
		window int
	}{{`"use_sliding_window":true,"sliding_window":64,"max_window_layers":1`, 64},
		{`"use_sliding_window":true,"sliding_window":64,"max_window_layers":2`, 0},
		{`"use_sliding_window":true,"sliding_window":64,"max_window_layers":0`, 64},
		{`"sliding_window":64,"layer_types":["full_attention","sliding_attention"]`, 64},
		{`"sliding_window":null,"use_sliding_window":true,"max_window_layers":0`, 0}} {
		cfg, err := parseConfig([]byte(`{"model_type":"qwen2",`+base+`,`+c.extra+`}`), false)
		if err != nil || cfg.SlidingWindow != c.window {
			t.Errorf("%s: window %d (%v), want %d", c.extra, cfg.SlidingWindow, err, c.window)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	base := `"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_attention_heads":4,"num_hidden_layers":2,"vocab_size":100`
	cases := []struct {
		name, json, want string
	}{
		{"not JSON", `{`, "not a model config"},
		{"no model_type", `{"hidden_size":64}`, "no model_type"},
		{"gpt2", `{"model_type":"gpt2"}`, `model_type "gpt2" is not a Llama-family`},
		{"missing size", `{"model_type":"llama","hidden_size":64}`, "no num_hidden_layers"},
		{"yarn", `{` + base + `,"rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":4096}}`, `rope_scaling: scaling rule "yarn" is not supported`},
		{"dynamic (old key)", `{` + base + `,"rope_scaling":{"type":"dynamic","factor":2.0}}`, `"dynamic"`},
		{"longrope in v5", `{` + base + `,"rope_parameters":{"rope_type":"longrope","rope_theta":10000.0}}`, `rope_parameters: scaling rule "longrope"`},
		{"linear without factor", `{` + base + `,"rope_scaling":{"type":"linear"}}`, "needs factor"},
		{"llama3 without bands", `{` + base + `,"rope_scaling":{"rope_type":"llama3","factor":8.0}}`, "low_freq_factor"},
		{"partial rotary", `{` + base + `,"partial_rotary_factor":0.5}`, "partial_rotary_factor"},
		{"attention factor", `{` + base + `,"rope_scaling":{"rope_type":"linear","factor":2.0,"attention_factor":0.5}}`, "attention_factor"},
		{"gelu", `{` + base + `,"hidden_act":"gelu"}`, `hidden_act "gelu"`},
		{"attention dropout", `{` + base + `,"attention_dropout":0.1}`, "attention_dropout"},
		{"odd head", `{` + base + `,"head_dim":9}`, "odd"},
		{"eos type", `{` + base + `,"eos_token_id":"</s>"}`, "eos_token_id"},
		{"eos outside vocab", `{` + base + `,"eos_token_id":[2,100]}`, "EOS[1] = 100"},
		{"layer types", `{` + base + `,"layer_types":["full_attention","linear_attention"]}`, `layer_types[1] = "linear_attention"`},
		{"layer types count", `{` + base + `,"layer_types":["full_attention"]}`, "layer_types has 1 entries"},
		{"per-layer rope differs", `{` + base + `,"rope_parameters":{"full_attention":{"rope_type":"default","rope_theta":1e6},"sliding_attention":{"rope_type":"default","rope_theta":1e4}}}`, "different rotary"},
		{"window type", `{` + base + `,"sliding_window":"big"}`, "sliding_window"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig([]byte(c.json), false)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
	// The same rotary embedding for every layer type is accepted.
	cfg, err := parseConfig([]byte(`{`+base+`,"rope_parameters":{"full_attention":{"rope_type":"default","rope_theta":1e6},"sliding_attention":{"rope_type":"default","rope_theta":1e6}}}`), false)
	if err != nil || cfg.RoPE.Theta != 1e6 {
		t.Errorf("per-layer rope, all equal: %v, %+v", err, cfg.RoPE)
	}
	// rope_scaling wins over rope_parameters, as in transformers v5.
	cfg, err = parseConfig([]byte(`{`+base+`,"rope_theta":100.0,"rope_scaling":{"rope_type":"linear","factor":2.0},"rope_parameters":{"rope_type":"default","rope_theta":7.0}}`), false)
	if err != nil || cfg.RoPE != (graph.RoPEConfig{Theta: 100, Type: "linear", Factor: 2}) {
		t.Errorf("rope_scaling and rope_parameters: %v, %+v", err, cfg.RoPE)
	}
}

// TestConfigRoundTrip writes each architecture's config and reads it back.
func TestConfigRoundTrip(t *testing.T) {
	for _, arch := range archs {
		c := tinyConfig(arch)
		c.HeadDim = c.HeadWidth()
		c.EOS = []int{2, 5}
		c.Tokenizer = "bytes"
		c.VocabSize = 300
		if arch == ArchLlama {
			c.QKVBias, c.OBias, c.MLPBias = true, true, true
		}
		if arch == ArchQwen2 {
			c.SlidingWindow = 12
		}
		raw, err := marshalConfig(c, "float32")
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseConfig(raw, false)
		if err != nil {
			t.Fatalf("%s: %v\n%s", arch, err, raw)
		}
		got.InitStd, c.InitStd = 0, 0
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", arch, got, c)
		}
		var keys map[string]any
		_ = json.Unmarshal(raw, &keys)
		if keys["architectures"].([]any)[0] != architectures[arch] || keys["torch_dtype"] != "float32" {
			t.Errorf("%s: architectures %v, torch_dtype %v", arch, keys["architectures"], keys["torch_dtype"])
		}
	}
}

// FuzzParseConfig feeds config.json variants to the parser: it must return
// a valid config or an error, never panic.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{llama32Config, qwen25Config, qwen3Config, mistralConfig, llama3V5Config, `{"model_type":"llama"}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := parseConfig(raw, false)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed an invalid config: %v", err)
		}
		if c.NumParams() <= 0 {
			t.Fatalf("%d parameters", c.NumParams())
		}
		if _, err := marshalConfig(c, "float32"); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParseGeneration does the same for generation_config.json.
func FuzzParseGeneration(f *testing.F) {
	for _, s := range []string{`{"eos_token_id": [1, 2], "do_sample": true, "top_k": 20}`, `{"num_beams": 3}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		g, err := parseGeneration(raw)
		if err != nil {
			return
		}
		g.Options()
		if _, err := g.marshal(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestModelType(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ json, want string }{{qwen3Config, "qwen3"}, {`{"model_type":"gpt2","n_layer":2}`, "gpt2"}, {`{"n_layer":2}`, ""}} {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(c.json), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ModelType(dir)
		if err != nil || got != c.want {
			t.Errorf("model type %q, %v; want %q", got, err, c.want)
		}
	}
	_ = os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`[`), 0o644)
	if _, err := ModelType(dir); err == nil {
		t.Error("a broken config.json accepted")
	}
	if _, err := ModelType(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing folder accepted")
	}
	if !slices.Contains(Archs(), ArchQwen2) || len(Archs()) != 4 {
		t.Errorf("Archs() = %v", Archs())
	}
}
