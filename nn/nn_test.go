package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
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
		if p.Name == "ln.weight" || p.Name == "ln_1.weight" || strings.HasSuffix(p.Name, "norm.weight") || strings.HasSuffix(p.Name, "layernorm.weight") {
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
		{"RMSNorm", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			ln := NewRMSNorm("norm", dt, d, 1e-6)
			return append([]*graph.Param{x}, ln.Params()...), func(b *graph.Builder) *graph.Node { return ln.Forward(b.Param(x)) }
		}},
		{"GatedMLP", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			m := NewGatedMLP("mlp", dt, d, 12, false)
			return append([]*graph.Param{x}, m.Params()...), func(b *graph.Builder) *graph.Node { return m.Forward(b.Param(x)) }
		}},
		{"GroupedAttention", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			a := NewGroupedAttention("self_attn", dt, d, AttentionConfig{Heads: 4, KVHeads: 2, HeadDim: 2, QKVBias: true,
				RoPE: graph.RoPEConfig{Theta: 100}})
			return append([]*graph.Param{x}, a.Params()...), func(b *graph.Builder) *graph.Node {
				return a.Forward(b.Param(x), b.IntConstant("pos", []int{0, 1, 2, 0, 1, 2}, n), 2)
			}
		}},
		{"GroupedAttention, Qwen3 norms, head_dim ≠ d/heads", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			x := graph.NewParam("x", dt, n, d)
			a := NewGroupedAttention("self_attn", dt, d, AttentionConfig{Heads: 2, KVHeads: 1, HeadDim: 6, OBias: true, QKNorm: true, NormEps: 1e-6,
				RoPE: graph.RoPEConfig{Theta: 1e4, Type: "linear", Factor: 2}})
			return append([]*graph.Param{x}, a.Params()...), func(b *graph.Builder) *graph.Node {
				return a.Forward(b.Param(x), b.IntConstant("pos", []int{0, 1, 2, 0, 1, 2}, n), 2)
			}
		}},
		{"Llama block", func(dt graph.DType) ([]*graph.Param, func(*graph.Builder) *graph.Node) {
			// x + attn(input_layernorm(x)), then + mlp(post_attention_layernorm(·))
			x := graph.NewParam("x", dt, n, d)
			ln1, ln2 := NewRMSNorm("input_layernorm", dt, d, 1e-6), NewRMSNorm("post_attention_layernorm", dt, d, 1e-6)
			a := NewGroupedAttention("self_attn", dt, d, AttentionConfig{Heads: 2, KVHeads: 1, HeadDim: 4, RoPE: graph.RoPEConfig{Theta: 1e4}})
			m := NewGatedMLP("mlp", dt, d, 16, false)
			ps := append([]*graph.Param{x}, Collect(ln1, a, ln2, m)...)
			return ps, func(b *graph.Builder) *graph.Node {
				pos := b.IntConstant("pos", []int{0, 1, 2, 0, 1, 2}, n)
				h := graph.Add(b.Param(x), a.Forward(ln1.Forward(b.Param(x)), pos, 2))
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

func TestLlamaModuleNamesAndShapes(t *testing.T) {
	a := NewGroupedAttention("model.layers.0.self_attn", graph.Float32, 16, AttentionConfig{Heads: 4, KVHeads: 2, HeadDim: 6, QKVBias: true, QKNorm: true, NormEps: 1e-6})
	m := NewGatedMLP("model.layers.0.mlp", graph.Float32, 16, 40, false)
	want := []struct {
		name  string
		shape []int
	}{
		{"model.layers.0.self_attn.q_proj.weight", []int{16, 24}}, {"model.layers.0.self_attn.q_proj.bias", []int{24}},
		{"model.layers.0.self_attn.k_proj.weight", []int{16, 12}}, {"model.layers.0.self_attn.k_proj.bias", []int{12}},
		{"model.layers.0.self_attn.v_proj.weight", []int{16, 12}}, {"model.layers.0.self_attn.v_proj.bias", []int{12}},
		{"model.layers.0.self_attn.o_proj.weight", []int{24, 16}},
		{"model.layers.0.self_attn.q_norm.weight", []int{6}}, {"model.layers.0.self_attn.k_norm.weight", []int{6}},
		{"model.layers.0.mlp.gate_proj.weight", []int{16, 40}}, {"model.layers.0.mlp.up_proj.weight", []int{16, 40}},
		{"model.layers.0.mlp.down_proj.weight", []int{40, 16}},
	}
	ps := Collect(a, m)
	if len(ps) != len(want) {
		t.Fatalf("%d parameters, want %d", len(ps), len(want))
	}
	for i, w := range want {
		if ps[i].Name != w.name || fmt.Sprint(ps[i].Shape()) != fmt.Sprint(w.shape) {
			t.Errorf("param %d: %s %v, want %s %v", i, ps[i].Name, ps[i].Shape(), w.name, w.shape)
		}
	}
	if v := a.QNorm.Weight.Float32s(); v[0] != 1 || v[5] != 1 {
		t.Errorf("q_norm starts at %v, want ones", v)
	}
	b := graph.NewBuilder(graph.Float32, 1)
	bad := &GroupedAttention{Name: "attn", QProj: a.QProj, KProj: a.KProj, VProj: a.VProj, OProj: a.OProj, Cfg: AttentionConfig{Heads: 4, KVHeads: 3, HeadDim: 6}}
	if y := bad.Forward(b.Input("x", 2, 16), b.IntInput("pos", 2), 1); y.Err() == nil || !strings.Contains(y.Err().Error(), "attention attn") {
		t.Errorf("3 key/value heads for 4 heads: %v", y.Err())
	}
}

func TestSplitLayerPath(t *testing.T) {
	fields := []string{"attn.c_attn", "mlp.c_fc"}
	cases := []struct {
		path  string
		i     int
		field string
		ok    bool
	}{
		{"h.0.attn.c_attn", 0, "attn.c_attn", true},
		{"h.2.mlp.c_fc", 2, "mlp.c_fc", true},
		{"h.3.mlp.c_fc", 0, "", false},  // only 3 blocks
		{"h.01.mlp.c_fc", 0, "", false}, // not canonical
		{"h.-1.mlp.c_fc", 0, "", false},
		{"h.1.mlp.c_proj", 0, "", false}, // not a listed field
		{"x.1.mlp.c_fc", 0, "", false},
		{"h.1", 0, "", false},
		{"wte", 0, "", false},
	}
	for _, c := range cases {
		i, field, ok := SplitLayerPath(c.path, "h.", 3, fields)
		if i != c.i || field != c.field || ok != c.ok {
			t.Errorf("SplitLayerPath(%q) = %d, %q, %v; want %d, %q, %v", c.path, i, field, ok, c.i, c.field, c.ok)
		}
	}
}

func TestReplaced(t *testing.T) {
	a := NewLinear("a", graph.Float64, 2, 2, false)
	b := NewLinear("b", graph.Float64, 2, 2, false)
	c := NewLinear("c", graph.Float64, 2, 2, false)
	base := map[string]Layer{"a": a, "b": b}
	layers := []NamedLayer{{Path: "a", Layer: a}, {Path: "b", Layer: c}}
	if got := Replaced(layers, base); len(got) != 1 || got[0] != "b" {
		t.Errorf("Replaced = %v, want [b]", got)
	}
	if got := Replaced(layers[:1], base); got != nil {
		t.Errorf("Replaced with nothing replaced = %v", got)
	}
}

func TestUnique(t *testing.T) {
	a, b, c := graph.NewParam("a", graph.Float64, 1), graph.NewParam("b", graph.Float64, 1), graph.NewParam("c", graph.Float64, 1)
	in := []*graph.Param{b, a, b, c, a}
	got := Unique(in)
	if len(got) != 3 || got[0] != b || got[1] != a || got[2] != c {
		t.Errorf("Unique(b a b c a) = %v, want b a c", got)
	}
	if in[1] != a || in[2] != b {
		t.Error("Unique changed its input")
	}
	if Unique(nil) != nil {
		t.Error("Unique(nil) is not nil")
	}
}
