//go:build openblas

package graph

import (
	G "gorgonia.org/gorgonia"
	"gonum.org/v1/netlib/blas/netlib"
)

const blasName = "openblas"

// With -tags openblas every Gorgonia and golora matrix product runs on the
// system's CBLAS through cgo (Debian: libopenblas-dev). Gorgonia keeps its BLAS
// choice in one process-wide setting; this build sets it once, at start-up.
func init() { G.Use(netlib.Implementation{}) }
