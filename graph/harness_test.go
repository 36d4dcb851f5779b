package graph

import (
	"math"
	"math/rand/v2"
	"testing"
)

// pspec describes one parameter of an op test.
type pspec struct {
	name  string
	shape []int
	scale float64 // values are uniform in [-scale, scale]; 0 means 1
	init  func(v []float64)
}

// opCase is one fused op under test: build receives the parameter nodes and
// returns the op's output (any shape). The test loss is Σ out ⊙ R for a fixed
// random R, so every output element carries a distinct weight.
type opCase struct {
	name   string
	params []pspec
	build  func(b *Builder, p []*Node) *Node
	// absTol/relTol for the float64 finite-difference check (defaults 1e-7, 1e-6).
	absTol, relTol float64
	// f32Tol bounds the float32-vs-float64 error relative to each tensor's
	// largest magnitude (default 2e-5).
	f32Tol float64
}

func makeParams(specs []pspec, dt DType, seed uint64) []*Param {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]*Param, len(specs))
	for i, s := range specs {
		p := NewParam(s.name, Float64, s.shape...)
		v := p.Float64s()
		sc := s.scale
		if sc == 0 {
			sc = 1
		}
		for j := range v {
			v[j] = (2*rng.Float64() - 1) * sc
		}
		if s.init != nil {
			s.init(v)
		}
		out[i] = p.Convert(dt)
	}
	return out
}

// lossFor builds Σ out ⊙ R with R fixed by seed.
func lossFor(b *Builder, out *Node, seed uint64) *Node {
	if out.Err() != nil {
		return out
	}
	shape := out.Shape()
	if len(shape) == 0 {
		return out
	}
	n := 1
	for _, s := range shape {
		n *= s
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	r := make([]float64, n)
	for i := range r {
		r[i] = 2*rng.Float64() - 1
	}
	return Sum(Mul(out, b.Constant("R", r, shape...)))
}

func runOpCase(t *testing.T, c opCase) {
	t.Helper()
	if c.absTol == 0 {
		c.absTol = 1e-7
	}
	if c.relTol == 0 {
		c.relTol = 1e-6
	}
	if c.f32Tol == 0 {
		c.f32Tol = 2e-5
	}
	t.Run("float64-fd", func(t *testing.T) {
		ps := makeParams(c.params, Float64, 1)
		res, err := CheckGradients(func(b *Builder) (*Node, error) {
			nodes := make([]*Node, len(ps))
			for i, p := range ps {
				nodes[i] = b.Param(p)
			}
			l := lossFor(b, c.build(b, nodes), 3)
			return l, b.Err()
		}, ps, GradCheckOptions{MaxElems: 64, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if !r.OK(c.absTol, c.relTol) {
				t.Errorf("gradient mismatch: %v", r)
			}
		}
	})
	t.Run("float32-vs-float64", func(t *testing.T) {
		var outs [2][]float64
		var grads [2][][]float64
		for k, dt := range []DType{Float64, Float32} {
			ps := makeParams(c.params, dt, 1)
			b := NewBuilder(dt, 5)
			nodes := make([]*Node, len(ps))
			for i, p := range ps {
				nodes[i] = b.Param(p)
			}
			out := c.build(b, nodes)
			prog, err := b.Compile(lossFor(b, out, 3), out)
			if err != nil {
				t.Fatal(err)
			}
			if err := prog.Run(); err != nil {
				t.Fatal(err)
			}
			o, err := prog.Output(out)
			if err != nil {
				t.Fatal(err)
			}
			outs[k] = o.Values()
			for _, p := range ps {
				g, ok := prog.Grad(p)
				if !ok {
					t.Fatalf("%v: no gradient for %s", dt, p.Name)
				}
				grads[k] = append(grads[k], g.Values())
			}
		}
		compareRel(t, "output", outs[1], outs[0], c.f32Tol)
		for i := range grads[0] {
			compareRel(t, "grad "+c.params[i].name, grads[1][i], grads[0][i], c.f32Tol)
		}
	})
}

// compareRel fails when max|got−want| exceeds tol·max(1, max|want|).
func compareRel(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var maxErr, maxVal float64
	for i := range got {
		maxErr = math.Max(maxErr, math.Abs(got[i]-want[i]))
		maxVal = math.Max(maxVal, math.Abs(want[i]))
		if math.IsNaN(got[i]) != math.IsNaN(want[i]) {
			t.Fatalf("%s[%d]: got %v, want %v", what, i, got[i], want[i])
		}
	}
	if maxErr > tol*math.Max(1, maxVal) {
		t.Errorf("%s: max error %.3g over max magnitude %.3g (tol %.3g)", what, maxErr, maxVal, tol)
	}
}

// forward runs build once in dt and returns the output values.
func forward(t *testing.T, dt DType, ps []*Param, build func(b *Builder, p []*Node) *Node) []float64 {
	t.Helper()
	b := NewBuilder(dt, 5)
	nodes := make([]*Node, len(ps))
	for i, p := range ps {
		nodes[i] = b.Param(p)
	}
	out := build(b, nodes)
	prog, err := b.Compile(nil, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	o, err := prog.Output(out)
	if err != nil {
		t.Fatal(err)
	}
	return o.Values()
}
