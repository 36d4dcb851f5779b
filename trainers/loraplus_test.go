package trainers

import (
	"math"
	"testing"

	"github.com/golora/golora/graph"
)

// TestLoRAPlusGroups pins PEFT's grouping on golora's names: B factors and
// one-dimensional parameters at ratio·η (biases and LayerNorm parameters
// never decay), A factors and other matrices at η, every parameter of an
// adapter on an embedding (its DoRA magnitude too) at the embedding rate.
func TestLoRAPlusGroups(t *testing.T) {
	p := func(name string, shape ...int) *graph.Param { return graph.NewParam(name, graph.Float32, shape...) }
	all := []*graph.Param{
		p("wte.weight", 10, 4),
		p("wte.lora_embedding_A.default.weight", 10, 2),
		p("wte.lora_embedding_B.default.weight", 2, 4),
		p("wte.lora_magnitude_vector.default.weight", 4),
		p("h.0.attn.c_attn.lora_A.default.q.weight", 4, 2),
		p("h.0.attn.c_attn.lora_B.default.q.weight", 2, 4),
		p("h.0.attn.c_attn.lora_magnitude_vector.default.weight", 12),
		p("h.0.attn.c_attn.bias", 12),
		p("h.0.ln_1.weight", 4),
		p("ln_f.bias", 4),
		p("lm_head.weight", 10, 4),
	}
	cfg := DefaultConfig()
	cfg.LR, cfg.LoRAPlusRatio, cfg.LoRAPlusWeightDecay = 1e-3, 16, 0.1
	group := LoRAPlusGroups(all, cfg)
	want := []ParamGroup{
		{GroupLoRAA, 1, 0.1},
		{GroupLoRAEmbedding, 1e-3, 0.1},
		{GroupLoRAEmbedding, 1e-3, 0.1},
		{GroupLoRAEmbedding, 1e-3, 0.1},
		{GroupLoRAA, 1, 0.1},
		{GroupLoRAB, 16, 0.1},
		{GroupLoRAB, 16, 0.1},
		{GroupLoRABNoDecay, 16, 0},
		{GroupLoRABNoDecay, 16, 0},
		{GroupLoRABNoDecay, 16, 0},
		{GroupLoRAA, 1, 0.1},
	}
	for i, prm := range all {
		got := group(prm)
		if got.Name != want[i].Name || math.Abs(got.LRScale-want[i].LRScale) > 1e-15 || got.WeightDecay != want[i].WeightDecay {
			t.Errorf("%s: %+v, want %+v", prm.Name, got, want[i])
		}
	}
	cfg.LoRAPlusLREmbedding = 5e-4
	if g := LoRAPlusGroups(all, cfg)(all[1]); g.LRScale != 0.5 {
		t.Errorf("embedding rate 5e-4 of η 1e-3: scale %v", g.LRScale)
	}
}

// TestAdamWGroups: a group's parameters follow AdamW with η·LRScale and
// the group's λ, whatever Decay and WeightDecay say.
func TestAdamWGroups(t *testing.T) {
	w0, g := []float64{0.5, -1.5, 2, 0.25}, []float64{0.3, -0.2, 0.1, 1}
	p := graph.NewParam("w", graph.Float64, 2, 2)
	_ = p.SetValues(w0)
	o := NewAdamW(0.9, 0.999, 1e-8, 0.5)
	o.Group = func(*graph.Param) ParamGroup { return ParamGroup{Name: "x", LRScale: 4, WeightDecay: 0.25} }
	grad := []graph.Array{{Shape: []int{2, 2}, F64: g}}
	for range 3 {
		if err := o.Step([]*graph.Param{p}, grad, 0.01); err != nil {
			t.Fatal(err)
		}
	}
	want := adamReference(w0, [][]float64{g, g, g}, 0.04, 0.9, 0.999, 1e-8, 0.25)
	for i, v := range p.Values() {
		if math.Abs(v-want[i]) > 1e-15 {
			t.Fatalf("element %d: %v, want %v", i, v, want[i])
		}
	}
}

// TestLoRAPlusBMovesWithRatio: with LoRA+ at ratio 16 the first AdamW step
// (bias-corrected: each element moves by η_group·g/(|g| + ε)) moves B's
// elements by up to 16·η and A's by up to η; the bias, one-dimensional,
// moves with B. Without LoRA+ both move by up to η.
func TestLoRAPlusBMovesWithRatio(t *testing.T) {
	for _, ratio := range []float64{0, 16} {
		tr, _ := textData(t, 600, 12, 8)
		m := newTinyLM(graph.Float64, 12, 6, 2, 0, 1)
		m.emb.Trainable, m.w.Trainable = false, false
		cfg := testConfig()
		cfg.Steps, cfg.Warmup, cfg.Schedule, cfg.LR, cfg.MaxGradNorm = 1, 0, ScheduleConstant, 1e-3, 0
		cfg.LoRAPlusRatio, cfg.WeightDecay = ratio, 0 // (LoRA+ has its own weight decay, 0 by default)
		before := snapshot(m.Params())
		if _, err := newTrainer(t, m, cfg).Train(tr, nil); err != nil {
			t.Fatal(err)
		}
		after := snapshot(m.Params())
		moved := func(name string) float64 {
			var worst float64
			for i, v := range after[name] {
				worst = math.Max(worst, math.Abs(v-before[name][i]))
			}
			return worst
		}
		lrB := cfg.LR
		if ratio > 0 {
			lrB *= ratio
		}
		for name, lr := range map[string]float64{"head.lora_A": cfg.LR, "head.lora_B": lrB, "head.bias": lrB} {
			if got := moved(name); got > lr*(1+1e-9) || got < 0.9*lr {
				t.Errorf("ratio %v: %s moved by up to %.4g, want up to its rate %.4g", ratio, name, got, lr)
			}
		}
	}
}
