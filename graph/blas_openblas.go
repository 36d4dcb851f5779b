//go:build openblas

package graph

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

const blasName = "openblas"

// With -tags openblas every Gorgonia and golora matrix product runs on the
// system's CBLAS through cgo (Debian: libopenblas-dev). Gorgonia keeps its BLAS
// choice in one process-wide setting; this build sets it once, at start-up.
func init() { G.Use(netlib.Implementation{}) }
