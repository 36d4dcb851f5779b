// Package nn holds the layers golora's models are built from: Linear,
// Embedding, LayerNorm, Dropout, MLP and CausalSelfAttention (GPT-2), and
// RMSNorm, GatedMLP and GroupedAttention (Llama-family decoders: RMSNorm,
// a SiLU-gated MLP, grouped-query attention with rotary embeddings).
//
// # Overview
//
// A layer is a struct with exported *graph.Param fields. Its parameters are
// named by dotted paths equal to the Hugging Face GPT-2 keys ("h.0.mlp.c_fc"
// gives "h.0.mlp.c_fc.weight" and "h.0.mlp.c_fc.bias"), and Params lists them
// in a fixed, documented order. Constructors (New…) fix shapes and fill the
// values deterministically (zeros, or ones for LayerNorm scales); Init methods
// draw values from a *rand.Rand the caller seeds.
//
// Forward methods add the layer to the graph of their input node:
//
//	h := mlp.Forward(ln.Forward(x)) // [N, d] → [N, d]
//
// Weights use the [in, out] layout everywhere (y = x·W + b), GPT-2's own.
// The Llama-family modules are named by Hugging Face's module paths
// ("model.layers.0.self_attn.q_proj"); their checkpoints store Linear
// weights [out, in], which models/llama transposes when reading and writing.
//
// # LoRA
//
// Projections inside composite layers (MLP, CausalSelfAttention) are held
// through the Layer interface, so package lora can replace a *Linear by a
// wrapper that adds trainable low-rank matrices next to the frozen weight.
package nn
