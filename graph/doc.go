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
// float64 finite-difference test and a float32-against-float64 test. Each
// node owns its output buffer and reuses it from run to run.
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
// rather than Gorgonia's TapeMachine: in dependency order, each op writing
// into storage that belongs to its node and lasts from run to run (a fused
// op's own buffer; for the additions Gorgonia's Grad inserts, a buffer the
// executor keeps for them). Nothing is reallocated per run, no node's value
// is overwritten later in the same run (gorgonia issue #569 cannot occur),
// and Output and Grad are views of those buffers, not copies.
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
