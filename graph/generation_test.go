package graph

import (
	"errors"
	"strings"
	"testing"
)

// TestGenerationMakesProgramsStale: a program whose graph depends on a
// Generation refuses to run (Run and Forward) once the generation advances,
// with an error wrapping ErrStale that names the state and the change; a
// graph built after the change runs; values changed in place are not a
// change of state; a graph built across a change is stale at once.
func TestGenerationMakesProgramsStale(t *testing.T) {
	gen := NewGeneration("test state")
	w := NewParam("w", Float64, 2, 2)
	build := func() (*Program, *Builder) {
		b := NewBuilder(Float64, 1)
		b.DependOn(gen)
		b.DependOn(nil) // ignored
		y := Linear(b.Input("x", 1, 2), b.Param(w), nil)
		p, err := b.Compile(Sum(y), y)
		if err != nil {
			t.Fatal(err)
		}
		return p, b
	}
	p, _ := build()
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	w.Float64s()[0] = 3 // an optimizer step: programs read values at every run
	if err := p.Stale(); err != nil {
		t.Fatalf("in-place update made the program stale: %v", err)
	}
	gen.Advance("merged")
	if gen.Value() != 1 {
		t.Errorf("Value %d after one Advance", gen.Value())
	}
	for name, run := range map[string]func() error{"Run": p.Run, "Forward": p.Forward, "Stale": p.Stale} {
		err := run()
		if !errors.Is(err, ErrStale) {
			t.Fatalf("%s after Advance: err %v, want ErrStale", name, err)
		}
		if !strings.Contains(err.Error(), "the test state changed (merged)") {
			t.Errorf("%s: error %q does not name the state and the change", name, err)
		}
	}
	if _, err := p.Output(p.outputs[0]); err == nil {
		t.Error("Output after a refused run returned the old values")
	}
	q, _ := build()
	if err := q.Forward(); err != nil {
		t.Fatalf("a program built after the change: %v", err)
	}
	// A graph whose layers were built across a change mixes two states.
	b := NewBuilder(Float64, 1)
	b.DependOn(gen)
	gen.Advance("switched")
	b.DependOn(gen)
	if err := b.Stale(); !errors.Is(err, ErrStale) {
		t.Errorf("mixed graph: %v, want ErrStale", err)
	}
	if err := NewBuilder(Float64, 1).Stale(); err != nil {
		t.Errorf("a graph that depends on nothing is stale: %v", err)
	}
}
