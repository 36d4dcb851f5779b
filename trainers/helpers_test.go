package trainers

import (
	"math/rand/v2"
	"testing"

	"github.com/golora/golora/graph"
)

// tinyLM is the test model: a bigram language model with an optional
// low-rank update, logits = drop(E[ids])·W + b (+ (drop(E[ids])·A)·B).
type tinyLM struct {
	vocab, dim int
	dropout    float64
	emb, w, b  *graph.Param // [V, d], [d, V], [V]
	a, bb      *graph.Param // [d, r], [r, V] or nil
}

func newTinyLM(dt graph.DType, vocab, dim, rank int, dropout float64, seed uint64) *tinyLM {
	rng := graph.NewRand(seed)
	m := &tinyLM{
		vocab: vocab, dim: dim, dropout: dropout,
		emb: graph.NewParam("emb.weight", dt, vocab, dim),
		w:   graph.NewParam("head.weight", dt, dim, vocab),
		b:   graph.NewParam("head.bias", dt, vocab),
	}
	graph.InitNormal(m.emb, rng, 1)
	graph.InitNormal(m.w, rng, 0.3)
	graph.InitNormal(m.b, rng, 0.1)
	if rank > 0 {
		m.a = graph.NewParam("head.lora_A", dt, dim, rank)
		m.bb = graph.NewParam("head.lora_B", dt, rank, vocab)
		graph.InitNormal(m.a, rng, 0.3)
		graph.InitNormal(m.bb, rng, 0.3)
	}
	return m
}

func (m *tinyLM) Params() []*graph.Param {
	ps := []*graph.Param{m.emb, m.w, m.b}
	if m.a != nil {
		ps = append(ps, m.a, m.bb)
	}
	return ps
}

func (m *tinyLM) VocabSize() int { return m.vocab }

func (m *tinyLM) Logits(ids *graph.Node, batch, ctx int) *graph.Node {
	b := ids.Builder()
	h := graph.Embedding(b.Param(m.emb), ids) // [N, d]
	h = graph.Dropout(h, m.dropout)
	logits := graph.Linear(h, b.Param(m.w), b.Param(m.b)) // [N, d]·[d, V] + [V] → [N, V]
	if m.a != nil {
		low := graph.Linear(h, b.Param(m.a), nil) // [N, r]
		logits = graph.Add(logits, graph.Linear(low, b.Param(m.bb), nil))
	}
	return logits
}

// freezeBase makes only the low-rank factors trainable.
func (m *tinyLM) freezeBase() {
	m.emb.Trainable, m.w.Trainable, m.b.Trainable = false, false, false
}

// snapshot copies every parameter's values.
func snapshot(ps []*graph.Param) map[string][]float64 {
	out := map[string][]float64{}
	for _, p := range ps {
		out[p.Name] = p.Values()
	}
	return out
}

// markovTokens draws n tokens of a chain that moves to (3·x+1) mod vocab
// with probability 0.8 and to a uniform token otherwise: a bigram model can
// learn it.
func markovTokens(n, vocab int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]int, n)
	for i := 1; i < n; i++ {
		if rng.Float64() < 0.8 {
			out[i] = (3*out[i-1] + 1) % vocab
		} else {
			out[i] = rng.IntN(vocab)
		}
	}
	return out
}

// textData returns a train/validation split of Markov text windows.
func textData(t *testing.T, tokens, vocab, ctx int) (Dataset, Dataset) {
	t.Helper()
	ds, err := NewTextDataset(markovTokens(tokens, vocab, 5), ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr, va, err := Split(ds, 0.2, 9)
	if err != nil {
		t.Fatal(err)
	}
	return tr, va
}

// promptData returns examples with prompts of varying length: the
// completion follows the Markov rule, the prompt is uniform noise.
func promptData(n, vocab int, seed uint64) *ExampleSet {
	rng := rand.New(rand.NewPCG(seed, 4))
	set := &ExampleSet{Name: "prompts"}
	for i := 0; i < n; i++ {
		p := 1 + rng.IntN(5)
		c := 1 + rng.IntN(6)
		toks := make([]int, p+c)
		for j := range toks {
			if j < p {
				toks[j] = rng.IntN(vocab)
			} else {
				toks[j] = (3*toks[j-1] + 1) % vocab
			}
		}
		set.Examples = append(set.Examples, Example{Tokens: toks, PromptLen: p})
	}
	return set
}

// byteTokenizer maps each byte b to id b+1 and uses 0 as end of text.
type byteTokenizer struct{}

func (byteTokenizer) Encode(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i]) + 1
	}
	return out
}

func (byteTokenizer) EOT() int { return 0 }

// testConfig is a small, fast configuration.
func testConfig() Config {
	c := DefaultConfig()
	c.Batch = 4
	c.Context = 8
	c.Steps = 12
	c.LR = 0.05
	c.Warmup = 2
	c.LogEvery = 1
	return c
}

func newTrainer(t *testing.T, m LanguageModel, cfg Config) *Trainer {
	t.Helper()
	tr, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func equalBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
