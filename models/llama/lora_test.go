package llama

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// randomizeAdapter gives every A and B of the named adapter random values,
// so that the update is not zero.
func randomizeAdapter(t *testing.T, lm *lora.Model, name string, seed uint64) {
	t.Helper()
	paths, err := lm.Paths(name)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range paths {
		ad, err := lm.Adapter(p, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ad.Slices {
			for _, prm := range []*graph.Param{s.A, s.B} {
				v := make([]float64, prm.Len())
				for i := range v {
					v[i] = 0.3 * (2*rng.Float64() - 1)
				}
				if err := prm.SetValues(v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestLoRATargets resolves PEFT's target names on the Hugging Face paths.
func TestLoRATargets(t *testing.T) {
	cases := []struct {
		arch    string
		targets []string
		layers  []int
		want    []string
	}{
		{ArchLlama, []string{"q_proj", "v_proj"}, nil, []string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}},
		{ArchLlama, []string{lora.AllLinear}, []int{1}, []string{"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj", "model.layers.1.self_attn.v_proj",
			"model.layers.1.self_attn.o_proj", "model.layers.1.mlp.gate_proj", "model.layers.1.mlp.up_proj", "model.layers.1.mlp.down_proj"}},
		{ArchLlama, []string{"down_proj"}, []int{0}, []string{"model.layers.0.mlp.down_proj"}},
		{ArchQwen3, []string{"embed_tokens", "lm_head", "model.layers.1.mlp.down_proj"}, nil, []string{"model.embed_tokens", "model.layers.1.mlp.down_proj", "lm_head"}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.arch, c.targets, c.layers), func(t *testing.T) {
			m, _ := New(tinyConfig(c.arch), graph.Float32)
			lm, err := lora.Inject(m, lora.Config{R: 2, Targets: c.targets, Layers: c.layers})
			if err != nil {
				t.Fatal(err)
			}
			if p, _ := lm.Paths(lora.DefaultAdapter); !slices.Equal(p, c.want) {
				t.Errorf("adapted %v, want %v", p, c.want)
			}
		})
	}
	// all-linear never takes lm_head; a tied head is no layer to target.
	m, _ := New(tinyConfig(ArchLlama), graph.Float32)
	lm, err := lora.Inject(m, lora.Config{R: 2, Targets: []string{lora.AllLinear}})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := lm.Paths(lora.DefaultAdapter); len(p) != 14 || slices.Contains(p, "lm_head") {
		t.Errorf("all-linear adapted %d layers %v", len(p), p)
	}
	tied, _ := New(tinyConfig(ArchQwen2), graph.Float32)
	if _, err := lora.Inject(tied, lora.Config{R: 2, Targets: []string{"lm_head"}}); err == nil || !strings.Contains(err.Error(), `target "lm_head" matches no layer`) {
		t.Errorf("lm_head on a tied model: %v", err)
	}
}

// TestLoRAFileKeys checks PEFT's key names and shapes in a saved adapter
// (fan_in_fan_out false: A [r, in], B [out, r]) and the round trip.
func TestLoRAFileKeys(t *testing.T) {
	m := newModel(t, tinyConfig(ArchQwen3), graph.Float64, 2, 0.5)
	lm, err := lora.Inject(m, lora.Config{R: 3, Alpha: 6, Targets: []string{"k_proj", "embed_tokens", "lm_head"}})
	if err != nil {
		t.Fatal(err)
	}
	randomizeAdapter(t, lm, lora.DefaultAdapter, 1)
	want := runLogits(t, m, randomIDs(1, 8, 37), 2, 4)
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := lm.Save(dir, lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, lora.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string]string{}
	for _, n := range f.Names() {
		tn, _ := f.Tensor(n)
		shapes[n] = fmt.Sprint(tn.Shape)
	}
	for key, shape := range map[string]string{
		"base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight": "[3 16]",
		"base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight": "[12 3]",
		"base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight": "[12 3]",
		"base_model.model.model.embed_tokens.lora_embedding_A":           "[3 37]",
		"base_model.model.model.embed_tokens.lora_embedding_B":           "[16 3]",
		"base_model.model.lm_head.lora_A.weight":                         "[3 16]",
		"base_model.model.lm_head.lora_B.weight":                         "[37 3]",
	} {
		if shapes[key] != shape {
			t.Errorf("%s: shape %q, want %s (file keys %v)", key, shapes[key], shape, f.Names())
		}
	}
	if len(shapes) != 8 {
		t.Errorf("%d tensors, want 8", len(shapes))
	}
	m2 := newModel(t, tinyConfig(ArchQwen3), graph.Float64, 2, 0.5)
	if _, err := lora.Load(m2, dir); err != nil {
		t.Fatal(err)
	}
	if got := runLogits(t, m2, randomIDs(1, 8, 37), 2, 4); !bitEqual(got, want) {
		t.Error("logits differ after loading the adapter")
	}
}

// TestLoRAMergeAndAdapters checks merge/unmerge and switching adapters on a
// Llama model: merged logits equal unmerged ones, unmerging restores the
// base, and each adapter gives its own outputs.
func TestLoRAMergeAndAdapters(t *testing.T) {
	for _, arch := range []string{ArchLlama, ArchQwen2} {
		t.Run(arch, func(t *testing.T) {
			m := newModel(t, tinyConfig(arch), graph.Float64, 8, 0.5)
			ids := randomIDs(3, 10, 37)
			base := runLogits(t, m, ids, 2, 5)
			lm, err := lora.Inject(m, lora.Config{R: 2, Alpha: 4, Targets: []string{lora.AllLinear}})
			if err != nil {
				t.Fatal(err)
			}
			if got := runLogits(t, m, ids, 2, 5); !bitEqual(got, base) {
				t.Error("a fresh adapter (B = 0) changed the logits")
			}
			randomizeAdapter(t, lm, lora.DefaultAdapter, 4)
			if err := lm.AddAdapter("other", lora.Config{R: 1, Targets: []string{"o_proj", "up_proj"}, Seed: 2}); err != nil {
				t.Fatal(err)
			}
			randomizeAdapter(t, lm, "other", 5)
			withA := runLogits(t, m, ids, 2, 5)
			if err := lm.Merge(); err != nil {
				t.Fatal(err)
			}
			checkClose(t, "merged", runLogits(t, m, ids, 2, 5), withA, 1e-12)
			if err := lm.Unmerge(); err != nil {
				t.Fatal(err)
			}
			if err := lm.SetActive("other"); err != nil {
				t.Fatal(err)
			}
			withB := runLogits(t, m, ids, 2, 5)
			if maxRelErr(withB, withA) < 1e-6 || maxRelErr(withB, base) < 1e-6 {
				t.Error("the second adapter computes the same as the first or the base")
			}
			if err := lm.Disable(); err != nil {
				t.Fatal(err)
			}
			checkClose(t, "disabled", runLogits(t, m, ids, 2, 5), base, 1e-12)
			_ = lm.Enable()
			if err := lm.SetActive(lora.DefaultAdapter); err != nil {
				t.Fatal(err)
			}
			// The KV-cache decoder runs the installed adapter too.
			dec, cache, err := m.NewDecoder(1, 5, 5)
			if err != nil {
				t.Fatal(err)
			}
			logits, _, err := dec.Decode(cache, [][]int{ids[:5]})
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "decoder with LoRA", logits.Values(), withA[4*37:5*37], 1e-12)
			if err := lm.MergeAndUnload(); err != nil {
				t.Fatal(err)
			}
			checkClose(t, "merged and unloaded", runLogits(t, m, ids, 2, 5), withA, 1e-12)
			if err := m.Save(filepath.Join(t.TempDir(), "merged")); err != nil {
				t.Errorf("saving the merged model: %v", err)
			}
		})
	}
}
