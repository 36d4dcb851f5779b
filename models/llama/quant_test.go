package llama

import (
	"math"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
)

// TestLoRAOnQuantizedBase: every architecture with an nf4 base (embeddings
// and head included) and a LoRA adapter on every projection computes the
// logits of the same adapter on a float model holding the dequantized
// base, which the saved adapter loads onto.
func TestLoRAOnQuantizedBase(t *testing.T) {
	for _, arch := range archs {
		t.Run(arch, func(t *testing.T) {
			cfg := tinyConfig(arch)
			ids := randomIDs(3, 2*8, cfg.VocabSize)
			qm := newModel(t, cfg, graph.Float32, 5, 0.5)
			lc := lora.Config{R: 2, Alpha: 4, Targets: []string{"q_proj", "v_proj", "down_proj"}, Seed: 1}
			lq, err := lora.Inject(qm, lc)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range lq.TrainableParams() { // B starts at zero: make ΔW count
				v := p.Values()
				for i := range v {
					v[i] = math.Sin(float64(i)+1) * 0.3
				}
				_ = p.SetValues(v)
			}
			if _, err := nn.QuantizeBase(qm, graph.NF4, true); err != nil {
				t.Fatal(err)
			}
			fm := newModel(t, cfg, graph.Float32, 5, 0.5)
			for i, p := range qm.BaseParams() {
				if err := fm.BaseParams()[i].SetValues(p.Values()); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			if err := lq.Save(dir, "default"); err != nil {
				t.Fatal(err)
			}
			if _, err := lora.Load(fm, dir); err != nil {
				t.Fatal(err)
			}
			got, want := runLogits(t, qm, ids, 2, 8), runLogits(t, fm, ids, 2, 8)
			var d, m float64
			for i := range got {
				d, m = max(d, math.Abs(got[i]-want[i])), max(m, math.Abs(want[i]))
			}
			if d > 1e-5*m {
				t.Fatalf("logits differ by %.3g (largest %.3g)", d, m)
			}
		})
	}
}

// injectCosLoRA injects LoRA on targets and gives every adapter weight
// cos(i)·0.3, so that B is not zero and the gradients of A are not.
func injectCosLoRA(t *testing.T, m *Model, targets ...string) {
	t.Helper()
	lm, err := lora.Inject(m, lora.Config{R: 2, Alpha: 4, Targets: targets, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lm.TrainableParams() {
		v := p.Values()
		for i := range v {
			v[i] = math.Cos(float64(i)) * 0.3
		}
		_ = p.SetValues(v)
	}
}

// lossGrads runs one forward and backward pass of m's Loss on 2 sequences
// of the 8 ids, each predicting the next, and returns the loss and every
// trainable gradient, and the ops that ran.
func lossGrads(t *testing.T, m *Model, dt graph.DType, ids []int) ([]float64, map[string]int64) {
	t.Helper()
	b := graph.NewBuilder(dt, 1)
	in, tg := b.IntInput("ids", 16), b.IntInput("tg", 16)
	prog, err := b.Compile(m.Loss(in, tg, nil, 2, 8, 0))
	if err != nil {
		t.Fatal(err)
	}
	_ = prog.SetInts(in, ids)
	_ = prog.SetInts(tg, append(ids[1:], ids[0]))
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	got := []float64{prog.Loss()}
	for _, p := range prog.Trainable() {
		g, _ := prog.Grad(p)
		got = append(got, g.Values()...)
	}
	return got, b.OpRuns()
}

// TestRecomputeBitIdentical: LoRA gradients with every block recomputed
// equal those without, bit for bit, on an nf4 base.
func TestRecomputeBitIdentical(t *testing.T) {
	cfg := tinyConfig(ArchQwen2)
	ids := randomIDs(3, 2*8, cfg.VocabSize)
	var want []float64
	for _, every := range []int{0, 1} {
		m := newModel(t, cfg, graph.Float32, 5, 0.5)
		injectCosLoRA(t, m, "q_proj", "v_proj", "down_proj")
		if _, err := nn.QuantizeBase(m, graph.NF4, true); err != nil {
			t.Fatal(err)
		}
		if err := m.SetRecompute(every); err != nil {
			t.Fatal(err)
		}
		got, runs := lossGrads(t, m, graph.Float32, ids)
		if every == 0 {
			want = got
			continue
		}
		if runs["Checkpoint.dx"] != int64(cfg.NumLayers) {
			t.Fatalf("%d checkpoint backward runs, want %d", runs["Checkpoint.dx"], cfg.NumLayers)
		}
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Fatalf("value %d: %v recomputed, %v not", i, got[i], want[i])
			}
		}
	}
}

// TestLossInBlocks: on a tied head (qwen2) SetLossInBlocks runs one
// LinearCrossEntropy whose loss and LoRA gradients equal the plain loss's;
// an untied head (llama) keeps its logits.
func TestLossInBlocks(t *testing.T) {
	for _, arch := range []string{ArchQwen2, ArchLlama} {
		cfg := tinyConfig(arch)
		ids := randomIDs(3, 2*8, cfg.VocabSize)
		var want []float64
		for _, blocks := range []bool{false, true} {
			m := newModel(t, cfg, graph.Float64, 5, 0.5)
			injectCosLoRA(t, m, "q_proj", "v_proj")
			m.SetLossInBlocks(blocks)
			got, runs := lossGrads(t, m, graph.Float64, ids)
			if fused := blocks && arch == ArchQwen2; fused != (runs["LinearCrossEntropy"] == 1) {
				t.Fatalf("%s, loss in blocks %v: ops run %v", arch, blocks, runs)
			}
			if !blocks {
				want = got
				continue
			}
			for i := range got {
				if d := math.Abs(got[i] - want[i]); d > 1e-12*math.Max(1, math.Abs(want[i])) {
					t.Fatalf("%s: value %d is %v, %v with the logits kept", arch, i, got[i], want[i])
				}
			}
		}
	}
}
