package gpt

import (
	"math"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
)

// stepGrads runs two training steps' forward and backward passes (dropout
// on, the same builder seed) and returns the losses and the gradients of
// every trainable parameter after each.
func stepGrads(t *testing.T, m *Model, ids []int, batch, ctx int, ckpts int) []float64 {
	t.Helper()
	b := graph.NewBuilder(graph.Float32, 42)
	in := b.IntInput("ids", batch*ctx)
	tg := b.IntInput("targets", batch*ctx)
	loss := m.Loss(in, tg, nil, batch, ctx, 0)
	prog, err := b.Compile(loss)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if len(prog.Trainable()) == 0 {
		t.Fatal("nothing trainable")
	}
	var out []float64
	for step := range 2 {
		targets := append(append([]int(nil), ids[1+step:]...), ids[:1+step]...)
		_ = prog.SetInts(in, ids)
		_ = prog.SetInts(tg, targets)
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		out = append(out, prog.Loss())
		for _, p := range prog.Trainable() {
			g, _ := prog.Grad(p)
			out = append(out, g.Values()...)
		}
	}
	runs := b.OpRuns()
	if got := runs["Checkpoint"]; got != int64(2*ckpts) || runs["Checkpoint.dx"] != int64(2*ckpts) {
		t.Fatalf("%d checkpoint forward and %d backward runs, want %d", got, runs["Checkpoint.dx"], 2*ckpts)
	}
	if runs["Dropout(0.1)"] == 0 && ckpts == 0 {
		t.Fatal("no dropout ran")
	}
	return out
}

// TestRecomputeGradientsBitIdentical: recomputing every block, or every
// two, gives the losses and gradients of no recomputation bit for bit,
// with embedding, attention, residual and LoRA dropout on, for LoRA, DoRA
// (no LoRA dropout), an nf4 base, and full fine-tuning.
func TestRecomputeGradientsBitIdentical(t *testing.T) {
	cfg := tinyConfig()
	cfg.NLayer = 3
	cfg.EmbdDropout, cfg.ResidDropout, cfg.AttnDropout = 0.1, 0.1, 0.1
	ids := randomIDs(8, 2*cfg.BlockSize, cfg.VocabSize)
	for _, mode := range []string{"lora", "dora", "nf4", "full"} {
		t.Run(mode, func(t *testing.T) {
			var want []float64
			for _, every := range []int{0, 1, 2} {
				m := newModel(t, cfg, graph.Float32, 3, 0.5)
				switch mode {
				case "full":
					nn.SetTrainable(m.Params(), true)
				default:
					lc := lora.Config{R: 2, Alpha: 4, Dropout: 0.1, Targets: []string{"c_attn", "c_fc", "c_proj"}, Seed: 1}
					if mode == "dora" {
						lc.DoRA, lc.Dropout = true, 0
					}
					lm, err := lora.Inject(m, lc)
					if err != nil {
						t.Fatal(err)
					}
					randomizeAdapter(t, lm, "default", 2)
					if mode == "nf4" {
						if _, err := nn.QuantizeBase(m, graph.NF4, true); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := m.SetRecompute(every); err != nil {
					t.Fatal(err)
				}
				ckpts := 0
				if every > 0 {
					ckpts = (cfg.NLayer + every - 1) / every
				}
				got := stepGrads(t, m, ids, 2, cfg.BlockSize, ckpts)
				if every == 0 {
					want = got
					continue
				}
				if len(got) != len(want) {
					t.Fatalf("every %d: %d values, want %d", every, len(got), len(want))
				}
				for i := range got {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("recompute %s: value %d is %v, %v without recomputation", nn.RecomputeName(every), i, got[i], want[i])
					}
				}
			}
		})
	}
}
