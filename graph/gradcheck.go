package graph

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// GradCheckOptions tunes CheckGradients. The zero value is usable.
type GradCheckOptions struct {
	// Eps is the central-difference step (default 1e-6).
	Eps float64
	// MaxElems bounds how many elements of each parameter are perturbed; larger
	// parameters are sampled with Seed (default 0: every element).
	MaxElems int
	// Seed picks the sampled elements.
	Seed uint64
}

// GradCheckResult is the worst disagreement between the symbolic and the
// central-difference gradient of one parameter over the checked elements.
type GradCheckResult struct {
	Param   string
	Checked int     // elements perturbed
	MaxAbs  float64 // worst |symbolic − numeric|
	MaxRel  float64 // worst |symbolic − numeric| / max(|symbolic|, |numeric|, 1e-8)
	// WorstIndex is the flat index of the element with the worst relative
	// error; Symbolic and Numeric are its two gradients.
	WorstIndex        int
	Symbolic, Numeric float64
}

// OK reports whether the worst absolute error is within absTol or the worst
// relative error within relTol (absolute for gradients near zero, relative
// for large ones).
func (r GradCheckResult) OK(absTol, relTol float64) bool {
	return r.MaxAbs <= absTol || r.MaxRel <= relTol
}

// String prints the result on one line.
func (r GradCheckResult) String() string {
	return fmt.Sprintf("%s: %d elems, max abs %.3g, max rel %.3g (elem %d: symbolic %.6g numeric %.6g)",
		r.Param, r.Checked, r.MaxAbs, r.MaxRel, r.WorstIndex, r.Symbolic, r.Numeric)
}

// CheckGradients compares the symbolic gradients of a scalar loss with
// central differences (f(θ+ε) − f(θ−ε)) / 2ε, one element at a time. build
// is called once with a float64 Builder and returns the loss; every
// parameter in params must be float64 and trainable, and is restored
// exactly afterwards. Dropout masks are held fixed across the perturbed runs,
// and so is the value of every Detach node: symbolic differentiation treats
// a detached value as a constant, so the check compares it with the
// derivative of the loss with those values held at the unperturbed run's.
//
// It returns one result per parameter, in order; judge them with OK. Use it
// from a go test to check a layer of your own.
func CheckGradients(build func(b *Builder) (*Node, error), params []*Param, opt GradCheckOptions) ([]GradCheckResult, error) {
	if opt.Eps == 0 {
		opt.Eps = 1e-6
	}
	for _, p := range params {
		if p.DType() != Float64 {
			return nil, fmt.Errorf("graph: gradient check: %s is %v, want float64", p.Name, p.DType())
		}
		if !p.Trainable {
			return nil, fmt.Errorf("graph: gradient check: %s is not trainable", p.Name)
		}
	}
	b := NewBuilder(Float64, opt.Seed)
	loss, err := build(b)
	if err != nil {
		return nil, err
	}
	if loss == nil {
		return nil, errors.New("graph: gradient check: build returned no loss")
	}
	// Detach values are outputs, so that their values after a run are kept
	// (an executor may reuse the storage of values nothing reads later).
	prog, err := b.Compile(loss, detachNodes(b)...)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	rng, err := prog.RNGState()
	if err != nil {
		return nil, err
	}
	if err := prog.Run(); err != nil {
		return nil, err
	}
	symbolic := make([][]float64, len(params))
	for i, p := range params {
		g, ok := prog.Grad(p)
		if !ok {
			return nil, fmt.Errorf("graph: gradient check: the loss does not depend on %s", p.Name)
		}
		symbolic[i] = g.Values()
	}
	defer holdDetached(b, prog)()
	eval := func() (float64, error) {
		if err := prog.SetRNGState(rng); err != nil {
			return 0, err
		}
		if err := prog.Forward(); err != nil {
			return 0, err
		}
		return prog.Loss(), nil
	}
	pick := rand.New(rand.NewPCG(opt.Seed, 1))
	out := make([]GradCheckResult, len(params))
	for i, p := range params {
		vals := p.Float64s()
		idx := make([]int, len(vals))
		for j := range idx {
			idx[j] = j
		}
		if opt.MaxElems > 0 && len(idx) > opt.MaxElems {
			pick.Shuffle(len(idx), func(a, c int) { idx[a], idx[c] = idx[c], idx[a] })
			idx = idx[:opt.MaxElems]
		}
		r := GradCheckResult{Param: p.Name, Checked: len(idx), WorstIndex: -1}
		for _, j := range idx {
			orig := vals[j]
			vals[j] = orig + opt.Eps
			fp, err := eval()
			if err != nil {
				vals[j] = orig
				return nil, err
			}
			vals[j] = orig - opt.Eps
			fm, err := eval()
			vals[j] = orig
			if err != nil {
				return nil, err
			}
			num := (fp - fm) / (2 * opt.Eps)
			sym := symbolic[i][j]
			abs := math.Abs(sym - num)
			rel := abs / math.Max(math.Max(math.Abs(sym), math.Abs(num)), 1e-8)
			if abs > r.MaxAbs {
				r.MaxAbs = abs
			}
			if rel > r.MaxRel || r.WorstIndex < 0 {
				r.MaxRel = math.Max(rel, r.MaxRel)
				r.WorstIndex, r.Symbolic, r.Numeric = j, sym, num
			}
		}
		out[i] = r
	}
	return out, nil
}

// detachNodes lists the Detach nodes of b's graph.
func detachNodes(b *Builder) []*Node {
	var out []*Node
	for _, n := range b.g.AllNodes() {
		if op, ok := n.Op().(*fusedOp); ok {
			if _, ok := op.k.(detachKernel); ok {
				out = append(out, &Node{b: b, n: n, name: "Detach"})
			}
		}
	}
	return out
}

// holdDetached holds every Detach node of prog's graph at its value from
// the last run (their kernels output that value whatever their input) and
// returns the function that releases them. The program is planned again
// both ways, since an executor may have made a Detach a view of its input.
func holdDetached(b *Builder, prog *Program) func() {
	type held struct{ op *fusedOp }
	var hs []held
	for _, n := range b.g.AllNodes() {
		op, ok := n.Op().(*fusedOp)
		if !ok {
			continue
		}
		if _, ok := op.k.(detachKernel); !ok {
			continue
		}
		v := prog.value(n)
		if v.Len() == 0 {
			continue // not part of the checked program
		}
		shape := tensor.Shape(v.Shape).Clone()
		if len(v.Shape) == 0 {
			shape = tensor.ScalarShape()
		}
		op.k = &heldKernel{shape: shape, f32: append([]float32(nil), v.F32...), f64: append([]float64(nil), v.F64...)}
		hs = append(hs, held{op})
	}
	replan := func() { prog.fwd, prog.full, prog.last = nil, nil, nil }
	if len(hs) > 0 {
		replan()
	}
	return func() {
		for _, h := range hs {
			h.op.k = detachKernel{}
		}
		if len(hs) > 0 {
			replan()
		}
	}
}
