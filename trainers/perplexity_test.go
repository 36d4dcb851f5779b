package trainers_test

import (
	"math"
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
