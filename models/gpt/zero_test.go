package gpt

import (
	"slices"
	"testing"

	"github.com/golora/golora/graph"
)

// TestZeroGenerateOptions: the zero GenerateOptions decodes greedily up to
// half the context (here 16 of 32 tokens, below DefaultMaxNewTokens).
func TestZeroGenerateOptions(t *testing.T) {
	m := newModel(t, genConfig(), graph.Float32, 1, 0.5)
	prompts := [][]int{{1, 2, 3}}
	zero, err := m.Generate(prompts, GenerateOptions{StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := m.Generate(prompts, GenerateOptions{MaxNewTokens: 16, StopTokens: []int{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(zero[0].Tokens) != 16 || !slices.Equal(zero[0].Tokens, explicit[0].Tokens) {
		t.Fatalf("zero options generated %v, want the 16 greedy tokens %v", zero[0].Tokens, explicit[0].Tokens)
	}
	if _, err := m.Generate(prompts, GenerateOptions{}); err != nil {
		t.Fatalf("the zero GenerateOptions: %v", err)
	}
}
