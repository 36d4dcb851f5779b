// Package llama is golora's Llama-family decoder: the architecture of
// Hugging Face model_type llama (Llama 2 and 3, SmolLM2, TinyLlama, …),
// mistral, qwen2 (Qwen2, Qwen2.5) and qwen3, with its configuration and
// presets, Hugging Face folder I/O (sharded and BF16 checkpoints,
// generation_config.json) and generation.
//
// # Overview
//
// A Config fixes the shape; Preset gives the named ones ("llama-nano",
// "llama-micro", "smollm2-135M"). New allocates a Model, Init draws
// transformers' initial weights from a seeded source, Load reads a Hugging
// Face folder and Save writes one:
//
//	m, err := llama.Load("SmolLM2-135M", graph.Float32) // a folder from the hub
//	cfg, _ := llama.Preset("llama-nano")
//	m, err = llama.New(cfg, graph.Float32)
//	err = m.Init(graph.NewRand(seed))
//
// # The model
//
// For batch sequences of T tokens (rows b·T + t), d = hidden_size,
// hd = head_dim, H query heads and KV key/value heads:
//
//	x = embed_tokens[ids]                                  [B·T, d]
//	for each layer model.layers.i:
//	    h = RMSNorm(x)·w                                   input_layernorm: x·rsqrt(mean(x²)+ε)·w
//	    q = h·Wq (+bq), k = h·Wk (+bk), v = h·Wv (+bv)     [B·T, H·hd], [B·T, KV·hd] ×2
//	    q, k = RMSNorm per head (q_norm, k_norm)           Qwen3 only
//	    q, k = RoPE(q, t), RoPE(k, t)                      rotate-half, θ = rope_theta, scaling rule
//	    a = softmax(q·kᵀ/√hd, causal)·v                    query head j reads kv head j/(H/KV)
//	    x = x + a·Wo (+bo)
//	    x = x + down(SiLU(gate(RMSNorm(x))) ⊙ up(RMSNorm(x)))   post_attention_layernorm, gated MLP
//	logits = RMSNorm(x)·W_head                             model.norm, then lm_head or embed_tokensᵀ
//
// following transformers' modeling code: RMSNorm normalises before it
// scales; the rotary frequencies are θ^(−2i/hd) with the linear or llama3
// rule (graph.RoPEConfig); biases are Qwen2's q, k, v ones (or Llama's and
// Qwen3's attention_bias, Llama's mlp_bias); the head is tied or separate.
// Weights are held [in, out] (y = x·W, golora's layout) and transposed
// from and to the checkpoints' [out, in] at the file boundary. Logits
// builds this graph, Loss adds the masked cross-entropy; a Model is what
// golora's trainers need (Params, Logits, VocabSize).
//
// # What is refused
//
// golora implements full causal attention, rotary embeddings on whole
// heads and the default, linear and llama3 frequency rules. A config.json
// asking for anything else is an error naming the key: other rope types
// (dynamic, yarn, longrope, …), partial_rotary_factor ≠ 1, a hidden_act
// other than silu, attention_dropout ≠ 0, layer types other than full or
// sliding attention. A sliding window (Mistral, or Qwen with
// use_sliding_window) is accepted but contexts longer than the window are
// refused (ContextSize), since within it the window changes nothing.
//
// # LoRA
//
// Model implements nn.Host with Hugging Face's module paths:
// "model.embed_tokens", "model.layers.{i}.self_attn.{q,k,v,o}_proj",
// "model.layers.{i}.mlp.{gate,up,down}_proj" and, untied, "lm_head". So
// PEFT's target names work ("q_proj", "v_proj", "all-linear", which leaves
// lm_head out, "embed_tokens", "lm_head"), and PEFTKeyPrefix gives adapter
// keys as PEFT writes them:
// base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight [r, in].
//
// # Tokenizer
//
// A folder's tokenizer.json is read with package tokenizer (Config.Tokenizer
// "hf"); presets use golora's byte tokenizer ("bytes") or ids ("none").
// Model.Tokenizer and LoadTokenizer return it as a gpt.Tokenizer, and Save
// writes its files back.
//
// # Generation
//
// Model implements gpt.Decodable, so package gpt's decoder, key/value
// cache, sampler and beam search run it (NewDecoder, NewGenerator,
// Generate); the cache holds the KV heads only. Generation stops at any of
// the eos ids (generation_config.json's, else config.json's);
// GenerationConfig.Options turns a generation_config.json into decoding
// options.
//
// # Errors
//
// Constructors and file functions return errors that name the config key,
// file or tensor at fault, and never a half-loaded model. Graph-building
// methods (Logits, Loss, Head) follow package graph's rule: a problem gives
// a failed node whose error Compile reports.
package llama
