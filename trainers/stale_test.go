package trainers_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// nanoData is a small byte-level dataset for the "nano" GPT.
func nanoData(t *testing.T) trainers.Dataset {
	t.Helper()
	tok, err := gpt.NewTokenizer("bytes")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat("the cat sat on the mat. the dog sat on the log. ", 6)
	ds, err := trainers.NewTextDataset(tok.Encode(text), 16)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func nanoModel(t *testing.T) *gpt.Model {
	t.Helper()
	cfg, err := gpt.Preset("nano")
	if err != nil {
		t.Fatal(err)
	}
	m, err := gpt.New(cfg, graph.Float64)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(graph.NewRand(3)); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestTrainerFollowsAdapterChanges: the Trainer caches compiled programs,
// and a LoRA state change makes them stale; it then rebuilds them, and its
// trainable set when the active adapter changed. Evaluate after switching
// scores the new adapter, training then moves the new adapter only, and
// Evaluate after Merge scores the merged model once (not ΔW twice).
func TestTrainerFollowsAdapterChanges(t *testing.T) {
	ds := nanoData(t)
	m := nanoModel(t)
	lm, err := lora.Inject(m, lora.Config{R: 2, Alpha: 4, Targets: []string{"q", "v"}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps, cfg.LR, cfg.Seed = 4, 16, 8, 0.05, 1
	cfg.Observer.OnStep = func(s trainers.StepInfo) {
		if s.Step == 4 {
			stop() // half of the budget with adapter default
		}
	}
	tr, err := trainers.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, err := tr.Evaluate(ds) // B = 0: the base model's score
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.TrainContext(ctx, ds, nil); !errors.Is(err, context.Canceled) || tr.Step() != 4 {
		t.Fatalf("first half: step %d, err %v", tr.Step(), err)
	}
	evA, _ := tr.Evaluate(ds)
	if evA.Loss >= base.Loss {
		t.Fatalf("training adapter default did not lower the loss: %v → %v", base.Loss, evA.Loss)
	}

	if err := lm.AddAdapter("b", lora.Config{R: 2, Targets: []string{"c_fc"}, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	if err := lm.SetActive("b"); err != nil {
		t.Fatal(err)
	}
	evB, err := tr.Evaluate(ds)
	if err != nil {
		t.Fatal(err)
	}
	if evB.Loss != base.Loss {
		t.Errorf("Evaluate after switching to the fresh adapter b: %v, want the base model's %v (adapter default scored %v)", evB.Loss, base.Loss, evA.Loss)
	}
	if got, want := names(tr.Trainable()), names(lm.TrainableParams()); !slices.Equal(got, want) {
		t.Fatalf("after the switch the trainer trains %v, the model marks %v", got, want)
	}
	snap := map[*graph.Param][]float64{}
	for _, p := range lm.Params() {
		snap[p] = p.Values()
	}
	if _, err := tr.Train(ds, nil); err != nil || tr.Step() != 8 {
		t.Fatalf("second half: step %d, err %v", tr.Step(), err)
	}
	for _, p := range lm.Params() {
		moved := !slices.Equal(p.Values(), snap[p])
		if isB := strings.Contains(p.Name, ".b."); moved != isB {
			t.Errorf("%s moved %v, want %v (only adapter b trains)", p.Name, moved, isB)
		}
	}

	// The same trainer follows a switch back and a merge.
	if err := lm.SetActive(lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	evA2, err := tr.Evaluate(ds)
	if err != nil {
		t.Fatal(err)
	}
	if evA2.Loss != evA.Loss {
		t.Errorf("back to default: %v, want %v", evA2.Loss, evA.Loss)
	}
	if err := lm.Merge(); err != nil {
		t.Fatal(err)
	}
	evM, err := tr.Evaluate(ds)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(evM.Loss-evA.Loss) > 1e-9*evA.Loss {
		t.Errorf("merged: %v, want %v (unmerged)", evM.Loss, evA.Loss)
	}
	if got := tr.Trainable(); len(got) != 0 {
		t.Errorf("merged model: the trainer still trains %d parameters", len(got))
	}
}

func names(ps []*graph.Param) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}
