package graph

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// executor runs the part of a graph that some root nodes need, in dependency
// order, in place of Gorgonia's TapeMachine. Every op writes into storage
// that belongs to its node alone and lasts from run to run: a fusedOp owns
// its output buffer, and the executor gives each of Gorgonia's own ops (the
// additions G.Grad inserts where a value feeds several ops) a buffer of its
// own through UsePreallocDo. So after a run every node's value is still the
// one the run computed (no register reuse, hence no gorgonia #569 and no Read
// copies), and a run allocates nothing for its values. What the TapeMachine
// did per run besides (dropping every register in Reset, a goroutine and
// channels in RunAll, an argument slice per instruction) is gone too.
type executor struct {
	leaves []*G.Node  // inputs, parameters and constants: slots [0, len(leaves))
	steps  []execStep // ops, children before parents: slots from len(leaves) on
	vals   []G.Value  // the value of every slot in the last run
	slot   map[*G.Node]int
}

// execStep is one op node.
type execStep struct {
	n    *G.Node
	op   G.Op
	in   []int     // slots of the op's inputs, in order
	args []G.Value // scratch for the input values
	own  G.Value   // output storage of a Gorgonia op that can write into one
}

// newExecutor plans the subgraph of g that roots need.
func newExecutor(g *G.ExprGraph, roots []*G.Node) (*executor, error) {
	sorted, err := G.Sort(g.ExactSubgraphRoots(roots...))
	if err != nil {
		return nil, fmt.Errorf("graph: compile: %w", err)
	}
	slices.Reverse(sorted) // G.Sort lists a node before its inputs
	e := &executor{slot: map[*G.Node]int{}}
	for _, n := range sorted {
		if n.Op() == nil {
			e.slot[n] = len(e.leaves)
			e.leaves = append(e.leaves, n)
		}
	}
	for _, n := range sorted {
		if n.Op() == nil {
			continue
		}
		st := execStep{n: n, op: n.Op()}
		for it := g.From(n.ID()); it.Next(); {
			c := it.Node().(*G.Node)
			i, ok := e.slot[c]
			if !ok {
				return nil, fmt.Errorf("graph: compile: %v is ordered before its input %v", n, c)
			}
			st.in = append(st.in, i)
		}
		st.args = make([]G.Value, len(st.in))
		e.slot[n] = len(e.leaves) + len(e.steps)
		e.steps = append(e.steps, st)
	}
	e.vals = make([]G.Value, len(e.leaves)+len(e.steps))
	return e, nil
}

// run executes every step once.
func (e *executor) run() (err error) {
	defer func() {
		if r := recover(); r != nil { // a Gorgonia op that panics on bad data
			err = fmt.Errorf("graph: run: %v", r)
		}
	}()
	for i, n := range e.leaves {
		if e.vals[i] = n.Value(); e.vals[i] == nil {
			return fmt.Errorf("graph: run: %s has no value", n.Name())
		}
	}
	base := len(e.leaves)
	for i := range e.steps {
		st := &e.steps[i]
		for j, s := range st.in {
			st.args[j] = e.vals[s]
		}
		v, err := st.do()
		if err != nil {
			if _, ok := st.op.(*fusedOp); ok { // its errors name the op
				return fmt.Errorf("graph: run: %w", err)
			}
			return fmt.Errorf("graph: run: %v: %w", st.op, err)
		}
		e.vals[base+i] = v
	}
	clear(e.vals[:base]) // drop the references to inputs and parameters
	return nil
}

// do runs one op: a fusedOp through Do, which fills its own buffer; a
// Gorgonia op through UsePreallocDo into st.own after the first run, when
// it can write into a given value, else through Do.
func (st *execStep) do() (G.Value, error) {
	if _, ok := st.op.(*fusedOp); ok {
		return st.op.Do(st.args...)
	}
	pd, canReuse := st.op.(G.UsePreallocDoer)
	if canReuse && st.own != nil {
		return pd.UsePreallocDo(st.own, st.args...)
	}
	v, err := st.op.Do(st.args...)
	if err != nil {
		return nil, err
	}
	if _, isTensor := v.(*tensor.Dense); canReuse && isTensor && !aliases(v, st.args) {
		st.own = v
	}
	return v, nil
}

// aliases reports whether v is one of args (an op that returned an input).
func aliases(v G.Value, args []G.Value) bool {
	for _, a := range args {
		if a == v {
			return true
		}
	}
	return false
}

// value returns n's value from the last run (for an input or a parameter,
// its current value), or nil when n is not part of this executor or it has
// not run.
func (e *executor) value(n *G.Node) G.Value {
	i, ok := e.slot[n]
	switch {
	case !ok:
		return nil
	case i < len(e.leaves):
		return n.Value()
	}
	return e.vals[i]
}
