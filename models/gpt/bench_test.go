package gpt

import (
	"math"
	"runtime"
	"strconv"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/benchutil"
	"github.com/golora/golora/nn/lora"
)

// gpt2Step is one compiled LoRA training step of a GPT-2-small-shaped model:
// the paper's setting (q and v of every c_attn, r = 4, α = 32, LoRA dropout
// 0.1) on a batch of random tokens.
type gpt2Step struct {
	m          *Model
	lm         *lora.Model
	prog       *graph.Program
	batch, ctx int
}

func newGPT2Step(tb testing.TB, batch, ctx int) *gpt2Step {
	tb.Helper()
	cfg, _ := Preset("gpt2")
	m, err := New(cfg, graph.Float32)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Init(graph.NewRand(1)); err != nil {
		tb.Fatal(err)
	}
	lm, err := lora.Inject(m, lora.PaperGPT2())
	if err != nil {
		tb.Fatal(err)
	}
	n := batch * ctx
	b := graph.NewBuilder(graph.Float32, 1)
	ids := b.IntConstant("ids", randomIDs(1, n, cfg.VocabSize), n)
	targets := b.IntConstant("targets", randomIDs(2, n, cfg.VocabSize), n)
	loss := m.Loss(ids, targets, nil, batch, ctx, 0.1)
	prog, err := b.Compile(loss)
	if err != nil {
		tb.Fatal(err)
	}
	return &gpt2Step{m: m, lm: lm, prog: prog, batch: batch, ctx: ctx}
}

// sgd runs forward and backward, then moves every trainable parameter by
// −lr·gradient; it returns the loss before the update.
func (s *gpt2Step) sgd(tb testing.TB, lr float32) float64 {
	if err := s.prog.Run(); err != nil {
		tb.Fatal(err)
	}
	for _, p := range s.prog.Trainable() {
		g, _ := s.prog.Grad(p)
		w := p.Float32s()
		for i, d := range g.F32 {
			w[i] -= lr * d
		}
	}
	return s.prog.Loss()
}

// TestGPT2SmallLoRAStep builds GPT-2 small (124M parameters, float32),
// injects the paper's q,v LoRA and takes one SGD step on a 1×256 batch: only
// the 147,456 LoRA parameters train, and the loss on the batch goes down.
func TestGPT2SmallLoRAStep(t *testing.T) {
	if testing.Short() {
		t.Skip("GPT-2 small needs ~2 GB and tens of seconds")
	}
	s := newGPT2Step(t, 1, 256)
	s.prog.SetTraining(false) // compare losses without dropout noise
	var n int
	for _, p := range s.prog.Trainable() {
		n += p.Len()
	}
	// |Θ| = 2·L̂·d·r with L̂ = 24 adapted matrices (q, v × 12), d = 768, r = 4.
	if want := 2 * 24 * 768 * 4; n != want || len(s.prog.Trainable()) != 48 {
		t.Errorf("%d trainable parameters in %d tensors, want %d in 48", n, len(s.prog.Trainable()), want)
	}
	before := s.sgd(t, 0.05)
	if math.Abs(before-math.Log(50257)) > 0.5 {
		t.Errorf("initial loss %v, want ≈ ln 50257 = 10.82", before)
	}
	if err := s.prog.Forward(); err != nil {
		t.Fatal(err)
	}
	after := s.prog.Loss()
	if !(after < before) {
		t.Errorf("loss %v after one step, %v before", after, before)
	}
	t.Logf("loss %.6f → %.6f; peak RSS %.2f GB", before, after, benchutil.PeakRSSMiB()/1024)
}

// BenchmarkGPT2SmallLoRA times one training step (forward, backward, SGD
// on the LoRA matrices) of GPT-2 small with the paper's q,v LoRA, float32,
// context 256, and reports tokens/s, the process's peak RSS and the live
// heap after the steps (weights, activations and gradients that the
// program keeps between steps). Run it alone, so that the peak is its own:
//
//	go test ./models/gpt -run '^$' -bench GPT2SmallLoRA -benchtime 3x [-tags openblas]
func BenchmarkGPT2SmallLoRA(b *testing.B) {
	for _, batch := range []int{1, 4} {
		b.Run("batch"+strconv.Itoa(batch)+"-ctx256", func(b *testing.B) {
			s := newGPT2Step(b, batch, 256)
			s.sgd(b, 1e-4) // warm-up: the first run allocates every buffer
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.sgd(b, 1e-4)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*batch*256)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(benchutil.PeakRSSMiB(), "peakRSS-MB")
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "liveHeap-MB")
			_ = s.prog.Close()
		})
	}
}
