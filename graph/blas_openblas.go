//go:build openblas

package graph

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"

	"github.com/golora/golora/graph/internal/openblas"
)

const blasName = "openblas"

// blasSplits is true: OpenBLAS runs on one thread and gemm splits large
// products over goroutines itself.
const blasSplits = true

// With -tags openblas every Gorgonia and golora matrix product runs on the
// system's CBLAS through cgo (Debian: libopenblas-dev). Gorgonia keeps its
// BLAS choice in one process-wide setting; this build sets it once, at
// start-up.
//
// It also keeps OpenBLAS on one thread (again process-wide): OpenBLAS's own
// threads busy-wait between calls, taking a core from the Go code that runs
// between products, and on the narrow low-rank products and small models two
// of them ran 5–10× slower than one.
func init() {
	G.Use(netlib.Implementation{})
	openblas.SetThreads(1)
}
