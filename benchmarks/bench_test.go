package benchmarks

import (
	"testing"
	"time"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/benchutil"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/models/llama"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// config is one standard configuration (see the package comment).
type config struct {
	name                     string
	llama                    bool // a Llama-family decoder (kvHeads, ffn) instead of GPT-2
	layers, embd, heads      int
	kvHeads, ffn             int
	context, batch, vocab    int
	slow                     bool // skipped with -short
	trainWarmup, inferWarmup int
}

var configs = []config{
	{name: "tiny", layers: 2, embd: 64, heads: 4, context: 64, batch: 16, vocab: 96, trainWarmup: 2, inferWarmup: 3},
	{name: "small", layers: 4, embd: 128, heads: 4, context: 128, batch: 16, vocab: 96, trainWarmup: 2, inferWarmup: 2},
	{name: "gpt2-124M", layers: 12, embd: 768, heads: 12, context: 256, batch: 4, vocab: 50257, slow: true, trainWarmup: 1, inferWarmup: 1},
	{name: "smollm2-135M", llama: true, layers: 30, embd: 576, heads: 9, kvHeads: 3, ffn: 1536, context: 256, batch: 4, vocab: 49152,
		slow: true, trainWarmup: 1, inferWarmup: 1},
}

// benchModel is a benchmark model: GPT-2 or a Llama-family decoder.
type benchModel interface {
	nn.Host
	trainers.LanguageModel
}

// model builds c's model in float32 with its architecture's
// initialisation (no dropout): GPT-2, or a Llama with SmolLM2's θ 100000,
// ε 1e-5 and tied head.
func (c config) model(tb testing.TB) benchModel {
	tb.Helper()
	if c.llama {
		m, err := llama.New(llama.Config{Arch: llama.ArchLlama, NumLayers: c.layers, Hidden: c.embd, Intermediate: c.ffn,
			Heads: c.heads, KVHeads: c.kvHeads, VocabSize: c.vocab, MaxPositions: c.context, RMSNormEps: 1e-5,
			RoPE: graph.RoPEConfig{Theta: 100000}, TieEmbeddings: true, BOS: -1, Tokenizer: llama.TokenizerNone}, graph.Float32)
		if err != nil {
			tb.Fatal(err)
		}
		if err := m.Init(graph.NewRand(1)); err != nil {
			tb.Fatal(err)
		}
		return m
	}
	m, err := gpt.New(gpt.Config{NLayer: c.layers, NHead: c.heads, NEmbd: c.embd, BlockSize: c.context,
		VocabSize: c.vocab, LayerNormEps: 1e-5, Tokenizer: gpt.TokenizerNone}, graph.Float32)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Init(graph.NewRand(1)); err != nil {
		tb.Fatal(err)
	}
	return m
}

// adapter is the LoRA every benchmark uses: r 8, α 16 on q and v of
// GPT-2, on every linear layer of a Llama (PEFT's all-linear).
func (c config) adapter() lora.Config {
	if c.llama {
		return lora.Config{R: 8, Alpha: 16, Targets: []string{"all-linear"}, Seed: 1}
	}
	return lora.Config{R: 8, Alpha: 16, Targets: []string{"q", "v"}, Seed: 1}
}

// BenchmarkTrain times optimizer steps of LoRA and full fine-tuning.
func BenchmarkTrain(b *testing.B) {
	for _, c := range configs {
		for _, mode := range []string{"lora", "full"} {
			b.Run(c.name+"/"+mode, func(b *testing.B) {
				if c.slow && testing.Short() {
					b.Skip("slow configuration; drop -short to run it")
				}
				benchTrain(b, c, mode == "lora")
			})
		}
	}
}

func benchTrain(b *testing.B, c config, useLoRA bool) {
	benchutil.ResetPeakRSS()
	m := c.model(b)
	if useLoRA {
		if _, err := lora.Inject(m, c.adapter()); err != nil {
			b.Fatal(err)
		}
	}
	steps := c.trainWarmup + b.N
	ds, err := trainers.NewTextDataset(benchutil.RandomTokens(c.batch*c.context*steps+1, c.vocab, 2), c.context)
	if err != nil {
		b.Fatal(err)
	}
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps = c.batch, c.context, steps
	cfg.LR, cfg.Schedule, cfg.LogEvery = 1e-3, trainers.ScheduleConstant, steps
	var peak *benchutil.Peak
	cfg.Observer.OnStep = func(s trainers.StepInfo) {
		if s.Step == c.trainWarmup {
			peak = benchutil.StartPeak(time.Millisecond)
			b.ResetTimer()
		}
	}
	tr, err := trainers.New(m, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	b.ReportAllocs()
	if _, err := tr.Train(ds, nil); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*c.batch*c.context)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(peak.Stop(), "peak-heap-MiB")
	b.ReportMetric(benchutil.PeakRSSMiB(), "peak-RSS-MiB")
}

// BenchmarkInfer times one batch-1 forward pass of a whole context.
func BenchmarkInfer(b *testing.B) {
	for _, c := range configs {
		for _, mode := range []string{"base", "unmerged", "merged"} {
			b.Run(c.name+"/"+mode, func(b *testing.B) {
				if c.slow && testing.Short() {
					b.Skip("slow configuration; drop -short to run it")
				}
				benchInfer(b, c, mode)
			})
		}
	}
}

func benchInfer(b *testing.B, c config, mode string) {
	benchutil.ResetPeakRSS()
	m := c.model(b)
	if mode != "base" {
		lm, err := lora.Inject(m, c.adapter())
		if err != nil {
			b.Fatal(err)
		}
		if mode == "merged" {
			if err := lm.Merge(); err != nil {
				b.Fatal(err)
			}
		}
	}
	bl := graph.NewBuilder(graph.Float32, 1)
	ids := bl.IntConstant("ids", benchutil.RandomTokens(c.context, c.vocab, 3), c.context)
	prog, err := bl.Compile(nil, m.Logits(ids, 1, c.context))
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Close()
	prog.SetTraining(false)
	for range c.inferWarmup {
		if err := prog.Forward(); err != nil {
			b.Fatal(err)
		}
	}
	peak := benchutil.StartPeak(time.Millisecond)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := prog.Forward(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/pass")
	b.ReportMetric(peak.Stop(), "peak-heap-MiB")
	b.ReportMetric(benchutil.PeakRSSMiB(), "peak-RSS-MiB")
}

// BenchmarkLatency times batch-1 forward passes of the base model, the
// model with an unmerged adapter and with the adapter merged, interleaved
// in one process (one pass of each per iteration), and reports the median
// of each: differences between processes and drift over time then cancel
// out of the comparison. The adapter's B is random, so that it changes the
// outputs.
func BenchmarkLatency(b *testing.B) {
	for _, c := range configs {
		b.Run(c.name, func(b *testing.B) {
			if c.slow && testing.Short() {
				b.Skip("slow configuration; drop -short to run it")
			}
			modes := []string{"base", "unmerged", "merged"}
			progs := make([]*graph.Program, len(modes))
			for i, mode := range modes {
				m := c.model(b)
				if mode != "base" {
					lm, err := lora.Inject(m, c.adapter())
					if err != nil {
						b.Fatal(err)
					}
					paths, err := lm.Paths(lm.Active())
					if err != nil {
						b.Fatal(err)
					}
					for _, path := range paths {
						ad, err := lm.Adapter(path, lm.Active())
						if err != nil {
							b.Fatal(err)
						}
						for _, sl := range ad.Slices {
							graph.InitNormal(sl.B, graph.NewRand(4), 0.02)
						}
					}
					if mode == "merged" {
						if err := lm.Merge(); err != nil {
							b.Fatal(err)
						}
					}
				}
				bl := graph.NewBuilder(graph.Float32, 1)
				ids := bl.IntConstant("ids", benchutil.RandomTokens(c.context, c.vocab, 3), c.context)
				prog, err := bl.Compile(nil, m.Logits(ids, 1, c.context))
				if err != nil {
					b.Fatal(err)
				}
				defer prog.Close()
				prog.SetTraining(false)
				for range c.inferWarmup {
					if err := prog.Forward(); err != nil {
						b.Fatal(err)
					}
				}
				progs[i] = prog
			}
			ms := make([][]float64, len(modes))
			b.ResetTimer()
			for range b.N {
				for i, p := range progs {
					t0 := time.Now()
					if err := p.Forward(); err != nil {
						b.Fatal(err)
					}
					ms[i] = append(ms[i], float64(time.Since(t0).Microseconds())/1000)
				}
			}
			b.StopTimer()
			for i, mode := range modes {
				b.ReportMetric(benchutil.Median(ms[i]), mode+"-ms")
			}
		})
	}
}
