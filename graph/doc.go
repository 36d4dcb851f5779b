// Package graph is golora's boundary with Gorgonia: named parameters whose
// values outlive any graph, compiled programs, fused operations with their
// gradients, a finite-difference gradient checker and seeded initialisers.
// It is the only golora package that imports gorgonia.
//
// # Overview
//
// A model is a Gorgonia expression graph. Parameters (Param) hold the weights;
// a Builder binds them into one graph together with per-run inputs, and the
// fused ops of this package add nodes:
//
//	b := graph.NewBuilder(graph.Float32, seed)
//	x := b.Input("x", n, in)                      // [N, in]
//	y := graph.Linear(x, b.Param(w), b.Param(bias)) // [N, in]·[in, out] → [N, out]
//	prog, err := b.Compile(loss, y)
//
// Compile differentiates the loss symbolically (Gorgonia's Grad) with respect
// to every parameter that is Trainable at that moment. A parameter that is not
// trainable is frozen: no gradient is computed for it and no optimizer sees
// it. (LoRA lives in package nn/lora, which composes the ops below and freezes
// base weights this way.)
//
// A Program is built once per input shape and then run any number of times:
// SetInput, Run (forward and backward) or Forward, then Loss, Output and Grad.
// Optimizers update Param values in place; the next run sees them.
//
// Layers whose structure depends on some state (which adapter is active,
// whether it is merged) record that state's Generation with
// Builder.DependOn while they build; once the state changes, programs built
// before return an error wrapping ErrStale instead of running.
//
// # Fused ops
//
// Each op is one Gorgonia node with its own gradient: Linear and LinearT
// (gemm with transpose flags, no copies), Embedding, LayerNorm, GELU (tanh
// form), Dropout, Softmax, CausalSelfAttention and SoftmaxCrossEntropy,
// plus Add, Mul and Sum; for Llama-family models RMSNorm, RoPE (rotary
// embeddings with the linear and llama3 scaling rules, see RoPEConfig), SiLU
// and GroupedQueryAttention. CachedSelfAttention and
// CachedGroupedQueryAttention are the forward-only attentions of incremental
// decoding, over a key/value cache held in frozen parameters. Every op has a
// float64 finite-difference test and a float32-against-float64 test.
//
// # Generic primitives
//
// Layers that are compositions rather than fused ops are built from small
// generic primitives, each with its own gradient built from the same
// primitives' kernels: MatMul (with transpose flags), Transpose, Scale,
// Sub, Div, Mean, SliceCols and AddCols (a block of columns), ScaleRows and
// RowMask (per-row factors and 0/1 masks from an integer node), ScaleCols
// and AddBias (per-column factors and offsets), L2Norm (norms of the rows
// or columns) and Detach (a value through which symbolic differentiation
// does not pass).
//
// # Running
//
// A Program runs the nodes a run needs with a small executor of this package
// rather than Gorgonia's TapeMachine. It plans a program once, at its first
// run, and then runs it in dependency order without allocating. Its passes
// (each can be switched off with Program.SetExecOptions, for tests and
// measurements):
//
//   - Storage by liveness. Every value a step computes lives in a buffer of
//     the program's arena; once the last step that reads a value has run,
//     its buffer serves a later value of the same size. The roots (the
//     outputs, the loss and the gradients) have buffers of their own, so
//     Output and Grad are views that stay valid until the next run;
//     nothing else survives a run. Buffers last from run to run.
//   - Folding. A Scale whose input is a product (MatMul, Linear and their
//     gradients) read only by it becomes that product's α; a Scale or a
//     SliceCols read only by products is not run: the products read its
//     input with the factor in α, or with an offset and a row stride.
//   - Accumulation. A product read only by a sum (Add, AddCols, and the
//     sums of gradient contributions Gorgonia's Grad inserts) is computed
//     by GEMM with β = 1 straight into the sum's output instead of being
//     materialised and then added; a sum read only by another sum of its
//     shape is merged into it.
//   - In place. An elementwise op (Add, Sub, Mul, Div, Scale, AddCols,
//     AddBias, ScaleCols, ScaleRows), or a sum, overwrites an input whose
//     value dies at that step.
//
// Storage and in-place passes leave every value bit for bit the same;
// folding and accumulation change the order of roundings (α·Σ instead of
// s·(Σ), or y + Σ accumulated in GEMM), so values differ in the last bits.
// A folded or accumulated op still counts as run in Builder.OpRuns. No
// node's value is overwritten while a later step still reads it (gorgonia
// issue #569 cannot occur).
//
// # Errors
//
// Building is error-sticky: an op given a failed node returns a failed node,
// and Compile (or Builder.Err) reports the first error with the op's name. No
// function of this package panics on bad shapes or bad input data; run-time
// problems (an out-of-range token id) are returned by Run and Forward.
//
// # Gradient checks
//
// CheckGradients compares symbolic gradients with central differences in
// float64 and reports the worst absolute and relative error per parameter;
// dropout masks and Detach values are held at the unperturbed run's. Call it
// from your own tests to check a layer you build from these ops.
//
// # Looking at a graph
//
// Builder.Dot returns the graph in Graphviz's DOT language as Gorgonia
// writes it (render it with dot -Tsvg); Builder.OpRuns counts how often each
// op ran, which shows what runs skip.
//
// # BLAS
//
// Matrix products run on Gorgonia's BLAS: gonum's pure-Go implementation by
// default, or OpenBLAS through cgo when built with -tags openblas (Debian:
// apt-get install libopenblas-dev). BLASName reports which one is active.
//
// The OpenBLAS build keeps OpenBLAS on one thread (its own threads
// busy-wait between calls, taking cores from the Go code in between) and
// splits each large product into one block of rows or columns per CPU,
// computed on goroutines; gonum parallelises large products itself.
//
// # Vector kernels
//
// On amd64 CPUs with AVX2 and FMA (detected at start-up), float32 work runs
// eight lanes at a time (vmath_amd64.s): the exponentials (within 2 ulp)
// and row maxima of Softmax, CausalSelfAttention and SoftmaxCrossEntropy,
// the softmax backward pass of the first two, GELU forward and backward,
// SiLU forward, and LayerNorm rows whose width is a multiple of 8; sums
// stay in float64.
// Elsewhere the same maths runs in Go.
package graph
