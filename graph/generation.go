package graph

import (
	"errors"
	"fmt"
)

// ErrStale is wrapped by the error Program.Run and Program.Forward return
// when state the program's graph was built from has changed since (see
// Generation): running it would compute something other than what the
// state now describes. Build and compile a new program.
var ErrStale = errors.New("graph: stale program")

// Generation numbers the versions of some state that layers read while they
// build a graph, such as which of a model's adapters is active or whether
// it is merged into the base weights. A layer calls Builder.DependOn when
// it builds; whoever owns the state calls Advance whenever it changes. A
// Program compiled from a graph built under an older version refuses to
// run with an error wrapping ErrStale instead of computing with the old
// structure. Parameter values changed in place (optimizer steps) are not
// state in this sense: programs read them at every run.
//
// The zero value is not usable; make one with NewGeneration. A Generation
// is not safe for concurrent use.
type Generation struct {
	what string
	n    uint64
	last string // why the last Advance happened
}

// NewGeneration returns the first version of the state that what names
// ("lora model", for error messages).
func NewGeneration(what string) *Generation { return &Generation{what: what} }

// Advance starts a new version; why ("Merge") is quoted by the errors of
// programs built before.
func (g *Generation) Advance(why string) {
	g.n++
	g.last = why
}

// Value is the current version number (0 for a new Generation).
func (g *Generation) Value() uint64 { return g.n }

// DependOn records that the graph being built reads the state g numbers,
// at its current version. Programs compiled from the graph check the
// version before each run (see ErrStale). A nil g is ignored.
func (b *Builder) DependOn(g *Generation) {
	if g == nil {
		return
	}
	if b.deps == nil {
		b.deps = map[*Generation]uint64{}
	}
	if _, ok := b.deps[g]; !ok { // the first version seen: a later one makes the graph mixed, hence stale
		b.deps[g] = g.n
	}
}

// Stale returns nil while every state the builder's graph depends on is at
// the version it was built under, else an error wrapping ErrStale that
// names the state and its last change.
func (b *Builder) Stale() error {
	for g, v := range b.deps {
		if g.n != v {
			return fmt.Errorf("%w: the %s changed (%s) after the graph was built; build and compile a new program", ErrStale, g.what, g.last)
		}
	}
	return nil
}

// Stale returns nil while the program can run, else the error wrapping
// ErrStale that its next Run or Forward would return (see Generation).
func (p *Program) Stale() error { return p.b.Stale() }
