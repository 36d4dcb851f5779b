// Package experiments holds golora's end-to-end experiments as library code,
// so that the golora command, notebooks and tests run the same pipelines.
// It prints nothing: progress goes to callbacks, results to structs that
// encoding/json writes as they are.
//
// It is a public, stable library, not an internal part of the command:
// notebooks import it (notebooks 02 to 04 read their text with
// ReadGoFiles), its API is non-generic so that gophernotes can call it, and
// every exported identifier is documented. An exported name is removed or
// changed only with a note in docs/design.md; results gain fields, they do
// not lose them. The measuring helpers it shares with the benchmarks
// (peak heap, random tokens) live in internal/benchutil.
//
// # The demo
//
// RunDemo is `golora demo`: on text that every Go installation has (the Go
// distribution's own files, ReadGoDomain) it pretrains a small GPT with the
// byte tokenizer on Go source code, trains one LoRA adapter per task domain
// (documentation prose and assembly by default) on that same base and a full
// fine-tuning baseline on one of them, then measures what LoRA promises:
//
//   - each adapter beats the base, and the other adapters, on its own task
//     (validation loss, nats per token);
//   - LoRA trains a few percent of the parameters, and its file is small;
//   - several adapters load onto one base and switch without changing their
//     results;
//   - merging (W ← W + (α/r)·A·B) gives the unmerged outputs, to float32
//     rounding, at the base model's speed.
//
// WriteDemoReport turns the DemoResult into report.md, metrics.json and PNG
// loss curves.
//
// # Benchmarks
//
// Bench measures training tokens/s (LoRA r = 8 on q and v, and full
// fine-tuning), batch-1 forward latency (base, unmerged, merged) and peak
// heap for the standard shapes of StandardBenchConfig; BenchResult encodes
// as JSON.
//
// # Data
//
// ReadGoDomain samples one kind of text of the Go distribution (source,
// assembly, documentation, API listings) evenly over its files;
// ReadGoFiles concatenates the files that match glob patterns, as the
// notebooks do.
//
// LoadData reads a user's file as plain text (windows of context+1 tokens)
// or as "context||completion" lines (loss on the completion), detecting the
// format with DetectFormat. NewForward compiles an inference program for
// logits, latency and merged-versus-unmerged comparisons.
package experiments
