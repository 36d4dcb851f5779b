package llama

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
)

// tinyConfig is a small model of each architecture exercising what sets it
// apart: llama with GQA, llama3 RoPE scaling and a separate head; qwen2
// with q/k/v biases and a tied head; qwen3 with per-head norms and a head
// width other than hidden/heads; mistral with a sliding window.
func tinyConfig(arch string) Config {
	c := Config{Arch: arch, NumLayers: 2, Hidden: 16, Intermediate: 24, Heads: 4, KVHeads: 2, VocabSize: 37,
		MaxPositions: 16, RMSNormEps: 1e-6, RoPE: graph.RoPEConfig{Theta: 10000}, BOS: 1, EOS: []int{2}, Tokenizer: TokenizerNone}
	switch arch {
	case ArchLlama:
		c.RoPE = graph.RoPEConfig{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8}
	case ArchQwen2:
		c.QKVBias, c.TieEmbeddings, c.KVHeads = true, true, 1
		c.RoPE.Theta = 1e6
	case ArchQwen3:
		c.QKNorm, c.HeadDim, c.RoPE.Theta = true, 6, 1e6
	case ArchMistral:
		c.SlidingWindow = 8
	}
	return c
}

var archs = []string{ArchLlama, ArchQwen2, ArchQwen3, ArchMistral}

// newModel returns a model of cfg whose every parameter is random, so no
// term of the forward pass is trivially zero or one: weights uniform in
// ±scale, RMSNorm weights in 1 ± 0.5.
func newModel(t testing.TB, cfg Config, dt graph.DType, seed uint64, scale float64) *Model {
	t.Helper()
	m, err := New(cfg, dt)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, p := range m.BaseParams() {
		v := make([]float64, p.Len())
		for i := range v {
			v[i] = (2*rng.Float64() - 1) * scale
			if strings.HasSuffix(p.Name, "norm.weight") {
				v[i] = 1 + (2*rng.Float64()-1)*0.5
			}
		}
		if err := p.SetValues(v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// randomIDs returns n ids in [0, vocab).
func randomIDs(seed uint64, n, vocab int) []int {
	rng := rand.New(rand.NewPCG(seed, 9))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
}

// runLogits compiles m.Logits for ids and returns the logits as float64s.
func runLogits(t testing.TB, m *Model, ids []int, batch, ctx int) []float64 {
	t.Helper()
	b := graph.NewBuilder(m.DType(), 1)
	in := b.IntInput("ids", batch*ctx)
	logits := m.Logits(in, batch, ctx)
	prog, err := b.Compile(nil, logits)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := prog.SetInts(in, ids); err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	out, err := prog.Output(logits)
	if err != nil {
		t.Fatal(err)
	}
	return out.Values()
}

// maxRelErr is max|got − want| / max(1, max|want|).
func maxRelErr(got, want []float64) float64 {
	var e, m float64
	for i := range want {
		e = math.Max(e, math.Abs(got[i]-want[i]))
		m = math.Max(m, math.Abs(want[i]))
	}
	return e / math.Max(1, m)
}

// checkClose fails when maxRelErr(got, want) > tol or the lengths differ.
func checkClose(t testing.TB, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.IsNaN(got[i]) != math.IsNaN(want[i]) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
	if e := maxRelErr(got, want); e > tol {
		t.Errorf("%s: max relative error %.3g > %.0g", what, e, tol)
	}
}

// bitEqual reports whether two slices hold exactly the same values.
func bitEqual(a, b []float64) bool {
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
