// Package benchmarks holds golora's end-to-end speed and memory benchmarks of
// the standard configurations, run with go test:
//
//	go test ./benchmarks -run '^$' -bench . -benchtime 10x [-tags openblas]
//
// # Configurations
//
//	tiny       2 layers,  d 64,  4 heads,  context 64,  batch 16, vocab 96
//	small      4 layers,  d 128, 4 heads,  context 128, batch 16, vocab 96
//	gpt2-124M  12 layers, d 768, 12 heads, context 256, batch 4,  vocab 50257
//	smollm2-135M  Llama: 30 layers, d 576, 9 heads (3 key/value), FFN 1536,
//	           context 256, batch 4, vocab 49152 (SmolLM2-135M's shape)
//
// the shapes of experiments.StandardBenchConfig (golora bench) and of
// tools/bench_torch.py, random tokens, float32, no dropout.
//
// # What is measured
//
// BenchmarkTrain: one optimizer step of trainers.Trainer (batching, forward,
// backward, gradient copy, clipping, AdamW) per iteration, for LoRA (r 8,
// α 16, on q and v of every c_attn; on every linear layer of the Llama
// shape) and for full fine-tuning; it reports
// tokens/s, the peak Go heap during the timed steps and the process's peak
// RSS (meaningful when one benchmark runs per process, as
// scripts/bench-compare.sh does).
//
// BenchmarkInfer: the latency of one batch-1 forward pass of a whole context
// for the base model, the model with an unmerged adapter and the model with
// the adapter merged into W.
//
// gpt2-124M and smollm2-135M are skipped with -short: each needs about 4 GB
// and minutes.
package benchmarks
