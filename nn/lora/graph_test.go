package lora_test

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
)

// The tests of this file check the graph a LoRA layer builds from generic
// nodes: its gradients (from Gorgonia's symbolic differentiation) against
// central differences and float32 against float64 for every configuration,
// that frozen weights cost no gradient work, and the routed rows' errors.

// routedRows routes the 10 rows of the fixed batch: −1 is the base model.
var routedRows = []int{0, 1, 1, -1, 0, 1, 0, -1, 1, 0}

// setup prepares a model for one configuration: it injects, trains, and
// may route rows (route builds the rows node in each graph's builder).
type setup struct {
	name  string
	build func(t testing.TB, dt graph.DType) (*tinyGPT, *lora.Model)
	route []string // adapters rows are routed to; nil: the active adapter
}

// trained injects cfgs[0] as "default" and each further one as "aN", and
// trains each for two steps, ending with the first active.
func trained(cfgs ...lora.Config) func(t testing.TB, dt graph.DType) (*tinyGPT, *lora.Model) {
	return func(t testing.TB, dt graph.DType) (*tinyGPT, *lora.Model) {
		h, m := mustInject(t, dt, cfgs[0])
		train(t, h, 2, 0.3)
		for i, c := range cfgs[1:] {
			name := fmt.Sprintf("a%d", i+1)
			if err := m.AddAdapter(name, c); err != nil {
				t.Fatal(err)
			}
			if err := m.SetActive(name); err != nil {
				t.Fatal(err)
			}
			train(t, h, 2, 0.3)
		}
		if err := m.SetActive(lora.DefaultAdapter); err != nil {
			t.Fatal(err)
		}
		return h, m
	}
}

func graphSetups() []setup {
	return []setup{
		{name: "Linear with dropout", build: trained(lora.Config{R: 2, Alpha: 3, Dropout: 0.2, Targets: []string{"c_fc", "mlp.c_proj"}, Seed: 1})},
		{name: "fused q,v with dropout", build: trained(lora.Config{R: 2, Alpha: 4, Dropout: 0.1, Targets: []string{"q", "v"}, Seed: 2})},
		{name: "Embedding", build: trained(lora.Config{R: 3, Alpha: 2, Targets: []string{"wte"}, Seed: 3})},
		{name: "rsLoRA all-linear with bias and ln_f", build: trained(lora.Config{R: 2, Alpha: 3, RSLoRA: true, Dropout: 0.1,
			Targets: []string{lora.AllLinear}, Bias: lora.BiasAll, ModulesToSave: []string{"ln_f"}, Seed: 4})},
		{name: "routed rows, two adapters", route: []string{lora.DefaultAdapter, "a1"}, build: trained(
			lora.Config{R: 2, Targets: []string{"q", "v", "wte"}, Dropout: 0.1, Seed: 5},
			lora.Config{R: 3, Alpha: 2, Targets: []string{"c_attn", "c_fc", "wte"}, Dropout: 0.2, Seed: 6})},
		{name: "DoRA Linear", build: trained(lora.Config{R: 2, Alpha: 3, DoRA: true, Targets: []string{"c_fc", "mlp.c_proj"}, Seed: 7})},
		{name: "DoRA Linear with dropout", build: trained(lora.Config{R: 2, Alpha: 3, DoRA: true, Dropout: 0.2, Targets: []string{"c_fc", "attn.c_proj"}, Seed: 8})},
		{name: "DoRA fused q,v", build: trained(lora.Config{R: 2, Alpha: 4, DoRA: true, Targets: []string{"q", "v"}, Seed: 9})},
		{name: "DoRA Embedding", build: trained(lora.Config{R: 2, Alpha: 2, DoRA: true, Targets: []string{"wte"}, Seed: 10})},
		{name: "routed rows, DoRA and LoRA", route: []string{"a1", lora.DefaultAdapter}, build: trained(
			lora.Config{R: 2, DoRA: true, Dropout: 0.1, Targets: []string{"q", "v", "wte", "c_fc"}, Seed: 11},
			lora.Config{R: 3, Alpha: 2, DoRA: true, Targets: []string{"c_attn", "c_fc"}, Seed: 12})},
	}
}

// lossGraph builds the model's loss in b, routing rows first when s does.
func (s setup) lossGraph(h *tinyGPT, m *lora.Model, b *graph.Builder) (loss, logits *graph.Node, err error) {
	if s.route != nil {
		rows := b.IntConstant("rows", routedRows, len(routedRows))
		if err := m.SetRowAdapters(rows, s.route); err != nil {
			return nil, nil, err
		}
	}
	loss, logits = h.lossGraph(b)
	return loss, logits, b.Err()
}

// TestGraphGradientsFiniteDifference checks, for every configuration, the
// gradients Gorgonia derives for every trainable parameter against central
// differences through the whole model (float64, LoRA dropout on with its
// masks held fixed).
func TestGraphGradientsFiniteDifference(t *testing.T) {
	for _, s := range graphSetups() {
		t.Run(s.name, func(t *testing.T) {
			h, m := s.build(t, graph.Float64)
			if _, _, err := s.lossGraph(h, m, graph.NewBuilder(graph.Float64, 1)); err != nil {
				t.Fatal(err) // sets the Trainable flags of a routed model
			}
			params := m.TrainableParams()
			res, err := graph.CheckGradients(func(b *graph.Builder) (*graph.Node, error) {
				loss, _, err := s.lossGraph(h, m, b)
				return loss, err
			}, params, graph.GradCheckOptions{MaxElems: 16, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			checked := map[string]bool{}
			for _, r := range res {
				if !r.OK(1e-7, 1e-5) {
					t.Errorf("gradient mismatch: %v", r)
				}
				if strings.Contains(r.Param, ".lora_") && r.MaxAbs+math.Abs(r.Symbolic) > 0 {
					checked[r.Param[strings.Index(r.Param, ".lora_")+1:]] = true
				}
			}
			if len(checked) < 2 {
				t.Errorf("only %v checked with non-zero gradients", checked)
			}
			if s.route != nil {
				for _, name := range s.route {
					if !anyContains(params, "."+name) {
						t.Errorf("no parameter of routed adapter %s was checked", name)
					}
				}
			}
		})
	}
}

func anyContains(ps []*graph.Param, sub string) bool {
	for _, p := range ps {
		if strings.Contains(p.Name, sub) {
			return true
		}
	}
	return false
}

// runGraph compiles the loss of a configuration, runs it once in training
// mode and returns the loss, the logits and each trainable parameter's
// gradient by name.
func runGraph(t testing.TB, s setup, h *tinyGPT, m *lora.Model) (float64, []float64, map[string][]float64) {
	t.Helper()
	b := graph.NewBuilder(h.dt, 5)
	loss, logits, err := s.lossGraph(h, m, b)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := b.Compile(loss, logits)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	out, err := prog.Output(logits)
	if err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float64{}
	for _, p := range prog.Trainable() {
		g, ok := prog.Grad(p)
		if !ok {
			t.Fatalf("no gradient for %s", p.Name)
		}
		grads[p.Name] = g.Values()
	}
	return prog.Loss(), out.Values(), grads
}

// TestGraphFloat32MatchesFloat64 runs every configuration in both dtypes
// from the same values: losses, logits and gradients agree to float32
// precision.
func TestGraphFloat32MatchesFloat64(t *testing.T) {
	for _, s := range graphSetups() {
		t.Run(s.name, func(t *testing.T) {
			h64, m64 := s.build(t, graph.Float64)
			h32, m32 := s.build(t, graph.Float32)
			p64, p32 := m64.Params(), m32.Params()
			if len(p64) != len(p32) {
				t.Fatalf("%d float64 parameters, %d float32", len(p64), len(p32))
			}
			for i, p := range p64 {
				if err := p32[i].SetValues(p.Values()); err != nil {
					t.Fatal(err)
				}
			}
			l64, o64, g64 := runGraph(t, s, h64, m64)
			l32, o32, g32 := runGraph(t, s, h32, m32)
			if math.Abs(l32-l64) > 2e-5*math.Max(1, math.Abs(l64)) {
				t.Errorf("loss float32 %v, float64 %v", l32, l64)
			}
			if e := maxRel(o32, o64); e > 2e-5 {
				t.Errorf("logits differ by %.3g", e)
			}
			if len(g32) != len(g64) || len(g64) == 0 {
				t.Fatalf("%d float32 gradients, %d float64", len(g32), len(g64))
			}
			for name, g := range g64 {
				if e := maxRel(g32[name], g); e > 1e-4 {
					t.Errorf("gradient of %s differs by %.3g", name, e)
				}
			}
		})
	}
}

// TestFrozenWeightsGetNoGradientWork: a frozen base weight is a parameter
// node that is never differentiated with respect to: no program lists it,
// it has no gradient, and the gradient ops symbolic differentiation builds
// for it never run (counted per op). With the weights trainable the same
// ops do run, so the count can tell.
func TestFrozenWeightsGetNoGradientWork(t *testing.T) {
	for _, frozen := range []bool{true, false} {
		t.Run(fmt.Sprintf("frozen=%v", frozen), func(t *testing.T) {
			h, m := mustInject(t, graph.Float32, lora.Config{R: 2, Targets: []string{"q", "v", "wte"}, Seed: 1})
			if !frozen {
				for _, p := range m.Params() {
					p.Trainable = true
				}
			}
			b := graph.NewBuilder(graph.Float32, 1)
			loss, _ := h.lossGraph(b)
			prog, err := b.Compile(loss)
			if err != nil {
				t.Fatal(err)
			}
			const runs = 3
			for range runs {
				if err := prog.Run(); err != nil {
					t.Fatal(err)
				}
			}
			base := map[*graph.Param]bool{}
			for _, p := range m.Params() {
				if !strings.Contains(p.Name, ".lora_") {
					base[p] = true
				}
			}
			for _, p := range prog.Trainable() {
				if frozen && base[p] {
					t.Errorf("frozen %s is differentiated", p.Name)
				}
			}
			for p := range base {
				if _, ok := prog.Grad(p); ok == frozen {
					t.Errorf("%s: has a gradient %v, frozen %v", p.Name, ok, frozen)
				}
			}
			ops := b.OpRuns()
			// Base weights' gradient ops: Linear.dW of each of the 8 linear
			// layers, LinearT.dW of the tied head, the table's
			// Embedding.dtable (lora_embedding_A's runs either way); the 9 MatMuls of
			// the low-rank paths (2 layers × q, v × 2, and the embedding's) need both
			// gradients.
			want := map[string]int64{"Linear.dW": 0, "LinearT.dW": 0, "Embedding.dtable": runs, "MatMul.dA": 9 * runs, "MatMul.dB": 9 * runs}
			if !frozen {
				want["Linear.dW"], want["LinearT.dW"], want["Embedding.dtable"] = 8*runs, runs, 2*runs
			}
			for name, n := range want {
				if ops[name] != n {
					t.Errorf("%s ran %d times, want %d", name, ops[name], n)
				}
			}
		})
	}
}

// TestLayerGraphOps pins the generic nodes each LoRA layer adds (the
// pattern the executor fuses): per slice two MatMuls and a Scale, added
// with Add (whole output) or AddCols (a part's columns); A's rows of an
// embedding looked up with Embedding; per routed adapter a ScaleRows by
// one RowMask shared by all layers.
func TestLayerGraphOps(t *testing.T) {
	cases := []struct {
		name  string
		cfgs  []lora.Config
		route bool
		want  string
	}{
		{"whole c_fc", []lora.Config{{R: 2, Targets: []string{"h.0.mlp.c_fc"}}},
			false, "Add:1 Linear:1 MatMul:2 Scale(4):1"},
		{"q,v of c_attn", []lora.Config{{R: 2, Alpha: 4, Targets: []string{"h.0.attn.c_attn[q,v]"}}},
			false, "AddCols[0:]:1 AddCols[16:]:1 Linear:1 MatMul:4 Scale(2):2"},
		{"embedding", []lora.Config{{R: 2, Alpha: 6, Targets: []string{"wte"}}},
			false, "Add:1 Embedding:2 MatMul:1 Scale(3):1"},
		{"routed", []lora.Config{{R: 2, Targets: []string{"h.0.mlp.c_fc"}}, {R: 2, Targets: []string{"h.0.mlp.c_fc", "h.0.mlp.c_proj"}}},
			true, "Add:3 Linear:2 MatMul:6 RowMask(=0):1 RowMask(=1):1 Scale(4):3 ScaleRows:3"},
		// DoRA: y = AddBias(ScaleCols(Add(Linear(x, W), s·(x·A)·B), Div(m, Detach(L2Norm(Add(W, s·A·B), 0)))), b)
		{"DoRA c_fc", []lora.Config{{R: 2, DoRA: true, Targets: []string{"h.0.mlp.c_fc"}}},
			false, "Add:2 AddBias:1 Detach:1 Div:1 L2Norm(axis 0):1 Linear:1 MatMul:3 Scale(4):2 ScaleCols:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, m := mustInject(t, graph.Float64, c.cfgs[0])
			names := []string{lora.DefaultAdapter}
			for i, cfg := range c.cfgs[1:] {
				names = append(names, fmt.Sprint("a", i))
				if err := m.AddAdapter(names[i+1], cfg); err != nil {
					t.Fatal(err)
				}
			}
			b := graph.NewBuilder(graph.Float64, 1)
			if c.route {
				if err := m.SetRowAdapters(b.IntConstant("rows", routedRows[:4], 4), names); err != nil {
					t.Fatal(err)
				}
			}
			x := b.Input("x", 4, 8)
			var outs []*graph.Node
			for _, nl := range h.Layers() {
				if l, ok := nl.Layer.(*lora.Linear); ok {
					if in := l.Base.In(); in == 8 {
						outs = append(outs, l.Forward(x))
					} else {
						outs = append(outs, l.Forward(b.Input("x"+nl.Path, 4, in)))
					}
				}
				if e, ok := nl.Layer.(*lora.Embedding); ok {
					outs = append(outs, e.Forward(b.IntConstant("ids", []int{1, 2, 3, 4}, 4)))
				}
			}
			prog, err := b.Compile(nil, outs...)
			if err != nil {
				t.Fatal(err)
			}
			if err := prog.Forward(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for name, n := range b.OpRuns() {
				got = append(got, fmt.Sprintf("%s:%d", name, n))
			}
			sort.Strings(got)
			if s := strings.Join(got, " "); s != c.want {
				t.Errorf("ops %s, want %s", s, c.want)
			}
		})
	}
}

// TestRoutedRowOutOfRange: a routing value outside [−1, K) is a run error
// naming the rows input and the value, not a silently unadapted row.
func TestRoutedRowOutOfRange(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Targets: []string{"c_fc", "wte"}})
	b := graph.NewBuilder(graph.Float64, 1)
	rows := b.IntInput("rows", len(tokIDs))
	if err := m.SetRowAdapters(rows, []string{lora.DefaultAdapter}); err != nil {
		t.Fatal(err)
	}
	out := h.logits(b, b.IntConstant("ids", tokIDs, len(tokIDs)), tokBatch)
	prog, err := b.Compile(nil, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rows []int
		want string
	}{
		{[]int{0, 0, 0, -1, 0, 0, 0, 0, 0, 0}, ""},
		{[]int{0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, "rows: value 1 at position 3 is outside [-1, 1)"},
		{[]int{0, 0, 0, 0, 0, 0, 0, 0, 0, -5}, "rows: value -5 at position 9"},
	} {
		if err := prog.SetInts(rows, c.rows); err != nil {
			t.Fatal(err)
		}
		err := prog.Forward()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("rows %v: err %v, want %q", c.rows, err, c.want)
		}
	}
	m.ClearRowAdapters()
	var bad *graph.Node
	if err := m.SetRowAdapters(bad, []string{lora.DefaultAdapter}); err == nil || errors.Is(err, lora.ErrUnknownAdapter) {
		t.Errorf("nil rows: err %v", err)
	}
}
