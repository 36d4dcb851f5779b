package graph_test

import (
	"math"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
)

// mustPanic runs f and returns the panic's message, failing when f returns.
func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("no panic")
		}
		if e, ok := r.(error); ok {
			msg = e.Error()
		} else {
			msg, _ = r.(string)
		}
	}()
	f()
	return ""
}

func TestMakeParamRejectsBadShapesAndDTypes(t *testing.T) {
	for _, c := range []struct {
		name  string
		dt    graph.DType
		shape []int
		want  string
	}{
		{"zero", graph.Float32, []int{3, 0}, "dimension 1 is 0"},
		{"negative", graph.Float64, []int{-2}, "dimension 0 is -2"},
		{"dtype", graph.DType(7), []int{2}, "unknown dtype DType(7)"},
		{"overflow", graph.Float32, []int{math.MaxInt / 2, 3}, "more elements than an int holds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := graph.MakeParam("w", c.dt, c.shape...)
			if err == nil || p != nil {
				t.Fatalf("MakeParam(%v, %v) = %v, %v; want an error", c.dt, c.shape, p, err)
			}
			if !strings.Contains(err.Error(), "parameter w") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name the parameter and say %q", err, c.want)
			}
			msg := mustPanic(t, func() { graph.NewParam("w", c.dt, c.shape...) })
			if msg != err.Error() {
				t.Fatalf("NewParam panicked with %q, want MakeParam's error %q", msg, err)
			}
			if _, err := graph.NewParamFrom("w", []float32{1}, c.shape...); c.name != "dtype" && err == nil {
				t.Fatalf("NewParamFrom accepted shape %v", c.shape)
			}
		})
	}
	p, err := graph.MakeParam("ok", graph.Float64, 2, 3)
	if err != nil || p.Len() != 6 || p.DType() != graph.Float64 {
		t.Fatalf("MakeParam(float64, 2, 3) = %v, %v", p, err)
	}
}

// TestParamAtSet: At and Set address elements by flat index or by one index
// per dimension and convert to and from float64 for both dtypes.
func TestParamAtSet(t *testing.T) {
	for _, dt := range []graph.DType{graph.Float32, graph.Float64} {
		p := graph.NewParam("m", dt, 2, 3)
		p.Set(1.5, 1, 2) // row 1, column 2: flat 5
		p.Set(-2, 0)
		if got := p.Values(); got[5] != 1.5 || got[0] != -2 {
			t.Fatalf("%v: values after Set = %v", dt, got)
		}
		if p.At(1, 2) != 1.5 || p.At(5) != 1.5 || p.At(0, 0) != -2 {
			t.Fatalf("%v: At(1, 2) = %v, At(5) = %v, At(0, 0) = %v", dt, p.At(1, 2), p.At(5), p.At(0, 0))
		}
		for _, idx := range [][]int{{6}, {-1}, {2, 0}, {0, 3}, {0, -1}, {0, 0, 0}} {
			msg := mustPanic(t, func() { p.At(idx...) })
			if !strings.Contains(msg, "Param m [2 3]") {
				t.Fatalf("%v: At(%v) panicked with %q, want the parameter and its shape", dt, idx, msg)
			}
			mustPanic(t, func() { p.Set(1, idx...) })
		}
	}
}

// TestArrayAtBounds: Array.At reads by flat or per-dimension index and
// panics with the shape and the index when out of range.
func TestArrayAtBounds(t *testing.T) {
	a := graph.Array{Shape: []int{2, 2}, F32: []float32{1, 2, 3, 4}}
	if a.At(1, 0) != 3 || a.At(3) != 4 {
		t.Fatalf("At(1, 0) = %v, At(3) = %v", a.At(1, 0), a.At(3))
	}
	for _, idx := range [][]int{{4}, {2, 0}, {0, 2}, {-1}} {
		msg := mustPanic(t, func() { a.At(idx...) })
		if !strings.Contains(msg, "Array [2 2]") || !strings.Contains(msg, "out of range") {
			t.Fatalf("At(%v) panicked with %q", idx, msg)
		}
	}
	scalar := graph.Array{F64: []float64{2.5}}
	if scalar.At(0) != 2.5 {
		t.Fatalf("scalar At(0) = %v", scalar.At(0))
	}
	mustPanic(t, func() { scalar.At(1) })
	mustPanic(t, func() { graph.Array{}.At(0) })
}
