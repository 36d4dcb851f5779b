package gpt_test

import (
	"fmt"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
)

// nanoModel is the "nano" preset with random weights from seed 1.
func nanoModel() *gpt.Model {
	cfg, _ := gpt.Preset("nano")
	m, _ := gpt.New(cfg, graph.Float32)
	_ = m.Init(graph.NewRand(1))
	return m
}

// Generate decodes a batch of prompts greedily (Temperature 0) with a
// key/value cache. Without stop tokens every prompt gets MaxNewTokens new
// tokens; an untrained model writes noise, so only the counts are shown.
func ExampleModel_Generate() {
	m := nanoModel()
	tok, _ := gpt.NewTokenizer("bytes")
	prompts := [][]int{tok.Encode("Hello"), tok.Encode("The quick brown fox")}
	out, err := m.Generate(prompts, gpt.GenerateOptions{MaxNewTokens: 12, StopTokens: []int{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, g := range out {
		fmt.Printf("prompt %d: %d new tokens, stop %d, cropped %d\n", i, len(g.Tokens), g.Stop, g.Cropped)
	}
	// Output:
	// prompt 0: 12 new tokens, stop -1, cropped 0
	// prompt 1: 12 new tokens, stop -1, cropped 0
}

// Sampling draws from softmax(logits/Temperature) limited to TopK tokens
// and the TopP nucleus; the same Seed repeats a sample exactly.
func ExampleModel_Generate_sampling() {
	m := nanoModel()
	tok, _ := gpt.NewTokenizer("bytes")
	opts := gpt.GenerateOptions{MaxNewTokens: 20, Temperature: 0.8, TopK: 40, TopP: 0.95, Seed: 7, StopTokens: []int{}}
	a, _ := m.Generate([][]int{tok.Encode("Once")}, opts)
	b, _ := m.Generate([][]int{tok.Encode("Once")}, opts)
	fmt.Println(len(a[0].Tokens), "tokens; same seed, same sample:", fmt.Sprint(a[0].Tokens) == fmt.Sprint(b[0].Tokens))
	// Output:
	// 20 tokens; same seed, same sample: true
}

// E2EDecoding is the LoRA paper's beam search for E2E NLG: 10 beams, length
// penalty 0.9, no repeated 4-gram, at most 64 new tokens.
func ExampleE2EDecoding() {
	m := nanoModel()
	tok, _ := gpt.NewTokenizer("bytes")
	opts := gpt.E2EDecoding()
	opts.MaxNewTokens = 8 // keep the example quick
	out, err := m.Generate([][]int{tok.Encode("name : The Vaults | Type : pub")}, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	g := out[0]
	fmt.Println("beams:", opts.Beams, "tokens ≤ 8:", len(g.Tokens) <= 8, "score = logP/n^0.9 < 0:", g.Score < 0)
	// Output:
	// beams: 10 tokens ≤ 8: true score = logP/n^0.9 < 0: true
}

// A Decoder is the model compiled for incremental decoding. The cache is
// passed in and returned: each call appends the new tokens' keys and values
// and returns the logits of the next token of every row.
func ExampleModel_NewDecoder() {
	m := nanoModel()
	tok, _ := gpt.NewTokenizer("bytes")
	prompt := tok.Encode("abc")
	// One row, up to 3 tokens a call, 16 positions.
	dec, cache, err := m.NewDecoder(1, 3, 16)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer dec.Close()
	logits, cache, err := dec.Decode(cache, [][]int{prompt}) // the whole prompt at once
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("logits", logits.Shape, "cached", cache.Len(0))
	for range 4 { // then one token at a time
		next := argmax(logits.F32)
		if logits, cache, err = dec.Decode(cache, [][]int{{next}}); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println("cached", cache.Len(0), "of", cache.Capacity())
	// Output:
	// logits [1 257] cached 3
	// cached 7 of 16
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
