package llama

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
)

// TestDecoderMatchesLogits feeds sequences through the KV-cache decoder in
// chunks (rows at their own pace) and compares the logits after every
// token with the full forward pass over the whole sequence.
func TestDecoderMatchesLogits(t *testing.T) {
	for _, arch := range archs {
		for _, dt := range []graph.DType{graph.Float64, graph.Float32} {
			t.Run(arch+"/"+dt.String(), func(t *testing.T) {
				m := newModel(t, tinyConfig(arch), dt, 11, 0.5)
				ctx := m.ContextSize()
				const rows = 3
				seqs := make([][]int, rows)
				want := make([][]float64, rows)
				for r := range rows {
					seqs[r] = randomIDs(uint64(20+r), ctx-r, 37)
					want[r] = runLogits(t, m, seqs[r], 1, len(seqs[r]))
				}
				dec, cache, err := m.NewDecoder(rows, 3, ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer dec.Close()
				if layers, width := m.CacheShape(); cache.Layers() != layers || width != m.cfg.KVHeads*m.cfg.HeadDim {
					t.Fatalf("cache of %d layers, width %d", cache.Layers(), width)
				}
				tol := 1e-12
				if dt == graph.Float32 {
					tol = 2e-5
				}
				done := make([]int, rows)
				for step := 0; ; step++ {
					ids := make([][]int, rows)
					active := false
					for r := range rows {
						n := min(1+(step+r)%3, len(seqs[r])-done[r])
						ids[r] = seqs[r][done[r] : done[r]+n]
						active = active || n > 0
					}
					if !active {
						break
					}
					logits, _, err := dec.Decode(cache, ids)
					if err != nil {
						t.Fatal(err)
					}
					v := m.VocabSize()
					for r := range rows {
						if len(ids[r]) == 0 {
							continue
						}
						done[r] += len(ids[r])
						last := done[r] - 1
						got := logits.Values()[r*v : (r+1)*v]
						checkClose(t, "logits", got, want[r][last*v:(last+1)*v], tol)
					}
				}
			})
		}
	}
}

// greedyRef is greedy decoding by recomputing the whole forward pass for
// every token.
func greedyRef(t *testing.T, m *Model, prompt []int, n int, stops []int) ([]int, int) {
	seq := slices.Clone(prompt)
	var out []int
	v := m.VocabSize()
	for range n {
		logits := runLogits(t, m, seq, 1, len(seq))
		row := logits[(len(seq)-1)*v:]
		best := 0
		for i, x := range row {
			if x > row[best] {
				best = i
			}
		}
		if slices.Contains(stops, best) {
			return out, best
		}
		out = append(out, best)
		seq = append(seq, best)
	}
	return out, -1
}

func TestGenerateGreedyAndStops(t *testing.T) {
	for _, arch := range []string{ArchLlama, ArchQwen3} {
		t.Run(arch, func(t *testing.T) {
			m := newModel(t, tinyConfig(arch), graph.Float64, 4, 0.8)
			prompts := [][]int{{3, 4, 5}, {7}, {9, 8, 7, 6, 5}}
			opts := gpt.GenerateOptions{MaxNewTokens: 6, StopTokens: []int{}}
			gens, err := m.Generate(prompts, opts)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range prompts {
				want, _ := greedyRef(t, m, p, 6, nil)
				if !slices.Equal(gens[i].Tokens, want) || gens[i].Stop != -1 {
					t.Errorf("prompt %d: %v (stop %d), want %v", i, gens[i].Tokens, gens[i].Stop, want)
				}
			}
			// Stopping at any of several eos ids: make the third greedy
			// token of prompt 0 one of two stop ids.
			full, _ := greedyRef(t, m, prompts[0], 6, nil)
			stops := []int{(full[2] + 1) % 37, full[2]}
			if slices.Contains(full[:2], stops[0]) || slices.Contains(full[:2], stops[1]) {
				t.Skip("the stop ids occur earlier in this sequence")
			}
			gens, err = m.Generate(prompts[:1], gpt.GenerateOptions{MaxNewTokens: 6, StopTokens: stops})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gens[0].Tokens, full[:2]) || gens[0].Stop != full[2] {
				t.Errorf("with stops %v: %v stop %d, want %v stop %d", stops, gens[0].Tokens, gens[0].Stop, full[:2], full[2])
			}
		})
	}
}

// TestGenerateModes runs sampling (seeded, so repeatable), top-k 1 (the
// greedy token) and beam search (at least as likely as greedy) through the
// shared generator.
func TestGenerateModes(t *testing.T) {
	m := newModel(t, tinyConfig(ArchQwen2), graph.Float64, 6, 0.8)
	prompts := [][]int{{3, 4}, {10, 11, 12}}
	greedy, err := m.Generate(prompts, gpt.GenerateOptions{MaxNewTokens: 5, StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := m.Generate(prompts, gpt.GenerateOptions{MaxNewTokens: 5, Temperature: 1.5, Seed: 3, StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := m.Generate(prompts, gpt.GenerateOptions{MaxNewTokens: 5, Temperature: 1.5, Seed: 3, StopTokens: []int{}})
	top1, _ := m.Generate(prompts, gpt.GenerateOptions{MaxNewTokens: 5, Temperature: 0.7, TopK: 1, Seed: 9, StopTokens: []int{}})
	beam, err := m.Generate(prompts, gpt.GenerateOptions{MaxNewTokens: 5, Beams: 4, StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if !slices.Equal(s1[i].Tokens, s2[i].Tokens) {
			t.Errorf("prompt %d: the same seed sampled %v and %v", i, s1[i].Tokens, s2[i].Tokens)
		}
		if !slices.Equal(top1[i].Tokens, greedy[i].Tokens) {
			t.Errorf("prompt %d: top-k 1 gave %v, greedy %v", i, top1[i].Tokens, greedy[i].Tokens)
		}
		if beam[i].LogProb < greedy[i].LogProb-1e-9 {
			t.Errorf("prompt %d: beam log-probability %v below greedy's %v", i, beam[i].LogProb, greedy[i].LogProb)
		}
	}
}

func TestStopTokens(t *testing.T) {
	c := tinyConfig(ArchLlama)
	c.EOS = []int{2, 3}
	m, _ := New(c, graph.Float32)
	if s, err := m.StopTokens(); err != nil || !slices.Equal(s, []int{2, 3}) {
		t.Errorf("config eos: %v, %v", s, err)
	}
	g := NewGenerationConfig(5, 6, 7)
	if err := m.SetGeneration(&g); err != nil {
		t.Fatal(err)
	}
	if s, _ := m.StopTokens(); !slices.Equal(s, []int{5, 6, 7}) {
		t.Errorf("generation config eos: %v", s)
	}
	bad := NewGenerationConfig(99)
	if err := m.SetGeneration(&bad); err == nil {
		t.Error("an eos id outside the vocabulary accepted")
	}
	c.EOS = nil
	m, _ = New(c, graph.Float32)
	if _, err := m.StopTokens(); err == nil || !strings.Contains(err.Error(), "StopTokens") {
		t.Errorf("no eos: %v", err)
	}
	if _, err := m.Generate([][]int{{1}}, gpt.GenerateOptions{MaxNewTokens: 2}); err == nil {
		t.Error("generation without stop tokens accepted")
	}
	if _, err := m.Generate([][]int{{1}}, gpt.GenerateOptions{MaxNewTokens: 17, StopTokens: []int{}}); err == nil || !strings.Contains(err.Error(), "16 (the model's context)") {
		t.Errorf("MaxNewTokens beyond the context: %v", err)
	}
}

func TestGenerationConfigFile(t *testing.T) {
	raw := `{"bos_token_id": 1, "eos_token_id": [2, 4], "pad_token_id": 0, "do_sample": true, "temperature": 0.6,
  "top_k": 20, "top_p": 0.95, "repetition_penalty": 1.1, "max_new_tokens": 9, "transformers_version": "4.51.0",
  "suppress_tokens": [5], "forced_eos_token_id": null}`
	g, err := parseGeneration([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	o, ignored := g.Options()
	want := gpt.GenerateOptions{MaxNewTokens: 9, Temperature: 0.6, TopK: 20, TopP: 0.95, StopTokens: []int{2, 4}}
	if o.MaxNewTokens != want.MaxNewTokens || o.Temperature != want.Temperature || o.TopK != want.TopK || o.TopP != want.TopP ||
		!slices.Equal(o.StopTokens, want.StopTokens) || o.Beams != 0 {
		t.Errorf("options %+v, want %+v", o, want)
	}
	if strings.Join(ignored, "; ") != "repetition_penalty = 1.1; suppress_tokens" {
		t.Errorf("ignored %v", ignored)
	}
	// transformers' defaults: greedy; beams with its length penalty 1.
	g2, _ := parseGeneration([]byte(`{"eos_token_id": 2}`))
	if o, ig := g2.Options(); o.Temperature != 0 || o.TopK != 0 || o.Beams != 0 || len(ig) != 0 {
		t.Errorf("defaults: %+v %v", o, ig)
	}
	g3, _ := parseGeneration([]byte(`{"num_beams": 4, "no_repeat_ngram_size": 3}`))
	if o, _ := g3.Options(); o.Beams != 4 || o.LengthPenalty != 1 || o.NoRepeatNGram != 3 || o.StopTokens != nil {
		t.Errorf("beams: %+v", o)
	}
	for _, bad := range []string{`{"top_p": 2}`, `{"eos_token_id": "x"}`, `{"temperature": -1}`, `[]`} {
		if _, err := parseGeneration([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// Saved back with every key it had.
	c := tinyConfig(ArchLlama)
	c.VocabSize = 40
	m := newModel(t, c, graph.Float32, 1, 0.5)
	if err := m.SetGeneration(&g); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadGenerationConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(filepath.Join(dir, GenerationConfigFile))
	if got.TopK != 20 || !slices.Equal(got.EOS, []int{2, 4}) || !strings.Contains(string(out), `"transformers_version": "4.51.0"`) {
		t.Errorf("saved generation config %s", out)
	}
	m2, err := Load(dir, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if g := m2.Generation(); g == nil || g.Temperature != 0.6 || math.Abs(g.RepetitionPenalty-1.1) > 0 {
		t.Errorf("loaded generation config %+v", g)
	}
}
