//go:build !openblas

package graph

const blasName = "gonum"

// blasSplits is false: gonum's gemm already spreads a large product over
// GOMAXPROCS goroutines.
const blasSplits = false
