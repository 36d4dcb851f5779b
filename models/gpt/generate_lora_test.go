package gpt

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
)

// randomizeAdapter gives every A and B of the named adapter random values,
// so that its update ΔW = s·A·B is far from zero.
func randomizeAdapter(t *testing.T, lm *lora.Model, name string, seed uint64) {
	t.Helper()
	paths, err := lm.Paths(name)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, path := range paths {
		ad, err := lm.Adapter(path, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ad.Slices {
			for _, p := range []*graph.Param{s.A, s.B} {
				v := make([]float64, p.Len())
				for i := range v {
					v[i] = (2*rng.Float64() - 1) * 0.5
				}
				if err := p.SetValues(v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// decodeLogits runs prompt through a 3-token prefill decoder, then steps
// greedily with a 1-token decoder, and returns the logits of every step and
// the tokens fed.
func decodeLogits(t *testing.T, m *Model, prompt []int, steps int) ([][]float64, []int) {
	t.Helper()
	v := m.VocabSize()
	pre, cache, err := m.NewDecoder(1, 3, 24)
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	step, _, err := m.NewDecoder(1, 1, 24)
	if err != nil {
		t.Fatal(err)
	}
	defer step.Close()
	var out [][]float64
	var logits graph.Array
	for at := 0; at < len(prompt); at += 3 {
		if logits, _, err = pre.Decode(cache, [][]int{prompt[at:min(at+3, len(prompt))]}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := slices.Clone(prompt)
	for range steps {
		x := arrayRow(logits, 0, v)
		out = append(out, x)
		ctx = append(ctx, argmax(x))
		if logits, _, err = step.Decode(cache, [][]int{ctx[len(ctx)-1:]}); err != nil {
			t.Fatal(err)
		}
	}
	return out, ctx[len(prompt):]
}

// checkAgainstRecompute compares cached decoding with the full forward
// pass (which goes through the same wrappers) at every step.
func checkAgainstRecompute(t *testing.T, what string, m *Model, prompt []int, tol float64) [][]float64 {
	t.Helper()
	logits, toks := decodeLogits(t, m, prompt, 8)
	ctx := slices.Clone(prompt)
	for s, x := range logits {
		checkClose(t, what+" logits", x, lastLogits(t, m, ctx), tol)
		ctx = append(ctx, toks[s])
	}
	return logits
}

// TestGenerateWithLoRA: decoding goes through the model's layers, so LoRA
// wrappers are used without the decoder knowing about them. Cached decoding
// equals the full recomputation with an unmerged adapter (LoRA dropout is
// off in decoding), with a merged one, and with each of two adapters on one
// base; the adapters do change the output.
func TestGenerateWithLoRA(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 31, 0.5)
	prompt := randomIDs(5, 5, 256)
	baseLogits := checkAgainstRecompute(t, "base", m, prompt, 1e-12)

	cfg := lora.Config{R: 2, Alpha: 4, Dropout: 0.1, Targets: []string{"c_attn[q,v]", "c_proj", "c_fc"}}
	lm, err := lora.Inject(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	randomizeAdapter(t, lm, lora.DefaultAdapter, 1)
	unmerged := checkAgainstRecompute(t, "unmerged", m, prompt, 1e-12)
	if maxRelErr(unmerged[0], baseLogits[0]) < 1e-3 {
		t.Fatal("the adapter does not change the logits: the test checks nothing")
	}
	opts := GenerateOptions{MaxNewTokens: 10, StopTokens: []int{}}
	gotUnmerged, err := m.Generate([][]int{prompt}, opts)
	if err != nil {
		t.Fatal(err)
	}
	toks, _, _ := refGreedy(t, m, prompt, 10, nil)
	if !slices.Equal(gotUnmerged[0].Tokens, toks) {
		t.Errorf("unmerged: generated %v, recomputation %v", gotUnmerged[0].Tokens, toks)
	}

	if err := lm.Merge(); err != nil {
		t.Fatal(err)
	}
	merged := checkAgainstRecompute(t, "merged", m, prompt, 1e-12)
	for s := range merged {
		checkClose(t, "merged vs unmerged logits", merged[s], unmerged[s], 1e-10)
	}
	gotMerged, err := m.Generate([][]int{prompt}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotMerged[0].Tokens, gotUnmerged[0].Tokens) {
		t.Errorf("merged generated %v, unmerged %v", gotMerged[0].Tokens, gotUnmerged[0].Tokens)
	}
	if err := lm.Unmerge(); err != nil {
		t.Fatal(err)
	}

	// A second adapter on the same base, this one on the token lookup too.
	cfg2 := lora.Config{R: 3, Alpha: 3, Targets: []string{"wte", "c_attn", "mlp.c_proj"}, Seed: 2}
	if err := lm.AddAdapter("second", cfg2); err != nil {
		t.Fatal(err)
	}
	randomizeAdapter(t, lm, "second", 2)
	if err := lm.SetActive("second"); err != nil {
		t.Fatal(err)
	}
	second := checkAgainstRecompute(t, "second adapter", m, prompt, 1e-12)
	if maxRelErr(second[0], unmerged[0]) < 1e-3 {
		t.Fatal("the second adapter gives the first one's logits")
	}
	if err := lm.SetActive(lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	again := checkAgainstRecompute(t, "first adapter again", m, prompt, 1e-12)
	for s := range again {
		checkClose(t, "first adapter again", again[s], unmerged[s], 1e-12)
	}
	beams, err := m.Generate([][]int{prompt}, GenerateOptions{MaxNewTokens: 6, Beams: 3, LengthPenalty: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if math.IsInf(beams[0].Score, 0) || math.IsNaN(beams[0].Score) {
		t.Errorf("beam search with an adapter: score %v", beams[0].Score)
	}
}

// TestGeneratorFollowsAdapterChanges: a Generator keeps compiled decoders
// from call to call; after the model's adapter changes (switched, merged)
// its next Generate compiles new ones and generates what a new Generator
// generates, while a Decoder compiled before refuses to decode
// (graph.ErrStale).
func TestGeneratorFollowsAdapterChanges(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float64, 31, 0.5)
	prompt := randomIDs(5, 5, 256)
	lm, err := lora.Inject(m, lora.Config{R: 2, Alpha: 4, Targets: []string{"c_attn", "c_fc"}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	randomizeAdapter(t, lm, lora.DefaultAdapter, 1)
	if err := lm.AddAdapter("second", lora.Config{R: 3, Alpha: 9, Targets: []string{"wte", "mlp.c_proj"}, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	randomizeAdapter(t, lm, "second", 2)
	opts := GenerateOptions{MaxNewTokens: 8, StopTokens: []int{}}
	gen, err := m.NewGenerator(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	dec, cache, err := m.NewDecoder(1, 1, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	fresh := func() []int {
		g, err := m.Generate([][]int{prompt}, opts)
		if err != nil {
			t.Fatal(err)
		}
		return g[0].Tokens
	}
	var outs [][]int
	for i, change := range []func() error{
		func() error { return nil },
		func() error { return lm.SetActive("second") },
		func() error { return lm.SetActive(lora.DefaultAdapter) },
		lm.Merge,
	} {
		if err := change(); err != nil {
			t.Fatal(err)
		}
		got, err := gen.Generate([][]int{prompt})
		if err != nil {
			t.Fatal(err)
		}
		if want := fresh(); !slices.Equal(got[0].Tokens, want) {
			t.Errorf("change %d: the reused Generator generated %v, a new one %v", i, got[0].Tokens, want)
		}
		outs = append(outs, got[0].Tokens)
		_, _, err = dec.Decode(cache, [][]int{{1}})
		if (i == 0) != (err == nil) || (err != nil && !errors.Is(err, graph.ErrStale)) {
			t.Errorf("change %d: Decoder compiled before it: err %v", i, err)
		}
	}
	if slices.Equal(outs[0], outs[1]) {
		t.Error("the two adapters generate the same tokens: the test checks nothing")
	}
	if !slices.Equal(outs[0], outs[3]) {
		t.Errorf("merged generated %v, unmerged %v", outs[3], outs[0])
	}
}
