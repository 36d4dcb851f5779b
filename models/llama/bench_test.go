package llama

import (
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
)

// loraStep is one compiled LoRA training step (all linear layers, r = 8,
// α = 16) of a preset on a batch of random tokens.
type loraStep struct {
	m    *Model
	prog *graph.Program
	n    int
}

func newLoRAStep(tb testing.TB, preset string, batch, ctx int) *loraStep {
	tb.Helper()
	cfg, err := Preset(preset)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := New(cfg, graph.Float32)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Init(graph.NewRand(1)); err != nil {
		tb.Fatal(err)
	}
	if _, err := lora.Inject(m, lora.Config{R: 8, Alpha: 16, Targets: []string{lora.AllLinear}, Seed: 1}); err != nil {
		tb.Fatal(err)
	}
	n := batch * ctx
	b := graph.NewBuilder(graph.Float32, 1)
	ids := b.IntConstant("ids", randomIDs(1, n, cfg.VocabSize), n)
	targets := b.IntConstant("targets", randomIDs(2, n, cfg.VocabSize), n)
	prog, err := b.Compile(m.Loss(ids, targets, nil, batch, ctx, 0))
	if err != nil {
		tb.Fatal(err)
	}
	return &loraStep{m: m, prog: prog, n: n}
}

// sgd runs forward and backward and moves every trainable parameter by
// −lr·gradient; it returns the loss before the update.
func (s *loraStep) sgd(tb testing.TB, lr float32) float64 {
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

// TestLoRATrainingLowersLoss trains all-linear LoRA on one fixed batch of
// llama-nano: the loss must fall, and only A and B may change.
func TestLoRATrainingLowersLoss(t *testing.T) {
	s := newLoRAStep(t, "llama-nano", 2, 16)
	before := make(map[string][]float64)
	for _, p := range s.m.BaseParams() {
		before[p.Name] = p.Values()
	}
	first := s.sgd(t, 0.5)
	var last float64
	for range 30 {
		last = s.sgd(t, 0.5)
	}
	if !(last < first-0.1) {
		t.Errorf("loss %v after 30 steps, from %v", last, first)
	}
	for _, p := range s.m.BaseParams() {
		if !bitEqual(p.Values(), before[p.Name]) {
			t.Errorf("frozen %s changed", p.Name)
		}
	}
	if got := len(s.prog.Trainable()); got != 2*7*3 {
		t.Errorf("%d trainable parameters, want A and B of 7 projections in 3 layers", got)
	}
}

// BenchmarkLoRAStep times one all-linear LoRA training step (forward,
// backward, SGD update):
//
//	go test -tags openblas ./models/llama -run XXX -bench LoRAStep -benchtime 5x
//
// "smollm2-135M" is the bench shape: batch 4 × 256 tokens.
func BenchmarkLoRAStep(b *testing.B) {
	for _, c := range []struct {
		preset     string
		batch, ctx int
	}{{"llama-micro", 8, 128}, {"smollm2-135M", 4, 256}} {
		b.Run(c.preset, func(b *testing.B) {
			if testing.Short() && c.preset == "smollm2-135M" {
				b.Skip("the 135M shape takes seconds a step")
			}
			s := newLoRAStep(b, c.preset, c.batch, c.ctx)
			s.sgd(b, 1e-4) // warm-up: sizes every buffer
			b.ResetTimer()
			for range b.N {
				s.sgd(b, 1e-4)
			}
			b.ReportMetric(float64(s.n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
