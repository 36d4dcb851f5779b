package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Running a planned executor (see exec.go for the plan): the steps in
// order, products through GEMM with the folded α, offsets and β, sums in
// place, and the storage the arena hands out by liveness.
// arena holds the buffers a program's executors hand out by liveness,
// by dtype and size; the forward-only and the full executor share it.
type arena struct {
	bufs map[arenaKey][]*tensor.Dense
}

type arenaKey struct {
	dt   DType
	size int
}

func newArena() *arena { return &arena{bufs: map[arenaKey][]*tensor.Dense{}} }

// get returns buffer i of key k shaped as shape, allocating it on first use.
func (a *arena) get(k arenaKey, i int, shape tensor.Shape) *tensor.Dense {
	l := a.bufs[k]
	for len(l) <= i {
		l = append(l, newDense(k.dt, tensor.Shape{k.size}))
	}
	a.bufs[k] = l
	return reshaped(l[i], k.dt, shape)
}

// sharedRoots marks roots whose values are read right after each run and
// never later, and the arena their buffers come from, which other programs
// share: a checkpoint's nested programs run one at a time and copy their
// output and input gradient out as soon as they have run (see Checkpoint),
// so one set of buffers serves them all. A nil *sharedRoots (an ordinary
// program) gives every root a buffer of its own.
type sharedRoots struct {
	arena *arena
	nodes map[*G.Node]bool
}

// buf returns the buffer of root step st: for a shared root, the next
// buffer of key in the shared arena, counted in next, so that the roots of
// one executor never share one; else a buffer of its own.
func (sr *sharedRoots) buf(st *execStep, key arenaKey, next map[arenaKey]int) *tensor.Dense {
	if sr == nil || !sr.nodes[st.n] {
		return newDense(key.dt, st.shape)
	}
	i := next[key]
	next[key]++
	return sr.arena.get(key, i, st.shape)
}

// reshaped is a Dense of the given shape over x's storage.
func reshaped(x *tensor.Dense, dt DType, shape tensor.Shape) *tensor.Dense {
	if dt == Float64 {
		return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(x.Float64s()))
	}
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(x.Float32s()))
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
		t, err := toTval(e.vals[i])
		if err != nil {
			return fmt.Errorf("graph: run: %s: %w", n.Name(), err)
		}
		e.tv[i] = t
	}
	base := len(e.leaves)
	for i := range e.steps {
		st := &e.steps[i]
		if err := e.runStep(st, base+i); err != nil {
			return err
		}
	}
	return nil
}

func (e *executor) runStep(st *execStep, s int) error {
	switch st.kind {
	case kindFolded:
		if st.fop != nil {
			st.fop.runs++ // its work is part of its consumers', producer's or sum's
		}
		return nil
	case kindDeferred:
		return nil // runSum runs (and counts) it
	case kindMM:
		st.fop.runs++
		return e.runMM(&st.mm, st.out, 0, st.shape[1], false)
	case kindSum:
		if st.fop != nil {
			st.fop.runs++
		}
		return e.runSum(st)
	case kindKernel:
		st.fop.runs++
		for j, in := range st.in {
			st.ins[j] = e.tv[in]
		}
		if st.shape.IsScalar() {
			v, err := st.runScalar()
			if err != nil {
				return fmt.Errorf("graph: run: %w", err)
			}
			e.vals[s] = v
			if e.tv[s], err = toTval(v); err != nil {
				return fmt.Errorf("graph: run: %w", err)
			}
			return nil
		}
		if err := st.fop.k.forward(st.out, st.ins); err != nil {
			return fmt.Errorf("graph: run: graph: %s: %w", st.fop.k, err)
		}
		return nil
	}
	for j, in := range st.in {
		st.args[j] = e.vals[in]
	}
	v, err := st.doGorgonia()
	if err != nil {
		return fmt.Errorf("graph: run: %v: %w", st.op, err)
	}
	e.vals[s] = v
	t, err := toTval(v)
	if err != nil {
		return fmt.Errorf("graph: run: %v: %w", st.op, err)
	}
	e.tv[s] = t
	return nil
}

// runScalar runs a kernel with a scalar output (a loss) into a reused value.
func (st *execStep) runScalar() (G.Value, error) {
	var f32 [1]float32
	var f64 [1]float64
	out := tval{shape: st.shape}
	dt := st.fop.dt
	if dt == Float64 {
		out.f64 = f64[:]
	} else {
		out.f32 = f32[:]
	}
	if err := st.fop.k.forward(out, st.ins); err != nil {
		return nil, fmt.Errorf("graph: %s: %w", st.fop.k, err)
	}
	switch v := st.scalar.(type) {
	case *G.F64:
		*v = G.F64(f64[0])
	case *G.F32:
		*v = G.F32(f32[0])
	default:
		if dt == Float64 {
			st.scalar = G.NewF64(f64[0])
		} else {
			st.scalar = G.NewF32(f32[0])
		}
	}
	return st.scalar, nil
}

// runMM computes p into out's columns [col, col+n) (rows of ld), adding to
// what is there when accumulate is set.
func (e *executor) runMM(p *mmPlan, out tval, col, ld int, accumulate bool) error {
	if out.f32 != nil {
		return mmRun[float32](e, p, out.f32[col:], ld, accumulate)
	}
	return mmRun[float64](e, p, out.f64[col:], ld, accumulate)
}

func mmRun[T floatT](e *executor, p *mmPlan, c []T, ldc int, accumulate bool) error {
	m, n, kk, err := p.k.dims(p.a.shape, p.b.shape)
	if err != nil {
		return fmt.Errorf("graph: run: %s: %w", p.k, err)
	}
	a, b := data[T](e.tv[p.a.slot])[p.a.off:], data[T](e.tv[p.b.slot])[p.b.off:]
	var beta T
	if accumulate {
		beta = 1
	}
	if p.bias >= 0 {
		bias := data[T](e.tv[p.bias])
		for i := 0; i < m; i++ {
			copy(c[i*ldc:i*ldc+n], bias)
		}
		beta = 1
	}
	gemm(p.k.tA, p.k.tB, m, n, kk, T(p.alpha), a, p.a.ld, b, p.b.ld, beta, c, ldc)
	return nil
}

// runSum runs a kindSum step.
func (e *executor) runSum(st *execStep) error {
	d := st.shape[len(st.shape)-1]
	first := 0
	switch {
	case st.base < 0: // the first addend is a product written with β = 0
		a := st.addends[0]
		a.mm.fop.runs++
		if err := e.runMM(a.mm, st.out, 0, d, false); err != nil {
			return err
		}
		first = 1
	case !st.inPlace:
		copyTval(st.out, e.tv[st.base])
	}
	for _, a := range st.addends[first:] {
		if a.mm != nil {
			a.mm.fop.runs++
			if err := e.runMM(a.mm, st.out, a.col, d, true); err != nil {
				return err
			}
			continue
		}
		u := e.tv[a.slot]
		if st.out.f32 != nil {
			addInto(st.out.f32, u.f32, d, a.col)
		} else {
			addInto(st.out.f64, u.f64, d, a.col)
		}
	}
	return nil
}

func copyTval(dst, src tval) {
	if dst.f32 != nil {
		copy(dst.f32, src.f32)
	} else {
		copy(dst.f64, src.f64)
	}
}

// addInto adds u (rows of w) into out's columns [col, col+w) (rows of d).
func addInto[T floatT](out, u []T, d, col int) {
	w := d
	if n := len(out) / d; n > 0 {
		w = len(u) / n
	}
	if w == d && col == 0 {
		addTo(out, out, u)
		return
	}
	for i := 0; i*w < len(u); i++ {
		dst := out[i*d+col : i*d+col+w]
		for j, v := range u[i*w : (i+1)*w] {
			dst[j] += v
		}
	}
}

// doGorgonia runs a Gorgonia op through UsePreallocDo into st.own after the
// first run, when it can write into a given value, else through Do.
func (st *execStep) doGorgonia() (G.Value, error) {
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
// its current value), or nil when n is not a root or a leaf of this
// executor (other values' storage is reused within a run) or it has not
// run.
func (e *executor) value(n *G.Node) G.Value {
	i, ok := e.slot[n]
	switch {
	case !ok:
		return nil
	case i < len(e.leaves):
		return n.Value()
	case !e.root[i]:
		return nil
	}
	return e.vals[i]
}
