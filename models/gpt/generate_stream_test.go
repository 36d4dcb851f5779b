package gpt

import (
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
)

// TestGenerateOnToken: OnToken sees every generated token of every prompt
// in order, as it is chosen, and returning false stops that prompt there.
func TestGenerateOnToken(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float32, 3, 0.5)
	prompts := [][]int{randomIDs(1, 4, 256), randomIDs(2, 6, 256), randomIDs(3, 2, 256)}
	for _, o := range []GenerateOptions{
		{MaxNewTokens: 8, StopTokens: []int{}},
		{MaxNewTokens: 8, StopTokens: []int{}, Temperature: 0.9, TopK: 20, Seed: 4},
	} {
		plain, err := m.Generate(prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		seen := make([][]int, len(prompts))
		o.OnToken = func(p, tok int) bool {
			seen[p] = append(seen[p], tok)
			return true
		}
		streamed, err := m.Generate(prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range prompts {
			if !slices.Equal(seen[i], plain[i].Tokens) || !slices.Equal(streamed[i].Tokens, plain[i].Tokens) {
				t.Errorf("T=%v prompt %d: streamed %v, result %v, without OnToken %v", o.Temperature, i, seen[i], streamed[i].Tokens, plain[i].Tokens)
			}
		}
		// Stop prompt 1 after its third token.
		count := 0
		o.OnToken = func(p, tok int) bool {
			if p == 1 {
				count++
				return count < 3
			}
			return true
		}
		cut, err := m.Generate(prompts, o)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cut[1].Tokens, plain[1].Tokens[:3]) || cut[1].Stop != -1 || !slices.Equal(cut[0].Tokens, plain[0].Tokens) {
			t.Errorf("stopped at 3: got %v (stop %d), want %v; prompt 0 %v", cut[1].Tokens, cut[1].Stop, plain[1].Tokens[:3], cut[0].Tokens)
		}
	}
	_, err := m.Generate(prompts, GenerateOptions{MaxNewTokens: 4, Beams: 2, OnToken: func(int, int) bool { return true }})
	if err == nil || !strings.Contains(err.Error(), "OnToken") {
		t.Errorf("OnToken with beams: %v", err)
	}
}
