package lora_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
)

// listHost is an nn.Host holding a plain list of layers.
type listHost struct{ layers []nn.NamedLayer }

func (h *listHost) Layers() []nn.NamedLayer { return append([]nn.NamedLayer(nil), h.layers...) }

func (h *listHost) SetLayer(path string, l nn.Layer) error {
	for i := range h.layers {
		if h.layers[i].Path == path {
			h.layers[i].Layer = l
			return nil
		}
	}
	return fmt.Errorf("list: no layer %q", path)
}

func (h *listHost) Params() []*graph.Param {
	var ps []*graph.Param
	seen := map[*graph.Param]bool{}
	for _, nl := range h.layers {
		for _, p := range nl.Layer.Params() {
			if !seen[p] {
				seen[p] = true
				ps = append(ps, p)
			}
		}
	}
	return ps
}

// gpt2Shaped returns a host with the c_attn layers of a GPT-2 of the given
// depth and width (no bias), all sharing one zero [d, 3d] weight so that
// the test stays small in memory.
func gpt2Shaped(layers, d int) *listHost {
	w := graph.NewParam("shared.weight", graph.Float32, d, 3*d)
	h := &listHost{}
	for i := 0; i < layers; i++ {
		path := fmt.Sprintf("h.%d.attn.c_attn", i)
		h.layers = append(h.layers, nn.NamedLayer{Path: path, Layer: &nn.Linear{Name: path, Weight: w}})
	}
	return h
}

func TestConfigValidate(t *testing.T) {
	ok := lora.Config{Targets: []string{"c_attn"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for _, c := range []struct {
		want string
		edit func(c *lora.Config)
	}{
		{"rank", func(c *lora.Config) { c.R = -1 }},
		{"alpha", func(c *lora.Config) { c.Alpha = math.Inf(1) }},
		{"alpha", func(c *lora.Config) { c.Alpha = -2 }},
		{"dropout", func(c *lora.Config) { c.Dropout = 1 }},
		{"not both", func(c *lora.Config) { c.TargetRegex = ".*" }},
		{"bias", func(c *lora.Config) { c.Bias = "some" }},
		{"init", func(c *lora.Config) { c.Init = "loftq" }},
		{"regex", func(c *lora.Config) { c.Targets = nil; c.TargetRegex = "(" }},
		{"part", func(c *lora.Config) { c.Targets = []string{"c_attn[q,q]"} }},
		{"name[part", func(c *lora.Config) { c.Targets = []string{"c_attn[q"} }},
		{"rank pattern", func(c *lora.Config) { c.RankPattern = map[string]int{"c_attn": 0} }},
		{"rank pattern", func(c *lora.Config) { c.RankPattern = map[string]int{"(": 2} }},
		{"alpha pattern", func(c *lora.Config) { c.AlphaPattern = map[string]float64{"x": math.NaN()} }},
		{"parts", func(c *lora.Config) { c.FusedParts = map[string][]string{"c_attn": {"q"}} }},
		{"layer index", func(c *lora.Config) { c.Layers = []int{-1} }},
	} {
		cfg := ok
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", cfg, err, c.want)
		}
	}
}

func TestScale(t *testing.T) {
	c := lora.Config{}
	if s := c.Scale(4, 32); s != 8 {
		t.Errorf("α/r = %v, want 8", s)
	}
	c.RSLoRA = true
	if s := c.Scale(4, 32); s != 16 {
		t.Errorf("α/√r = %v, want 16", s)
	}
}

// TestTargets checks which layers and parts each target form selects, and
// the per-layer ranks and scales.
func TestTargets(t *testing.T) {
	type sel map[string]string // path → "whole" or parts, plus "/r=…"
	cases := []struct {
		name string
		cfg  lora.Config
		want sel
	}{
		{"suffix", lora.Config{R: 2, Targets: []string{"c_proj"}},
			sel{"h.0.attn.c_proj": "whole/r=2", "h.0.mlp.c_proj": "whole/r=2", "h.1.attn.c_proj": "whole/r=2", "h.1.mlp.c_proj": "whole/r=2"}},
		{"dotted suffix and prefix", lora.Config{R: 2, Targets: []string{"mlp.c_proj", "transformer.h.0.attn.c_attn"}},
			sel{"h.0.attn.c_attn": "whole/r=2", "h.0.mlp.c_proj": "whole/r=2", "h.1.mlp.c_proj": "whole/r=2"}},
		{"part shorthand", lora.Config{R: 2, Targets: []string{"q", "v"}},
			sel{"h.0.attn.c_attn": "q,v/r=2", "h.1.attn.c_attn": "q,v/r=2"}},
		{"bracket", lora.Config{R: 2, Targets: []string{"c_attn[v,k]"}},
			sel{"h.0.attn.c_attn": "k,v/r=2", "h.1.attn.c_attn": "k,v/r=2"}},
		{"layers", lora.Config{R: 2, Targets: []string{"q", "c_fc"}, Layers: []int{1}},
			sel{"h.1.attn.c_attn": "q/r=2", "h.1.mlp.c_fc": "whole/r=2"}},
		{"regex", lora.Config{R: 2, TargetRegex: `transformer\.h\.\d+\.mlp\..*`},
			sel{"h.0.mlp.c_fc": "whole/r=2", "h.0.mlp.c_proj": "whole/r=2", "h.1.mlp.c_fc": "whole/r=2", "h.1.mlp.c_proj": "whole/r=2"}},
		{"all-linear", lora.Config{R: 1, Targets: []string{lora.AllLinear}},
			sel{"h.0.attn.c_attn": "whole/r=1", "h.0.attn.c_proj": "whole/r=1", "h.0.mlp.c_fc": "whole/r=1", "h.0.mlp.c_proj": "whole/r=1",
				"h.1.attn.c_attn": "whole/r=1", "h.1.attn.c_proj": "whole/r=1", "h.1.mlp.c_fc": "whole/r=1", "h.1.mlp.c_proj": "whole/r=1"}},
		{"patterns", lora.Config{R: 2, Alpha: 8, Targets: []string{"c_fc", "wte"},
			RankPattern: map[string]int{"c_fc": 4, `h\.1\.mlp\.c_fc`: 1}, AlphaPattern: map[string]float64{"wte": 3}},
			sel{"wte": "whole/r=2", "h.0.mlp.c_fc": "whole/r=4", "h.1.mlp.c_fc": "whole/r=1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, m := mustInject(t, graph.Float64, c.cfg)
			got := sel{}
			for _, path := range mustPaths(t, m, lora.DefaultAdapter) {
				ad, err := m.Adapter(path, lora.DefaultAdapter)
				if err != nil {
					t.Fatal(err)
				}
				parts := "whole"
				if ad.Slices[0].Part != "" {
					var ps []string
					for _, s := range ad.Slices {
						ps = append(ps, s.Part)
						if s.Width != 8 || s.A.Shape()[1] != ad.Rank || s.B.Shape()[0] != ad.Rank {
							t.Errorf("%s part %s: width %d A %v B %v", path, s.Part, s.Width, s.A.Shape(), s.B.Shape())
						}
					}
					parts = strings.Join(ps, ",")
				}
				got[path] = fmt.Sprintf("%s/r=%d", parts, ad.Rank)
				if want := m.Host(); want == nil {
					t.Fatal("no host")
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("selected %v\nwant     %v", got, c.want)
			}
		})
	}
	// scales from patterns: wte α 3 and r 2; c_fc of layer 0 α 8, r 4
	_, m := mustInject(t, graph.Float64, cases[len(cases)-1].cfg)
	for path, want := range map[string]float64{"wte": 1.5, "h.0.mlp.c_fc": 2, "h.1.mlp.c_fc": 8} {
		if ad, _ := m.Adapter(path, lora.DefaultAdapter); ad.Scale != want {
			t.Errorf("%s: scale %v, want %v", path, ad.Scale, want)
		}
	}
}

func TestAllLinearSkipsLMHead(t *testing.T) {
	h := &listHost{layers: []nn.NamedLayer{
		{Path: "fc", Layer: nn.NewLinear("fc", graph.Float64, 3, 4, true)},
		{Path: "ln", Layer: nn.NewLayerNorm("ln", graph.Float64, 4, 1e-5)},
		{Path: "lm_head", Layer: nn.NewLinear("lm_head", graph.Float64, 4, 5, false)},
	}}
	m, err := lora.Inject(h, lora.Config{R: 1, Targets: []string{lora.AllLinear}})
	if err != nil {
		t.Fatal(err)
	}
	if p := mustPaths(t, m, lora.DefaultAdapter); fmt.Sprint(p) != "[fc]" {
		t.Errorf("all-linear adapted %v, want [fc]", p)
	}
	if _, err := lora.Inject(&listHost{layers: h.layers[1:2]}, lora.Config{R: 1, Targets: []string{"ln"}}); err == nil || !strings.Contains(err.Error(), "LayerNorm") {
		t.Errorf("targeting a LayerNorm: %v", err)
	}
}

// TestInjectErrors: each bad target is an error naming it, and the host is
// left exactly as it was (layers, values and Trainable flags).
func TestInjectErrors(t *testing.T) {
	for _, c := range []struct {
		want string
		cfg  lora.Config
	}{
		{`target "c_zz" matches no layer`, lora.Config{Targets: []string{"c_attn", "c_zz"}}},
		{`target "c_fc" matches no layer in layers [7]`, lora.Config{Targets: []string{"c_fc"}, Layers: []int{7}}},
		{"both whole and in parts", lora.Config{Targets: []string{"c_attn", "q"}}},
		{`not "x"`, lora.Config{Targets: []string{"c_attn[q,x]"}}},
		{"no fused layout", lora.Config{Targets: []string{"c_fc[q]"}}},
		{"no fused parts", lora.Config{Targets: []string{"wte[q]"}, FusedParts: map[string][]string{"wte": {"a", "b"}}}},
		{"do not split", lora.Config{Targets: []string{"c_fc[a]"}, FusedParts: map[string][]string{"c_fc": {"a", "b", "c"}}}},
		{"regex", lora.Config{TargetRegex: "nothing.*"}},
		{"modules to save \"ln_x\"", lora.Config{Targets: []string{"c_fc"}, ModulesToSave: []string{"ln_x"}}},
		{"frozen weight", lora.Config{Targets: []string{"c_fc"}, ModulesToSave: []string{"c_fc"}}},
		{"refusing", lora.Config{Targets: []string{"c_fc", "c_attn"}}}, // the host refuses h.1.attn.c_attn
	} {
		h := newTiny(graph.Float64, 2, 1)
		h.setLayerFailsFor = "h.1.attn.c_attn"
		layers, params := layersOf(h), snap(h.Params())
		_, err := lora.Inject(h, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.cfg.Targets, err, c.want)
		}
		if !sameLayers(layers, layersOf(h)) {
			t.Errorf("%v: layers changed", c.cfg.Targets)
		}
		if d := params.diff(h.Params()); d != "" {
			t.Errorf("%v: %s", c.cfg.Targets, d)
		}
	}
	if _, err := lora.Inject(nil, lora.PEFTDefault()); err == nil {
		t.Error("nil host accepted")
	}
	_, m := mustInject(t, graph.Float64, lora.PEFTDefault())
	for _, name := range []string{"", "a.b", "a b"} {
		if err := m.AddAdapter(name, lora.PEFTDefault()); err == nil {
			t.Errorf("adapter name %q accepted", name)
		}
	}
	if _, err := lora.Inject(m.Host(), lora.PEFTDefault()); err == nil || !strings.Contains(err.Error(), "another lora.Model") {
		t.Errorf("second Model on a wrapped host: %v", err)
	}
}

// TestBiasModes: which parameters train with each bias mode.
func TestBiasModes(t *testing.T) {
	for _, c := range []struct {
		mode  lora.BiasMode
		saved []string
		want  int // trainable bias parameters
	}{
		{lora.BiasNone, nil, 0},
		{lora.BiasLoRAOnly, nil, 2},          // the biases of h.{0,1}.mlp.c_fc
		{lora.BiasAll, nil, 2*(4+2) + 1},     // 4 Linear + 2 LayerNorm biases per block, ln_f's
		{lora.BiasNone, []string{"ln_f"}, 1}, // ln_f.bias (and ln_f.weight)
	} {
		_, m := mustInject(t, graph.Float64, lora.Config{R: 1, Targets: []string{"c_fc"}, Bias: c.mode, ModulesToSave: c.saved})
		biases, others := 0, 0
		for _, p := range m.TrainableParams() {
			switch {
			case strings.HasSuffix(p.Name, ".bias"):
				biases++
			case !strings.Contains(p.Name, ".lora_"):
				others++
			}
		}
		wantOthers := len(c.saved) // ln_f.weight
		if biases != c.want || others != wantOthers {
			t.Errorf("bias %s, save %v: %d biases and %d other base parameters trainable, want %d and %d", c.mode, c.saved, biases, others, c.want, wantOthers)
		}
	}
}

func TestGPT2ParameterCounts(t *testing.T) {
	// GPT-2 small, PEFT's default: r = 8 on the whole c_attn [768, 2304].
	m, err := lora.Inject(gpt2Shaped(12, 768), lora.PEFTDefault())
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Report().Trainable; got != 294912 {
		t.Errorf("GPT-2 small, c_attn r=8: %d trainable, want 294,912", got)
	}
	// GPT-2 medium, the paper's setting: r = 4 on W_q and W_v, so
	// |Θ| = 2·L̂·d·r with L̂ = 2·24 adapted matrices: 2·48·1024·4.
	m, err = lora.Inject(gpt2Shaped(24, 1024), lora.PaperGPT2())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Report().Trainable, 2*48*1024*4; got != want || got != 393216 {
		t.Errorf("GPT-2 medium, q,v r=4: %d trainable, want %d = 393,216", got, want)
	}
}

func TestParamReport(t *testing.T) {
	r := lora.ParamReport{Trainable: 294912, All: 124734720}
	if got, want := r.String(), "trainable params: 294,912 || all params: 124,734,720 || trainable%: 0.2364"; got != want {
		t.Errorf("report\n%s\nwant\n%s", got, want)
	}
	for _, c := range []struct {
		r    lora.ParamReport
		want string
	}{
		{lora.ParamReport{}, "trainable params: 0 || all params: 0 || trainable%: 0.0000"},
		{lora.ParamReport{Trainable: 999, All: 1000}, "trainable params: 999 || all params: 1,000 || trainable%: 99.9000"},
		{lora.ParamReport{Trainable: 1234567, All: 1234567}, "trainable params: 1,234,567 || all params: 1,234,567 || trainable%: 100.0000"},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
	// the model's count: all = base + every adapter's A and B
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Targets: []string{"c_fc"}})
	base := graph.CountParams(newTiny(graph.Float64, 2, 1).untie().Params())
	nLoRA := 2 * (8*2 + 2*32)
	if r := m.Report(); r.Trainable != nLoRA || r.All != base+nLoRA {
		t.Errorf("report %+v, want trainable %d all %d", r, nLoRA, base+nLoRA)
	}
	_ = h
}

func TestErrorsAreSentinels(t *testing.T) {
	_, m := mustInject(t, graph.Float64, lora.PEFTDefault())
	if _, err := m.Config("zz"); !errors.Is(err, lora.ErrUnknownAdapter) {
		t.Errorf("Config(zz): %v", err)
	}
	if _, err := m.Adapter("h.0.attn.c_attn", "zz"); !errors.Is(err, lora.ErrUnknownAdapter) {
		t.Errorf("Adapter(zz): %v", err)
	}
	if _, err := m.Adapter("h.0.mlp.c_fc", lora.DefaultAdapter); err == nil {
		t.Error("Adapter on an unadapted layer")
	}
	cfg, err := m.Config(lora.DefaultAdapter)
	if err != nil || cfg.R != 8 || cfg.Alpha != 8 || cfg.Bias != lora.BiasNone || cfg.Init != lora.InitDefault || cfg.TaskType != "CAUSAL_LM" {
		t.Errorf("Config(default) = %+v, %v (defaults not filled)", cfg, err)
	}
}

// BenchmarkMergeUnmerge times Merge then Unmerge of PEFT's default adapter
// on one GPT-2-small c_attn ([768, 2304], r = 8, float32):
//
//	go test ./nn/lora -run XXX -bench MergeUnmerge -benchtime 20x
func BenchmarkMergeUnmerge(b *testing.B) {
	h := gpt2Shaped(1, 768)
	m, err := lora.Inject(h, lora.PEFTDefault())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.Merge(); err != nil {
			b.Fatal(err)
		}
		if err := m.Unmerge(); err != nil {
			b.Fatal(err)
		}
	}
}
