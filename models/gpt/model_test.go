package gpt

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
)

func TestPresets(t *testing.T) {
	want := map[string][3]int{ // layers, heads, d
		"nano": {3, 3, 48}, "micro": {4, 4, 128}, "mini": {6, 6, 192},
		"gpt2": {12, 12, 768}, "gpt2-medium": {24, 16, 1024},
	}
	names := PresetNames()
	if !slices.Equal(names, []string{"nano", "micro", "mini", "gpt2", "gpt2-medium"}) {
		t.Errorf("PresetNames() = %v", names)
	}
	for _, name := range names {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if got := [3]int{c.NLayer, c.NHead, c.NEmbd}; got != want[name] {
			t.Errorf("%s: layers×heads×d = %v, want %v", name, got, want[name])
		}
	}
	g, _ := Preset("gpt2")
	if g.VocabSize != 50257 || g.BlockSize != 1024 || g.LayerNormEps != 1e-5 || g.Tokenizer != "gpt2" {
		t.Errorf("gpt2 preset %+v", g)
	}
	// The parameter counts of OpenAI's checkpoints (LM head tied).
	if n := g.NumParams(); n != 124_439_808 {
		t.Errorf("gpt2 has %d parameters, want 124,439,808", n)
	}
	if m, _ := Preset("gpt2-medium"); m.NumParams() != 354_823_168 {
		t.Errorf("gpt2-medium has %d parameters, want 354,823,168", m.NumParams())
	}
	if _, err := Preset("gpt3"); err == nil || !strings.Contains(err.Error(), `"gpt3"`) {
		t.Errorf("unknown preset: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"heads do not divide d", func(c *Config) { c.NHead = 5 }, "NEmbd = 48 is not divisible by NHead = 5"},
		{"zero layers", func(c *Config) { c.NLayer = 0 }, "NLayer = 0"},
		{"negative d", func(c *Config) { c.NEmbd = -1 }, "NEmbd = -1"},
		{"zero context", func(c *Config) { c.BlockSize = 0 }, "BlockSize = 0"},
		{"zero vocab", func(c *Config) { c.VocabSize = 0 }, "VocabSize = 0"},
		{"NaN eps", func(c *Config) { c.LayerNormEps = math.NaN() }, "LayerNormEps"},
		{"negative eps", func(c *Config) { c.LayerNormEps = -1 }, "LayerNormEps"},
		{"dropout 1", func(c *Config) { c.AttnDropout = 1 }, "AttnDropout = 1"},
		{"negative dropout", func(c *Config) { c.EmbdDropout = -0.1 }, "EmbdDropout"},
		{"no tokenizer", func(c *Config) { c.Tokenizer = "" }, `Tokenizer = "": empty`},
		{"unknown tokenizer", func(c *Config) { c.Tokenizer = "gpt-2" }, `"gpt-2"`},
		{"vocab smaller than tokenizer", func(c *Config) { c.VocabSize = 100 }, `tokenizer "bytes" has 257 ids but VocabSize = 100`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := Preset("nano")
			c.edit(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if _, err := New(cfg, graph.Float32); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	cfg, _ := Preset("nano")
	cfg.VocabSize = 300 // larger than the tokenizer's vocabulary is fine (padded)
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}

// TestParamNames checks the names, shapes and order against the Hugging Face
// GPT-2 state dict.
func TestParamNames(t *testing.T) {
	cfg, _ := Preset("nano")
	m, err := New(cfg, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	d, v, T := 48, 257, 128
	type ps struct {
		name  string
		shape []int
	}
	want := []ps{{"wte.weight", []int{v, d}}, {"wpe.weight", []int{T, d}}}
	for i := 0; i < 3; i++ {
		h := fmt.Sprintf("h.%d.", i)
		want = append(want,
			ps{h + "ln_1.weight", []int{d}}, ps{h + "ln_1.bias", []int{d}},
			ps{h + "attn.c_attn.weight", []int{d, 3 * d}}, ps{h + "attn.c_attn.bias", []int{3 * d}},
			ps{h + "attn.c_proj.weight", []int{d, d}}, ps{h + "attn.c_proj.bias", []int{d}},
			ps{h + "ln_2.weight", []int{d}}, ps{h + "ln_2.bias", []int{d}},
			ps{h + "mlp.c_fc.weight", []int{d, 4 * d}}, ps{h + "mlp.c_fc.bias", []int{4 * d}},
			ps{h + "mlp.c_proj.weight", []int{4 * d, d}}, ps{h + "mlp.c_proj.bias", []int{d}},
		)
	}
	want = append(want, ps{"ln_f.weight", []int{d}}, ps{"ln_f.bias", []int{d}})
	for _, list := range [][]*graph.Param{m.BaseParams(), m.Params()} {
		if len(list) != len(want) {
			t.Fatalf("%d parameters, want %d", len(list), len(want))
		}
		for i, p := range list {
			if p.Name != want[i].name || !slices.Equal(p.Shape(), want[i].shape) {
				t.Errorf("parameter %d is %s %v, want %s %v", i, p.Name, p.Shape(), want[i].name, want[i].shape)
			}
		}
	}
	if n := graph.CountParams(m.Params()); n != cfg.NumParams() {
		t.Errorf("CountParams = %d, NumParams = %d", n, cfg.NumParams())
	}
	var paths []string
	for _, l := range m.Layers() {
		paths = append(paths, l.Path)
	}
	wantPaths := []string{"wte"}
	for i := 0; i < 3; i++ {
		h := fmt.Sprintf("h.%d.", i)
		wantPaths = append(wantPaths, h+"attn.c_attn", h+"attn.c_proj", h+"mlp.c_fc", h+"mlp.c_proj")
	}
	if !slices.Equal(paths, wantPaths) {
		t.Errorf("Layers() = %v, want %v", paths, wantPaths)
	}
	if m.VocabSize() != 257 || m.DType() != graph.Float32 || m.Config() != cfg {
		t.Errorf("VocabSize %d, DType %v, Config %+v", m.VocabSize(), m.DType(), m.Config())
	}
	if _, err := New(cfg, graph.DType(7)); err == nil {
		t.Error("New accepted dtype 7")
	}
}

func TestInit(t *testing.T) {
	cfg, _ := Preset("micro") // 4 layers: c_proj std 0.02/√8
	m, err := New(cfg, graph.Float64)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(graph.NewRand(1)); err != nil {
		t.Fatal(err)
	}
	projStd := 0.02 / math.Sqrt(8)
	for _, p := range m.BaseParams() {
		v := p.Values()
		var mean, sq float64
		for _, x := range v {
			mean += x
			sq += x * x
		}
		mean /= float64(len(v))
		std := math.Sqrt(sq/float64(len(v)) - mean*mean)
		n := p.Name
		switch {
		case strings.HasSuffix(n, "ln_1.weight"), strings.HasSuffix(n, "ln_2.weight"), n == "ln_f.weight":
			if mean != 1 || std != 0 {
				t.Errorf("%s: mean %v std %v, want all ones", n, mean, std)
			}
		case strings.HasSuffix(n, ".bias"):
			if mean != 0 || std != 0 {
				t.Errorf("%s: mean %v std %v, want zeros", n, mean, std)
			}
		default:
			want := 0.02
			if strings.HasSuffix(n, "c_proj.weight") {
				want = projStd
			}
			// A sample of N normals has std within ≈ 1/√(2N) relative;
			// the smallest weight here has 16,384 elements (≈ 0.6%).
			if math.Abs(std-want) > 0.03*want || math.Abs(mean) > 0.05*want {
				t.Errorf("%s: mean %.3g std %.4g, want 0 and %.4g", n, mean, std, want)
			}
		}
	}
	// Same seed, same model; another seed, another model.
	m2, _ := New(cfg, graph.Float64)
	m3, _ := New(cfg, graph.Float64)
	_ = m2.Init(graph.NewRand(1))
	_ = m3.Init(graph.NewRand(2))
	if !slices.Equal(m.WTE.Weight.Float64s(), m2.WTE.Weight.Float64s()) || !slices.Equal(m.LnF.Weight.Float64s(), m2.LnF.Weight.Float64s()) {
		t.Error("the same seed gave different weights")
	}
	if slices.Equal(m.WTE.Weight.Float64s(), m3.WTE.Weight.Float64s()) {
		t.Error("different seeds gave the same weights")
	}
	if err := m.Init(nil); err == nil {
		t.Error("Init(nil) succeeded")
	}
}

// TestLogitsMatchReference compares the graph model with refLogits, GPT-2
// written with plain loops, for full and short contexts.
func TestLogitsMatchReference(t *testing.T) {
	for _, dt := range []graph.DType{graph.Float64, graph.Float32} {
		// float64 differs from the reference only by summation order
		// (≈ 1e-15); float32 by rounding through 2 blocks (≈ 1e-6).
		tol := map[graph.DType]float64{graph.Float64: 1e-12, graph.Float32: 2e-5}[dt]
		for _, shape := range [][2]int{{2, 6}, {3, 4}, {1, 1}} {
			t.Run(fmt.Sprintf("%v/batch%d-ctx%d", dt, shape[0], shape[1]), func(t *testing.T) {
				m := newModel(t, tinyConfig(), dt, 1, 0.5)
				batch, ctx := shape[0], shape[1]
				ids := randomIDs(2, batch*ctx, 257)
				got := runLogits(t, m, ids, batch, ctx)
				want := refLogits(m, m.WTE.Weight.Values(), ids, batch, ctx)
				checkClose(t, "logits", got, want, tol)
			})
		}
	}
}

// TestGradients checks the gradient of the loss with respect to every
// parameter against central differences (float64), with a mask that drops
// a row and label smoothing, and the float32 gradients against float64's.
func TestGradients(t *testing.T) {
	const batch, ctx = 2, 5
	ids := randomIDs(3, batch*ctx, 257)
	targets := randomIDs(4, batch*ctx, 257)
	mask := []float64{1, 1, 0, 1, 1, 1, 1, 1, 0, 1}
	build := func(m *Model, b *graph.Builder) (*graph.Node, error) {
		loss := m.Loss(b.IntConstant("ids", ids, batch*ctx), b.IntConstant("targets", targets, batch*ctx),
			b.Constant("mask", mask, batch*ctx), batch, ctx, 0.1)
		return loss, b.Err()
	}
	m := newModel(t, tinyConfig(), graph.Float64, 5, 0.5)
	res, err := graph.CheckGradients(func(b *graph.Builder) (*graph.Node, error) { return build(m, b) },
		m.Params(), graph.GradCheckOptions{MaxElems: 16, Seed: 1, Eps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		// Central differences with ε = 1e-5 on a loss of size ≈ 6 measured
		// errors ≤ 1.2e-10 here; gradients are ≈ 1e-5 … 1e-2.
		if !r.OK(1e-9, 1e-6) {
			t.Errorf("%v", r)
		}
	}

	// float32 against float64: same values, same program.
	var grads [2][][]float64
	var losses [2]float64
	for k, dt := range []graph.DType{graph.Float64, graph.Float32} {
		md := newModel(t, tinyConfig(), dt, 5, 0.5)
		b := graph.NewBuilder(dt, 1)
		loss, err := build(md, b)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := b.Compile(loss)
		if err != nil {
			t.Fatal(err)
		}
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		losses[k] = prog.Loss()
		for _, p := range md.Params() {
			g, ok := prog.Grad(p)
			if !ok {
				t.Fatalf("%v: no gradient for %s", dt, p.Name)
			}
			grads[k] = append(grads[k], g.Values())
		}
	}
	if math.Abs(losses[1]-losses[0]) > 1e-5*math.Abs(losses[0]) {
		t.Errorf("loss float32 %v, float64 %v", losses[1], losses[0])
	}
	for i, p := range m.Params() {
		checkClose(t, "float32 gradient of "+p.Name, grads[1][i], grads[0][i], 1e-4)
	}
}

// TestLossMatchesLogits checks Loss against a cross-entropy computed here
// from refLogits, with a mask and label smoothing.
func TestLossMatchesLogits(t *testing.T) {
	const batch, ctx, eps = 2, 3, 0.1
	m := newModel(t, tinyConfig(), graph.Float64, 7, 0.5)
	ids := randomIDs(8, batch*ctx, 257)
	targets := randomIDs(9, batch*ctx, 257)
	mask := []float64{1, 0, 1, 1, 1, 0}
	b := graph.NewBuilder(graph.Float64, 1)
	loss := m.Loss(b.IntConstant("ids", ids, batch*ctx), b.IntConstant("t", targets, batch*ctx), b.Constant("mask", mask, batch*ctx), batch, ctx, eps)
	prog, err := b.Compile(loss)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	logits := refLogits(m, m.WTE.Weight.Values(), ids, batch, ctx)
	const v = 257
	var sum, wsum float64
	for r := 0; r < batch*ctx; r++ {
		row := logits[r*v : (r+1)*v]
		mx := slices.Max(row)
		var z, meanNLL float64
		for _, l := range row {
			z += math.Exp(l - mx)
		}
		lse := mx + math.Log(z)
		for _, l := range row {
			meanNLL += (lse - l) / v
		}
		sum += mask[r] * ((1-eps)*(lse-row[targets[r]]) + eps*meanNLL)
		wsum += mask[r]
	}
	if want := sum / wsum; math.Abs(prog.Loss()-want) > 1e-12*want {
		t.Errorf("loss %v, want %v", prog.Loss(), want)
	}
}

// TestDropout checks that dropout is on while training (a seeded builder
// repeats its masks) and that SetTraining(false) gives the deterministic
// forward pass.
func TestDropout(t *testing.T) {
	cfg := tinyConfig()
	cfg.EmbdDropout, cfg.ResidDropout, cfg.AttnDropout = 0.1, 0.2, 0.3
	m := newModel(t, cfg, graph.Float64, 1, 0.5)
	const batch, ctx = 2, 6
	ids := randomIDs(2, batch*ctx, 257)
	run := func(seed uint64, training bool) []float64 {
		b := graph.NewBuilder(graph.Float64, seed)
		logits := m.Logits(b.IntConstant("ids", ids, batch*ctx), batch, ctx)
		prog, err := b.Compile(nil, logits)
		if err != nil {
			t.Fatal(err)
		}
		prog.SetTraining(training)
		if err := prog.Forward(); err != nil {
			t.Fatal(err)
		}
		out, _ := prog.Output(logits)
		return out.Values()
	}
	want := refLogits(m, m.WTE.Weight.Values(), ids, batch, ctx)
	checkClose(t, "logits with training off", run(1, false), want, 1e-12)
	a, b := run(1, true), run(1, true)
	if !slices.Equal(a, b) {
		t.Error("the same builder seed gave different dropout masks")
	}
	if maxRelErr(a, want) < 1e-3 {
		t.Error("training run shows no dropout")
	}
	if slices.Equal(a, run(2, true)) {
		t.Error("different builder seeds gave the same dropout masks")
	}
}

func TestLogitsErrors(t *testing.T) {
	m := newModel(t, tinyConfig(), graph.Float32, 1, 0.1) // BlockSize 6
	cases := []struct {
		name  string
		build func(b *graph.Builder) *graph.Node
		want  string
	}{
		{"context over BlockSize", func(b *graph.Builder) *graph.Node { return m.Logits(b.IntInput("ids", 14), 2, 7) },
			"context 7 exceeds the model's BlockSize 6"},
		{"ids shape", func(b *graph.Builder) *graph.Node { return m.Logits(b.IntInput("ids", 10), 2, 4) },
			"has shape [10], want [8]"},
		{"zero batch", func(b *graph.Builder) *graph.Node { return m.Logits(b.IntInput("ids", 4), 0, 4) }, "batch 0"},
		{"float ids", func(b *graph.Builder) *graph.Node { return m.Logits(b.Input("ids", 4), 1, 4) }, "not an integer input"},
		{"dtype", func(b *graph.Builder) *graph.Node {
			b64 := graph.NewBuilder(graph.Float64, 1)
			return m.Logits(b64.IntInput("ids", 4), 1, 4)
		}, "float32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := graph.NewBuilder(graph.Float32, 1)
			out := c.build(b)
			err := out.Err()
			if err == nil {
				_, err = out.Builder().Compile(nil, out)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	// An id outside the vocabulary is a run error, not a panic.
	b := graph.NewBuilder(graph.Float32, 1)
	logits := m.Logits(b.IntConstant("ids", []int{1, 2, 300}, 3), 1, 3)
	prog, err := b.Compile(nil, logits)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err == nil || !strings.Contains(err.Error(), "300") {
		t.Errorf("run with id 300: err = %v", err)
	}
}

// countingLayer wraps a layer and counts the graphs it is built into.
type countingLayer struct {
	nn.Layer
	calls int
}

func (c *countingLayer) Forward(x *graph.Node) *graph.Node {
	c.calls++
	return c.Layer.Forward(x)
}

func TestSetLayer(t *testing.T) {
	cfg := tinyConfig()
	m := newModel(t, cfg, graph.Float64, 1, 0.5)
	const batch, ctx = 1, 5
	ids := randomIDs(2, batch*ctx, 257)
	want := refLogits(m, m.WTE.Weight.Values(), ids, batch, ctx)

	// Every replaceable layer is used by Logits, once per graph.
	var wraps []*countingLayer
	for _, l := range m.Layers() {
		w := &countingLayer{Layer: l.Layer}
		if err := m.SetLayer(l.Path, w); err != nil {
			t.Fatal(err)
		}
		wraps = append(wraps, w)
	}
	checkClose(t, "logits through wrappers", runLogits(t, m, ids, batch, ctx), want, 1e-12)
	for i, l := range m.Layers() {
		if wraps[i].calls != 1 || l.Layer != nn.Layer(wraps[i]) {
			t.Errorf("%s: wrapper built %d times", l.Path, wraps[i].calls)
		}
	}
	if err := m.Save(t.TempDir() + "/m"); err == nil || !strings.Contains(err.Error(), "h.1.mlp.c_proj") {
		t.Errorf("Save with wrappers: err = %v", err)
	}
	// BaseLayer gives back what New made; putting it back restores the model.
	for _, l := range m.Layers() {
		base, err := m.BaseLayer(l.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SetLayer(l.Path, base); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Save(t.TempDir() + "/m"); err != nil {
		t.Errorf("Save after restoring: %v", err)
	}

	// A different token lookup changes the embedding but not the tied head.
	alt := nn.NewEmbedding("alt", graph.Float64, cfg.VocabSize, cfg.NEmbd)
	alt.Init(graph.NewRand(3), 0.5)
	if err := m.SetLayer("wte", alt); err != nil {
		t.Fatal(err)
	}
	want = refLogits(m, alt.Weight.Values(), ids, batch, ctx)
	checkClose(t, "logits with another token lookup", runLogits(t, m, ids, batch, ctx), want, 1e-12)
	ps := m.Params()
	if ps[0] != alt.Weight || ps[1] != m.WTE.Weight || len(ps) != len(m.BaseParams())+1 {
		t.Errorf("Params() with a wrapped lookup starts %v, %v and has %d entries", ps[0], ps[1], len(ps))
	}

	for _, bad := range []string{"h.2.attn.c_attn", "h.0.ln_1", "h.01.mlp.c_fc", "h.-1.mlp.c_fc", "lm_head", "h.0", ""} {
		if err := m.SetLayer(bad, alt); err == nil || !strings.Contains(err.Error(), "unknown layer path") {
			t.Errorf("SetLayer(%q): err = %v", bad, err)
		}
		if _, err := m.BaseLayer(bad); err == nil {
			t.Errorf("BaseLayer(%q) succeeded", bad)
		}
	}
	if err := m.SetLayer("h.0.mlp.c_fc", nil); err == nil {
		t.Error("SetLayer with a nil layer succeeded")
	}
}

// TestBlockPieces runs the model through its exported pieces, Embed, each
// Block and Head, as a decoder with its own loop would.
func TestBlockPieces(t *testing.T) {
	m := newModel(t, tinyConfig(), graph.Float64, 4, 0.5)
	ids := randomIDs(1, 4, 257)
	b := graph.NewBuilder(graph.Float64, 1)
	x := m.Embed(b.IntConstant("ids", ids, 4), b.IntConstant("pos", []int{0, 1, 2, 3}, 4))
	for _, blk := range m.H {
		x = blk.Forward(x, 1)
	}
	logits := m.Head(x)
	prog, err := b.Compile(nil, logits)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	out, _ := prog.Output(logits)
	checkClose(t, "logits", out.Values(), refLogits(m, m.WTE.Weight.Values(), ids, 1, 4), 1e-12)
}

// TestLoRAParamCount injects PEFT's default LoRA (r = 8 on the whole c_attn)
// into GPT-2 small and checks PEFT's own report for that model:
// "trainable params: 294,912 || all params: 124,734,720".
func TestLoRAParamCount(t *testing.T) {
	cfg, _ := Preset("gpt2")
	m, err := New(cfg, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := lora.Inject(m, lora.PEFTDefault())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lm.Report().String(), "trainable params: 294,912 || all params: 124,734,720 || trainable%: 0.2364"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}
	if n := graph.CountParams(m.Params()); n != 124_734_720 {
		t.Errorf("Params() counts %d with the adapter, want 124,734,720", n)
	}
}

func TestTokenizerNoneAllowsAnyVocab(t *testing.T) {
	cfg := Config{NLayer: 1, NHead: 2, NEmbd: 8, BlockSize: 4, VocabSize: 96, LayerNormEps: 1e-5, Tokenizer: TokenizerNone}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("vocab 96 with no tokenizer: %v", err)
	}
	cfg.Tokenizer = "bytes"
	if err := cfg.Validate(); err == nil {
		t.Fatal("vocab 96 with the byte tokenizer (257 ids) validated")
	}
}
