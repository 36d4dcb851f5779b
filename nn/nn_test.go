package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/golora/golora/graph"
)

// moduleCase builds a module in a dtype and its forward pass; x is a
// parameter so the input gradient is checked too.
type moduleCase struct {
	name  string
	setup func(dt graph.DType) (params []*graph.Param, fwd func(b *graph.Builder) *graph.Node)
}

const n, d = 6, 8 // rows (2 sequences of 3), width

func randomize(ps []*graph.Param, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, p := range ps {
		v := make([]float64, p.Len())
		for i := range v {
			v[i] = 0.5 * (2*rng.Float64() - 1)
		}
		if p.Name == "ln.weight" || p.Name == "ln_1.weight" {
			for i := range v {
				v[i] += 1
			}
		}
		_ = p.SetValues(v)
	}
}

func projection(b *graph.Builder, out *graph.Node) *graph.Node {
	shape := out.Shape()
	size := 1
	for _, s := range shape {
		size *= s
	}
	rng := rand.New(rand.NewPCG(9, 9))
	r := make([]float64, size)
	for i := range r {
		r[i] = 2*rng.Float64() - 1
	}
	return graph.Sum(graph.Mul(out, b.Constant("R", r, shape...)))
}

func moduleCases() []moduleCase {
	return []moduleCase{
		{"Linear", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			l := NewLinear("fc", dt, d, 5, true)
			return append([]*graph.Param{x}, l.Params()...), func(b *graph.Builder) *graph.Node { return l.Forward(b.Param(x)) }
		}},
		{"Embedding", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			e := NewEmbedding("wte", dt, 5, d)
			return e.Params(), func(b *graph.Builder) *graph.Node {
				return e.Forward(b.IntConstant("ids", []int{3, 1, 3, 0, 4, 3}, n))
			}
		}},
		{"LayerNorm", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			ln := NewLayerNorm("ln", dt, d, 1e-5)
			return append([]*graph.Param{x}, ln.Params()...), func(b *graph.Builder) *graph.Node { return ln.Forward(b.Param(x)) }
		}},
		{"MLP", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			m := NewMLP("mlp", dt, d, 4*d, 0)
			return append([]*graph.Param{x}, m.Params()...), func(b *graph.Builder) *graph.Node { return m.Forward(b.Param(x)) }
		}},
		{"MLP with dropout", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			m := NewMLP("mlp", dt, d, 4*d, 0.25)
			return append([]*graph.Param{x}, m.Params()...), func(b *graph.Builder) *graph.Node { return m.Forward(b.Param(x)) }
		}},
		{"CausalSelfAttention", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			a := NewCausalSelfAttention("attn", dt, d, 2, 0, 0)
			return append([]*graph.Param{x}, a.Params()...), func(b *graph.Builder) *graph.Node { return a.Forward(b.Param(x), 2) }
		}},
		{"block", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			// x + attn(ln_1(x)), then + mlp(ln_2(·)): a pre-LayerNorm GPT-2 block.
			x := graph.NewParam("x", dt, n, d)
			ln1, ln2 := NewLayerNorm("ln_1", dt, d, 1e-5), NewLayerNorm("ln_2", dt, d, 1e-5)
			a := NewCausalSelfAttention("attn", dt, d, 2, 0, 0)
			m := NewMLP("mlp", dt, d, 4*d, 0)
			ps := append([]*graph.Param{x}, Collect(ln1, a, ln2, m)...)
			return ps, func(b *graph.Builder) *graph.Node {
				h := graph.Add(b.Param(x), a.Forward(ln1.Forward(b.Param(x)), 2))
				return graph.Add(h, m.Forward(ln2.Forward(h)))
			}
		}},
	}
}

func TestModuleGradients(t *testing.T) {
	for _, c := range moduleCases() {
		t.Run(c.name, func(t *testing.T) {
			ps, fwd := c.setup(graph.Float64)
			randomize(ps, 1)
			res, err := graph.CheckGradients(func(b *graph.Builder) (*graph.Node, error) {
				l := projection(b, fwd(b))
				return l, b.Err()
			}, ps, graph.GradCheckOptions{MaxElems: 40, Seed: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !r.OK(1e-7, 1e-6) {
					t.Errorf("%v", r)
				}
			}
		})
	}
}

func TestModuleFloat32MatchesFloat64(t *testing.T) {
	for _, c := range moduleCases() {
		t.Run(c.name, func(t *testing.T) {
			var grads [2][][]float64
			var outs [2][]float64
			for k, dt := range []graph.DType{graph.Float64, graph.Float32} {
				ps, fwd := c.setup(dt)
				randomize(ps, 1)
				b := graph.NewBuilder(dt, 4)
				out := fwd(b)
				prog, err := b.Compile(projection(b, out), out)
				if err != nil {
					t.Fatal(err)
				}
				if err := prog.Run(); err != nil {
					t.Fatal(err)
				}
				o, _ := prog.Output(out)
				outs[k] = o.Values()
				for _, p := range ps {
					g, ok := prog.Grad(p)
					if !ok {
						t.Fatalf("no gradient for %s", p.Name)
					}
					grads[k] = append(grads[k], g.Values())
				}
			}
			within(t, "output", outs[1], outs[0], 1e-5)
			for i := range grads[0] {
				within(t, "gradient", grads[1][i], grads[0][i], 1e-5)
			}
		})
	}
}

// within fails when max|got−want| > tol·max(1, max|want|): float32 carries
// about 7 digits, and these graphs are a few ops deep.
func within(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	var e, m float64
	for i := range got {
		e = math.Max(e, math.Abs(got[i]-want[i]))
		m = math.Max(m, math.Abs(want[i]))
	}
	if e > tol*math.Max(1, m) {
		t.Errorf("%s: max error %.3g (max magnitude %.3g)", what, e, m)
	}
}

func TestParamNamesAndOrder(t *testing.T) {
	a := NewCausalSelfAttention("h.0.attn", graph.Float32, 8, 2, 0, 0)
	m := NewMLP("h.0.mlp", graph.Float32, 8, 32, 0)
	var names []string
	for _, p := range Collect(a, m) {
		names = append(names, p.Name)
	}
	want := []string{"h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias", "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias",
		"h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias", "h.0.mlp.c_proj.weight", "h.0.mlp.c_proj.bias"}
	if len(names) != len(want) {
		t.Fatalf("names = %v", names)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("param %d = %s, want %s", i, names[i], want[i])
		}
	}
	if s := a.CAttn.(*Linear).Weight.Shape(); s[0] != 8 || s[1] != 24 {
		t.Errorf("c_attn weight shape %v, want [8 24] ([in, out])", s)
	}
	if _, err := ParamMap(append(a.Params(), a.Params()[0])); err == nil {
		t.Error("duplicate names accepted")
	}
}

func TestInitIsSeeded(t *testing.T) {
	l1 := NewLinear("fc", graph.Float32, 4, 4, true)
	l2 := NewLinear("fc", graph.Float32, 4, 4, true)
	l1.Init(graph.NewRand(7), 0.02)
	l2.Init(graph.NewRand(7), 0.02)
	for i, v := range l1.Weight.Float32s() {
		if v != l2.Weight.Float32s()[i] {
			t.Fatal("same seed gave different weights")
		}
	}
	l2.Init(graph.NewRand(8), 0.02)
	if l1.Weight.Float32s()[0] == l2.Weight.Float32s()[0] {
		t.Fatal("different seeds gave the same first weight")
	}
}
