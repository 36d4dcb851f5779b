package trainers

import (
	"testing"

	"github.com/golora/golora/graph"
)

// BenchmarkAdamWStep: one update of 1M float32 values.
func BenchmarkAdamWStep(b *testing.B) {
	for _, dt := range []graph.DType{graph.Float32, graph.Float64} {
		b.Run(dt.String(), func(b *testing.B) {
			p := graph.NewParam("w", dt, 1024, 1024)
			g := graph.Array{Shape: []int{1024, 1024}}
			if dt == graph.Float32 {
				g.F32 = make([]float32, p.Len())
			} else {
				g.F64 = make([]float64, p.Len())
			}
			opt := NewAdamW(0.9, 0.999, 1e-6, 0.01)
			b.SetBytes(int64(p.Len() * dt.Size() * 4)) // θ, g, m, v
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := opt.Step([]*graph.Param{p}, []graph.Array{g}, 1e-3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTrainerOverhead: a whole optimizer step (batching, feeding, run,
// gradient copy, norm, AdamW) of a model whose own compute is small, so the
// trainer's share shows: vocabulary 256, d 64, batch 8 × 64 tokens.
func BenchmarkTrainerOverhead(b *testing.B) {
	tokens := markovTokens(20000, 256, 1)
	ds, err := NewTextDataset(tokens, 64)
	if err != nil {
		b.Fatal(err)
	}
	m := newTinyLM(graph.Float32, 256, 64, 0, 0.1, 1)
	cfg := testConfig()
	cfg.Batch, cfg.Context, cfg.Steps = 8, 64, 1<<30
	trn, err := New(m, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer trn.Close()
	smp := newSampler(ds.Len(), 1)
	r := run{t: trn, res: &Result{}, smp: smp}
	sched := trn.Schedule(ds.Len())
	if _, err := r.optimizerStep(ds, sched); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.optimizerStep(ds, sched); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*8*64)/b.Elapsed().Seconds(), "tokens/s")
}
