package graph

import (
	"fmt"
	"slices"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// executor runs the part of a graph that some root nodes need, in dependency
// order, in place of Gorgonia's TapeMachine. It plans once and then runs
// without allocating:
//
//   - storage: every value a step computes lives in a buffer of the
//     program's arena, handed out by liveness: once the last step that reads
//     a value has run, its buffer serves a later value of the same size. The
//     roots (outputs, loss, gradients) have buffers of their own, so their
//     values survive the run (those of sharedRoots, until the next run of a
//     program that shares them); nothing else does.
//   - folding: a Scale whose input is a product read only by it becomes the
//     product's α; a Scale or SliceCols read only by products becomes their
//     α, or an offset and a row stride of their operand, and is not run.
//   - accumulation: a product read only by an addition (Add, AddCols or the
//     sums Gorgonia's Grad inserts) is computed by GEMM with β = 1 straight
//     into the sum's output, instead of being materialised and then added.
//   - in place: an elementwise op, or such a sum, writes over an input whose
//     value dies at that step.
//
// A folded or accumulated op still counts as run in Builder.OpRuns.
type executor struct {
	leaves []*G.Node  // inputs, parameters and constants: slots [0, len(leaves))
	steps  []execStep // ops, children before parents: slots from len(leaves) on
	vals   []G.Value  // the value of every slot in the last run
	tv     []tval     // the same as tvals
	slot   map[*G.Node]int
	root   []bool // by slot: a root, whose value must outlive the run
}

// step kinds
const (
	kindKernel   = iota // a fused op's kernel into its buffer
	kindMM              // a product (mmKernel) with resolved operands
	kindSum             // Add, AddCols or Gorgonia's "+": base, then addends
	kindGorgonia        // any other Gorgonia op, through Do or UsePreallocDo
	kindFolded          // folded into its consumers or its producer: not run
	kindDeferred        // a product a kindSum step computes with β = 1
)

// execStep is one op node.
type execStep struct {
	n    *G.Node
	op   G.Op
	fop  *fusedOp // nil for a Gorgonia op
	kind int
	in   []int // slots of the op's inputs, in order (after aliasing)
	ins  []tval
	args []G.Value // scratch for a Gorgonia op's input values
	own  G.Value   // output storage of a Gorgonia op that can write into one

	shape  tensor.Shape
	out    tval    // output storage (tensor outputs)
	outV   G.Value // the same as a Value
	scalar G.Value // output storage of a scalar output (*G.F32 or *G.F64)

	// kindMM
	mm mmPlan
	// kindSum: the output starts as base (a copy, unless in place), or as
	// the first deferred product with β = 0; then each addend is added:
	// a deferred product with β = 1 or a materialised value.
	base    int // slot, or -1 when the first addend is a product written with β = 0
	addends []addend
	sym     bool // Add or "+", not AddCols
	inPlace bool // out is base's buffer
}

// addend is one term of a kindSum step, added at column offset col of
// rows of width ld (the output's columns).
type addend struct {
	slot int     // a materialised value, or
	mm   *mmPlan // a deferred product
	col  int
}

// operand is how a product reads one of its matrices: rows [r, c] stored
// from element off of a slot's storage with row stride ld, times factor.
type operand struct {
	slot    int
	off, ld int
	shape   tensor.Shape
	factor  float64
	viaView bool // read through a folded Scale or SliceCols
}

// mmPlan is one product α·op(A)·op(B) (+ bias).
type mmPlan struct {
	k     *mmKernel
	fop   *fusedOp
	alpha float64
	a, b  operand
	bias  int // slot, or -1
}

// newExecutor plans the subgraph of g that roots need.
func newExecutor(g *G.ExprGraph, roots []*G.Node, opt ExecOptions, ar *arena, sr *sharedRoots) (*executor, error) {
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
		st := execStep{n: n, op: n.Op(), kind: kindGorgonia, base: -1}
		for it := g.From(n.ID()); it.Next(); {
			c := it.Node().(*G.Node)
			i, ok := e.slot[c]
			if !ok {
				return nil, fmt.Errorf("graph: compile: %v is ordered before its input %v", n, c)
			}
			st.in = append(st.in, i)
		}
		if f, ok := st.op.(*fusedOp); ok {
			st.fop = f
			st.kind = kindKernel
		}
		st.args = make([]G.Value, len(st.in))
		e.slot[n] = len(e.leaves) + len(e.steps)
		e.steps = append(e.steps, st)
	}
	nslots := len(e.leaves) + len(e.steps)
	e.vals = make([]G.Value, nslots)
	e.tv = make([]tval, nslots)
	e.root = make([]bool, nslots)
	for _, r := range roots {
		e.root[e.slot[r]] = true
	}
	if err := e.plan(opt, ar, sr); err != nil {
		return nil, err
	}
	return e, nil
}

// shapeOf is the shape of a slot's value.
func (e *executor) shapeOf(s int) tensor.Shape {
	if s < len(e.leaves) {
		return e.leaves[s].Shape()
	}
	return e.steps[s-len(e.leaves)].shape
}

// stepOf returns the step of slot s, or nil for a leaf.
func (e *executor) stepOf(s int) *execStep {
	if s < len(e.leaves) {
		return nil
	}
	return &e.steps[s-len(e.leaves)]
}

// isMM reports whether st is a product (MatMul, Linear, their gradients).
func isMM(st *execStep) (*mmKernel, bool) {
	if st == nil || st.fop == nil {
		return nil, false
	}
	k, ok := st.fop.k.(*mmKernel)
	return k, ok
}

// isGorgoniaAdd reports whether st is an elementwise sum of two values of
// its own shape inserted by Gorgonia (Grad's sums of gradient
// contributions).
func (e *executor) isGorgoniaAdd(st *execStep) bool {
	if st.fop != nil || len(st.in) != 2 || fmt.Sprintf("%T", st.op) != "gorgonia.elemBinOp" || !strings.HasPrefix(st.op.String(), "+") {
		return false
	}
	s := st.n.Shape()
	if s.IsScalar() || !e.shapeOf(st.in[0]).Eq(s) || !e.shapeOf(st.in[1]).Eq(s) {
		return false
	}
	dt := st.n.Dtype()
	return dt == tensor.Float32 || dt == tensor.Float64
}

// dtypeOf is the float dtype of a step's output.
func dtypeOf(st *execStep) DType {
	if st.fop != nil {
		return st.fop.dt
	}
	if st.n.Dtype() == tensor.Float64 {
		return Float64
	}
	return Float32
}

// plan decides how every step runs and where its value lives.
func (e *executor) plan(opt ExecOptions, ar *arena, sr *sharedRoots) error {
	L := len(e.leaves)
	// Shapes.
	for i := range e.steps {
		st := &e.steps[i]
		st.shape = st.n.Shape().Clone()
		if st.fop != nil {
			shapes := make([]tensor.Shape, len(st.in))
			for j, s := range st.in {
				shapes[j] = e.shapeOf(s)
			}
			sh, err := st.fop.k.outShape(shapes)
			if err != nil {
				return fmt.Errorf("graph: run: %s: %w", st.fop.k, err)
			}
			st.shape = sh
		}
	}
	alias := make([]int, L+len(e.steps)) // slot → the slot holding its value
	for i := range alias {
		alias[i] = i
	}
	consumers := make([][]int, L+len(e.steps)) // step indices, once per use
	countUses := func() {
		for i := range consumers {
			consumers[i] = consumers[i][:0]
		}
		for i, st := range e.steps {
			if alias[L+i] != L+i {
				continue // its readers read its producer
			}
			for _, s := range st.in {
				consumers[s] = append(consumers[s], i)
			}
		}
	}
	countUses()
	resolve := func(s int) int {
		for alias[s] != s {
			s = alias[s]
		}
		return s
	}
	scaleOf := func(st *execStep) (float64, bool) {
		if st.fop == nil {
			return 0, false
		}
		k, ok := st.fop.k.(*scaleKernel)
		if !ok {
			return 0, false
		}
		return k.s, true
	}
	// allMMOperand: every use of slot s is as operand A or B of a product.
	allMMOperand := func(s int) bool {
		if len(consumers[s]) == 0 {
			return false
		}
		for _, c := range consumers[s] {
			cs := &e.steps[c]
			if _, ok := isMM(cs); !ok {
				return false
			}
			for j, in := range cs.in {
				if in == s && j >= 2 {
					return false // a bias
				}
			}
		}
		return true
	}
	mmFactor := make([]float64, len(e.steps)) // α of products folded from their consumer Scale
	for i := range mmFactor {
		mmFactor[i] = 1
	}
	type view struct {
		scale      float64
		slice      bool
		from, to   int
		sliceWidth int
	}
	views := map[int]view{} // slot of a folded Scale or SliceCols read by products
	if !opt.NoFold {
		for i := range e.steps {
			st := &e.steps[i]
			s := L + i
			if e.root[s] || st.fop == nil {
				continue
			}
			if f, ok := scaleOf(st); ok {
				src := st.in[0]
				ps := e.stepOf(src)
				if _, isP := isMM(ps); isP && ps.kind == kindKernel && !e.root[src] && len(consumers[src]) == 1 {
					// Into the producer's α: the Scale's value is the product's.
					mmFactor[src-L] *= f
					st.kind = kindFolded
					alias[s] = src
					continue
				}
				if allMMOperand(s) {
					st.kind = kindFolded
					views[s] = view{scale: f}
				}
				continue
			}
			if k, ok := st.fop.k.(*sliceColsKernel); ok && allMMOperand(s) {
				st.kind = kindFolded
				views[s] = view{scale: 1, slice: true, from: k.from, to: k.to}
			}
		}
		// Rewrite inputs through aliases.
		for i := range e.steps {
			for j, s := range e.steps[i].in {
				e.steps[i].in[j] = resolve(s)
			}
		}
		countUses()
	}
	// Products: resolve their operands through views.
	var mkOperand func(s int) operand
	mkOperand = func(s int) operand {
		if v, ok := views[s]; ok {
			o := mkOperand(e.steps[s-L].in[0])
			o.viaView = true
			o.factor *= v.scale
			if v.slice {
				o.off += v.from
				o.shape = tensor.Shape{o.shape[0], v.to - v.from}
			}
			return o
		}
		sh := e.shapeOf(s)
		return operand{slot: s, ld: sh[1], shape: sh, factor: 1}
	}
	for i := range e.steps {
		st := &e.steps[i]
		k, ok := isMM(st)
		if !ok || st.kind != kindKernel {
			continue
		}
		a, b := mkOperand(st.in[0]), mkOperand(st.in[1])
		st.kind = kindMM
		st.mm = mmPlan{k: k, fop: st.fop, alpha: k.alpha * mmFactor[i] * a.factor * b.factor, a: a, b: b, bias: -1}
		if k.bias {
			st.mm.bias = st.in[2]
		}
	}
	// Sums and accumulation.
	deferrable := func(s int) bool {
		ps := e.stepOf(s)
		return !opt.NoAccumulate && ps != nil && ps.kind == kindMM && ps.mm.bias < 0 && !e.root[s] &&
			len(consumers[s]) == 1
	}
	for i := range e.steps {
		st := &e.steps[i]
		var ys, us int
		col, sym := 0, true // sym: an elementwise sum, whose terms may be swapped
		switch {
		case st.shape.IsScalar():
			continue // a scalar sum runs as a kernel (see runScalar)
		case st.fop != nil && st.kind == kindKernel:
			switch k := st.fop.k.(type) {
			case addKernel:
				ys, us = st.in[0], st.in[1]
			case *addColsKernel:
				ys, us, col, sym = st.in[0], st.in[1], k.offset, false
			default:
				continue
			}
		case st.kind == kindGorgonia && e.isGorgoniaAdd(st):
			ys, us = st.in[0], st.in[1]
		default:
			continue
		}
		st.kind = kindSum
		st.sym = sym
		// The terms: a product read only here is computed into the sum
		// (deferred); a sum read only here, of the same shape, is merged
		// into this one (flattened), its terms in order.
		var terms []addend
		expand := func(x, c int) {
			if ps := e.stepOf(x); c == 0 && !opt.NoAccumulate && ps != nil && ps.kind == kindSum && !e.root[x] &&
				len(consumers[x]) == 1 && ps.shape.Eq(st.shape) {
				if ps.base >= 0 {
					terms = append(terms, addend{slot: ps.base})
				}
				terms = append(terms, ps.addends...)
				ps.kind = kindFolded
				return
			}
			if deferrable(x) {
				ps := e.stepOf(x)
				ps.kind = kindDeferred
				terms = append(terms, addend{slot: x, mm: &ps.mm, col: c})
				return
			}
			terms = append(terms, addend{slot: x, col: c})
		}
		expand(ys, 0)
		expand(us, col)
		// A materialised full-width term goes first, as the base (run in
		// place when its value dies here); else the first product is
		// written with β = 0.
		if terms[0].mm != nil {
			for j, t := range terms {
				if t.mm == nil && t.col == 0 && e.shapeOf(t.slot).Eq(st.shape) {
					terms = append([]addend{t}, append(terms[:j:j], terms[j+1:]...)...)
					break
				}
			}
		}
		st.base = -1
		if terms[0].mm == nil {
			st.base = terms[0].slot
			terms = terms[1:]
		}
		st.addends = terms
	}
	// Liveness: the last step (index) that reads each slot.
	last := make([]int, L+len(e.steps))
	for i := range last {
		last[i] = -1
	}
	var reads func(st *execStep, f func(int))
	mmReads := func(p *mmPlan, f func(int)) {
		f(p.a.slot)
		f(p.b.slot)
		if p.bias >= 0 {
			f(p.bias)
		}
	}
	reads = func(st *execStep, f func(int)) {
		switch st.kind {
		case kindMM:
			mmReads(&st.mm, f)
		case kindSum:
			if st.base >= 0 {
				f(st.base)
			}
			for _, a := range st.addends {
				if a.mm != nil {
					mmReads(a.mm, f)
				} else {
					f(a.slot)
				}
			}
		case kindFolded, kindDeferred:
		default:
			var skip []int
			if st.fop != nil {
				if o, ok := st.fop.k.(orderer); ok {
					skip = o.orderOnly()
				}
			}
			for j, s := range st.in {
				if !slices.Contains(skip, j) {
					f(s)
				}
			}
		}
	}
	for i := range e.steps {
		reads(&e.steps[i], func(s int) { last[s] = i })
	}
	for _, st := range e.steps {
		if st.kind == kindGorgonia { // its value may be one of its inputs
			for _, s := range st.in {
				last[s] = len(e.steps)
			}
		}
	}
	// Storage.
	pooled := make([]int, L+len(e.steps)) // buffer index within its key, or -1
	for i := range pooled {
		pooled[i] = -1
	}
	free := map[arenaKey][]int{}
	next, nextShared := map[arenaKey]int{}, map[arenaKey]int{}
	inPlaceOK := func(st *execStep, s int) bool {
		if opt.NoInPlace || opt.NoReuse || s < L || pooled[s] < 0 || last[s] != st.index(e) {
			return false
		}
		return e.shapeOf(s).TotalSize() == st.shape.TotalSize()
	}
	for i := range e.steps {
		st := &e.steps[i]
		s := L + i
		if st.kind == kindFolded || st.kind == kindDeferred || st.kind == kindGorgonia {
			continue
		}
		if st.shape.IsScalar() {
			continue // a scalar value of its own (see runScalar)
		}
		dt := dtypeOf(st)
		key := arenaKey{dt, st.shape.TotalSize()}
		var buf *tensor.Dense
		switch {
		case e.root[s]:
			buf = sr.buf(st, key, nextShared)
		default:
			src := -1
			if st.kind == kindSum && st.base >= 0 && !opt.NoInPlace {
				// Any full-width materialised term may be the base: take
				// one whose value dies here.
				for j, a := range st.addends {
					if inPlaceOK(st, st.base) {
						break
					}
					if a.mm == nil && a.col == 0 && e.shapeOf(a.slot).Eq(st.shape) && inPlaceOK(st, a.slot) {
						st.base, st.addends[j].slot = a.slot, st.base
					}
				}
			}
			if st.kind == kindSum && st.base >= 0 && inPlaceOK(st, st.base) && !sumReadsElsewhere(st) {
				src = st.base
			} else if st.kind == kindKernel {
				for _, j := range inPlaceInputs(st.fop.k) {
					if j < len(st.in) && inPlaceOK(st, st.in[j]) && sameInputOnce(st.in, j) {
						src = st.in[j]
						break
					}
				}
			}
			if src >= 0 {
				pooled[s], pooled[src] = pooled[src], -1
				st.inPlace = true
			} else if opt.NoReuse {
				pooled[s] = next[key]
				next[key]++
			} else if l := free[key]; len(l) > 0 {
				pooled[s] = l[len(l)-1]
				free[key] = l[:len(l)-1]
			} else {
				pooled[s] = next[key]
				next[key]++
			}
			buf = ar.get(key, pooled[s], st.shape)
		}
		st.outV = buf
		t, err := denseTval(buf)
		if err != nil {
			return err
		}
		st.out = t
		e.vals[s], e.tv[s] = buf, t
		if opt.NoReuse {
			continue
		}
		reads(st, func(r int) {
			if last[r] == i && pooled[r] >= 0 {
				k := arenaKey{dtypeOf(e.stepOf(r)), e.shapeOf(r).TotalSize()}
				free[k] = append(free[k], pooled[r])
				pooled[r] = -1
			}
		})
	}
	// A step run in place reads its base from the output buffer itself.
	for i := range e.steps {
		st := &e.steps[i]
		st.ins = make([]tval, len(st.in))
	}
	return nil
}

// sumReadsElsewhere reports whether a sum step's products read its base
// (which then cannot be overwritten while they run).
func sumReadsElsewhere(st *execStep) bool {
	for _, a := range st.addends {
		if a.mm != nil && (a.mm.a.slot == st.base || a.mm.b.slot == st.base || a.mm.bias == st.base) {
			return true
		}
	}
	return false
}

// index is st's position among e's steps.
func (st *execStep) index(e *executor) int { return e.slot[st.n] - len(e.leaves) }

// sameInputOnce reports whether input j's slot is not also another input.
func sameInputOnce(in []int, j int) bool {
	for i, s := range in {
		if i != j && s == in[j] {
			return false
		}
	}
	return true
}
