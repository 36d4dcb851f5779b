package trainers

import (
	"testing"

	"github.com/golora/golora/graph"
)

func TestFingerprint(t *testing.T) {
	set := promptData(20, 12, 1)
	fp := Fingerprint(set)
	if len(fp) != 32 || Fingerprint(promptData(20, 12, 1)) != fp {
		t.Fatalf("fingerprint %q is not a stable 32-digit hex string", fp)
	}
	edits := map[string]func(s *ExampleSet){
		"a token":     func(s *ExampleSet) { s.Examples[7].Tokens[0]++ },
		"a prompt":    func(s *ExampleSet) { s.Examples[3].PromptLen++ },
		"the order":   func(s *ExampleSet) { s.Examples[0], s.Examples[1] = s.Examples[1], s.Examples[0] },
		"one example": func(s *ExampleSet) { s.Examples = s.Examples[1:] },
		"a token moved": func(s *ExampleSet) {
			s.Examples[1].Tokens = append(s.Examples[1].Tokens, s.Examples[2].Tokens[0])
			s.Examples[2].Tokens = s.Examples[2].Tokens[1:]
		},
		"an extra token": func(s *ExampleSet) { s.Examples[4].Tokens = append(s.Examples[4].Tokens, 0) },
		"a mask added": func(s *ExampleSet) {
			s.Examples[5].Mask = make([]bool, len(s.Examples[5].Tokens))
		},
	}
	for name, edit := range edits {
		s := promptData(20, 12, 1)
		edit(s)
		if Fingerprint(s) == fp {
			t.Errorf("changing %s keeps the fingerprint", name)
		}
	}
	// Per-token masks (chat data): flipping one scored token is other data.
	masked := func(flip bool) *ExampleSet {
		s := promptData(20, 12, 1)
		for i := range s.Examples {
			ex := &s.Examples[i]
			ex.Mask = make([]bool, len(ex.Tokens))
			for j := range ex.Mask {
				ex.Mask[j] = j%3 == 0
			}
		}
		if flip {
			s.Examples[6].Mask[3] = !s.Examples[6].Mask[3]
		}
		return s
	}
	if Fingerprint(masked(false)) == Fingerprint(masked(true)) {
		t.Error("changing one token's mask keeps the fingerprint")
	}
	// Another window length of the same text is other data.
	a, _ := NewTextDataset(markovTokens(200, 12, 1), 8)
	b, _ := NewTextDataset(markovTokens(200, 12, 1), 9)
	if Fingerprint(a) == Fingerprint(b) || Fingerprint(nil) != "" {
		t.Error("windows of 8 and 9 tokens share a fingerprint, or nil has one")
	}
}

func TestLossTokensCountsMaskedTargets(t *testing.T) {
	ex := Example{Tokens: []int{5, 6, 7, 8, 9, 10}, PromptLen: 1, Mask: []bool{true, true, false, true, false, true}}
	// Target j ≥ 1 only: positions 1, 3 and 5 are scored; the prompt length is ignored.
	if got := LossTokens(ex); got != 3 {
		t.Errorf("LossTokens with a mask = %d, want 3", got)
	}
	ex.Mask = nil
	if got := LossTokens(ex); got != 5 {
		t.Errorf("LossTokens without a mask = %d, want 5", got)
	}
}

func TestCapTokens(t *testing.T) {
	ds, _ := NewTextDataset(markovTokens(1001, 12, 1), 10) // 100 windows of 10 loss tokens
	if got := CapTokens(ds, 0); got != Dataset(ds) {
		t.Error("CapTokens(ds, 0) is not ds")
	}
	if got := CapTokens(ds, 1000); got != Dataset(ds) {
		t.Error("a set that fits is not returned as it is")
	}
	for _, max := range []int{999, 250, 55, 10, 3} {
		c := CapTokens(ds, max)
		sum, prev := 0, -1
		for i := 0; i < c.Len(); i++ {
			ex := c.Example(i)
			sum += LossTokens(ex)
		}
		sub := c.(*subset)
		for _, i := range sub.idx {
			if i <= prev {
				t.Errorf("cap %d: indices %v not increasing", max, sub.idx)
			}
			prev = i
		}
		want := max / 10
		if max < 10 {
			want = 1 // at least one example, even over the cap
		}
		if c.Len() != want || (max >= 10 && sum > max) {
			t.Errorf("cap %d: %d examples with %d tokens, want %d", max, c.Len(), sum, want)
		}
		// Evenly spaced: the last example lies in the last 1/k of the set.
		if last := sub.idx[len(sub.idx)-1]; last < ds.Len()*(c.Len()-1)/c.Len() {
			t.Errorf("cap %d: last index %d of %d: not spread over the set", max, last, ds.Len())
		}
	}
	// Uneven examples: the sum stays under the cap.
	set := promptData(50, 12, 3)
	c := CapTokens(set, 40)
	sum := 0
	for i := 0; i < c.Len(); i++ {
		sum += LossTokens(c.Example(i))
	}
	if sum > 40 || c.Len() == 0 {
		t.Errorf("uneven set capped at 40: %d examples, %d tokens", c.Len(), sum)
	}
}

// TestEvalProgressAndTime: validation reports its progress and its time,
// which the training throughput excludes.
func TestEvalProgressAndTime(t *testing.T) {
	tr, va := textData(t, 3000, 12, 8)
	m := newTinyLM(graph.Float32, 12, 6, 0, 0, 1)
	cfg := testConfig()
	cfg.Steps, cfg.EvalEvery, cfg.EvalBatch = 4, 2, 3
	var seen []EvalProgress
	cfg.Observer.OnEvalProgress = func(p EvalProgress) { seen = append(seen, p) }
	res, err := newTrainer(t, m, cfg).Train(tr, va)
	if err != nil {
		t.Fatal(err)
	}
	// Two validations, each 0, 3, 6, …, then Total.
	n := va.Len()
	per := (n+2)/3 + 1
	if len(seen) != 2*per {
		t.Fatalf("%d progress reports for 2 validations of %d examples in batches of 3: %v", len(seen), n, seen)
	}
	for i, p := range seen {
		k := i % per
		want := min(3*k, n)
		if p.Total != n || p.Done != want || p.Step != 2*(i/per+1) {
			t.Errorf("report %d: %+v, want step %d, %d of %d", i, p, 2*(i/per+1), want, n)
		}
	}
	if !(res.EvalTime > 0 && res.EvalTime < res.Elapsed) {
		t.Errorf("EvalTime %v of Elapsed %v", res.EvalTime, res.Elapsed)
	}
}

// BenchmarkFingerprint: the cost a resume check adds per training token.
func BenchmarkFingerprint(b *testing.B) {
	ds, err := NewTextDataset(markovTokens(1<<20, 257, 1), 128)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 20) // per token, as "bytes"
	for b.Loop() {
		Fingerprint(ds)
	}
}
