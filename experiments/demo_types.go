package experiments

// DemoEvent is a progress report of RunDemo.
type DemoEvent struct {
	// Stage names the phase: "data", "pretrain", "lora <task>", "full
	// <task>", "evaluate", "switch", "merge", "latency", "samples".
	Stage string
	// Step and Total count training steps (0 outside training); Loss is the
	// training loss of the step and TokensPerSec the recent throughput.
	Step, Total  int
	Loss         float64
	TokensPerSec float64
	// ValidLoss is set (non-zero) on the event of a validation.
	ValidLoss float64
	// Message describes a phase outside training.
	Message string
}

// DemoResult is everything the demo measured; its JSON form is the
// report's metrics.json.
type DemoResult struct {
	Date       string  `json:"date"`
	ElapsedSec float64 `json:"elapsed_sec"`
	GoVersion  string  `json:"go_version"`
	Platform   string  `json:"platform"`
	CPUs       int     `json:"cpus"`
	BLAS       string  `json:"blas"`
	Seed       uint64  `json:"seed"`
	// TextSource is the version of the Go distribution the text was read
	// from (the first line of its VERSION file, "" when it has none).
	TextSource string `json:"text_source"`

	Model ModelInfo    `json:"model"`
	Data  []DomainInfo `json:"data"`

	Pretrain RunInfo   `json:"pretrain"`
	LoRA     []RunInfo `json:"lora"`
	Full     RunInfo   `json:"full_finetune"`

	// Domains are the evaluation domains: the base domain, then the tasks.
	Domains []string `json:"domains"`
	// ValidLoss[model][domain] is the validation loss of "base", "lora:<task>"
	// (each adapter right after training) and "full:<task>".
	ValidLoss map[string]map[string]float64 `json:"valid_loss"`
	// Switching[adapter][domain] is the validation loss measured on ONE base
	// model with every adapter loaded from its folder, switching the active
	// adapter between evaluations.
	Switching map[string]map[string]float64 `json:"task_switching_valid_loss"`

	Merge   []MergeCheck `json:"merge"`
	Latency LatencyInfo  `json:"latency"`
	Files   FileSizes    `json:"files"`
	Samples []Sample     `json:"samples"`

	Checks []Check `json:"checks"`
	// Passed is true when every check passed.
	Passed bool `json:"passed"`
}

// ModelInfo describes the base model.
type ModelInfo struct {
	Layers    int    `json:"layers"`
	Heads     int    `json:"heads"`
	Embd      int    `json:"embd"`
	Context   int    `json:"context"`
	Vocab     int    `json:"vocab"`
	Tokenizer string `json:"tokenizer"`
	Params    int    `json:"params"`
}

// DomainInfo describes the text of one domain.
type DomainInfo struct {
	Domain      string   `json:"domain"`
	Role        string   `json:"role"` // "base" or "task"
	Description string   `json:"description"`
	Files       int      `json:"files"`
	Bytes       int      `json:"bytes"`
	TrainTokens int      `json:"train_tokens"`
	ValidTokens int      `json:"valid_tokens"`
	FirstFiles  []string `json:"first_files"`
}

// RunInfo describes one training run.
type RunInfo struct {
	Name      string  `json:"name"`   // "pretrain", "lora:<task>", "full:<task>"
	Method    string  `json:"method"` // "pretrain", "lora" or "full"
	Domain    string  `json:"domain"`
	Steps     int     `json:"steps"`
	LR        float64 `json:"lr"`
	Trainable int     `json:"trainable_params"`
	All       int     `json:"all_params"`
	Percent   float64 `json:"trainable_percent"`
	Tokens    int64   `json:"tokens"`
	Seconds   float64 `json:"seconds"` // the whole run, validations included
	// TokensPerSec is the training throughput: tokens over the time spent
	// in training steps (validations left out; the first step includes
	// compiling the program).
	TokensPerSec float64  `json:"tokens_per_sec"`
	Rank         int      `json:"rank,omitempty"`
	Alpha        float64  `json:"alpha,omitempty"`
	Targets      []string `json:"targets,omitempty"`
	Curve        Curve    `json:"curve"`
}

// Curve is a loss curve: the training loss of every step and the validation
// loss at some steps.
type Curve struct {
	Train      []float64 `json:"train"`
	ValidSteps []int     `json:"valid_steps"`
	Valid      []float64 `json:"valid"`
}

// MergeCheck compares the logits of an adapter unmerged and merged into the
// base weights on one validation batch.
type MergeCheck struct {
	Adapter     string  `json:"adapter"`
	MaxAbsDiff  float64 `json:"max_abs_diff"`
	MaxAbsLogit float64 `json:"max_abs_logit"`
	Tolerance   float64 `json:"tolerance"`
	OK          bool    `json:"ok"`
}

// LatencyInfo is the median time of one forward pass of Batch × Context
// tokens.
type LatencyInfo struct {
	Batch      int     `json:"batch"`
	Context    int     `json:"context"`
	Runs       int     `json:"runs"`
	Adapter    string  `json:"adapter"`
	BaseMs     float64 `json:"base_ms"`
	UnmergedMs float64 `json:"unmerged_ms"`
	MergedMs   float64 `json:"merged_ms"`
}

// FileSizes are the sizes of the saved base model and adapters.
type FileSizes struct {
	BaseModelBytes int64            `json:"base_model_bytes"` // model.safetensors
	AdapterBytes   map[string]int64 `json:"adapter_bytes"`    // adapter_model.safetensors by task
}

// Sample is a text generated by one model from a prompt.
type Sample struct {
	Model  string `json:"model"`
	Prompt string `json:"prompt"`
	Text   string `json:"text"`
}

// Check is one claim of the report and whether the run bears it out.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}
