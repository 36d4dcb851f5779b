package trainers

import "github.com/golora/golora/graph"

// LanguageModel is what the trainer trains: any model that maps token ids to
// logits. The trainer never looks inside it: it builds the inputs, asks the
// model for logits, adds the loss and differentiates with respect to every
// parameter whose Trainable flag is set. Full fine-tuning, LoRA, bias-only
// training and frozen evaluation are the same code with different flags.
type LanguageModel interface {
	// Params lists every parameter in a fixed order; the trainable ones have
	// Trainable = true. Names must be unique: optimizer state and
	// checkpoints are keyed by them.
	Params() []*graph.Param
	// Logits adds the forward pass for batch sequences of ctx tokens (ids is
	// an IntInput [batch*ctx], row-major by sequence) and returns the logits
	// [batch*ctx, vocab]. Position t of a sequence may only look at positions
	// ≤ t (a causal model): padding is appended on the right.
	Logits(ids *graph.Node, batch, ctx int) *graph.Node
	// VocabSize is the number of logits per position.
	VocabSize() int
}

// LossModel is a LanguageModel that builds its own training loss: the
// Trainer uses Loss in place of graph.SoftmaxCrossEntropy of Logits when a
// model has it. Loss must equal that composition (up to rounding); models
// use it to compute the head and the loss without the [N, V] logits (the
// gpt and llama models do after SetLossInBlocks, which --recompute turns on).
type LossModel interface {
	LanguageModel
	// Loss is the masked mean next-token cross-entropy against targets
	// [batch*ctx] with row weights mask [batch*ctx] and label smoothing.
	Loss(ids, targets, mask *graph.Node, batch, ctx int, smoothing float64) *graph.Node
}

// Encoder turns text into token ids (a gpt.Tokenizer is one). EOT is the end-of-text id appended
// after each completion (GPT-2: 50256). An Encoder that also has
// EncodeChecked(text) ([]int, error) (gpt.CheckedEncoder) is encoded through
// it, so a codec error is returned by LoadText and ParseCompletions rather
// than lost.
type Encoder interface {
	Encode(text string) []int
	EOT() int
}
