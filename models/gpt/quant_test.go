package gpt

import (
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
)

// lossAndGrads runs one training step's forward and backward for ids (next
// token targets) with dropout off and returns the loss and the gradients of
// params, in order.
func lossAndGrads(t *testing.T, m *Model, params []*graph.Param, ids []int, batch, ctx int) (float64, [][]float64) {
	t.Helper()
	b := graph.NewBuilder(graph.Float32, 1)
	in := b.IntInput("ids", batch*ctx)
	tg := b.IntInput("targets", batch*ctx)
	loss := m.Loss(in, tg, nil, batch, ctx, 0)
	prog, err := b.Compile(loss)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	prog.SetTraining(false)
	targets := append(append([]int(nil), ids[1:]...), ids[0])
	if err := prog.SetInts(in, ids); err != nil {
		t.Fatal(err)
	}
	if err := prog.SetInts(tg, targets); err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	var gs [][]float64
	for _, p := range params {
		g, ok := prog.Grad(p)
		if !ok {
			t.Fatalf("no gradient for %s", p.Name)
		}
		gs = append(gs, g.Values())
	}
	return prog.Loss(), gs
}

func maxRelDiff(a, b []float64) float64 {
	var d, m float64
	for i := range a {
		d = max(d, abs(a[i]-b[i]))
		m = max(m, abs(b[i]))
	}
	return d / max(m, 1e-12)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestLoRAOnQuantizedBase injects LoRA (and DoRA) into a model, quantizes
// its frozen base, and checks the logits, loss and adapter gradients
// against the same adapter on a float model holding the dequantized base
// values: the quantized ops change the storage, not the maths. The adapter
// saved from the quantized model then loads, as a plain PEFT adapter, on
// the float model, and merging into the quantized base is refused.
func TestLoRAOnQuantizedBase(t *testing.T) {
	cfg := tinyConfig()
	ids := randomIDs(4, 2*cfg.BlockSize, cfg.VocabSize)
	for _, prec := range []graph.Precision{graph.BF16, graph.Int8, graph.NF4} {
		for _, dora := range []bool{false, true} {
			name := prec.String()
			if dora {
				name += "/dora"
			}
			t.Run(name, func(t *testing.T) {
				qm := newModel(t, cfg, graph.Float32, 7, 0.5)
				lc := lora.Config{R: 2, Alpha: 4, Targets: []string{"c_attn", "c_fc", "c_proj"}, DoRA: dora, Seed: 3}
				lq, err := lora.Inject(qm, lc)
				if err != nil {
					t.Fatal(err)
				}
				randomizeAdapter(t, lq, "default", 5)
				rep, err := nn.QuantizeBase(qm, prec, true)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Weights != 4*cfg.NLayer+2 || rep.BytesAfter >= rep.BytesBefore {
					t.Fatalf("quantized %d weights, %d → %d bytes", rep.Weights, rep.BytesBefore, rep.BytesAfter)
				}
				// the float model: the dequantized base, the same adapter
				fm := newModel(t, cfg, graph.Float32, 7, 0.5)
				qps, fps := qm.BaseParams(), fm.BaseParams()
				for i, p := range qps {
					if err := fps[i].SetValues(p.Values()); err != nil {
						t.Fatal(err)
					}
				}
				dir := t.TempDir()
				if err := lq.Save(dir, "default"); err != nil {
					t.Fatal(err)
				}
				lf, err := lora.Load(fm, dir)
				if err != nil {
					t.Fatalf("adapter trained on a %v base does not load on the float base: %v", prec, err)
				}
				lq2, lf2 := lq.TrainableParams(), lf.TrainableParams()
				if len(lq2) != len(lf2) || len(lq2) == 0 {
					t.Fatalf("%d and %d trainable parameters", len(lq2), len(lf2))
				}
				gotL, gotG := lossAndGrads(t, qm, lq2, ids, 2, cfg.BlockSize)
				wantL, wantG := lossAndGrads(t, fm, lf2, ids, 2, cfg.BlockSize)
				if d := abs(gotL-wantL) / wantL; d > 1e-5 {
					t.Fatalf("loss %v on the quantized base, %v on the dequantized float base", gotL, wantL)
				}
				for i := range gotG {
					if d := maxRelDiff(gotG[i], wantG[i]); d > 1e-4 {
						t.Fatalf("gradient of %s differs by %.3g (relative)", lq2[i].Name, d)
					}
				}
				compareLogits(t, runLogits(t, qm, ids, 2, cfg.BlockSize), runLogits(t, fm, ids, 2, cfg.BlockSize))

				// a second adapter works on the same quantized base
				if err := lq.AddAdapter("second", lc); err != nil {
					t.Fatal(err)
				}
				if err := lq.SetActive("second"); err != nil {
					t.Fatal(err)
				}
				_ = runLogits(t, qm, ids, 2, cfg.BlockSize)

				err = lq.Merge()
				if err == nil || !strings.Contains(err.Error(), prec.String()) || !strings.Contains(err.Error(), "float base") {
					t.Fatalf("merge into a %v base: %v", prec, err)
				}
			})
		}
	}
}

func compareLogits(t *testing.T, got, want []float64) {
	t.Helper()
	if d := maxRelDiff(got, want); d > 1e-5 {
		t.Fatalf("logits differ by %.3g (relative to the largest)", d)
	}
}

// TestQuantizeBaseRules: a base that is still trainable (full fine-tuning)
// is refused, naming the weight, and f32 changes nothing.
func TestQuantizeBaseRules(t *testing.T) {
	m := newModel(t, tinyConfig(), graph.Float32, 1, 0.5)
	if _, err := nn.QuantizeBase(m, graph.NF4, false); err == nil || !strings.Contains(err.Error(), "trainable") {
		t.Fatalf("quantizing a trainable base: %v", err)
	}
	nn.SetTrainable(m.Params(), false)
	rep, err := nn.QuantizeBase(m, graph.F32, true)
	if err != nil || rep.Weights != 0 {
		t.Fatalf("f32: %+v %v", rep, err)
	}
	rep, err = nn.QuantizeBase(m, graph.Int8, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Weights != 4*m.Config().NLayer || m.WTE.Weight.Precision() != graph.F32 {
		t.Fatalf("without embeddings: %d weights quantized, wte at %v", rep.Weights, m.WTE.Weight.Precision())
	}
}
