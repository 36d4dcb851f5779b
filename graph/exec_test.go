package graph

import (
	"math"
	"testing"
)

// execVariants are the executor's options under test: all passes on, each
// off alone, and all off (the plain executor every value has storage of its
// own in).
var execVariants = []struct {
	name  string
	opt   ExecOptions
	exact bool // the same values bit for bit as with every pass on
}{
	{"no-reuse", ExecOptions{NoReuse: true}, true},
	{"no-inplace", ExecOptions{NoInPlace: true}, true},
	{"no-fold", ExecOptions{NoFold: true}, false},
	{"no-accumulate", ExecOptions{NoAccumulate: true}, false},
	{"all-off", ExecOptions{NoReuse: true, NoFold: true, NoAccumulate: true, NoInPlace: true}, false},
}

// runWith builds c in float64, runs it twice with opt (the second run must
// not see storage the first left behind) and returns the output and the
// gradients.
func runWith(t *testing.T, c opCase, dt DType, opt ExecOptions) [][]float64 {
	t.Helper()
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
	prog.SetExecOptions(opt)
	var res [][]float64
	for run := 0; run < 2; run++ {
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		o, err := prog.Output(out)
		if err != nil {
			t.Fatal(err)
		}
		res = [][]float64{o.Values(), {prog.Loss()}}
		for _, p := range ps {
			g, ok := prog.Grad(p)
			if !ok {
				t.Fatalf("no gradient for %s", p.Name)
			}
			res = append(res, g.Values())
		}
	}
	return res
}

// TestExecOptionsAgree checks that every executor pass leaves the values
// of every op case unchanged: exactly for storage reuse and in-place ops,
// up to rounding for folding and accumulation (which change the order of
// operations), in float64 and float32.
func TestExecOptionsAgree(t *testing.T) {
	var cases []opCase
	cases = append(cases, primCases()...)
	cases = append(cases, linearCases()...)
	for _, c := range cases {
		for _, dt := range []DType{Float64, Float32} {
			ref := runWith(t, c, dt, ExecOptions{})
			for _, v := range execVariants {
				got := runWith(t, c, dt, v.opt)
				for i := range ref {
					for j := range ref[i] {
						a, w := got[i][j], ref[i][j]
						tol := 0.0
						if !v.exact {
							tol = 1e-12
							if dt == Float32 {
								tol = 1e-5
							}
						}
						if math.Abs(a-w) > tol*math.Max(1, math.Abs(w)) || math.IsNaN(a) != math.IsNaN(w) {
							t.Errorf("%s %v %s: value %d of result %d: %v, with every pass %v", c.name, dt, v.name, j, i, a, w)
						}
					}
				}
			}
		}
	}
}
