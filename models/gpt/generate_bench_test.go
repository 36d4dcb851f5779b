package gpt

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golora/golora/graph"
)

// benchModels builds each benchmark model once per process, on first use:
// the "micro" preset and a GPT-2-small-shaped one ("gpt2" preset), both
// float32 with GPT-2's random initialisation.
var benchModels = map[string]func() *Model{
	"micro": sync.OnceValue(func() *Model { return benchModel("micro") }),
	"gpt2":  sync.OnceValue(func() *Model { return benchModel("gpt2") }),
}

func benchModel(name string) *Model {
	cfg, _ := Preset(name)
	m, err := New(cfg, graph.Float32)
	if err != nil {
		panic(err)
	}
	if err := m.Init(graph.NewRand(1)); err != nil {
		panic(err)
	}
	return m
}

// meter accumulates wall and CPU time over the timed parts of a benchmark.
type meter struct {
	wall, cpu time.Duration
	t0, c0    time.Duration
	start     time.Time
	cpuOK     bool
}

func (m *meter) begin() {
	m.start = time.Now()
	m.c0, m.cpuOK = processCPU()
}

func (m *meter) end() {
	m.wall += time.Since(m.start)
	if c, ok := processCPU(); ok && m.cpuOK {
		m.cpu += c - m.c0
	}
}

// report divides the times by n and reports them in milliseconds per unit:
// wall time, and CPU time of the whole process (both cores) where the
// platform measures it.
func (m *meter) report(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(m.wall.Microseconds())/1e3/float64(n), "ms/"+unit)
	if m.cpuOK {
		b.ReportMetric(float64(m.cpu.Microseconds())/1e3/float64(n), "cpu-ms/"+unit)
	}
}

// benchShapes are the prompt and generation lengths per model: GPT-2-small
// recomputation is slow, so its runs are shorter.
var benchShapes = map[string]struct{ prompt, gen int }{
	"micro": {prompt: 32, gen: 64},
	"gpt2":  {prompt: 16, gen: 16},
}

// BenchmarkDecodeToken measures the latency of one generated token, batch
// 1, greedy: "cached" runs the 1-token Decoder against a KV cache (the
// prompt is prefilled outside the timing); "recompute" runs Model.Logits
// over the whole prefix at every step, its program compiled outside the
// timing and run once before the timed run, so that only the forward pass
// over the prefix is timed (a real uncached decoder would also pay for
// compiling and first-run allocation). Reported as ms/token over the
// generated tokens, wall and CPU time.
//
//	go test ./models/gpt -run '^$' -bench DecodeToken -benchtime 3x
func BenchmarkDecodeToken(b *testing.B) {
	for _, name := range []string{"micro", "gpt2"} {
		shape := benchShapes[name]
		b.Run(name+"/cached", func(b *testing.B) {
			m := benchModels[name]()
			prompt := randomIDs(1, shape.prompt, 256)
			pre, cache, err := m.NewDecoder(1, shape.prompt, shape.prompt+shape.gen)
			if err != nil {
				b.Fatal(err)
			}
			defer pre.Close()
			step, _, err := m.NewDecoder(1, 1, shape.prompt+shape.gen)
			if err != nil {
				b.Fatal(err)
			}
			defer step.Close()
			var mt meter
			b.ResetTimer()
			for range b.N {
				cache.Reset()
				logits, _, err := pre.Decode(cache, [][]int{prompt})
				if err != nil {
					b.Fatal(err)
				}
				mt.begin()
				for range shape.gen - 1 {
					next := argmax(logits.Values())
					if logits, _, err = step.Decode(cache, [][]int{{next}}); err != nil {
						b.Fatal(err)
					}
				}
				mt.end()
			}
			mt.report(b, b.N*(shape.gen-1), "token")
		})
		b.Run(name+"/recompute", func(b *testing.B) {
			m := benchModels[name]()
			ctx := randomIDs(1, shape.prompt, 256)
			var mt meter
			b.ResetTimer()
			for range b.N {
				seq := append([]int(nil), ctx...)
				for range shape.gen - 1 {
					bl := graph.NewBuilder(m.DType(), 1)
					in := bl.IntInput("ids", len(seq))
					logits := m.Logits(in, 1, len(seq))
					prog, err := bl.Compile(nil, logits)
					if err != nil {
						b.Fatal(err)
					}
					prog.SetTraining(false)
					if err := prog.SetInts(in, seq); err != nil {
						b.Fatal(err)
					}
					if err := prog.Forward(); err != nil { // first run: buffers
						b.Fatal(err)
					}
					mt.begin()
					if err := prog.Forward(); err != nil {
						b.Fatal(err)
					}
					mt.end()
					out, _ := prog.Output(logits)
					v := m.VocabSize()
					seq = append(seq, argmax(out.Values()[(len(seq)-1)*v:]))
					_ = prog.Close()
				}
			}
			mt.report(b, b.N*(shape.gen-1), "token")
		})
	}
}

// BenchmarkPrefill measures feeding a 64-token prompt into an empty cache,
// batch 1: one token per run of the 1-token step decoder, in chunks of 32
// (what Generate does), or all 64 in one run. Reported as ms/prompt.
//
//	go test ./models/gpt -run '^$' -bench Prefill -benchtime 3x
func BenchmarkPrefill(b *testing.B) {
	const n = 64
	for _, name := range []string{"micro", "gpt2"} {
		for _, chunk := range []int{1, 32, 64} {
			b.Run(fmt.Sprintf("%s/chunk%d", name, chunk), func(b *testing.B) {
				m := benchModels[name]()
				prompt := randomIDs(2, n, 256)
				dec, cache, err := m.NewDecoder(1, chunk, n)
				if err != nil {
					b.Fatal(err)
				}
				defer dec.Close()
				var mt meter
				b.ResetTimer()
				for range b.N {
					cache.Reset()
					mt.begin()
					for at := 0; at < n; at += chunk {
						if _, _, err := dec.Decode(cache, [][]int{prompt[at : at+chunk]}); err != nil {
							b.Fatal(err)
						}
					}
					mt.end()
				}
				mt.report(b, b.N, "prompt")
			})
		}
	}
}

// BenchmarkBeamSearch runs the paper's E2E decoding (10 beams, length
// penalty 0.9, no repeated 4-gram) on 8 prompts of 40 tokens, 32 new tokens
// each (no stop tokens, so every beam runs to the end), with 1, 2 or 4
// prompts sharing a step. Reported as ms/prompt, wall and CPU time.
//
//	go test ./models/gpt -run '^$' -bench BeamSearch -benchtime 1x
func BenchmarkBeamSearch(b *testing.B) {
	for _, c := range []struct {
		model   string
		prompts int
		batches []int
	}{{"micro", 8, []int{1, 2, 4}}, {"gpt2", 2, []int{1, 2}}} {
		for _, batch := range c.batches {
			b.Run(fmt.Sprintf("%s/batch%d", c.model, batch), func(b *testing.B) {
				m := benchModels[c.model]()
				prompts := make([][]int, c.prompts)
				for i := range prompts {
					prompts[i] = randomIDs(uint64(10+i), 40, 256)
				}
				opts := E2EDecoding()
				opts.MaxNewTokens, opts.BatchSize, opts.StopTokens = 32, batch, []int{}
				g, err := m.NewGenerator(opts)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				if _, err := g.Generate(prompts[:batch]); err != nil { // compile outside the timing
					b.Fatal(err)
				}
				var mt meter
				b.ResetTimer()
				for range b.N {
					mt.begin()
					if _, err := g.Generate(prompts); err != nil {
						b.Fatal(err)
					}
					mt.end()
				}
				mt.report(b, b.N*len(prompts), "prompt")
			})
		}
	}
}
