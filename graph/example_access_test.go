package graph_test

import (
	"fmt"

	"github.com/golora/golora/graph"
)

// At and Set read and write one element as a float64, by row and column
// (or by flat index), whatever the parameter's dtype.
func ExampleParam_At() {
	for _, dt := range []graph.DType{graph.Float32, graph.Float64} {
		w := graph.NewParam("w", dt, 2, 3)
		w.Set(1.5, 1, 2) // row 1, column 2
		fmt.Println(dt, w.At(1, 2), w.At(5), w.Values())
	}
	// Output:
	// float32 1.5 1.5 [0 0 0 0 0 1.5]
	// float64 1.5 1.5 [0 0 0 0 0 1.5]
}

// MakeParam returns an error for a shape that comes from data; NewParam
// panics with the same message (a programmer error).
func ExampleMakeParam() {
	_, err := graph.MakeParam("h.0.mlp.c_fc.weight", graph.Float32, 64, 0)
	fmt.Println(err)
	// Output: graph: parameter h.0.mlp.c_fc.weight: shape [64 0]: dimension 1 is 0, want > 0
}
