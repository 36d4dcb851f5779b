package graph

import (
	"errors"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// TestGorgoniaErrorsUnwrap: golora wraps with the standard library (%w);
// Gorgonia wraps with github.com/pkg/errors. An error Gorgonia returns, here
// a shape mismatch from its own MatMul, surfaces through Builder and
// Compile so that errors.Is finds it and errors.As finds both Gorgonia's
// SymDiffError and the pkg/errors chain underneath.
func TestGorgoniaErrorsUnwrap(t *testing.T) {
	t.Run("build", func(t *testing.T) {
		b := NewBuilder(Float64, 1)
		x := b.Input("x", 2, 3)
		_, gerr := G.Mul(x.n, x.n) // [2, 3]·[2, 3]: Gorgonia's shape check fails
		if gerr == nil {
			t.Fatal("Gorgonia accepted a [2, 3]·[2, 3] product")
		}
		n := b.wrap(nil, gerr, "MatMul", x, x)
		_, err := b.Compile(nil, n)
		if err == nil {
			t.Fatal("Compile of a failed builder returned no error")
		}
		if !errors.Is(err, gerr) {
			t.Fatalf("errors.Is(%v, Gorgonia's error) = false", err)
		}
		// pkg/errors' wrappers have Cause (and, since v0.9, Unwrap).
		type causer interface{ Cause() error }
		var c causer
		if !errors.As(err, &c) {
			t.Fatalf("errors.As did not find a pkg/errors wrapper in %v", err)
		}
		root := gerr
		for c, ok := root.(causer); ok; c, ok = root.(causer) {
			root = c.Cause()
		}
		if root == gerr || !errors.Is(err, root) {
			t.Fatalf("errors.Is does not reach the root %v of Gorgonia's pkg/errors chain", root)
		}
		if !strings.HasPrefix(err.Error(), "graph: MatMul: ") {
			t.Fatalf("error %q does not name the op", err)
		}
	})
	t.Run("gradient", func(t *testing.T) {
		b := NewBuilder(Float64, 1)
		w := NewParam("w", Float64, 2, 3)
		var gerr error
		grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
			_, gerr = G.Mul(in[0], in[0]) // a gradient function that hits Gorgonia's shape check
			return nil, gerr
		}
		gn, _, err := b.apply(transposeKernel{}, []bool{true}, grads, b.Param(w).n)
		y := b.wrap(gn, err, "Transpose", b.Param(w))
		_, err = b.Compile(Sum(y))
		if err == nil || gerr == nil {
			t.Fatalf("Compile: %v, gradient function: %v; want both to fail", err, gerr)
		}
		var sd G.SymDiffError
		if !errors.As(err, &sd) {
			t.Fatalf("errors.As did not find Gorgonia's SymDiffError in %v", err)
		}
		if !errors.Is(err, gerr) {
			t.Fatalf("errors.Is(%v, the gradient function's Gorgonia error) = false", err)
		}
		if !strings.Contains(err.Error(), "graph: compile: gradients:") {
			t.Fatalf("error %q does not say where it happened", err)
		}
	})
}
