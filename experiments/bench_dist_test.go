package experiments

import (
	"sync"
	"testing"

	"github.com/golora/golora/trainers"
)

// TestBenchDataParallel runs Bench on two ranks of a LocalGroup: each step
// all-reduces exactly the trainable parameters × 4 bytes (LoRA: the
// adapter; full: every weight), tokens/s are global, and latency is skipped.
func TestBenchDataParallel(t *testing.T) {
	c := BenchConfig{Name: "mini", Layers: 1, Embd: 16, Heads: 2, Context: 8, Batch: 4, Vocab: 11, Steps: 2, Warmup: 1, LatencyRuns: 2}
	g, err := trainers.NewLocalGroup(2)
	if err != nil {
		t.Fatal(err)
	}
	res := make([]*BenchResult, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[r], errs[r] = Bench(BenchOptions{Configs: []BenchConfig{c}, Seed: 1, Collective: g.Rank(r)})
			if errs[r] != nil {
				g.Abort(errs[r])
			}
		}()
	}
	wg.Wait()
	for r := range res {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		got := res[r].Configs[0]
		if res[r].Ranks != 2 || got.LoRAAllReducedBytes != int64(4*got.LoRATrainable) || got.FullAllReducedBytes != int64(4*got.Params) {
			t.Fatalf("rank %d: %d ranks, %d bytes for %d LoRA parameters, %d for %d in all", r, res[r].Ranks,
				got.LoRAAllReducedBytes, got.LoRATrainable, got.FullAllReducedBytes, got.Params)
		}
		if got.LoRATokensPerSec <= 0 || got.LatencyBaseMs != 0 {
			t.Fatalf("rank %d: %v tokens/s, latency %v ms (want skipped)", r, got.LoRATokensPerSec, got.LatencyBaseMs)
		}
	}
	one, err := Bench(BenchOptions{Configs: []BenchConfig{c}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if one.Ranks != 1 || one.Configs[0].LoRAAllReducedBytes != 0 || one.Configs[0].LatencyBaseMs <= 0 {
		t.Fatalf("one process: %+v", one.Configs[0])
	}
}
