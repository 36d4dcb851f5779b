package llama

import (
	"fmt"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/trainers"
)

var _ trainers.LanguageModel = (*Model)(nil)

// countParams is the number of elements of the model's parameters.
func countParams(m *Model) int {
	n := 0
	for _, p := range m.BaseParams() {
		n += p.Len()
	}
	return n
}

func TestPresets(t *testing.T) {
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			c, err := Preset(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if name == "smollm2-135M" {
				if n := c.NumParams(); n != 134_515_008 {
					t.Errorf("SmolLM2-135M has %d parameters, want 134,515,008", n)
				}
				return // 540 MB in float32: counted, not allocated
			}
			m, err := New(c, graph.Float32)
			if err != nil {
				t.Fatal(err)
			}
			if got := countParams(m); got != c.NumParams() {
				t.Errorf("NumParams %d, the model has %d", c.NumParams(), got)
			}
		})
	}
	if names := PresetNames(); names[0] != "llama-nano" || names[len(names)-1] != "smollm2-135M" {
		t.Errorf("preset order %v", names)
	}
	if _, err := Preset("gpt2"); err == nil || !strings.Contains(err.Error(), "llama-nano") {
		t.Errorf("unknown preset: %v", err)
	}
}

// TestNumParams compares the formula with the allocated model for every
// option that adds parameters.
func TestNumParams(t *testing.T) {
	for _, arch := range archs {
		for _, untie := range []bool{false, true} {
			c := tinyConfig(arch)
			if untie {
				c.TieEmbeddings = !c.TieEmbeddings
			}
			if arch == ArchLlama {
				c.QKVBias, c.OBias, c.MLPBias = true, true, true
			}
			m, err := New(c, graph.Float64)
			if err != nil {
				t.Fatal(err)
			}
			if got := countParams(m); got != c.NumParams() {
				t.Errorf("%s (tied %v): NumParams %d, the model has %d", arch, c.TieEmbeddings, c.NumParams(), got)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"zero layers", func(c *Config) { c.NumLayers = 0 }, "NumLayers = 0"},
		{"kv heads", func(c *Config) { c.KVHeads = 3 }, "multiple of KVHeads"},
		{"hidden/heads", func(c *Config) { c.Hidden = 18 }, "divisible by Heads"},
		{"odd head width", func(c *Config) { c.HeadDim = 5 }, "odd"},
		{"eps", func(c *Config) { c.RMSNormEps = 0 }, "RMSNormEps"},
		{"rope", func(c *Config) { c.RoPE = graph.RoPEConfig{Theta: 1e4, Type: "yarn", Factor: 2} }, `"yarn" is not supported`},
		{"eos id", func(c *Config) { c.EOS = []int{2, 40} }, "EOS[1] = 40"},
		{"bos id", func(c *Config) { c.BOS = -2 }, "BOS = -2"},
		{"tokenizer", func(c *Config) { c.Tokenizer = "gpt2" }, "Tokenizer"},
		{"arch", func(c *Config) { c.Arch = "gemma" }, `Arch = "gemma"`},
		{"llama bias halves", func(c *Config) { c.QKVBias = true }, "attention_bias covers"},
		{"llama qk norm", func(c *Config) { c.QKNorm = true }, "q_norm"},
		{"window", func(c *Config) { c.SlidingWindow = -1 }, "SlidingWindow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := tinyConfig(ArchLlama)
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if _, err := New(cfg, graph.Float32); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
	for _, c := range []struct {
		arch string
		edit func(c *Config)
		want string
	}{
		{ArchMistral, func(c *Config) { c.QKVBias = true }, "mistral has no attention or MLP biases"},
		{ArchQwen2, func(c *Config) { c.OBias = true }, "o_proj bias"},
		{ArchQwen3, func(c *Config) { c.QKNorm = false }, "always has q_norm"},
		{ArchQwen3, func(c *Config) { c.MLPBias = true }, "MLP biases"},
	} {
		cfg := tinyConfig(c.arch)
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.arch, err, c.want)
		}
	}
	if _, err := New(tinyConfig(ArchLlama), graph.DType(7)); err == nil {
		t.Error("New accepted an invalid dtype")
	}
}

func TestNamesAndLayers(t *testing.T) {
	m, err := New(tinyConfig(ArchQwen3), graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range m.BaseParams()[:12] {
		names = append(names, fmt.Sprintf("%s%v", p.Name, p.Shape()))
	}
	want := []string{"model.embed_tokens.weight[37 16]", "model.layers.0.input_layernorm.weight[16]",
		"model.layers.0.self_attn.q_proj.weight[16 24]", "model.layers.0.self_attn.k_proj.weight[16 12]",
		"model.layers.0.self_attn.v_proj.weight[16 12]", "model.layers.0.self_attn.o_proj.weight[24 16]",
		"model.layers.0.self_attn.q_norm.weight[6]", "model.layers.0.self_attn.k_norm.weight[6]",
		"model.layers.0.post_attention_layernorm.weight[16]", "model.layers.0.mlp.gate_proj.weight[16 24]",
		"model.layers.0.mlp.up_proj.weight[16 24]", "model.layers.0.mlp.down_proj.weight[24 16]"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("parameters\n%v\nwant\n%v", names, want)
	}
	ps := m.BaseParams()
	if last := ps[len(ps)-1]; last.Name != "lm_head.weight" || fmt.Sprint(last.Shape()) != "[16 37]" {
		t.Errorf("last parameter %s %v, want lm_head.weight [16 37]", last.Name, last.Shape())
	}
	layers := m.Layers()
	if len(layers) != 1+2*7+1 || layers[0].Path != "model.embed_tokens" || layers[len(layers)-1].Path != "lm_head" ||
		layers[8].Path != "model.layers.1.self_attn.q_proj" || layers[14].Path != "model.layers.1.mlp.down_proj" {
		var paths []string
		for _, l := range layers {
			paths = append(paths, l.Path)
		}
		t.Errorf("layers %v", paths)
	}
	if fmt.Sprint(countParams(m)) != fmt.Sprint(graph.CountParams(m.Params())) {
		t.Errorf("Params and BaseParams differ without wrappers")
	}
	tied, _ := New(tinyConfig(ArchQwen2), graph.Float32)
	if l := tied.Layers(); l[len(l)-1].Path == "lm_head" {
		t.Error("a tied model lists lm_head")
	}
	if err := tied.SetLayer("lm_head", tied.Embed); err == nil || !strings.Contains(err.Error(), "tied") {
		t.Errorf("SetLayer lm_head on a tied model: %v", err)
	}
}

func TestSetLayer(t *testing.T) {
	m, _ := New(tinyConfig(ArchLlama), graph.Float32)
	orig, err := m.BaseLayer("model.layers.1.mlp.up_proj")
	if err != nil {
		t.Fatal(err)
	}
	repl := nn.NewLinear("model.layers.1.mlp.up_proj", graph.Float32, 16, 24, false)
	if err := m.SetLayer("model.layers.1.mlp.up_proj", repl); err != nil {
		t.Fatal(err)
	}
	if m.Blocks[1].MLP.UpProj != repl || len(m.replaced()) != 1 {
		t.Fatal("SetLayer did not replace the projection")
	}
	if err := m.SetLayer("model.layers.1.mlp.up_proj", orig); err != nil || len(m.replaced()) != 0 {
		t.Fatalf("restoring: %v, replaced %v", err, m.replaced())
	}
	for _, bad := range []string{"model.layers.2.mlp.up_proj", "model.layers.01.mlp.up_proj", "model.layers.0.mlp", "h.0.attn.c_attn", "model.layers.0.input_layernorm"} {
		if err := m.SetLayer(bad, repl); err == nil || !strings.Contains(err.Error(), "unknown layer path") {
			t.Errorf("SetLayer(%q): %v", bad, err)
		}
		if _, err := m.BaseLayer(bad); err == nil {
			t.Errorf("BaseLayer(%q) accepted", bad)
		}
	}
	if err := m.SetLayer("model.embed_tokens", nil); err == nil {
		t.Error("nil layer accepted")
	}
}

func TestLogitsErrors(t *testing.T) {
	m, _ := New(tinyConfig(ArchMistral), graph.Float32)
	cases := []struct {
		name       string
		n          int
		batch, ctx int
		want       string
	}{
		{"beyond the sliding window", 9, 1, 9, "sliding window 8"},
		{"ids shape", 6, 2, 4, "want [8]"},
		{"zero batch", 4, 0, 4, "batch 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := graph.NewBuilder(graph.Float32, 1)
			y := m.Logits(b.IntInput("ids", c.n), c.batch, c.ctx)
			if y.Err() == nil || !strings.Contains(y.Err().Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", y.Err(), c.want)
			}
		})
	}
	l, _ := New(tinyConfig(ArchLlama), graph.Float32)
	b := graph.NewBuilder(graph.Float32, 1)
	if y := l.Logits(b.IntInput("ids", 17), 1, 17); y.Err() == nil || !strings.Contains(y.Err().Error(), "max_position_embeddings 16") {
		t.Errorf("beyond max_position_embeddings: %v", y.Err())
	}
	if m.ContextSize() != 8 || l.ContextSize() != 16 {
		t.Errorf("context sizes %d and %d, want 8 (window) and 16", m.ContextSize(), l.ContextSize())
	}
}

// TestGradients checks the gradients of the loss with respect to every
// parameter of a tiny model of each architecture by central differences.
func TestGradients(t *testing.T) {
	for _, arch := range archs {
		t.Run(arch, func(t *testing.T) {
			m := newModel(t, tinyConfig(arch), graph.Float64, 3, 0.5)
			const batch, ctx = 2, 5
			ids := randomIDs(4, batch*ctx, 37)
			targets := randomIDs(5, batch*ctx, 37)
			res, err := graph.CheckGradients(func(b *graph.Builder) (*graph.Node, error) {
				loss := m.Loss(b.IntConstant("ids", ids, batch*ctx), b.IntConstant("targets", targets, batch*ctx), nil, batch, ctx, 0.1)
				return loss, b.Err()
			}, m.BaseParams(), graph.GradCheckOptions{MaxElems: 6, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if !r.OK(1e-8, 1e-5) {
					t.Errorf("%v", r)
				}
			}
		})
	}
}

// TestCausalAndBatchIndependent checks that a token's logits depend only on
// the tokens before it in its own sequence.
func TestCausalAndBatchIndependent(t *testing.T) {
	for _, arch := range archs {
		m := newModel(t, tinyConfig(arch), graph.Float64, 1, 0.5)
		const ctx = 6
		ids := randomIDs(2, 2*ctx, 37)
		base := runLogits(t, m, ids, 2, ctx)
		changed := append([]int(nil), ids...)
		changed[3] = (changed[3] + 1) % 37         // sequence 0, position 3
		changed[ctx+1] = (changed[ctx+1] + 5) % 37 // sequence 1, position 1
		got := runLogits(t, m, changed, 2, ctx)
		v := 37
		for row := range 2 * ctx {
			same := bitEqual(got[row*v:(row+1)*v], base[row*v:(row+1)*v])
			if affected := (row >= 3 && row < ctx) || row >= ctx+1; same == affected {
				t.Errorf("%s: row %d same %v, want %v", arch, row, same, !affected)
			}
		}
	}
}

func TestInitIsSeeded(t *testing.T) {
	cfg := tinyConfig(ArchQwen2)
	a, _ := New(cfg, graph.Float32)
	b, _ := New(cfg, graph.Float32)
	if err := a.Init(graph.NewRand(5)); err != nil {
		t.Fatal(err)
	}
	_ = b.Init(graph.NewRand(5))
	for i, p := range a.BaseParams() {
		q := b.BaseParams()[i]
		if !bitEqual(p.Values(), q.Values()) {
			t.Fatalf("%s differs for the same seed", p.Name)
		}
		v := p.Values()
		switch {
		case strings.HasSuffix(p.Name, "norm.weight") && v[0] != 1:
			t.Errorf("%s starts at %v, want 1", p.Name, v[0])
		case strings.HasSuffix(p.Name, ".bias") && v[0] != 0:
			t.Errorf("%s starts at %v, want 0", p.Name, v[0])
		}
	}
	if err := a.Init(nil); err == nil {
		t.Error("nil source accepted")
	}
}
