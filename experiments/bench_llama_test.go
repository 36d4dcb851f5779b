package experiments

import (
	"math"
	"testing"
)

// TestBenchLlama runs Bench on a tiny Llama shape: LoRA on every linear
// layer trains fewer parameters than full fine-tuning, and the merged
// adapter gives the unmerged logits.
func TestBenchLlama(t *testing.T) {
	c := BenchConfig{Name: "llama-tiny", Arch: "llama", Layers: 2, Embd: 32, Heads: 4, KVHeads: 2, FFN: 64, Context: 16,
		Batch: 2, Vocab: 50, Steps: 1, Warmup: 1, LatencyRuns: 1}
	res, err := Bench(BenchOptions{Configs: []BenchConfig{c}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Configs[0]
	// all-linear, r 8 on 2 layers: q (32→32), k, v (32→16), o (32→32),
	// gate, up (32→64), down (64→32): 8·Σ(in+out) per layer.
	want := 2 * 8 * ((32 + 32) + 2*(32+16) + (32 + 32) + 2*(32+64) + (64 + 32))
	if r.LoRATrainable != want {
		t.Errorf("LoRA trains %d parameters, want %d (all-linear)", r.LoRATrainable, want)
	}
	if !(r.LoRATokensPerSec > 0 && r.FullTokensPerSec > 0) || math.IsInf(r.LoRATokensPerSec, 0) {
		t.Errorf("tokens/s %v, %v", r.LoRATokensPerSec, r.FullTokensPerSec)
	}
	if r.MergedMaxAbsDiff > 1e-4 {
		t.Errorf("merged and unmerged logits differ by %g", r.MergedMaxAbsDiff)
	}
	if _, err := Bench(BenchOptions{Configs: []BenchConfig{{Name: "x", Arch: "rwkv", Layers: 1, Embd: 8, Heads: 1, Context: 4, Batch: 1, Vocab: 8, Steps: 1, LatencyRuns: 1}}}); err == nil {
		t.Error("unknown Arch: no error")
	}
}
