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
// two, gives the losses and gradients of no recomputation bit for bit (with
// the loss's head in blocks or not, which agree to rounding),
// with embedding, attention, residual and LoRA dropout on, for LoRA, DoRA
// (no LoRA dropout), an nf4 base, and full fine-tuning.
func TestRecomputeGradientsBitIdentical(t *testing.T) {
	cfg := tinyConfig()
	cfg.NLayer = 3
	cfg.EmbdDropout, cfg.ResidDropout, cfg.AttnDropout = 0.1, 0.1, 0.1
	ids := randomIDs(8, 2*cfg.BlockSize, cfg.VocabSize)
	for _, mode := range []string{"lora", "dora", "nf4", "full"} {
		t.Run(mode, func(t *testing.T) {
			var plain []float64 // no recomputation, logits kept
			for _, blocks := range []bool{false, true} {
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
					m.SetLossInBlocks(blocks)
					ckpts := 0
					if every > 0 {
						ckpts = (cfg.NLayer + every - 1) / every
					}
					got := stepGrads(t, m, ids, 2, cfg.BlockSize, ckpts)
					if every == 0 {
						want = got
						if !blocks {
							plain = got
						} else {
							// The head in blocks sums in another order.
							compareValues(t, "loss in blocks", got, plain, 2e-5)
						}
						continue
					}
					if len(got) != len(want) {
						t.Fatalf("every %d: %d values, want %d", every, len(got), len(want))
					}
					for i := range got {
						if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
							t.Fatalf("recompute %s (loss in blocks %v): value %d is %v, %v without recomputation", nn.RecomputeName(every), blocks, i, got[i], want[i])
						}
					}
				}
			}
		})
	}
}

// compareValues fails when max|got−want| exceeds tol·max(1, max|want|).
func compareValues(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var maxErr, maxVal float64
	for i := range got {
		maxErr = math.Max(maxErr, math.Abs(got[i]-want[i]))
		maxVal = math.Max(maxVal, math.Abs(want[i]))
	}
	if !(maxErr <= tol*math.Max(1, maxVal)) {
		t.Fatalf("%s: max difference %.3g over max magnitude %.3g (tol %.3g)", what, maxErr, maxVal, tol)
	}
}

// TestLossInBlocks: with SetLossInBlocks the loss runs one
// LinearCrossEntropy and no SoftmaxCrossEntropy, and its loss and
// gradients (full fine-tuning: the tied head's too) equal the plain loss's
// in float64.
func TestLossInBlocks(t *testing.T) {
	cfg := tinyConfig()
	ids := randomIDs(5, 2*cfg.BlockSize, cfg.VocabSize)
	var want []float64
	for _, blocks := range []bool{false, true} {
		m := newModel(t, cfg, graph.Float64, 3, 0.5)
		nn.SetTrainable(m.Params(), true)
		m.SetLossInBlocks(blocks)
		b := graph.NewBuilder(graph.Float64, 1)
		in, tg := b.IntInput("ids", len(ids)), b.IntInput("targets", len(ids))
		mask := b.Input("mask", len(ids))
		prog, err := b.Compile(m.Loss(in, tg, mask, 2, cfg.BlockSize, 0.1))
		if err != nil {
			t.Fatal(err)
		}
		mv := make([]float64, len(ids))
		for i := range mv {
			mv[i] = float64(i % 3)
		}
		_ = prog.SetInts(in, ids)
		_ = prog.SetInts(tg, append(ids[1:], ids[0]))
		_ = prog.SetInput(mask, mv)
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		runs := b.OpRuns()
		if blocks != (runs["LinearCrossEntropy"] == 1) || blocks == (runs["SoftmaxCrossEntropy"] == 1) {
			t.Fatalf("loss in blocks %v: ops run %v", blocks, runs)
		}
		got := []float64{prog.Loss()}
		for _, p := range prog.Trainable() {
			g, _ := prog.Grad(p)
			got = append(got, g.Values()...)
		}
		if !blocks {
			want = got
			continue
		}
		compareValues(t, "loss and gradients", got, want, 1e-12)
	}
}
