package experiments

import (
	"math"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// chainTokens is n tokens of a chain that mostly follows next(prev) and
// with probability noise jumps to a random token.
func chainTokens(n, vocab int, seed uint64, noise float64, next func(int) int) []int {
	rng := graph.NewRand(seed)
	out := make([]int, n)
	for i := 1; i < n; i++ {
		out[i] = next(out[i-1])
		if rng.Float64() < noise {
			out[i] = rng.IntN(vocab)
		}
	}
	return out
}

// TestQuantizedBaseQuality pretrains a small GPT-2 on one token chain,
// then trains the same LoRA adapter (same seed, data and steps) on another
// chain with the frozen base held at f32, bf16, int8 and nf4, embeddings
// included, and compares the validation losses: bf16 and nf4 must be within
// 2% of f32 (docs/memory.md records the figures; go test -v prints them).
func TestQuantizedBaseQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("trains five small models")
	}
	const vocab, ctx = 64, 32
	c := BenchConfig{Layers: 2, Embd: 64, Heads: 4, Context: ctx, Vocab: vocab}
	base, err := benchModel(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	train := func(m trainers.LanguageModel, toks []int, steps int, lr float64) {
		ds, err := trainers.NewTextDataset(toks, ctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg := trainers.DefaultConfig()
		cfg.Batch, cfg.Context, cfg.Steps, cfg.LR, cfg.Seed, cfg.LogEvery = 16, ctx, steps, lr, 3, steps
		tr, err := trainers.New(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if _, err := tr.Train(ds, nil); err != nil {
			t.Fatal(err)
		}
	}
	train(base, chainTokens(40000, vocab, 2, 0.1, func(p int) int { return (5*p + 3) % vocab }), 150, 3e-3)

	next := func(p int) int { return (p + 11) % vocab }
	tune, valid := chainTokens(20000, vocab, 4, 0.1, next), chainTokens(4096, vocab, 5, 0.1, next)
	vds, err := trainers.NewTextDataset(valid, ctx)
	if err != nil {
		t.Fatal(err)
	}
	loss := map[graph.Precision]float64{}
	for _, prec := range []graph.Precision{graph.F32, graph.BF16, graph.Int8, graph.NF4} {
		m, err := benchModel(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range base.BaseParams() {
			if err := m.BaseParams()[i].CopyFrom(p); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := lora.Inject(m, lora.Config{R: 8, Alpha: 16, Targets: []string{"c_attn", "c_fc"}, Seed: 7}); err != nil {
			t.Fatal(err)
		}
		if _, err := nn.QuantizeBase(m, prec, true); err != nil {
			t.Fatal(err)
		}
		train(m, tune, 60, 3e-3)
		cfg := trainers.DefaultConfig()
		cfg.Batch, cfg.Context = 16, ctx
		tr, err := trainers.New(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := tr.Evaluate(vds)
		tr.Close()
		if err != nil {
			t.Fatal(err)
		}
		loss[prec] = ev.Loss
		t.Logf("base %-4v: validation loss %.4f", prec, ev.Loss)
	}
	if loss[graph.F32] > 2.5 { // log 64 = 4.16 for a model that learnt nothing
		t.Fatalf("the f32 adapter did not learn the chain: validation loss %.4f", loss[graph.F32])
	}
	for _, prec := range []graph.Precision{graph.BF16, graph.NF4} {
		if d := math.Abs(loss[prec]-loss[graph.F32]) / loss[graph.F32]; d > 0.02 {
			t.Errorf("validation loss %.4f on a %v base, %.1f%% from f32's %.4f", loss[prec], prec, 100*d, loss[graph.F32])
		}
	}
}
