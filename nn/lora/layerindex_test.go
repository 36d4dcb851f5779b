package lora

import "testing"

// TestLayerIndex covers a named pattern and PEFT's default (empty pattern:
// the last number that follows a segment and precedes another).
func TestLayerIndex(t *testing.T) {
	cases := []struct {
		path, pattern string
		want          int
		ok            bool
	}{
		{"h.3.attn.c_attn", "h", 3, true},
		{"h.3.attn.c_attn", "layers", 0, false},
		{"model.layers.12.self_attn.q_proj", "layers", 12, true},
		{"model.layers.12.self_attn.q_proj", "", 12, true},
		{"h.3.attn.c_attn", "", 3, true},
		{"transformer.h.0.mlp.c_fc", "", 0, true},
		{"model.layers.2.experts.7.down_proj", "", 7, true}, // the last such number, as PEFT's greedy regex
		{"model.embed_tokens", "", 0, false},
		{"lm_head", "", 0, false},
		{"model.layers.5", "", 0, false}, // a number must precede another segment
	}
	for _, c := range cases {
		got, ok := layerIndex(c.path, c.pattern)
		if got != c.want || ok != c.ok {
			t.Errorf("layerIndex(%q, %q) = %d, %v; want %d, %v", c.path, c.pattern, got, ok, c.want, c.ok)
		}
	}
}
