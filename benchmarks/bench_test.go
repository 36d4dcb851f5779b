package benchmarks

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// config is one standard configuration (see the package comment).
type config struct {
	name                     string
	layers, embd, heads      int
	context, batch, vocab    int
	slow                     bool // skipped with -short
	trainWarmup, inferWarmup int
}

var configs = []config{
	{name: "tiny", layers: 2, embd: 64, heads: 4, context: 64, batch: 16, vocab: 96, trainWarmup: 2, inferWarmup: 3},
	{name: "small", layers: 4, embd: 128, heads: 4, context: 128, batch: 16, vocab: 96, trainWarmup: 2, inferWarmup: 2},
	{name: "gpt2-124M", layers: 12, embd: 768, heads: 12, context: 256, batch: 4, vocab: 50257, slow: true, trainWarmup: 1, inferWarmup: 1},
}

// model builds c's GPT in float32 with GPT-2's initialisation (no dropout).
func (c config) model(tb testing.TB) *gpt.Model {
	tb.Helper()
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

// adapter is the LoRA every benchmark uses: r 8, α 16 on q and v.
func adapter() lora.Config {
	return lora.Config{R: 8, Alpha: 16, Targets: []string{"q", "v"}, Seed: 1}
}

func randomTokens(n, vocab int, seed uint64) []int {
	rng := graph.NewRand(seed)
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
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
	resetPeakRSS()
	m := c.model(b)
	if useLoRA {
		if _, err := lora.Inject(m, adapter()); err != nil {
			b.Fatal(err)
		}
	}
	steps := c.trainWarmup + b.N
	ds, err := trainers.NewTextDataset(randomTokens(c.batch*c.context*steps+1, c.vocab, 2), c.context)
	if err != nil {
		b.Fatal(err)
	}
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps = c.batch, c.context, steps
	cfg.LR, cfg.Schedule, cfg.LogEvery = 1e-3, trainers.ScheduleConstant, steps
	var peak *peakSampler
	cfg.Observer.OnStep = func(s trainers.StepInfo) {
		if s.Step == c.trainWarmup {
			peak = startPeak()
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
	b.ReportMetric(peak.stop(), "peak-heap-MiB")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
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
	resetPeakRSS()
	m := c.model(b)
	if mode != "base" {
		lm, err := lora.Inject(m, adapter())
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
	ids := bl.IntConstant("ids", randomTokens(c.context, c.vocab, 3), c.context)
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
	peak := startPeak()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := prog.Forward(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/pass")
	b.ReportMetric(peak.stop(), "peak-heap-MiB")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
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
					lm, err := lora.Inject(m, adapter())
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
				ids := bl.IntConstant("ids", randomTokens(c.context, c.vocab, 3), c.context)
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
				b.ReportMetric(median(ms[i]), mode+"-ms")
			}
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// peakSampler records the largest Go heap (live and unswept objects) seen
// while it runs.
type peakSampler struct {
	quit chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func startPeak() *peakSampler {
	runtime.GC()
	s := &peakSampler{quit: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			s.peak = max(s.peak, sample[0].Value.Uint64())
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends sampling and returns the peak in MiB.
func (s *peakSampler) stop() float64 {
	if s == nil {
		return 0
	}
	close(s.quit)
	s.wg.Wait()
	return float64(s.peak) / (1 << 20)
}

// resetPeakRSS returns the memory of earlier runs to the OS and restarts
// the kernel's peak-RSS count (Linux ≥ 4.0; elsewhere nothing happens), so
// that peakRSSMiB measures one run: testing runs a benchmark function once
// with b.N = 1 before the timed run, in the same process.
func resetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSSMiB is VmHWM from /proc/self/status (0 where it does not exist).
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}
