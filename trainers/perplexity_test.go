package trainers_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/golora/golora/trainers"
)

// TestPerplexityOnAKnownDistribution: a model that gives every position the
// distribution (0.4, 0.2, 0.2, 0.2) over four tokens, scored on targets
// that alternate between tokens 0 and 1, has cross-entropy
// −(ln 0.4 + ln 0.2)/2 and perplexity (0.4·0.2)^(−1/2) = 2.5·√2 (the
// inverse geometric mean of the probabilities of the targets), both
// written out here by hand rather than computed the way Evaluate does.
func TestPerplexityOnAKnownDistribution(t *testing.T) {
	m := newGuideTable(4)
	for i := 0; i < 4; i++ {
		m.t.Set(math.Log(2), i, 0) // logits (ln 2, 0, 0, 0): softmax (2, 1, 1, 1)/5
	}
	const ctx = 8
	tokens := make([]int, 4*ctx+1)
	for i := range tokens {
		tokens[i] = i % 2
	}
	data, err := trainers.NewTextDataset(tokens, ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := trainers.DefaultConfig()
	cfg.Context = ctx
	tr, err := trainers.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r, err := tr.Evaluate(data)
	if err != nil {
		t.Fatal(err)
	}
	const wantLoss = 1.2628643221541276 // −(ln 0.4 + ln 0.2)/2
	const wantPPL = 3.5355339059327378  // 2.5·√2
	if math.Abs(r.Loss-wantLoss) > 1e-6 || math.Abs(r.Perplexity-wantPPL) > 1e-5 || r.Tokens != 4*ctx {
		t.Fatalf("loss %v, perplexity %v over %v tokens; want %v, %v over %d", r.Loss, r.Perplexity, r.Tokens, wantLoss, wantPPL, 4*ctx)
	}
}

// TestZeroConfig: the zero Config trains (New fills the fields whose zero
// is invalid) and means DefaultConfig without weight decay and clipping.
func TestZeroConfig(t *testing.T) {
	if err := (trainers.Config{}).Validate(); err == nil {
		t.Fatal("Validate accepted the zero Config as it is: WithDefaults would change nothing")
	}
	got := trainers.Config{}.WithDefaults()
	want := trainers.DefaultConfig()
	want.Seed, want.WeightDecay, want.MaxGradNorm = 0, 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("zero Config with defaults = %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	// Explicit values survive.
	c := trainers.Config{Batch: 2, LR: 0.5, Beta1: 0.5, WeightDecay: 0.1}.WithDefaults()
	if c.Batch != 2 || c.LR != 0.5 || c.Beta1 != 0.5 || c.Beta2 != 0 || c.WeightDecay != 0.1 || c.Context != 128 {
		t.Fatalf("WithDefaults changed set fields: %+v", c)
	}
	tr, err := trainers.New(newGuideTable(4), trainers.Config{Steps: 2, Context: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tokens := make([]int, 8*8+1)
	for i := range tokens {
		tokens[i] = i % 4
	}
	data, err := trainers.NewTextDataset(tokens, 8)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := tr.Train(data, nil); err != nil || res.Steps != 2 {
		t.Fatalf("training from a zero-based Config: %+v, %v", res, err)
	}
}
