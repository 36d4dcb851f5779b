package trainers

import (
	"fmt"
	"io"
	"math"
)

// Config holds every setting of a training run. Start from DefaultConfig (or
// PaperE2EConfig) and change fields, or from the zero Config: New fills each
// field whose zero value would be invalid with its default (WithDefaults),
// so trainers.New(m, Config{Steps: 100}) trains 100 steps of batch 8 at
// lr 2e-4. A field whose zero value means something keeps it: the zero
// Config is DefaultConfig without weight decay and without gradient
// clipping (WeightDecay and MaxGradNorm 0 are off). New checks the result
// with Validate. The whole struct except Metrics and Observer is stored in
// each checkpoint.
type Config struct {
	// Seed seeds the data order and the dropout masks (default 1). Two runs
	// with the same seed, data and model are identical.
	Seed uint64 `json:"seed"`

	// Batch is the number of sequences per micro-batch (default 8).
	Batch int `json:"batch"`
	// Context is the longest input a sequence may have, in tokens (default
	// 128). A longer example is truncated: its prompt from the left first,
	// then its end (see Dataset).
	Context int `json:"context"`
	// Accumulate is the number of micro-batches whose gradients are summed
	// into one optimizer step (default 1). Each micro-batch's mean-loss
	// gradient is weighted by its share of loss tokens, so k micro-batches
	// give the gradient of one batch k times larger.
	Accumulate int `json:"accumulate"`
	// BucketMultiple pads each batch only to its longest sequence, rounded up
	// to a multiple of BucketMultiple (capped at Context), instead of to
	// Context; one Program is compiled per length met. 0 (the default)
	// always pads to Context: one Program.
	BucketMultiple int `json:"bucket_multiple"`

	// Steps is the number of optimizer steps to train for; 0 derives it from
	// Epochs as ⌈Epochs·N / (Batch·Accumulate)⌉ for N training examples.
	Steps int `json:"steps"`
	// Epochs is the number of passes over the training data used when Steps
	// is 0 (default 1). Batches run across epoch boundaries.
	Epochs int `json:"epochs"`

	// LR is the peak learning rate (default 2e-4, the LoRA paper's GPT-2 E2E value).
	LR float64 `json:"lr"`
	// Schedule is "constant", "linear" (warm-up then linear decay, the LoRA
	// paper's) or "cosine" (warm-up then cosine decay); default "linear".
	Schedule string `json:"schedule"`
	// Warmup is the number of linear warm-up steps (default 0).
	Warmup int `json:"warmup"`
	// MinLR is the learning rate the decaying schedules approach (default 0).
	MinLR float64 `json:"min_lr"`

	// Beta1, Beta2 and Eps are AdamW's moment decay rates and denominator
	// term (defaults 0.9, 0.999, 1e-6; 1e-6 is the LoRA repository's ε).
	Beta1 float64 `json:"beta1"`
	Beta2 float64 `json:"beta2"`
	Eps   float64 `json:"eps"`
	// WeightDecay is AdamW's decoupled decay λ (default 0.01).
	WeightDecay float64 `json:"weight_decay"`
	// DecayAll applies weight decay to every trainable parameter; by default
	// (false) only parameters with two or more dimensions (matrices) decay,
	// not biases or LayerNorm gains.
	DecayAll bool `json:"decay_all"`
	// LoRAPlusRatio turns LoRA+ on when > 0 (Hayou et al. 2024, PEFT's
	// loraplus_lr_ratio; default 0, off): the B factors of LoRA adapters,
	// and every other one-dimensional trainable parameter (biases, DoRA
	// magnitudes), train at LoRAPlusRatio·LR, the A factors and other
	// matrices at LR, and the factors of adapters on embeddings at
	// LoRAPlusLREmbedding; every group follows the schedule. PEFT
	// recommends a ratio ≥ 1 (its paper: 2⁴ for many tasks). See
	// LoRAPlusGroups.
	LoRAPlusRatio float64 `json:"loraplus_lr_ratio,omitempty"`
	// LoRAPlusLREmbedding is the peak learning rate of adapters on
	// embeddings under LoRA+ (PEFT's loraplus_lr_embedding; 0 means PEFT's
	// default, 1e-6).
	LoRAPlusLREmbedding float64 `json:"loraplus_lr_embedding,omitempty"`
	// LoRAPlusWeightDecay is λ of every group under LoRA+ except biases
	// and LayerNorm parameters, which never decay (PEFT's
	// loraplus_weight_decay, default 0): with LoRA+ on, it replaces
	// WeightDecay and DecayAll, as in PEFT.
	LoRAPlusWeightDecay float64 `json:"loraplus_weight_decay,omitempty"`
	// MaxGradNorm clips the global gradient norm to this value; 0 turns
	// clipping off (default 1).
	MaxGradNorm float64 `json:"max_grad_norm"`
	// LabelSmoothing is ε of the training loss (default 0). Validation loss
	// is always the plain cross-entropy.
	LabelSmoothing float64 `json:"label_smoothing"`

	// EvalEvery runs validation every this many steps (0: only at the end).
	// Validation also runs after the last step whenever a validation set is
	// given.
	EvalEvery int `json:"eval_every"`
	// EvalBatch is the number of sequences per validation batch (0: Batch).
	EvalBatch int `json:"eval_batch"`

	// DataID identifies the training data (e.g. its Fingerprint). The
	// trainer does not read it; it is stored with the rest of the Config in
	// every checkpoint, so a resume can check that it continues on the same
	// data (ReadCheckpointMeta). "" for none.
	DataID string `json:"data_id,omitempty"`

	// CheckpointPath is the file (.safetensors) a checkpoint is written to
	// every CheckpointEvery steps, when training is stopped through its
	// context, and at the end. "" writes none.
	CheckpointPath string `json:"checkpoint_path"`
	// CheckpointEvery is the interval in steps (0: only at the end and when
	// stopped).
	CheckpointEvery int `json:"checkpoint_every"`
	// BestPath, when set, receives a checkpoint each time the validation loss
	// improves on the best seen so far.
	BestPath string `json:"best_path"`

	// LogEvery writes a metrics line every this many steps and after the
	// last one (default 10).
	LogEvery int `json:"log_every"`
	// Metrics receives one JSON object per logged step and per validation,
	// each on its own line (nil: none). See StepInfo and EvalInfo.
	Metrics io.Writer `json:"-"`
	// Observer receives every step, validation and checkpoint as it happens.
	Observer Observer `json:"-"`
}

// WithDefaults returns c with each field whose zero value is invalid or
// does nothing set to DefaultConfig's value: Batch, Context, Accumulate,
// Epochs (when Steps is 0 too), LR, Schedule, Beta1 and Beta2 (when both
// are 0), Eps and LogEvery. Every other field is left as it is: its zero
// value is meaningful (Seed 0 is a seed, WeightDecay 0 no decay,
// MaxGradNorm 0 no clipping, Warmup 0 no warm-up). New calls it.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.Batch == 0 {
		c.Batch = d.Batch
	}
	if c.Context == 0 {
		c.Context = d.Context
	}
	if c.Accumulate == 0 {
		c.Accumulate = d.Accumulate
	}
	if c.Steps == 0 && c.Epochs == 0 {
		c.Epochs = d.Epochs
	}
	if c.LR == 0 {
		c.LR = d.LR
	}
	if c.Schedule == "" {
		c.Schedule = d.Schedule
	}
	if c.Beta1 == 0 && c.Beta2 == 0 {
		c.Beta1, c.Beta2 = d.Beta1, d.Beta2
	}
	if c.Eps == 0 {
		c.Eps = d.Eps
	}
	if c.LogEvery == 0 {
		c.LogEvery = d.LogEvery
	}
	return c
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{
		Seed:        1,
		Batch:       8,
		Context:     128,
		Accumulate:  1,
		Epochs:      1,
		LR:          2e-4,
		Schedule:    ScheduleLinear,
		Beta1:       0.9,
		Beta2:       0.999,
		Eps:         1e-6,
		WeightDecay: 0.01,
		MaxGradNorm: 1,
		LogEvery:    10,
	}
}

// PaperE2EConfig returns the LoRA paper's GPT-2 E2E NLG training settings
// (Hu et al. 2021, appendix on GPT-2 hyperparameters): AdamW, learning rate
// 2e-4 with 500 warm-up steps and linear decay, batch 8, 5 epochs, weight
// decay 0.01, label smoothing 0.1, sequence length 512, and no gradient
// clipping (the LoRA repository's default).
func PaperE2EConfig() Config {
	c := DefaultConfig()
	c.Context = 512
	c.Epochs = 5
	c.Warmup = 500
	c.LabelSmoothing = 0.1
	c.MaxGradNorm = 0
	return c
}

// Validate reports the first setting that is out of range, naming the field.
func (c Config) Validate() error {
	bad := func(field string, v interface{}, want string) error {
		return fmt.Errorf("trainers: config %s = %v, want %s", field, v, want)
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case c.Batch < 1:
		return bad("Batch", c.Batch, "≥ 1")
	case c.Context < 1:
		return bad("Context", c.Context, "≥ 1")
	case c.Accumulate < 1:
		return bad("Accumulate", c.Accumulate, "≥ 1")
	case c.BucketMultiple < 0:
		return bad("BucketMultiple", c.BucketMultiple, "≥ 0")
	case c.Steps < 0:
		return bad("Steps", c.Steps, "≥ 0")
	case c.Epochs < 0:
		return bad("Epochs", c.Epochs, "≥ 0")
	case c.Steps == 0 && c.Epochs == 0:
		return bad("Steps", c.Steps, "≥ 1 when Epochs is 0")
	case !finite(c.LR) || c.LR < 0:
		return bad("LR", c.LR, "a finite value ≥ 0")
	case !finite(c.MinLR) || c.MinLR < 0 || c.MinLR > c.LR:
		return bad("MinLR", c.MinLR, "in [0, LR]")
	case c.Warmup < 0:
		return bad("Warmup", c.Warmup, "≥ 0")
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return bad("Beta1", c.Beta1, "in [0, 1)")
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return bad("Beta2", c.Beta2, "in [0, 1)")
	case !(c.Eps > 0) || !finite(c.Eps):
		return bad("Eps", c.Eps, "a finite value > 0")
	case !finite(c.WeightDecay) || c.WeightDecay < 0:
		return bad("WeightDecay", c.WeightDecay, "a finite value ≥ 0")
	case !finite(c.LoRAPlusRatio) || c.LoRAPlusRatio < 0:
		return bad("LoRAPlusRatio", c.LoRAPlusRatio, "a finite value ≥ 0 (0: LoRA+ off)")
	case !finite(c.LoRAPlusLREmbedding) || c.LoRAPlusLREmbedding < 0:
		return bad("LoRAPlusLREmbedding", c.LoRAPlusLREmbedding, "a finite value ≥ 0 (0: 1e-6)")
	case !finite(c.LoRAPlusWeightDecay) || c.LoRAPlusWeightDecay < 0:
		return bad("LoRAPlusWeightDecay", c.LoRAPlusWeightDecay, "a finite value ≥ 0")
	case !finite(c.MaxGradNorm) || c.MaxGradNorm < 0:
		return bad("MaxGradNorm", c.MaxGradNorm, "a finite value ≥ 0 (0: no clipping)")
	case !(c.LabelSmoothing >= 0 && c.LabelSmoothing < 1):
		return bad("LabelSmoothing", c.LabelSmoothing, "in [0, 1)")
	case c.EvalEvery < 0:
		return bad("EvalEvery", c.EvalEvery, "≥ 0")
	case c.EvalBatch < 0:
		return bad("EvalBatch", c.EvalBatch, "≥ 0")
	case c.CheckpointEvery < 0:
		return bad("CheckpointEvery", c.CheckpointEvery, "≥ 0")
	case c.CheckpointEvery > 0 && c.CheckpointPath == "":
		return bad("CheckpointEvery", c.CheckpointEvery, "0 when CheckpointPath is empty")
	case c.BestPath != "" && c.BestPath == c.CheckpointPath:
		return bad("BestPath", c.BestPath, "a path other than CheckpointPath")
	case c.LogEvery < 1:
		return bad("LogEvery", c.LogEvery, "≥ 1")
	}
	if _, err := scheduleKind(c.Schedule); err != nil {
		return err
	}
	return nil
}
