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
//	tr, err := trainers.New(host, cfg)          // train the host: Inject changed it in place
//	an, err := m.Analyze("h.0.attn.c_attn", "q", lora.DefaultAdapter) // ΔW of part q, as plain values
//	err = m.Save("adapter", lora.DefaultAdapter) // adapter_config.json + adapter_model.safetensors
//	err = m.Merge()                            // W ← W + s·A·B: no extra cost at inference
//
// # The graph a layer builds
//
// A wrapper adds its update to the graph from generic nodes of package
// graph, and Gorgonia's symbolic differentiation derives every gradient;
// no op of package graph knows about LoRA. For a Linear with input x:
//
//	y  = Linear(x, W, b)                                 // W, b frozen: never differentiated
//	xd = Dropout(x, p)                                   // x itself when p = 0
//	y  = Add(y, Scale(MatMul(MatMul(xd, A), B), s))      // whole output
//	y  = AddCols(y, Scale(MatMul(MatMul(xd, A_j), B_j), s), o_j)  // per part of a fused layer
//
// An Embedding adds Scale(MatMul(Embedding(A, ids), B), s) to
// Embedding(E, ids). With rows routed to K adapters, adapter k's update is
// ScaleRows(update, RowMask(rows, k, −1, K)) before it is added.
//
// # DoRA
//
// Config.DoRA adds a trained magnitude m per output column (Liu et al.
// 2024), computed as PEFT does: g = m / ‖W + s·A·B‖ (column norms, through
// graph.Detach: a constant for backpropagation) and
//
//	y = g ⊙ (x·W + s·(x·A)·B) + b             [N, in] → [N, out]
//
// built as AddBias(ScaleCols(…, Div(m, Detach(L2Norm(W + s·A·B, 0)))), b);
// with LoRA dropout, PEFT's x·W + b + (g − 1) ⊙ xd·W + g ⊙ s·(xd·A)·B. m
// starts at ‖W + s·A·B‖, so g = 1. Merge gives W ← g ⊙ (W + s·A·B). On a
// fused layer adapted on some parts, m covers every column of the layer (as
// PEFT computes DoRA on the block-form file). dora.go is the worked example
// of a variant written as a composition of nodes: no kernel, no gradient.
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
// read when a graph is compiled. Every change of the state (Merge,
// Unmerge, SetActive, Disable, Enable, adding, loading or deleting an
// adapter, routing rows, unloading) advances the Model's graph.Generation,
// so a program built before refuses to run with an error wrapping
// graph.ErrStale rather than computing the old structure (a merged ΔW
// counted twice, a switched adapter's update). The Trainer, gpt's
// Generator and experiments.Forward compile again by themselves.
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
// compact form here. A DoRA adapter has "use_dora": true and each layer's
// magnitude under <path>.lora_magnitude_vector [out]. Loading checks everything before it changes anything.
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
