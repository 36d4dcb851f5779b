package trainers_test

import (
	"math"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// TestLoRAPlusOnGPT: on a GPT with LoRA on q, v and the token embedding, one
// LoRA+ step moves every B by up to ratio·η, every A by up to η and the
// embedding adapter's factors by up to PEFT's embedding rate, 1e-6.
func TestLoRAPlusOnGPT(t *testing.T) {
	ds := nanoData(t)
	m := nanoModel(t)
	lm, err := lora.Inject(m, lora.Config{R: 2, Targets: []string{"q", "v", "wte"}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps, cfg.LR, cfg.Seed, cfg.MaxGradNorm = 4, 16, 1, 1e-3, 1, 0
	cfg.Schedule, cfg.LoRAPlusRatio = trainers.ScheduleConstant, 8
	before := map[*graph.Param][]float64{}
	rng := graph.NewRand(2)
	for _, p := range lm.TrainableParams() {
		graph.InitNormal(p, rng, 0.1) // B = 0 (A = 0 on the embedding) would leave its partner's gradient 0
		before[p] = p.Values()
	}
	tr, err := trainers.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Train(ds, nil); err != nil {
		t.Fatal(err)
	}
	for p, old := range before {
		var moved float64
		for i, v := range p.Values() {
			moved = math.Max(moved, math.Abs(v-old[i]))
		}
		rate := cfg.LR
		switch {
		case strings.Contains(p.Name, "lora_embedding"):
			rate = 1e-6
		case strings.Contains(p.Name, "lora_B"):
			rate = cfg.LoRAPlusRatio * cfg.LR
		}
		if moved > rate*(1+1e-6) || moved < 0.5*rate {
			t.Errorf("%s moved by up to %.4g, want up to its rate %.4g", p.Name, moved, rate)
		}
	}
}
