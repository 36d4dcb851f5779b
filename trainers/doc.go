// Package trainers trains any token-level language model built on package
// graph: AdamW with learning-rate schedules, gradient clipping and
// accumulation, masked data for prompt/completion pairs, validation,
// checkpoints that resume a run exactly, and metrics.
//
// # Overview
//
// A model satisfies LanguageModel: it lists its parameters and adds its
// forward pass to a graph.Builder, ids [B·T] → logits [B·T, V]. The trainer
// adds the loss
//
//	loss = Σ_i m_i·ℓ_i / Σ_i m_i,  ℓ_i = (1−ε)·(−log p_i[t_i]) + ε·mean_v(−log p_i[v])
//
// (graph.SoftmaxCrossEntropy, targets t = ids shifted by one, mask m, label
// smoothing ε), compiles one graph.Program per batch shape and feeds every
// batch into it. It updates exactly the parameters whose Trainable flag is
// set when New is called: full fine-tuning, LoRA, bias-only training and
// frozen evaluation are the same code with different flags.
//
//	tr, err := trainers.New(model, cfg)
//	res, err := tr.Train(trainSet, validSet)
//
// # One optimizer step
//
// For k = Config.Accumulate micro-batches of Config.Batch sequences with n_j
// loss tokens each, the step gradient is the token-weighted mean
// g = Σ_j n_j·g_j / Σ_j n_j of the micro-batches' mean-loss gradients, which
// equals the gradient of one batch k times larger. If ‖g‖₂ (over all
// trainable parameters) exceeds Config.MaxGradNorm, g is scaled by
// MaxGradNorm/‖g‖₂. AdamW then updates each parameter with the learning rate
// of the step's Schedule; its state is keyed by parameter name.
//
// # Data
//
// A Dataset is a list of Examples: tokens and the length of a prompt that
// carries no loss. TextDataset cuts a token stream into windows of Context+1
// tokens; ParseCompletions reads "context||completion" lines (E2E NLG) into
// context + separator + completion + EOT with the loss on the completion and
// EOT only. Batches are right-padded; the training order is a seeded random
// permutation per epoch; Split makes a seeded train/validation split.
//
// # Checkpoints and resuming
//
// A checkpoint is one .safetensors file, written atomically, with the
// trainable parameters, AdamW's moments and the run state (step, data
// position, RNG states, configuration) as JSON metadata; see
// CheckpointMeta. Resume followed by Train continues a run so that its
// losses and final parameters are bit-identical to a run never stopped.
// Every tensor carries a CRC-32C that reading verifies, and Config.DataID
// (e.g. the Fingerprint of the training set) lets a resume check that it
// continues on the same data.
//
// # Data-parallel training
//
// SetCollective makes a Trainer one of N ranks (processes) that train the
// same model together through a Collective engine: MPI (golora built with
// -tags mpi, see package internal/mpi) or LocalGroup (goroutines). Config.Batch
// stays the global batch; rank r trains on rows [r·B/N, (r+1)·B/N) of every
// micro-batch. Each rank sums n_j·g_j over its micro-batches into one flat
// buffer of the trainable gradients (nothing of the frozen base travels), the
// buffer is all-reduced, and every rank divides by the global loss tokens
// N = Σ n_j:
//
//	g = Σ_ranks Σ_j n_j·g_j / Σ_ranks Σ_j n_j
//
// which is the gradient of the mean loss over the global batch, so N ranks
// train what one process does with the same batch (to rounding). Clipping
// then sees the global norm and AdamW applies the same update on every
// rank. A small control vector (ControlBytes) travels first with the
// loss sums and a status word: a failure or a stop request on any rank
// stops every rank at the same step. Only rank 0 writes checkpoints and
// metrics; checkpoints hold nothing rank-specific and resume on any number
// of ranks that divides the batch.
//
// # Errors
//
// Bad configuration, data or checkpoints give errors naming the field, file,
// line, example or tensor. A NaN or infinite loss or gradient stops Train
// with an error wrapping ErrNonFinite that names the step (and the
// parameter); that step is not applied and the last checkpoint stays intact.
// The package prints nothing: metrics go to Config.Metrics as JSON lines and
// to the callbacks of Config.Observer.
package trainers
