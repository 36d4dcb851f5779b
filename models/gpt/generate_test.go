package gpt

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
)

// genConfig is a small model with room to generate: 2 blocks, 2 heads of
// width 8, context 32, the "bytes" vocabulary (EOT = 256).
func genConfig() Config {
	return Config{NLayer: 2, NHead: 2, NEmbd: 16, BlockSize: 32, VocabSize: 257, LayerNormEps: 1e-5, Tokenizer: "bytes"}
}

// lastLogits is the full forward pass (Model.Logits) over ctx, the logits
// of the token after it.
func lastLogits(t testing.TB, m *Model, ctx []int) []float64 {
	t.Helper()
	v := m.VocabSize()
	all := runLogits(t, m, ctx, 1, len(ctx))
	return all[(len(ctx)-1)*v:]
}

// refGreedy is greedy decoding without a cache: every step recomputes the
// whole context with Model.Logits. It returns the new tokens (without the
// stop token), the stop token or −1, and Σ log p.
func refGreedy(t testing.TB, m *Model, prompt []int, maxNew int, stops []int) ([]int, int, float64) {
	t.Helper()
	ctx := slices.Clone(prompt)
	var logp float64
	for range maxNew {
		x := lastLogits(t, m, ctx)
		lse, err := logSumExp(x)
		if err != nil {
			t.Fatal(err)
		}
		tok := argmax(x)
		logp += x[tok] - lse
		if slices.Contains(stops, tok) {
			return ctx[len(prompt):], tok, logp
		}
		ctx = append(ctx, tok)
	}
	return ctx[len(prompt):], -1, logp
}

func arrayRow(a graph.Array, r, v int) []float64 { return a.Values()[r*v : (r+1)*v] }

// TestDecoderMatchesFullForward feeds three prompts of different lengths
// in chunks through a 4-token decoder, then extends them one token per step
// through a 1-token decoder sharing the same cache, and compares the logits
// of every row at every step with the full forward pass over the row's
// whole context. One row sits out some steps. float64 must agree to
// rounding; float32 to its precision.
func TestDecoderMatchesFullForward(t *testing.T) {
	for _, c := range []struct {
		dt  graph.DType
		tol float64
	}{{graph.Float64, 1e-12}, {graph.Float32, 2e-5}} {
		t.Run(c.dt.String(), func(t *testing.T) {
			m := newModel(t, genConfig(), c.dt, 7, 0.5)
			v := m.VocabSize()
			prompts := [][]int{randomIDs(1, 5, 256), randomIDs(2, 1, 256), randomIDs(3, 9, 256)}
			const capacity = 24
			pre, cache, err := m.NewDecoder(3, 4, capacity)
			if err != nil {
				t.Fatal(err)
			}
			defer pre.Close()
			step, _, err := m.NewDecoder(3, 1, capacity)
			if err != nil {
				t.Fatal(err)
			}
			defer step.Close()

			ctx := make([][]int, 3)
			next := make([]int, 3) // the token each row feeds next
			for at := 0; at < 9; at += 4 {
				ids := make([][]int, 3)
				for r, p := range prompts {
					if at < len(p) {
						ids[r] = p[at:min(at+4, len(p))]
					}
				}
				logits, got, err := pre.Decode(cache, ids)
				if err != nil {
					t.Fatal(err)
				}
				if got != cache {
					t.Fatal("Decode returned another cache")
				}
				for r, p := range prompts {
					if len(ids[r]) == 0 {
						continue
					}
					ctx[r] = append(ctx[r], ids[r]...)
					if cache.Len(r) != len(ctx[r]) {
						t.Fatalf("row %d: cache length %d, want %d", r, cache.Len(r), len(ctx[r]))
					}
					if at+4 >= len(p) { // the prompt's last chunk
						x := arrayRow(logits, r, v)
						checkClose(t, "prefill logits", x, lastLogits(t, m, ctx[r]), c.tol)
						next[r] = argmax(x)
					}
				}
			}
			for s := range 12 {
				ids := make([][]int, 3)
				for r := range ids {
					if r == 1 && s%3 == 1 {
						continue // row 1 sits this step out
					}
					ids[r] = []int{next[r]}
				}
				logits, _, err := step.Decode(cache, ids)
				if err != nil {
					t.Fatal(err)
				}
				for r := range ids {
					if ids[r] == nil {
						if cache.Len(r) != len(ctx[r]) {
							t.Fatalf("step %d: idle row %d grew to %d", s, r, cache.Len(r))
						}
						continue
					}
					ctx[r] = append(ctx[r], ids[r]...)
					x := arrayRow(logits, r, v)
					checkClose(t, "step logits", x, lastLogits(t, m, ctx[r]), c.tol)
					next[r] = argmax(lastLogits(t, m, ctx[r])) // follow the reference's tokens
				}
			}
		})
	}
}

// TestGenerateGreedyMatchesRecompute: Generate (prefill in chunks, batches
// of 2 rows taking new prompts as others finish) gives the tokens, stop
// tokens and log-probabilities of greedy decoding that recomputes the whole
// prefix with Model.Logits at every step.
func TestGenerateGreedyMatchesRecompute(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 11, 0.5)
	prompts := [][]int{randomIDs(4, 3, 256), randomIDs(5, 1, 256), randomIDs(6, 20, 256), randomIDs(7, 7, 256)}
	// Stop tokens that the model does produce: the tokens greedy decoding
	// emits third and fifth from the first prompt without stops.
	free, _, _ := refGreedy(t, m, prompts[0], 12, nil)
	stops := []int{free[2], free[4]}
	opts := GenerateOptions{MaxNewTokens: 12, StopTokens: stops, BatchSize: 2}
	got, err := m.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	sawStop := false
	for i, p := range prompts {
		toks, stop, logp := refGreedy(t, m, p, 12, stops)
		if !slices.Equal(got[i].Tokens, toks) || got[i].Stop != stop {
			t.Errorf("prompt %d: tokens %v stop %d, want %v stop %d", i, got[i].Tokens, got[i].Stop, toks, stop)
		}
		if math.Abs(got[i].LogProb-logp) > 1e-9 || got[i].Score != got[i].LogProb {
			t.Errorf("prompt %d: log-prob %v score %v, want %v", i, got[i].LogProb, got[i].Score, logp)
		}
		sawStop = sawStop || stop >= 0
	}
	if !sawStop {
		t.Fatal("no prompt hit a stop token: the test checks nothing about stopping")
	}
}

func TestGenerateGreedyDeterministic(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float32, 3, 0.5)
	prompts := [][]int{randomIDs(1, 4, 256), randomIDs(2, 6, 256), randomIDs(3, 2, 256)}
	opts := GenerateOptions{MaxNewTokens: 10, StopTokens: []int{}}
	a, err := m.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Generate(prompts, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if !slices.Equal(a[i].Tokens, b[i].Tokens) || a[i].LogProb != b[i].LogProb {
			t.Errorf("prompt %d: %v then %v", i, a[i].Tokens, b[i].Tokens)
		}
		if len(a[i].Tokens) != 10 || a[i].Stop != -1 {
			t.Errorf("prompt %d: %d tokens, stop %d; want 10 and −1 without stop tokens", i, len(a[i].Tokens), a[i].Stop)
		}
	}
}

// TestSamplingSeeded: the same seed repeats a sample, whatever the batch
// size; another seed gives another sample.
func TestSamplingSeeded(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 5, 0.3)
	prompts := [][]int{randomIDs(1, 4, 256), randomIDs(2, 2, 256), randomIDs(3, 5, 256)}
	gen := func(seed uint64, batch int) []Generation {
		out, err := m.Generate(prompts, GenerateOptions{MaxNewTokens: 16, Temperature: 1, Seed: seed, StopTokens: []int{}, BatchSize: batch})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b, c := gen(42, 3), gen(42, 1), gen(43, 3)
	differs := false
	for i := range a {
		if !slices.Equal(a[i].Tokens, b[i].Tokens) {
			t.Errorf("prompt %d: seed 42 gave %v, then %v", i, a[i].Tokens, b[i].Tokens)
		}
		differs = differs || !slices.Equal(a[i].Tokens, c[i].Tokens)
	}
	if !differs {
		t.Error("seeds 42 and 43 gave the same samples")
	}
	// A sample is not the greedy sequence (temperature 1 on a flat model).
	greedy, err := m.Generate(prompts, GenerateOptions{MaxNewTokens: 16, StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a[0].Tokens, greedy[0].Tokens) && slices.Equal(a[1].Tokens, greedy[1].Tokens) {
		t.Error("sampling reproduced greedy decoding")
	}
}

// TestSamplingReducesToGreedy: TopK = 1 and a tiny TopP keep only the most
// likely token, and beam search with one beam keeps only the best
// continuation, so all three equal greedy decoding.
func TestSamplingReducesToGreedy(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 9, 0.5)
	prompts := [][]int{randomIDs(1, 4, 256), randomIDs(2, 9, 256), {256}}
	base := GenerateOptions{MaxNewTokens: 14}
	free, _, _ := refGreedy(t, m, prompts[1], 14, nil)
	base.StopTokens = []int{256, free[6]} // EOT and a token that does occur
	greedy, err := m.Generate(prompts, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(o *GenerateOptions)
	}{
		{"top-k 1", func(o *GenerateOptions) { o.Temperature, o.TopK, o.Seed = 1.5, 1, 7 }},
		{"top-p tiny", func(o *GenerateOptions) { o.Temperature, o.TopP, o.Seed = 1, 1e-9, 8 }},
		{"top-k 3 and top-p tiny", func(o *GenerateOptions) { o.Temperature, o.TopK, o.TopP = 2, 3, 1e-6 }},
		{"beam 1", func(o *GenerateOptions) { o.Beams = 1 }},
		{"beam 1 batched", func(o *GenerateOptions) { o.Beams, o.BatchSize = 1, 2 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := base
			c.mod(&o)
			got, err := m.Generate(prompts, o)
			if err != nil {
				t.Fatal(err)
			}
			for i := range prompts {
				if !slices.Equal(got[i].Tokens, greedy[i].Tokens) || got[i].Stop != greedy[i].Stop {
					t.Errorf("prompt %d: %v stop %d, greedy %v stop %d", i, got[i].Tokens, got[i].Stop, greedy[i].Tokens, greedy[i].Stop)
				}
				if math.Abs(got[i].LogProb-greedy[i].LogProb) > 1e-9 {
					t.Errorf("prompt %d: log-prob %v, greedy %v", i, got[i].LogProb, greedy[i].LogProb)
				}
			}
		})
	}
}

// repeatsNGram reports whether some n-gram occurs twice in toks.
func repeatsNGram(toks []int, n int) bool {
	seen := map[string]bool{}
	for i := 0; i+n <= len(toks); i++ {
		k := fmt.Sprint(toks[i : i+n])
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

// TestNoRepeatNGram is a property test: over models, prompts and decoding
// rules, no generated sequence repeats an n-gram when NoRepeatNGram = n.
// Without the ban the same settings do repeat (a peaked model loops), so
// the property is not vacuous.
func TestNoRepeatNGram(t *testing.T) {
	repeatedWithout := false
	for seed := uint64(1); seed <= 4; seed++ {
		m := newModel(t, genConfig(), graph.Float64, seed, 1.5) // large weights: peaked, repetitive
		prompts := [][]int{randomIDs(seed, 3, 256), randomIDs(seed+10, 1, 256)}
		for _, n := range []int{1, 2, 3} {
			for _, o := range []GenerateOptions{
				{MaxNewTokens: 24},
				{MaxNewTokens: 24, Temperature: 0.7, Seed: seed},
				{MaxNewTokens: 20, Beams: 3, LengthPenalty: 0.9},
			} {
				o.StopTokens = []int{}
				without, err := m.Generate(prompts, o)
				if err != nil {
					t.Fatal(err)
				}
				o.NoRepeatNGram = n
				with, err := m.Generate(prompts, o)
				if err != nil {
					t.Fatal(err)
				}
				for i := range prompts {
					repeatedWithout = repeatedWithout || repeatsNGram(without[i].Tokens, n)
					if repeatsNGram(with[i].Tokens, n) {
						t.Errorf("seed %d n %d options %+v prompt %d: %v repeats a %d-gram", seed, n, o, i, with[i].Tokens, n)
					}
				}
			}
		}
	}
	if !repeatedWithout {
		t.Fatal("no sequence repeated an n-gram even without the ban")
	}
}

// toyRun drives the beam search of a Generator with a toy language model:
// lm gives the logits of the next token for the generated tokens so far
// (−Inf for impossible tokens). It returns the result for one prompt.
func toyRun(t *testing.T, m *Model, opts GenerateOptions, lm func(hist []int) []float64) Generation {
	t.Helper()
	g, err := m.NewGenerator(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.row = make([]float64, m.VocabSize())
	r := &genRun{g: g, out: make([]Generation, 1), src: make([]int, g.beams)}
	for i := range r.src {
		r.src[i] = i
	}
	gr := &genGroup{prompt: 0, beams: make([]genBeam, g.beams), stop: -1}
	gr.beams[0].alive = true
	for steps := 0; gr.prompt >= 0; steps++ {
		if steps > opts.MaxNewTokens {
			t.Fatal("the beam search did not end after MaxNewTokens steps")
		}
		cur := slices.Clone(gr.beams)
		if err := r.advance(gr, func(k int) logitsRow { return logitsRow{f64: lm(cur[k].tokens)} }); err != nil {
			t.Fatal(err)
		}
		// Rows copied by the reorder hold their parent's history.
		for k, b := range gr.beams {
			if src := r.src[k]; b.alive && src != k && !slices.Equal(b.tokens[:len(b.tokens)-1], cur[src].tokens) {
				t.Fatalf("beam %d copies row %d but continues %v", k, src, b.tokens)
			}
		}
		for i := range r.src {
			r.src[i] = i
		}
	}
	return r.out[0]
}

// toyLogits returns logits over the vocabulary with log-probabilities lp at
// the listed tokens and −Inf elsewhere.
func toyLogits(v int, lp map[int]float64) []float64 {
	x := make([]float64, v)
	for i := range x {
		x[i] = math.Inf(-1)
	}
	for tok, p := range lp {
		x[tok] = p
	}
	return x
}

// TestLengthPenaltyChangesChoice: the toy model ends at once with
// probability 0.55 (log-prob −0.598, one token) or goes on "a b" and ends
// (0.45·0.95·0.95: log-prob −0.901, three tokens). Ranked by log-prob the
// short answer wins; with α = 1, −0.901/3 = −0.300 beats −0.598/1.
func TestLengthPenaltyChangesChoice(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 1, 0.1)
	const eot, a, b = 256, 'a', 'b'
	v := m.VocabSize()
	lm := func(hist []int) []float64 {
		switch {
		case len(hist) == 0:
			return toyLogits(v, map[int]float64{eot: math.Log(0.55), a: math.Log(0.45)})
		case slices.Equal(hist, []int{a}):
			return toyLogits(v, map[int]float64{b: math.Log(0.95), 'c': math.Log(0.05)})
		case slices.Equal(hist, []int{a, b}):
			return toyLogits(v, map[int]float64{eot: math.Log(0.95), 'c': math.Log(0.05)})
		}
		return toyLogits(v, map[int]float64{eot: math.Log(0.5), 'c': math.Log(0.5)})
	}
	plain := toyRun(t, m, GenerateOptions{MaxNewTokens: 6, Beams: 2}, lm)
	if len(plain.Tokens) != 0 || plain.Stop != eot || math.Abs(plain.Score-math.Log(0.55)) > 1e-12 {
		t.Errorf("α = 0: %v stop %d score %v, want [] stop EOT score log 0.55", plain.Tokens, plain.Stop, plain.Score)
	}
	long := toyRun(t, m, GenerateOptions{MaxNewTokens: 6, Beams: 2, LengthPenalty: 1}, lm)
	want := math.Log(0.45*0.95*0.95) / 3
	if !slices.Equal(long.Tokens, []int{a, b}) || long.Stop != eot || math.Abs(long.Score-want) > 1e-12 {
		t.Errorf("α = 1: %v stop %d score %v, want [a b] stop EOT score %v", long.Tokens, long.Stop, long.Score, want)
	}
}

// TestBeamSearchIsExactWhenWide: with as many beams as there are live
// sequences, beam search is exhaustive, so it must find the best score over
// every sequence the toy model allows (tokens 1, 2 and EOT, at most 4 new
// tokens), for random models and length penalties.
func TestBeamSearchIsExactWhenWide(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 1, 0.1)
	const eot, maxNew = 256, 4
	v := m.VocabSize()
	for seed := uint64(0); seed < 30; seed++ {
		// log-probabilities that depend on the whole history
		lm := func(hist []int) []float64 {
			h := seed*1000003 + 17
			for _, x := range hist {
				h = h*31 + uint64(x) + 1
			}
			rng := rand.New(rand.NewPCG(h, 5))
			w := []float64{rng.Float64(), rng.Float64(), 0.3 * rng.Float64()}
			s := w[0] + w[1] + w[2]
			return toyLogits(v, map[int]float64{1: math.Log(w[0] / s), 2: math.Log(w[1] / s), eot: math.Log(w[2] / s)})
		}
		alpha := []float64{0, 0.9, -0.5, 2}[seed%4]
		// Brute force over every sequence of 1 … maxNew tokens.
		best, bestTok, bestStop := math.Inf(-1), []int(nil), -1
		var walk func(hist []int, logp float64)
		walk = func(hist []int, logp float64) {
			x := lm(hist)
			for _, tok := range []int{1, 2, eot} {
				lp := logp + x[tok]
				n := len(hist) + 1
				sc := lp / math.Pow(float64(n), alpha)
				switch {
				case tok == eot && sc > best:
					best, bestTok, bestStop = sc, slices.Clone(hist), eot
				case tok != eot && n == maxNew && sc > best:
					best, bestTok, bestStop = sc, append(slices.Clone(hist), tok), -1
				case tok != eot && n < maxNew:
					walk(append(slices.Clone(hist), tok), lp)
				}
			}
		}
		walk(nil, 0)
		got := toyRun(t, m, GenerateOptions{MaxNewTokens: maxNew, Beams: 1 << (maxNew - 1), LengthPenalty: alpha}, lm)
		if !slices.Equal(got.Tokens, bestTok) || got.Stop != bestStop || math.Abs(got.Score-best) > 1e-12 {
			t.Errorf("seed %d α %v: %v stop %d score %v, best %v stop %d score %v", seed, alpha, got.Tokens, got.Stop, got.Score, bestTok, bestStop, best)
		}
	}
}

// TestBeamSearchMatchesRecompute runs beam search on a real model through
// the decoders (with row copies between beams and several prompts sharing
// a step) and checks the winner's log-probability by recomputing it with
// the full forward pass.
func TestBeamSearchMatchesRecompute(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 13, 0.8)
	prompts := [][]int{randomIDs(1, 5, 256), randomIDs(2, 2, 256), randomIDs(3, 8, 256)}
	for _, o := range []GenerateOptions{
		{MaxNewTokens: 10, Beams: 4, StopTokens: []int{}},
		{MaxNewTokens: 10, Beams: 4, LengthPenalty: 0.9, NoRepeatNGram: 2, BatchSize: 2},
		{MaxNewTokens: 8, Beams: 5, LengthPenalty: 0.5, BatchSize: 1, StopTokens: []int{'a', 'e', 'i', 'o', 'u', ' '}},
	} {
		got, err := m.Generate(prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range prompts {
			g := got[i]
			seq := slices.Clone(g.Tokens)
			if g.Stop >= 0 {
				seq = append(seq, g.Stop)
			}
			if len(seq) == 0 {
				t.Fatalf("prompt %d: empty hypothesis", i)
			}
			var logp float64
			for j, tok := range seq {
				x := lastLogits(t, m, append(slices.Clone(p), seq[:j]...))
				if o.NoRepeatNGram > 0 {
					(&Generator{opts: o}).ban(x, seq[:j])
				}
				lse, _ := logSumExp(x)
				logp += x[tok] - lse
			}
			if math.Abs(logp-g.LogProb) > 1e-9 {
				t.Errorf("options %+v prompt %d: log-prob %v, recomputed %v", o, i, g.LogProb, logp)
			}
			if want := logp / math.Pow(float64(len(seq)), o.LengthPenalty); math.Abs(want-g.Score) > 1e-9 {
				t.Errorf("options %+v prompt %d: score %v, want %v", o, i, g.Score, want)
			}
			if o.NoRepeatNGram > 0 && repeatsNGram(g.Tokens, o.NoRepeatNGram) {
				t.Errorf("prompt %d: %v repeats a %d-gram", i, g.Tokens, o.NoRepeatNGram)
			}
		}
		// The winner is at least as good as the greedy sequence.
		greedy, err := m.Generate(prompts, GenerateOptions{MaxNewTokens: o.MaxNewTokens, StopTokens: o.StopTokens, NoRepeatNGram: o.NoRepeatNGram})
		if err != nil {
			t.Fatal(err)
		}
		for i := range prompts {
			n := len(greedy[i].Tokens)
			if greedy[i].Stop >= 0 {
				n++
			}
			if gs := greedy[i].LogProb / math.Pow(float64(n), o.LengthPenalty); got[i].Score < gs-1e-9 {
				t.Errorf("options %+v prompt %d: beam score %v below greedy %v", o, i, got[i].Score, gs)
			}
		}
	}
}

// TestStopToken: a stop token ends the sequence where it is generated and
// is reported in Stop, not in Tokens; the default stop token is EOT.
func TestStopToken(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 17, 0.5)
	prompt := randomIDs(3, 4, 256)
	free, err := m.Generate([][]int{prompt}, GenerateOptions{MaxNewTokens: 16, StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	seq := free[0].Tokens
	// The first token that did not occur before it.
	at := 1
	for at < len(seq) && slices.Contains(seq[:at], seq[at]) {
		at++
	}
	if at == len(seq) {
		t.Skip("greedy sequence is a single repeated token")
	}
	for _, beams := range []int{0, 1} {
		got, err := m.Generate([][]int{prompt}, GenerateOptions{MaxNewTokens: 16, StopTokens: []int{seq[at]}, Beams: beams})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got[0].Tokens, seq[:at]) || got[0].Stop != seq[at] {
			t.Errorf("beams %d: %v stop %d, want %v stop %d", beams, got[0].Tokens, got[0].Stop, seq[:at], seq[at])
		}
	}
	g, err := m.NewGenerator(GenerateOptions{MaxNewTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.stops, []int{256}) {
		t.Errorf("default stop tokens %v, want [256] (EOT of the bytes tokenizer)", g.stops)
	}
}

// TestLongPromptsCropped: a prompt longer than BlockSize − MaxNewTokens + 1
// keeps its last tokens and generates what the cropped prompt generates.
func TestLongPromptsCropped(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 19, 0.5)
	long := randomIDs(8, 50, 256) // BlockSize is 32
	opts := GenerateOptions{MaxNewTokens: 8, StopTokens: []int{}}
	keep := 32 - 8 + 1
	got, err := m.Generate([][]int{long, long[50-keep:]}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Cropped != 50-keep || got[1].Cropped != 0 {
		t.Errorf("cropped %d and %d, want %d and 0", got[0].Cropped, got[1].Cropped, 50-keep)
	}
	if !slices.Equal(got[0].Tokens, got[1].Tokens) || len(got[0].Tokens) != 8 {
		t.Errorf("long prompt gave %v, its cropped form %v", got[0].Tokens, got[1].Tokens)
	}
	toks, _, _ := refGreedy(t, m, long[50-keep:], 8, nil)
	if !slices.Equal(got[0].Tokens, toks) {
		t.Errorf("long prompt gave %v, recomputation %v", got[0].Tokens, toks)
	}
	// MaxNewTokens = BlockSize keeps one prompt token.
	got, err = m.Generate([][]int{long}, GenerateOptions{MaxNewTokens: 32, StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Cropped != 49 || len(got[0].Tokens) != 32 {
		t.Errorf("MaxNewTokens = BlockSize: cropped %d, %d tokens", got[0].Cropped, len(got[0].Tokens))
	}
}

func TestGenerateErrors(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float32, 1, 0.5)
	ok := [][]int{{1, 2}}
	cases := []struct {
		name    string
		prompts [][]int
		opts    GenerateOptions
		want    string
	}{
		{"negative MaxNewTokens", ok, GenerateOptions{MaxNewTokens: -1}, "MaxNewTokens = -1"},
		{"MaxNewTokens too large", ok, GenerateOptions{MaxNewTokens: 33}, "want 1 … 32 (the model's context)"},
		{"negative temperature", ok, GenerateOptions{MaxNewTokens: 2, Temperature: -1}, "Temperature = -1"},
		{"NaN temperature", ok, GenerateOptions{MaxNewTokens: 2, Temperature: math.NaN()}, "Temperature = NaN"},
		{"TopK without sampling", ok, GenerateOptions{MaxNewTokens: 2, TopK: 5}, "need sampling"},
		{"TopP without sampling", ok, GenerateOptions{MaxNewTokens: 2, TopP: 0.9}, "need sampling"},
		{"TopP above 1", ok, GenerateOptions{MaxNewTokens: 2, Temperature: 1, TopP: 1.5}, "TopP = 1.5"},
		{"negative TopK", ok, GenerateOptions{MaxNewTokens: 2, Temperature: 1, TopK: -1}, "TopK = -1"},
		{"beams with sampling", ok, GenerateOptions{MaxNewTokens: 2, Temperature: 1, Beams: 2}, "beam search is deterministic"},
		{"length penalty without beams", ok, GenerateOptions{MaxNewTokens: 2, LengthPenalty: 0.9}, "beam search only"},
		{"negative n-gram", ok, GenerateOptions{MaxNewTokens: 2, NoRepeatNGram: -1}, "NoRepeatNGram = -1"},
		{"stop token out of range", ok, GenerateOptions{MaxNewTokens: 2, StopTokens: []int{257}}, "StopTokens[0] = 257"},
		{"negative batch", ok, GenerateOptions{MaxNewTokens: 2, BatchSize: -2}, "BatchSize = -2"},
		{"empty prompt", [][]int{{1}, {}}, GenerateOptions{MaxNewTokens: 2}, "prompt 1 is empty"},
		{"bad token", [][]int{{1, 300}}, GenerateOptions{MaxNewTokens: 2}, "prompt 0 token 1: id 300"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Generate(c.prompts, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
	out, err := m.Generate(nil, GenerateOptions{MaxNewTokens: 2})
	if err != nil || len(out) != 0 {
		t.Fatalf("no prompts: %v, %v", out, err)
	}
}

// TestGeneratorReuse: a Generator keeps its programs across calls, grows
// them when a call needs more room, and gives the results of fresh ones.
func TestGeneratorReuse(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float32, 23, 0.5)
	opts := GenerateOptions{MaxNewTokens: 6, Beams: 2, StopTokens: []int{}}
	g, err := m.NewGenerator(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for i, prompts := range [][][]int{
		{randomIDs(1, 3, 256)},
		{randomIDs(2, 20, 256), randomIDs(3, 2, 256)}, // longer: bigger caches, more rows
		{randomIDs(4, 4, 256)},
	} {
		got, err := g.Generate(prompts)
		if err != nil {
			t.Fatal(err)
		}
		want, err := m.Generate(prompts, opts)
		if err != nil {
			t.Fatal(err)
		}
		for j := range prompts {
			if !slices.Equal(got[j].Tokens, want[j].Tokens) {
				t.Errorf("call %d prompt %d: reused generator %v, fresh %v", i, j, got[j].Tokens, want[j].Tokens)
			}
		}
	}
}

func TestDecoderErrors(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float32, 1, 0.5)
	if _, _, err := m.NewDecoder(2, 5, 4); err == nil || !strings.Contains(err.Error(), "5 tokens per row") {
		t.Errorf("tokens > capacity: %v", err)
	}
	if _, _, err := m.NewDecoder(2, 1, 33); err == nil || !strings.Contains(err.Error(), "capacity 33") {
		t.Errorf("capacity > BlockSize: %v", err)
	}
	if _, _, err := m.NewDecoder(0, 1, 4); err == nil || !strings.Contains(err.Error(), "0 rows") {
		t.Errorf("no rows: %v", err)
	}
	d, c, err := m.NewDecoder(2, 2, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, _, err := d.Decode(c, [][]int{{1, 2, 3}, nil}); err == nil || !strings.Contains(err.Error(), "row 0 has 3 tokens") {
		t.Errorf("too many tokens: %v", err)
	}
	if _, _, err := d.Decode(c, [][]int{{1}}); err == nil || !strings.Contains(err.Error(), "1 rows of ids") {
		t.Errorf("rows: %v", err)
	}
	if _, _, err := d.Decode(c, [][]int{{1}, {257}}); err == nil || !strings.Contains(err.Error(), "row 1 token 0: id 257") {
		t.Errorf("bad id: %v", err)
	}
	for range 2 {
		if _, _, err := d.Decode(c, [][]int{{1, 2}, {3}}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = d.Decode(c, [][]int{{1}, {3}})
	if !errors.Is(err, ErrCacheFull) || !strings.Contains(err.Error(), "row 0: 4 cached + 1 new") {
		t.Errorf("full row: %v", err)
	}
	if c.Len(0) != 4 || c.Len(1) != 2 {
		t.Errorf("a failed call changed the lengths: %v", c.Lens())
	}
	other, err := m.NewKVCache(3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Decode(other, [][]int{{1}, {3}}); err == nil || !strings.Contains(err.Error(), "cache of 3 rows × 4 positions") {
		t.Errorf("wrong cache shape: %v", err)
	}
	m64 := newModel(t, genConfig(), graph.Float64, 1, 0.5)
	c64, _ := m64.NewKVCache(2, 4)
	if _, _, err := d.Decode(c64, [][]int{{1}, {3}}); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Errorf("wrong dtype: %v", err)
	}
	if _, _, err := d.Decode(nil, [][]int{{1}, {3}}); err == nil {
		t.Error("nil cache accepted")
	}
}

// TestDecoderSwitchesCaches: one decoder serves two caches in turn, each
// continuing its own sequence as if it were alone.
func TestDecoderSwitchesCaches(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 29, 0.5)
	v := m.VocabSize()
	d, a, err := m.NewDecoder(1, 1, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := d.NewCache()
	if err != nil {
		t.Fatal(err)
	}
	seqs := [][]int{randomIDs(1, 6, 256), randomIDs(2, 6, 256)}
	caches := []*KVCache{a, b}
	for j := range 6 {
		for i, c := range caches {
			logits, _, err := d.Decode(c, [][]int{{seqs[i][j]}})
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "logits", arrayRow(logits, 0, v), lastLogits(t, m, seqs[i][:j+1]), 1e-12)
		}
	}
}

// snapshot copies every key and value of a cache.
func snapshot(c *KVCache) [][]float64 {
	var out [][]float64
	for _, p := range c.Params() {
		out = append(out, p.Values())
	}
	return out
}

// TestKVCacheReorder checks Reorder against copying from a snapshot, for
// random maps with repeats, swaps and longer cycles, in both dtypes.
func TestKVCacheReorder(t *testing.T) {
	for _, dt := range []graph.DType{graph.Float32, graph.Float64} {
		m := newModel(t, genConfig(), dt, 1, 0.5)
		const rows, capacity = 6, 5
		d := m.Config().NEmbd
		rng := rand.New(rand.NewPCG(3, 4))
		maps := [][]int{{1, 0, 3, 2, 5, 4}, {1, 2, 3, 4, 5, 0}, {0, 0, 0, 1, 1, 1}, {5, 4, 3, 2, 1, 0}, {0, 1, 2, 3, 4, 5}}
		for range 40 {
			src := make([]int, rows)
			for i := range src {
				src[i] = rng.IntN(rows)
			}
			maps = append(maps, src)
			maps = append(maps, rng.Perm(rows))
		}
		for _, src := range maps {
			c, err := m.NewKVCache(rows, capacity)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range c.Params() {
				v := make([]float64, p.Len())
				for i := range v {
					v[i] = rng.NormFloat64()
				}
				_ = p.SetValues(v)
			}
			for r := range rows {
				c.lens[r] = rng.IntN(capacity + 1)
			}
			before, lens := snapshot(c), c.Lens()
			if err := c.Reorder(src); err != nil {
				t.Fatal(err)
			}
			after := snapshot(c)
			for r, s := range src {
				if c.Len(r) != lens[s] {
					t.Fatalf("%v: row %d length %d, want %d", src, r, c.Len(r), lens[s])
				}
				for i := range before {
					n := lens[s] * d
					if s == r {
						n = capacity * d // untouched rows keep everything
					}
					got := after[i][r*capacity*d : r*capacity*d+n]
					want := before[i][s*capacity*d : s*capacity*d+n]
					if !slices.Equal(got, want) {
						t.Fatalf("%s %v: row %d does not hold old row %d", dt, src, r, s)
					}
				}
			}
		}
	}
}

func TestKVCacheCopyTruncateErrors(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 1, 0.5)
	small, _ := m.NewKVCache(1, 8)
	big, _ := m.NewKVCache(3, 4)
	for _, p := range small.Params() {
		v := make([]float64, p.Len())
		for i := range v {
			v[i] = float64(i + 1)
		}
		_ = p.SetValues(v)
	}
	small.lens[0] = 3
	if err := big.CopyRows(small, []int{-1, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if big.Len(0) != 0 || big.Len(1) != 3 || big.Len(2) != 3 {
		t.Fatalf("lengths %v after copying", big.Lens())
	}
	d := m.Config().NEmbd
	for i, p := range big.Params() {
		want := small.Params()[i].Values()[:3*d]
		for _, r := range []int{1, 2} {
			if got := p.Values()[r*4*d : r*4*d+3*d]; !slices.Equal(got, want) {
				t.Fatalf("%s row %d not copied", p.Name, r)
			}
		}
	}
	small.lens[0] = 8
	if err := big.CopyRows(small, []int{0, -1, -1}); err == nil || !strings.Contains(err.Error(), "more than the capacity 4") {
		t.Errorf("too long: %v", err)
	}
	if err := big.CopyRows(big, []int{0, 0, 0}); err == nil || !strings.Contains(err.Error(), "use Reorder") {
		t.Errorf("self copy: %v", err)
	}
	small.lens[0] = 3
	if err := big.CopyRows(small, []int{0, 1, -1}); err == nil || !strings.Contains(err.Error(), "source row 1") {
		t.Errorf("bad source row: %v", err)
	}
	if err := big.Reorder([]int{0, 3, 1}); err == nil || !strings.Contains(err.Error(), "row 1 takes row 3") {
		t.Errorf("bad reorder: %v", err)
	}
	if err := big.Truncate(1, 2); err != nil || big.Len(1) != 2 {
		t.Errorf("truncate: %v, length %d", err, big.Len(1))
	}
	if err := big.Truncate(1, 3); err == nil {
		t.Error("truncate beyond the length accepted")
	}
	if err := big.Truncate(5, 0); err == nil {
		t.Error("truncate of a missing row accepted")
	}
	if want := 2 * 2 * 3 * 4 * d * 8; big.Bytes() != want {
		t.Errorf("Bytes = %d, want %d", big.Bytes(), want)
	}
	if _, err := m.NewKVCache(1, 0); err == nil {
		t.Error("capacity 0 accepted")
	}
}
