package llama

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/safetensors"
)

// sameParams fails unless a and b hold the same parameters, values equal
// within tol (0: bit for bit).
func sameParams(t *testing.T, a, b *Model, tol float64) {
	t.Helper()
	pa, pb := a.BaseParams(), b.BaseParams()
	if len(pa) != len(pb) {
		t.Fatalf("%d parameters, want %d", len(pb), len(pa))
	}
	for i := range pa {
		if pa[i].Name != pb[i].Name || !slices.Equal(pa[i].Shape(), pb[i].Shape()) {
			t.Fatalf("parameter %d: %s %v, want %s %v", i, pb[i].Name, pb[i].Shape(), pa[i].Name, pa[i].Shape())
		}
		va, vb := pa[i].Values(), pb[i].Values()
		for j := range va {
			if math.Abs(va[j]-vb[j]) > tol*math.Abs(va[j]) || (tol == 0 && va[j] != vb[j]) {
				t.Fatalf("%s[%d] = %v, want %v", pa[i].Name, j, vb[j], va[j])
			}
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, arch := range archs {
		for _, dt := range []graph.DType{graph.Float32, graph.Float64} {
			t.Run(arch+"/"+dt.String(), func(t *testing.T) {
				m := newModel(t, tinyConfig(arch), dt, 7, 0.5)
				dir := filepath.Join(t.TempDir(), "m")
				if err := m.Save(dir); err != nil {
					t.Fatal(err)
				}
				got, err := Load(dir, dt)
				if err != nil {
					t.Fatal(err)
				}
				sameParams(t, m, got, 0)
				c := got.Config()
				if c.QKVBias != m.cfg.QKVBias || c.RoPE != m.cfg.RoPE || c.HeadDim != m.cfg.HeadDim || c.SlidingWindow != m.cfg.SlidingWindow {
					t.Errorf("config %+v, want %+v", c, m.cfg)
				}
				if s, err := got.StopTokens(); err != nil || !slices.Equal(s, []int{2}) {
					t.Errorf("stop tokens %v, %v; want [2] (generation_config.json written from the config)", s, err)
				}
			})
		}
	}
}

// TestCheckpointLayout checks the file against Hugging Face's layout: keys,
// Linear weights [out, in] holding the transpose of golora's [in, out], no
// lm_head in a tied checkpoint.
func TestCheckpointLayout(t *testing.T) {
	m := newModel(t, tinyConfig(ArchQwen2), graph.Float32, 3, 0.5)
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.Names(), "lm_head.weight") || len(f.Names()) != len(m.BaseParams()) {
		t.Errorf("keys %v", f.Names())
	}
	q, shape, err := f.Float32s("model.layers.1.self_attn.k_proj.weight")
	if err != nil {
		t.Fatal(err)
	}
	w := m.Blocks[1].Attn.KProj.(*nn.Linear).Weight // [16, 4]
	if !slices.Equal(shape, []int{4, 16}) {
		t.Fatalf("k_proj.weight shape %v, want [4 16] ([out, in])", shape)
	}
	for o := range 4 {
		for i := range 16 {
			if q[o*16+i] != w.Float32s()[i*4+o] {
				t.Fatalf("k_proj.weight[%d, %d] is not golora's [%d, %d]", o, i, i, o)
			}
		}
	}
	if b, shape, _ := f.Float32s("model.layers.0.self_attn.q_proj.bias"); !slices.Equal(shape, []int{16}) || b[3] != m.Blocks[0].Attn.QProj.(*nn.Linear).Bias.Float32s()[3] {
		t.Errorf("q_proj.bias shape %v", shape)
	}
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	_ = json.Unmarshal(raw, &cfg)
	if cfg["model_type"] != "qwen2" || cfg["architectures"].([]any)[0] != "Qwen2ForCausalLM" || cfg["tie_word_embeddings"] != true {
		t.Errorf("config.json %s", raw)
	}
}

// TestSaveShardsAndBF16 writes BF16 shards with an index and reads them
// back: every value is the BF16 rounding of the original.
func TestSaveShardsAndBF16(t *testing.T) {
	m := newModel(t, tinyConfig(ArchLlama), graph.Float32, 9, 0.5)
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.SaveWith(dir, SaveOptions{DType: "BF16", MaxShardBytes: 2000}); err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, WeightsIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, f := range idx.WeightMap {
		files[f] = true
	}
	if len(files) < 3 || len(idx.WeightMap) != len(m.BaseParams()) || idx.Metadata["total_size"] != int64(2*countParams(m)) {
		t.Errorf("%d shards, %d keys, total_size %d; want several, %d, %d", len(files), len(idx.WeightMap), idx.Metadata["total_size"], len(m.BaseParams()), 2*countParams(m))
	}
	if _, err := os.Stat(filepath.Join(dir, WeightsFile)); err == nil {
		t.Error("model.safetensors written next to shards")
	}
	got, err := Load(dir, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.BaseParams() {
		a, b := p.Float32s(), got.BaseParams()[i].Float32s()
		for j := range a {
			if want := math.Float32frombits(uint32(bf16(a[j])) << 16); b[j] != want {
				t.Fatalf("%s[%d] = %v, want BF16(%v) = %v", p.Name, j, b[j], a[j], want)
			}
		}
	}
	var cfg map[string]any
	raw, _ = os.ReadFile(filepath.Join(dir, ConfigFile))
	_ = json.Unmarshal(raw, &cfg)
	if cfg["torch_dtype"] != "bfloat16" {
		t.Errorf("torch_dtype %v", cfg["torch_dtype"])
	}
}

func TestBF16Rounding(t *testing.T) {
	for _, c := range []struct {
		x    float32
		want uint16
	}{
		{1, 0x3f80}, {-2, 0xc000}, {0, 0},
		{math.Float32frombits(0x3f808000), 0x3f80}, // a tie: to even (down)
		{math.Float32frombits(0x3f818000), 0x3f82}, // a tie: to even (up)
		{math.Float32frombits(0x3f808001), 0x3f81}, // above the tie
		{float32(math.Inf(1)), 0x7f80},
		{math.MaxFloat32, 0x7f80}, // rounds up to infinity
	} {
		if got := bf16(c.x); got != c.want {
			t.Errorf("bf16(%v) = %#04x, want %#04x", c.x, got, c.want)
		}
	}
	if nan := bf16(float32(math.NaN())); nan&0x7f80 != 0x7f80 || nan&0x7f == 0 {
		t.Errorf("bf16(NaN) = %#04x, not a NaN", nan)
	}
}

// TestQwen2BiasFromCheckpoint checks that Qwen2's q, k, v biases are taken
// from the checkpoint (its config does not announce them).
func TestQwen2BiasFromCheckpoint(t *testing.T) {
	for _, bias := range []bool{true, false} {
		c := tinyConfig(ArchQwen2)
		c.QKVBias = bias
		m := newModel(t, c, graph.Float32, 2, 0.5)
		dir := filepath.Join(t.TempDir(), "m")
		if err := m.Save(dir); err != nil {
			t.Fatal(err)
		}
		got, err := Load(dir, graph.Float32)
		if err != nil {
			t.Fatal(err)
		}
		if got.Config().QKVBias != bias {
			t.Errorf("saved with biases %v, loaded with %v", bias, got.Config().QKVBias)
		}
		sameParams(t, m, got, 0)
	}
}

// editCheckpoint saves a tiny model to a fresh folder, lets edit change the
// tensors (by key, in the file's layout) and returns the folder.
func editCheckpoint(t *testing.T, arch string, edit func(ts map[string]safetensors.Tensor)) string {
	t.Helper()
	m := newModel(t, tinyConfig(arch), graph.Float32, 5, 0.5)
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, WeightsFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := map[string]safetensors.Tensor{}
	for _, n := range f.Names() {
		tn, _ := f.Tensor(n)
		tn.Data = slices.Clone(tn.Data)
		ts[n] = tn
	}
	edit(ts)
	var list []safetensors.Tensor
	for _, tn := range ts {
		list = append(list, tn)
	}
	if err := safetensors.WriteFile(path, list, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadErrors(t *testing.T) {
	f32 := func(name string, shape []int, v ...float32) safetensors.Tensor {
		return safetensors.FromFloat32s(name, shape, v)
	}
	cases := []struct {
		name string
		arch string
		edit func(ts map[string]safetensors.Tensor)
		want string
	}{
		{"missing", ArchLlama, func(ts map[string]safetensors.Tensor) { delete(ts, "model.layers.1.mlp.up_proj.weight") },
			`missing tensor "model.layers.1.mlp.up_proj.weight"`},
		{"extra", ArchLlama, func(ts map[string]safetensors.Tensor) {
			ts["model.layers.2.mlp.up_proj.weight"] = f32("model.layers.2.mlp.up_proj.weight", []int{1}, 0)
		}, `unexpected tensor "model.layers.2.mlp.up_proj.weight"`},
		{"misshapen", ArchLlama, func(ts map[string]safetensors.Tensor) {
			ts["model.norm.weight"] = f32("model.norm.weight", []int{15}, make([]float32, 15)...)
		}, `tensor "model.norm.weight": shape [15], want [16]`},
		{"not transposed", ArchLlama, func(ts map[string]safetensors.Tensor) {
			ts["model.layers.0.self_attn.k_proj.weight"] = f32("model.layers.0.self_attn.k_proj.weight", []int{16, 8}, make([]float32, 128)...)
		}, `shape [16 8], want [8 16] ([out, in])`},
		{"NaN", ArchLlama, func(ts map[string]safetensors.Tensor) {
			tn := ts["model.layers.0.mlp.down_proj.weight"]
			binary.LittleEndian.PutUint32(tn.Data[4*5:], math.Float32bits(float32(math.NaN())))
		}, "is NaN"},
		{"integer tensor", ArchLlama, func(ts map[string]safetensors.Tensor) {
			tn := ts["model.norm.weight"]
			ts["model.norm.weight"] = safetensors.Tensor{Name: tn.Name, DType: "I32", Shape: tn.Shape, Data: tn.Data}
		}, "not a float type"},
		{"tied head differs", ArchQwen2, func(ts map[string]safetensors.Tensor) {
			e := ts["model.embed_tokens.weight"]
			d := slices.Clone(e.Data)
			d[0] ^= 1
			ts["lm_head.weight"] = safetensors.Tensor{Name: "lm_head.weight", DType: e.DType, Shape: e.Shape, Data: d}
		}, "differs from model.embed_tokens.weight"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := editCheckpoint(t, c.arch, c.edit)
			m, err := Load(dir, graph.Float32)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
			if m != nil {
				t.Error("a model returned with the error")
			}
		})
	}
	// Accepted extras: a tied head equal to the embedding, rotary buffers.
	dir := editCheckpoint(t, ArchQwen2, func(ts map[string]safetensors.Tensor) {
		e := ts["model.embed_tokens.weight"]
		ts["lm_head.weight"] = safetensors.Tensor{Name: "lm_head.weight", DType: e.DType, Shape: e.Shape, Data: e.Data}
		ts["model.layers.0.self_attn.rotary_emb.inv_freq"] = f32("model.layers.0.self_attn.rotary_emb.inv_freq", []int{2}, 1, 0.01)
	})
	if _, err := Load(dir, graph.Float32); err != nil {
		t.Errorf("tied head equal to the embedding and a rotary buffer: %v", err)
	}
}

// TestLoadShardErrors breaks a sharded checkpoint in the ways an index and
// its shards can disagree.
func TestLoadShardErrors(t *testing.T) {
	save := func(t *testing.T) (string, map[string]any) {
		m := newModel(t, tinyConfig(ArchLlama), graph.Float32, 5, 0.5)
		dir := filepath.Join(t.TempDir(), "m")
		if err := m.SaveWith(dir, SaveOptions{MaxShardBytes: 4000}); err != nil {
			t.Fatal(err)
		}
		var idx map[string]any
		raw, _ := os.ReadFile(filepath.Join(dir, WeightsIndexFile))
		_ = json.Unmarshal(raw, &idx)
		return dir, idx
	}
	write := func(t *testing.T, dir string, idx map[string]any) {
		raw, _ := json.Marshal(idx)
		if err := os.WriteFile(filepath.Join(dir, WeightsIndexFile), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		edit func(t *testing.T, dir string, idx map[string]any)
		want string
	}{
		{"index maps a key to the wrong shard", func(t *testing.T, dir string, idx map[string]any) {
			wm := idx["weight_map"].(map[string]any)
			first := wm["model.embed_tokens.weight"]
			if wm["model.norm.weight"] == first {
				t.Fatal("model.norm.weight shares the first shard")
			}
			wm["model.norm.weight"] = first
			write(t, dir, idx)
		}, `"model.norm.weight"`},
		{"shard missing", func(t *testing.T, dir string, idx map[string]any) {
			_ = os.Remove(filepath.Join(dir, idx["weight_map"].(map[string]any)["model.norm.weight"].(string)))
		}, "lists shard model-0000"},
		{"key missing from the index", func(t *testing.T, dir string, idx map[string]any) {
			delete(idx["weight_map"].(map[string]any), "model.embed_tokens.weight")
			write(t, dir, idx)
		}, `missing tensor "model.embed_tokens.weight"`},
		{"path outside the folder", func(t *testing.T, dir string, idx map[string]any) {
			idx["weight_map"].(map[string]any)["model.norm.weight"] = "../model-00001-of-00002.safetensors"
			write(t, dir, idx)
		}, "not a .safetensors file in the folder"},
		{"no weight map", func(t *testing.T, dir string, idx map[string]any) {
			write(t, dir, map[string]any{"metadata": map[string]any{}})
		}, "no weight_map"},
		{"no weights at all", func(t *testing.T, dir string, idx map[string]any) {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".safetensors") || e.Name() == WeightsIndexFile {
					_ = os.Remove(filepath.Join(dir, e.Name()))
				}
			}
			_ = os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("x"), 0o644)
		}, "convert it to safetensors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, idx := save(t)
			c.edit(t, dir, idx)
			if _, err := Load(dir, graph.Float32); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestSaveRefusals(t *testing.T) {
	m := newModel(t, tinyConfig(ArchLlama), graph.Float32, 1, 0.5)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("a folder with other files: %v", err)
	}
	// Passing the file along keeps it.
	if err := m.SaveWith(dir, SaveOptions{Files: map[string][]byte{"notes.txt": []byte("kept")}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "kept" {
		t.Errorf("notes.txt = %q", b)
	}
	for _, o := range []SaveOptions{{DType: "F16"}, {MaxShardBytes: -1}, {Files: map[string][]byte{"config.json": nil}}, {Files: map[string][]byte{"../x": nil}}} {
		if err := m.SaveWith(filepath.Join(t.TempDir(), "m"), o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	orig, _ := m.BaseLayer("model.layers.0.self_attn.v_proj")
	_ = m.SetLayer("model.layers.0.self_attn.v_proj", nn.NewLinear("v", graph.Float32, 16, 8, false))
	if err := m.Save(filepath.Join(t.TempDir(), "m")); err == nil || !strings.Contains(err.Error(), "v_proj are replaced") {
		t.Errorf("a wrapped model: %v", err)
	}
	_ = m.SetLayer("model.layers.0.self_attn.v_proj", orig)
}

// TestLoadRefusesOversizedConfig checks that a config describing far more
// parameters than the files hold is refused before anything is allocated.
func TestLoadRefusesOversizedConfig(t *testing.T) {
	m := newModel(t, tinyConfig(ArchLlama), graph.Float32, 1, 0.5)
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	_ = json.Unmarshal(raw, &cfg)
	cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"] = 4000, 65536, 1<<22
	raw, _ = json.Marshal(cfg)
	_ = os.WriteFile(filepath.Join(dir, ConfigFile), raw, 0o644)
	if _, err := Load(dir, graph.Float32); err == nil || !strings.Contains(err.Error(), "but the weight files hold") {
		t.Errorf("oversized config: %v", err)
	}
	cfg["num_hidden_layers"] = 1 << 20
	raw, _ = json.Marshal(cfg)
	_ = os.WriteFile(filepath.Join(dir, ConfigFile), raw, 0o644)
	if _, err := Load(dir, graph.Float32); err == nil || !strings.Contains(err.Error(), "beyond any model") {
		t.Errorf("absurd config: %v", err)
	}
}
