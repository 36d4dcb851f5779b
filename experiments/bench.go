package experiments

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/benchutil"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/models/llama"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// BenchConfig is one model shape and batch to benchmark.
type BenchConfig struct {
	Name string `json:"name"`
	// Arch is the architecture: "" or "gpt2" (GPT-2), or "llama" (a
	// Llama-family decoder of package llama, with KVHeads key/value heads
	// and an MLP of width FFN).
	Arch    string `json:"arch,omitempty"`
	Layers  int    `json:"layers"`
	Embd    int    `json:"embd"`
	Heads   int    `json:"heads"`
	KVHeads int    `json:"kv_heads,omitempty"`
	FFN     int    `json:"ffn,omitempty"`
	Context int    `json:"context"` // tokens per sequence, also the model's BlockSize
	Batch   int    `json:"batch"`   // sequences per training step
	Vocab   int    `json:"vocab"`
	// Steps is the number of timed training steps per mode (after Warmup
	// untimed ones, which include compiling the program); LatencyRuns the
	// number of timed forward passes per latency figure.
	Steps       int `json:"steps"`
	Warmup      int `json:"warmup_steps"`
	LatencyRuns int `json:"latency_runs"`
}

// BenchConfigNames lists the standard configurations, fastest first; the
// last two, "gpt2-124M" and "smollm2-135M", are slow (minutes).
func BenchConfigNames() []string { return []string{"tiny", "small", "gpt2-124M", "smollm2-135M"} }

// StandardBenchConfig returns a standard configuration by name:
//
//	tiny       2 layers, d 64,  4 heads,  context 64,  batch 16, vocab 96
//	small      4 layers, d 128, 4 heads,  context 128, batch 16, vocab 96
//	gpt2-124M  12 layers, d 768, 12 heads, context 256, batch 4,  vocab 50257
//	smollm2-135M  Llama: 30 layers, d 576, 9 heads (3 key/value), FFN 1536,
//	           context 256, batch 4, vocab 49152; LoRA on all linear layers
//
// (the shapes of the PyTorch measurements in the project's notes, so the two
// can be compared).
func StandardBenchConfig(name string) (BenchConfig, error) {
	switch name {
	case "tiny":
		return BenchConfig{Name: name, Layers: 2, Embd: 64, Heads: 4, Context: 64, Batch: 16, Vocab: 96, Steps: 20, Warmup: 2, LatencyRuns: 30}, nil
	case "small":
		return BenchConfig{Name: name, Layers: 4, Embd: 128, Heads: 4, Context: 128, Batch: 16, Vocab: 96, Steps: 8, Warmup: 2, LatencyRuns: 15}, nil
	case "gpt2-124M":
		return BenchConfig{Name: name, Layers: 12, Embd: 768, Heads: 12, Context: 256, Batch: 4, Vocab: 50257, Steps: 2, Warmup: 1, LatencyRuns: 3}, nil
	case "smollm2-135M":
		return BenchConfig{Name: name, Arch: "llama", Layers: 30, Embd: 576, Heads: 9, KVHeads: 3, FFN: 1536, Context: 256, Batch: 4, Vocab: 49152,
			Steps: 2, Warmup: 1, LatencyRuns: 3}, nil
	}
	return BenchConfig{}, fmt.Errorf("experiments: unknown bench config %q (want one of %v)", name, BenchConfigNames())
}

// BenchOptions selects what Bench measures.
type BenchOptions struct {
	// Configs to run, in order.
	Configs []BenchConfig
	// Steps, when > 0, overrides every config's timed training steps; Warmup
	// (> 0) its untimed steps; LatencyRuns (> 0) its timed forward passes.
	Steps, Warmup, LatencyRuns int
	// Seed seeds the weights and the random tokens.
	Seed uint64
	// Progress, when set, is told what is about to run.
	Progress func(msg string)
	// Collective, when it has more than one rank, makes the training
	// measurements data-parallel: every rank runs Bench, each config's batch
	// is the global batch (it must divide by the ranks), tokens/s are global,
	// and the latency runs are skipped. nil: one process.
	Collective trainers.Collective
	// Modes are the trainings to run: "lora", "full" or both (nil: both).
	// The process's peak RSS covers every mode run; measure one mode per
	// process to read its own.
	Modes []string
	// BasePrecision holds the LoRA run's frozen base at bf16, int8 or nf4
	// (default f32); QuantizeEmbeddings quantizes the embedding tables too.
	BasePrecision      graph.Precision
	QuantizeEmbeddings bool
	// Recompute checkpoints every Recompute blocks in training (0: none).
	Recompute int
	// NoLatency skips the inference latencies.
	NoLatency bool
}

// BenchResult is the outcome of Bench, ready for encoding/json.
type BenchResult struct {
	Date      string              `json:"date"`
	GoVersion string              `json:"go_version"`
	GOOS      string              `json:"goos"`
	GOARCH    string              `json:"goarch"`
	CPUs      int                 `json:"cpus"`
	BLAS      string              `json:"blas"`
	Ranks     int                 `json:"ranks"`   // processes of a data-parallel run (1: one)
	Threads   int                 `json:"threads"` // GOMAXPROCS of each rank
	Configs   []BenchConfigResult `json:"configs"`
	// PeakRSSMiB is the process's peak resident set size at the end (Linux;
	// 0 elsewhere): the largest of all configurations, runtime included.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// BenchConfigResult holds the measurements of one configuration.
type BenchConfigResult struct {
	BenchConfig
	Params int `json:"params"`

	// Training throughput, input tokens per second of timed steps: LoRA r=8
	// (α=16) on q and v (on every linear layer of a Llama), and full
	// fine-tuning, both AdamW.
	LoRATrainable      int     `json:"lora_trainable_params"`
	LoRATokensPerSec   float64 `json:"lora_tokens_per_sec"`
	FullTokensPerSec   float64 `json:"full_tokens_per_sec"`
	LoRAMsPerStep      float64 `json:"lora_ms_per_step"`
	FullMsPerStep      float64 `json:"full_ms_per_step"`
	LoRAPeakHeapMiB    float64 `json:"lora_peak_heap_mib"`
	FullPeakHeapMiB    float64 `json:"full_peak_heap_mib"`
	InferPeakHeapMiB   float64 `json:"inference_peak_heap_mib"`
	LatencyBaseMs      float64 `json:"latency_base_ms"`
	LatencyUnmergedMs  float64 `json:"latency_unmerged_ms"`
	LatencyMergedMs    float64 `json:"latency_merged_ms"`
	LatencyContext     int     `json:"latency_context"` // tokens in the batch-1 forward pass
	MergedMaxAbsDiff   float64 `json:"merged_max_abs_diff"`
	TrainingSecondsAll float64 `json:"training_seconds"`
	// LoRAAllReducedBytes and FullAllReducedBytes are the gradient bytes
	// one data-parallel step all-reduced (as the trainer counted them; 0 on
	// one process): the trainable parameters × 4 (float32).
	BasePrecision       string       `json:"base_precision,omitempty"`
	Recompute           string       `json:"recompute,omitempty"`
	LoRAMemory          *MemorySplit `json:"lora_memory,omitempty"`
	FullMemory          *MemorySplit `json:"full_memory,omitempty"`
	LoRAAllReducedBytes int64        `json:"lora_allreduced_bytes_per_step,omitempty"`
	FullAllReducedBytes int64        `json:"full_allreduced_bytes_per_step,omitempty"`
}

// Bench measures, for each configuration: training tokens/s and peak heap
// of LoRA (r = 8 on q and v) and of full fine-tuning, on random tokens, and
// the latency of one batch-1 forward pass of a whole context for the base
// model, the model with an unmerged adapter and the model with the adapter
// merged. Timings are wall-clock medians or means of the runs the options
// ask for; they vary with the machine's load.
func Bench(opt BenchOptions) (*BenchResult, error) {
	if len(opt.Configs) == 0 {
		return nil, errors.New("experiments: bench: no configurations")
	}
	res := &BenchResult{
		Date:      time.Now().UTC().Format(time.RFC3339),
		GoVersion: runtime.Version(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
		CPUs:      runtime.NumCPU(),
		BLAS:      graph.BLASName(),
		Ranks:     1,
		Threads:   runtime.GOMAXPROCS(0),
	}
	if opt.Collective != nil {
		res.Ranks = opt.Collective.Size()
	}
	for _, c := range opt.Configs {
		if opt.Steps > 0 {
			c.Steps = opt.Steps
		}
		if opt.Warmup > 0 {
			c.Warmup = opt.Warmup
		}
		if opt.LatencyRuns > 0 {
			c.LatencyRuns = opt.LatencyRuns
		}
		r, err := benchOne(c, opt)
		if err != nil {
			return nil, fmt.Errorf("experiments: bench %s: %w", c.Name, err)
		}
		res.Configs = append(res.Configs, r)
	}
	res.PeakRSSMiB = benchutil.PeakRSSMiB()
	return res, nil
}

// benchHost is a benchmark model: GPT-2 or a Llama-family decoder.
type benchHost interface {
	ForwardModel
	nn.Host
	BaseParams() []*graph.Param
	SetRecompute(every int) error
	SetLossInBlocks(on bool)
}

// benchModel builds and initialises the model of c. Benchmarks feed random
// ids, so the model has no text tokenizer and any vocabulary size.
func benchModel(c BenchConfig, seed uint64) (benchHost, error) {
	m, err := newBenchModel(c)
	if err != nil {
		return nil, err
	}
	type initer interface{ Init(*rand.Rand) error }
	return m, m.(initer).Init(graph.NewRand(seed))
}

// newBenchModel builds the model of c with New's values (zero matrices,
// norm scales 1), not yet initialised.
func newBenchModel(c BenchConfig) (benchHost, error) {
	switch c.Arch {
	case "", "gpt2":
		cfg := gpt.Config{NLayer: c.Layers, NHead: c.Heads, NEmbd: c.Embd, BlockSize: c.Context,
			VocabSize: c.Vocab, LayerNormEps: 1e-5, Tokenizer: gpt.TokenizerNone}
		return gpt.New(cfg, graph.Float32)
	case llama.ArchLlama:
		// SmolLM2's settings beyond the shape: θ 100000, ε 1e-5, tied head.
		cfg := llama.Config{Arch: llama.ArchLlama, NumLayers: c.Layers, Hidden: c.Embd, Intermediate: c.FFN,
			Heads: c.Heads, KVHeads: c.KVHeads, VocabSize: c.Vocab, MaxPositions: c.Context, RMSNormEps: 1e-5,
			RoPE: graph.RoPEConfig{Theta: 100000}, TieEmbeddings: true, BOS: -1, Tokenizer: llama.TokenizerNone}
		return llama.New(cfg, graph.Float32)
	}
	return nil, fmt.Errorf("unknown architecture %q (want gpt2 or llama)", c.Arch)
}

// benchLoRA is the adapter every benchmark trains: r = 8, α = 16 on q and
// v of GPT-2, on every linear layer of a Llama (PEFT's all-linear).
func benchLoRA(c BenchConfig, seed uint64) lora.Config {
	if c.Arch == llama.ArchLlama {
		return lora.Config{R: 8, Alpha: 16, Targets: []string{"all-linear"}, Seed: seed}
	}
	return lora.Config{R: 8, Alpha: 16, Targets: []string{"q", "v"}, Seed: seed}
}

func benchOne(c BenchConfig, opt BenchOptions) (BenchConfigResult, error) {
	seed, progress, coll := opt.Seed, opt.Progress, opt.Collective
	modes := opt.Modes
	if len(modes) == 0 {
		modes = []string{"lora", "full"}
	}
	say := func(format string, a ...any) {
		if progress != nil {
			progress(fmt.Sprintf(format, a...))
		}
	}
	r := BenchConfigResult{BenchConfig: c, LatencyContext: c.Context, BasePrecision: opt.BasePrecision.String(), Recompute: nn.RecomputeName(opt.Recompute)}
	t0 := time.Now()
	for _, mode := range modes {
		if mode != "lora" && mode != "full" {
			return r, fmt.Errorf("unknown mode %q (want lora or full)", mode)
		}
		if mode == "full" && opt.BasePrecision != graph.F32 {
			return r, fmt.Errorf("full fine-tuning trains the base weights: they cannot be held at %v", opt.BasePrecision)
		}
		say("%s: %s training, %d + %d steps of %d × %d tokens", c.Name, mode, c.Warmup, c.Steps, c.Batch, c.Context)
		var m benchHost
		var lm *lora.Model
		var err error
		if mode == "lora" && opt.BasePrecision != graph.F32 {
			m, lm, err = benchQuantizedModel(c, seed, opt.BasePrecision, opt.QuantizeEmbeddings)
		} else {
			m, err = benchModel(c, seed)
		}
		if err != nil {
			return r, err
		}
		r.Params = graph.CountParams(m.BaseParams())
		if err := m.SetRecompute(opt.Recompute); err != nil {
			return r, err
		}
		m.SetLossInBlocks(opt.Recompute > 0) // as the command line does
		if mode == "lora" {
			if lm == nil {
				if lm, err = lora.Inject(m, benchLoRA(c, seed)); err != nil {
					return r, err
				}
			}
			r.LoRATrainable = lm.Report().Trainable
		}
		tps, msStep, peak, bytes, err := benchTrain(m, c, seed, coll)
		if err != nil {
			return r, fmt.Errorf("%s training: %w", mode, err)
		}
		split := SplitMemory(m.Params(), int64(peak*(1<<20)), PeakRSSBytes())
		if mode == "lora" {
			r.LoRATokensPerSec, r.LoRAMsPerStep, r.LoRAPeakHeapMiB, r.LoRAAllReducedBytes = tps, msStep, peak, bytes
			r.LoRAMemory = &split
		} else {
			r.FullTokensPerSec, r.FullMsPerStep, r.FullPeakHeapMiB, r.FullAllReducedBytes = tps, msStep, peak, bytes
			r.FullMemory = &split
		}
	}
	r.TrainingSecondsAll = time.Since(t0).Seconds()
	if coll != nil && coll.Size() > 1 || opt.NoLatency {
		return r, nil // latency is a one-process measurement
	}

	say("%s: inference latency, batch 1 × %d tokens, %d runs each", c.Name, c.Context, c.LatencyRuns)
	m, err := benchModel(c, seed)
	if err != nil {
		return r, err
	}
	ids := benchutil.RandomTokens(c.Context, m.VocabSize(), seed+1)
	peak := benchutil.StartPeak(2 * time.Millisecond)
	lat := func() (float64, []float64, error) {
		f, err := NewForward(m, 1, c.Context)
		if err != nil {
			return 0, nil, err
		}
		defer f.Close()
		ms, err := f.Latency(ids, c.LatencyRuns)
		if err != nil {
			return 0, nil, err
		}
		logits, err := f.Logits(ids)
		return ms, logits, err
	}
	if r.LatencyBaseMs, _, err = lat(); err != nil {
		return r, err
	}
	lm, err := lora.Inject(m, benchLoRA(c, seed))
	if err != nil {
		return r, err
	}
	// B starts at zero; give it values so that the merge changes W.
	if err := randomizeB(lm, seed+2); err != nil {
		return r, err
	}
	var unmerged, merged []float64
	if r.LatencyUnmergedMs, unmerged, err = lat(); err != nil {
		return r, err
	}
	if err := lm.Merge(); err != nil {
		return r, err
	}
	if r.LatencyMergedMs, merged, err = lat(); err != nil {
		return r, err
	}
	r.InferPeakHeapMiB = peak.Stop()
	if r.MergedMaxAbsDiff, _, err = MaxAbsDiff(unmerged, merged); err != nil {
		return r, err
	}
	return r, nil
}

// benchTrain trains m's trainable parameters on random tokens and returns
// the tokens/s and ms/step of the timed steps, the peak heap in MiB and, for
// a data-parallel run over coll, the gradient bytes a step all-reduced.
func benchTrain(m trainers.LanguageModel, c BenchConfig, seed uint64, coll trainers.Collective) (tps, msStep, peakMiB float64, bytes int64, err error) {
	steps := c.Warmup + c.Steps
	toks := benchutil.RandomTokens(c.Batch*steps*c.Context+1, m.VocabSize(), seed)
	ds, err := trainers.NewTextDataset(toks, c.Context)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	cfg := trainers.DefaultConfig()
	cfg.Seed, cfg.Batch, cfg.Context, cfg.Steps = seed, c.Batch, c.Context, steps
	cfg.LR, cfg.Schedule = 1e-3, trainers.ScheduleConstant
	cfg.LogEvery = steps
	var tStart time.Time
	var tokStart int64
	var tEnd time.Time
	var tokEnd int64
	cfg.Observer.OnStep = func(s trainers.StepInfo) {
		if s.Step == c.Warmup {
			tStart, tokStart = time.Now(), s.Tokens
		}
		if s.Step == steps {
			tEnd, tokEnd = time.Now(), s.Tokens
		}
		bytes = s.AllReducedBytes
	}
	tr, err := trainers.New(m, cfg)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer tr.Close()
	if err := tr.SetCollective(coll); err != nil {
		return 0, 0, 0, 0, err
	}
	peak := benchutil.StartPeak(2 * time.Millisecond)
	if c.Warmup == 0 {
		tStart = time.Now()
	}
	_, err = tr.Train(ds, nil)
	peakMiB = peak.Stop()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	dt := tEnd.Sub(tStart).Seconds()
	if dt <= 0 {
		return 0, 0, peakMiB, 0, errors.New("no timed steps")
	}
	return float64(tokEnd-tokStart) / dt, 1000 * dt / float64(c.Steps), peakMiB, bytes, nil
}

// randomizeB fills every B of the active adapter with N(0, 0.02²) draws, so
// that a freshly injected adapter changes the outputs.
func randomizeB(m *lora.Model, seed uint64) error {
	rng := graph.NewRand(seed)
	paths, err := m.Paths(m.Active())
	if err != nil {
		return err
	}
	for _, p := range paths {
		ad, err := m.Adapter(p, m.Active())
		if err != nil {
			return err
		}
		for _, s := range ad.Slices {
			graph.InitNormal(s.B, rng, 0.02)
		}
	}
	return nil
}

// benchQuantizedModel builds benchModel's shape with LoRA injected and the
// frozen base held at prec, quantizing each weight as soon as it is drawn
// (from N(0, 0.02²)) and handing the float32 copies back to the operating
// system every 256 MiB: the float32 model never exists whole, so the
// process's peak RSS is the training's.
func benchQuantizedModel(c BenchConfig, seed uint64, prec graph.Precision, embeddings bool) (benchHost, *lora.Model, error) {
	m, err := newBenchModel(c) // zero pages: not resident until written
	if err != nil {
		return nil, nil, err
	}
	lm, err := lora.Inject(m, benchLoRA(c, seed))
	if err != nil {
		return nil, nil, err
	}
	plan, err := nn.BaseQuantization(m, embeddings)
	if err != nil {
		return nil, nil, err
	}
	opts := map[*graph.Param]graph.QuantizeOptions{}
	for _, q := range plan {
		opts[q.Param] = q.Options
	}
	rng := graph.NewRand(seed)
	var freed int64
	for _, p := range m.BaseParams() {
		if len(p.Shape()) != 2 {
			continue // biases 0, LayerNorm scales 1 (as New made them)
		}
		graph.InitNormal(p, rng, 0.02)
		o, ok := opts[p]
		if !ok {
			continue
		}
		if err := p.Quantize(prec, o); err != nil {
			return nil, nil, err
		}
		if freed += int64(4 * p.Len()); freed >= 256<<20 {
			debug.FreeOSMemory()
			freed = 0
		}
	}
	debug.FreeOSMemory()
	return m, lm, nil
}
