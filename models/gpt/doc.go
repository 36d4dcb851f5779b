// Package gpt is GPT-2 in golora: its configuration and presets, the model
// built on golora's graph and nn packages, Hugging Face checkpoint I/O, the
// tokenizers ("bytes" and GPT-2's byte-level BPE) and text generation.
//
// # Overview
//
// A Config fixes the shape (NLayer blocks of width NEmbd with NHead heads, a
// context of BlockSize tokens, VocabSize ids) and the dropouts; Preset gives
// the named ones ("nano", "micro", "mini", "gpt2", "gpt2-medium"). New
// allocates a Model, Init draws GPT-2's initial weights from a seeded
// source, Load reads a Hugging Face folder and Save writes one:
//
//	cfg, _ := gpt.Preset("nano")
//	m, err := gpt.New(cfg, graph.Float32)
//	err = m.Init(graph.NewRand(seed))
//	m, err = gpt.Load("gpt2", graph.Float32) // a folder from the hub
//
// # The model
//
// For batch sequences of T tokens (rows b·T + t), with d = NEmbd:
//
//	x = dropout(wte[ids] + wpe[t])                 [B·T, d]
//	for each block h.i:
//	    x = x + attn(ln_1(x))                      causal, NHead heads, scale 1/√(d/NHead)
//	    x = x + mlp(ln_2(x))                       d → 4d → d, tanh GELU
//	logits = ln_f(x)·wteᵀ                          [B·T, V], the head tied to wte
//
// where attn(h) = dropout(c_proj(attention(c_attn(h)))) with c_attn's output
// columns q | k | v, and mlp(h) = dropout(c_proj(GELU(c_fc(h)))). Weights are
// [in, out] (y = x·W + b), GPT-2's own layout, so parameter values are the
// checkpoint's tensors as they are. Logits builds this graph; Loss adds the
// masked, label-smoothed cross-entropy. A Model is what golora's trainers
// need: Params, Logits and VocabSize.
//
// Embed, Block.Forward and Head are the three stages of Logits, exported for
// code that drives the blocks itself (a decoder with a key/value cache can
// call a block's Ln1, Attn.CAttn, Attn.CProj, Ln2 and MLP one by one).
//
// # LoRA
//
// Model implements nn.Host: Layers lists "wte" (the token lookup) and, for
// every block, "h.{i}.attn.c_attn", "h.{i}.attn.c_proj", "h.{i}.mlp.c_fc"
// and "h.{i}.mlp.c_proj"; SetLayer replaces one by a wrapper, which is how
// package lora injects adapters. The LM head always uses the base wte
// weight, even when the lookup is wrapped. BaseParams and BaseLayer give the
// model's own parameters and layers whatever is wrapped.
//
// # Files
//
// A model folder is a Hugging Face GPT-2 folder: config.json (GPT2Config's
// keys plus "golora_tokenizer") and model.safetensors (the BaseParams under
// their names, optionally prefixed "transformer."). A folder that ships
// tokenizer.json, or vocab.json and merges.txt, uses them (tokenizer "hf",
// read by package tokenizer; LoadTokenizer, Model.Tokenizer), and Save
// writes them back. See Load for what is accepted and Save for what is
// written.
//
// # Errors
//
// Constructors and file functions return errors that name the config field,
// file or tensor at fault. Graph-building methods (Logits, Loss, Embed,
// Head) follow package graph's rule: a problem gives a failed node whose
// error Compile reports.
//
// # Memory
//
// ModelBytes, TrainBytes, DecoderBytes and GenerateBytes estimate what a
// model, a training step or evaluation batch, and a generation hold (every
// graph node owns its output: the sum of the node sizes, plus a margin).
// Load and Generate compare them with the memory available and return an
// error wrapping ErrTooLarge rather than allocate what cannot fit.
package gpt
