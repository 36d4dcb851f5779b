package lora_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// prefixedHost is tinyGPT telling lora, as a Llama-family model does, the
// path of its layers inside the Hugging Face class PEFT wraps.
type prefixedHost struct {
	*tinyGPT
	prefix string
}

func (h prefixedHost) PEFTKeyPrefix() string { return h.prefix }

// TestHostKeyPrefix checks that a host's PEFTKeyPrefix replaces GPT-2's
// "transformer." in adapter file keys and in target matching, and that the
// adapter loads back.
func TestHostKeyPrefix(t *testing.T) {
	for _, prefix := range []string{"", "model."} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			h := prefixedHost{newTiny(graph.Float64, 2, 1), prefix}
			target := prefix + "h.1.mlp.c_fc" // the full module path also names the layer
			m, err := lora.Inject(h, lora.Config{R: 2, Targets: []string{target}, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			if m.KeyPrefix != prefix {
				t.Fatalf("KeyPrefix %q, want %q", m.KeyPrefix, prefix)
			}
			train(t, h.tinyGPT, 2, 0.5)
			want := forward(t, h.tinyGPT, false)
			dir := filepath.Join(t.TempDir(), "a")
			if err := m.Save(dir, lora.DefaultAdapter); err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.ReadFile(filepath.Join(dir, lora.WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			wantKeys := []string{"base_model.model." + prefix + "h.1.mlp.c_fc.lora_A.weight", "base_model.model." + prefix + "h.1.mlp.c_fc.lora_B.weight"}
			if got := f.Names(); strings.Join(got, " ") != strings.Join(wantKeys, " ") {
				t.Fatalf("keys %v, want %v", got, wantKeys)
			}
			h2 := prefixedHost{newTiny(graph.Float64, 2, 1), prefix}
			if _, err := lora.Load(h2, dir); err != nil {
				t.Fatal(err)
			}
			if !bitEqual(forward(t, h2.tinyGPT, false), want) {
				t.Error("logits differ after loading the adapter")
			}
		})
	}
}

// TestDefaultLayersPattern selects layers by index with PEFT's default
// pattern (no layers_pattern) and saves no layers_pattern key.
func TestDefaultLayersPattern(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Targets: []string{"c_fc", "c_proj"}, Layers: []int{1}})
	_ = h
	paths, err := m.Paths(lora.DefaultAdapter)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(paths, " ") != "h.1.attn.c_proj h.1.mlp.c_fc h.1.mlp.c_proj" {
		t.Errorf("adapted %v, want layer 1's c_proj, c_fc and c_proj", paths)
	}
	if _, err := lora.Inject(newTiny(graph.Float64, 2, 1), lora.Config{R: 2, Targets: []string{"c_fc"}, Layers: []int{5}}); err == nil || !strings.Contains(err.Error(), "in layers [5]") {
		t.Errorf("layer 5 of 2: %v", err)
	}
}
