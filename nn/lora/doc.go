// Package lora is low-rank adaptation (Hu et al. 2021, arXiv 2106.09685) for
// golora models: wrappers that add trainable rank-r updates to frozen
// layers, injection by target names, merge and unmerge, named adapters,
// weighted combinations, per-row adapters, PEFT-compatible adapter files
// and the paper's Section 7 analyses.
//
// # Overview
//
// A Linear layer y = x·W + b (W [in, out], golora's layout) becomes
//
//	y = x·W + b + s·(dropout(x)·A)·B        [N, in] → [N, out]
//
// with W and b frozen, A [in, r] and B [r, out] trainable, and
// s = α/r (α/√r with rsLoRA). B starts at 0, so ΔW = s·A·B = 0 and the
// adapted model computes exactly what the base model computes. An
// embedding y = E[ids] gets y = E[ids] + s·A[ids]·B with A [V, r] starting
// at 0 and B [r, d] random. A fused projection such as GPT-2's c_attn
// (output columns q | k | v) can be adapted on some parts only, each with
// its own A_j [in, r] and B_j [r, d]: the paper's GPT-2 setting, "q,v".
//
//	host := …                                  // any nn.Host, e.g. a GPT-2
//	m, err := lora.Inject(host, lora.PaperGPT2()) // r=4, α=32 on q and v
//	fmt.Println(m.Report())                    // trainable params: … || all params: … || trainable%: …
//	// build graphs from host, train the parameters whose Trainable is set
//	err = m.Save("adapter", lora.DefaultAdapter) // adapter_config.json + adapter_model.safetensors
//	err = m.Merge()                            // W ← W + s·A·B: no extra cost at inference
//
// # Models and adapters
//
// Inject (or NewModel then AddAdapter) resolves a Config's targets against
// the host's layers (nn.Host), replaces each target by a *Linear or
// *Embedding wrapper through host.SetLayer and returns a *Model, which
// keeps every wrapper, every adapter and every parameter's Trainable flag
// in step: base weights are always frozen, the active adapter's A and B
// train, and so do the biases and modules its Config names. A Model holds
// any number of named adapters (AddAdapter, LoadAdapter, SetActive,
// DeleteAdapter, AddWeightedAdapter); Forward uses the active one, or the
// one each row is routed to (SetRowAdapters).
//
// Merge adds the active adapter's ΔW into W and Unmerge subtracts it;
// both are explicit calls, guarded so that neither can run twice. Disable
// and Enable switch every adapter off and on without touching W.
//
// Graphs read the state (active adapter, merged, disabled, routing) when
// they are built and parameter values when they run; Trainable flags are
// read when a graph is compiled. Build and compile again after changing
// the state.
//
// # Files
//
// Save and Load use PEFT's adapter folder: adapter_config.json and
// adapter_model.safetensors with keys
// base_model.model.transformer.<path>.lora_A.weight [r, in] and
// .lora_B.weight [out, r] (golora's A and B transposed at the boundary).
// "transformer." is GPT-2's Model.KeyPrefix; a host with a PEFTKeyPrefix
// method sets its own (Llama-family models: "", their layer paths being
// Hugging Face's full module paths, so keys read
// base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight).
// A q,v adapter is written as the equivalent rank-2r update of the whole
// c_attn, which PEFT loads, with a "golora" config key that restores the
// compact form here. Loading checks everything before it changes anything.
// docs/formats-adapters.md describes the format; docs/lora.md the maths.
//
// # Errors
//
// Every function returns an error for bad input (a target that matches no
// layer, a damaged file, a second Merge), with the name of the target,
// file or tensor at fault; nothing panics on user input, and a failed
// operation leaves the model as it was. ErrAlreadyMerged, ErrNotMerged,
// ErrUnknownAdapter and ErrUnloaded can be tested with errors.Is.
package lora
