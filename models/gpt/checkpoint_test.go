package gpt

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
	"github.com/golora/golora/safetensors"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, dt := range []graph.DType{graph.Float32, graph.Float64} {
		t.Run(dt.String(), func(t *testing.T) {
			cfg := tinyConfig()
			cfg.EmbdDropout, cfg.ResidDropout, cfg.AttnDropout, cfg.LayerNormEps = 0.1, 0.2, 0.05, 1e-6
			m := newModel(t, cfg, dt, 11, 0.5)
			dir := filepath.Join(t.TempDir(), "model")
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			got, err := Load(dir, dt)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config() != cfg {
				t.Errorf("config %+v, want %+v", got.Config(), cfg)
			}
			want := m.BaseParams()
			for i, p := range got.BaseParams() {
				if p.Name != want[i].Name || !slices.Equal(p.Values(), want[i].Values()) {
					t.Errorf("%s differs after the round trip", p.Name)
				}
			}
			// The file: Hugging Face names, the model's dtype, format "pt".
			f, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			if f.Metadata["format"] != "pt" {
				t.Errorf("metadata %v, want format pt", f.Metadata)
			}
			var names []string
			for _, p := range want {
				names = append(names, p.Name)
				if tn, _ := f.Tensor(p.Name); tn.DType != map[graph.DType]string{graph.Float32: "F32", graph.Float64: "F64"}[dt] {
					t.Errorf("%s stored as %s", p.Name, tn.DType)
				}
			}
			slices.Sort(names)
			if !slices.Equal(f.Names(), names) {
				t.Errorf("file holds %v, want %v", f.Names(), names)
			}
			// Saving again replaces the folder.
			m.WPE.Weight.Float64s()
			_ = m.LnF.Bias.SetValues(make([]float64, cfg.NEmbd))
			if err := m.Save(dir); err != nil {
				t.Fatal(err)
			}
			again, err := Load(dir, dt)
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(again.LnF.Bias.Values(), func(v float64) bool { return v != 0 }) {
				t.Error("second Save did not replace the weights")
			}
		})
	}
}

// TestConfigJSON checks the keys Save writes against a Hugging Face
// GPT2Config.
func TestConfigJSON(t *testing.T) {
	cfg, _ := Preset("micro")
	m, err := New(cfg, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"model_type": "gpt2", "architectures": []any{"GPT2LMHeadModel"}, "activation_function": "gelu_new",
		"n_layer": 4.0, "n_head": 4.0, "n_embd": 128.0, "n_positions": 256.0, "n_ctx": 256.0, "vocab_size": 257.0,
		"layer_norm_epsilon": 1e-5, "embd_pdrop": 0.1, "resid_pdrop": 0.1, "attn_pdrop": 0.1,
		"bos_token_id": 256.0, "eos_token_id": 256.0, "golora_tokenizer": "bytes",
	}
	for k, v := range want {
		if gv, ok := got[k]; !ok || !jsonEqual(gv, v) {
			t.Errorf("config.json %s = %v, want %v", k, gv, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("config.json has %d keys, want %d: %s", len(got), len(want), raw)
	}
	rc, err := ReadConfig(dir)
	if err != nil || rc != cfg {
		t.Errorf("ReadConfig = %+v, %v; want %+v", rc, err, cfg)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// hubConfig is the config.json of the "gpt2" checkpoint on the Hugging Face
// hub, key for key, with the sizes shrunk (n_layer, n_head, n_embd,
// n_positions, n_ctx).
const hubConfig = `{
  "activation_function": "gelu_new",
  "architectures": [
    "GPT2LMHeadModel"
  ],
  "attn_pdrop": 0.1,
  "bos_token_id": 50256,
  "embd_pdrop": 0.1,
  "eos_token_id": 50256,
  "initializer_range": 0.02,
  "layer_norm_epsilon": 1e-05,
  "model_type": "gpt2",
  "n_ctx": 6,
  "n_embd": 8,
  "n_head": 2,
  "n_layer": 2,
  "n_positions": 6,
  "resid_pdrop": 0.1,
  "summary_activation": null,
  "summary_first_dropout": 0.1,
  "summary_proj_to_labels": true,
  "summary_type": "cls_index",
  "summary_use_proj": true,
  "task_specific_params": {
    "text-generation": {
      "do_sample": true,
      "max_length": 50
    }
  },
  "vocab_size": 50257
}
`

// causalMask is the [1, 1, n, n] lower-triangular buffer the hub's GPT-2
// files store as h.{i}.attn.bias.
func causalMask(name string, n int) safetensors.Tensor {
	v := make([]float32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			v[i*n+j] = 1
		}
	}
	return safetensors.FromFloat32s(name, []int{1, 1, n, n}, v)
}

// writeFolder writes config.json and a model.safetensors of tensors to a new
// folder and returns its path.
func writeFolder(t *testing.T, config string, tensors []safetensors.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tensorsOf returns m's base parameters as F32 tensors named by rename.
func tensorsOf(m *Model, rename func(string) string) []safetensors.Tensor {
	var ts []safetensors.Tensor
	for _, p := range m.BaseParams() {
		v := p.Values()
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		ts = append(ts, safetensors.FromFloat32s(rename(p.Name), p.Shape(), f))
	}
	return ts
}

// TestLoadHubFormat loads a folder laid out exactly as the hub's "gpt2":
// its config.json (no golora key), keys without the "transformer." prefix,
// F32, and the h.{i}.attn.bias mask buffers; then the layout that
// transformers' save_pretrained writes (prefixed keys, a tied
// lm_head.weight, masked_bias scalars).
func TestLoadHubFormat(t *testing.T) {
	cfg := Config{NLayer: 2, NHead: 2, NEmbd: 8, BlockSize: 6, VocabSize: 50257, LayerNormEps: 1e-5,
		EmbdDropout: 0.1, ResidDropout: 0.1, AttnDropout: 0.1, Tokenizer: "gpt2"}
	src := newModel(t, cfg, graph.Float32, 21, 0.3)
	ids := []int{464, 2068, 7586, 21831, 50256, 0}
	want := refLogits(src, src.WTE.Weight.Values(), ids, 1, 6)

	hub := tensorsOf(src, func(n string) string { return n })
	hub = append(hub, causalMask("h.0.attn.bias", 6), causalMask("h.1.attn.bias", 6))

	prefixed := tensorsOf(src, func(n string) string { return "transformer." + n })
	prefixed = append(prefixed,
		safetensors.FromFloat32s("lm_head.weight", src.WTE.Weight.Shape(), src.WTE.Weight.Float32s()),
		safetensors.FromFloat32s("transformer.h.0.attn.masked_bias", []int{}, []float32{-1e4}),
		safetensors.FromFloat32s("transformer.h.1.attn.masked_bias", []int{}, []float32{-1e4}),
		safetensors.Tensor{Name: "transformer.h.0.attn.bias", DType: "BOOL", Shape: []int{1, 1, 2, 2}, Data: []byte{1, 0, 1, 1}},
	)
	for name, tensors := range map[string][]safetensors.Tensor{"hub": hub, "save_pretrained": prefixed} {
		t.Run(name, func(t *testing.T) {
			dir := writeFolder(t, hubConfig, tensors)
			for _, dt := range []graph.DType{graph.Float32, graph.Float64} {
				m, err := Load(dir, dt)
				if err != nil {
					t.Fatal(err)
				}
				if m.Config() != cfg {
					t.Errorf("config %+v, want %+v", m.Config(), cfg)
				}
				for i, p := range m.BaseParams() {
					if !slices.Equal(p.Values(), src.BaseParams()[i].Values()) {
						t.Errorf("%v: %s differs from the file", dt, p.Name)
					}
				}
				checkClose(t, "logits", runLogits(t, m, ids, 1, 6), want, map[graph.DType]float64{graph.Float32: 1e-5, graph.Float64: 1e-12}[dt])
			}
		})
	}
}

// TestLoadConvertsDTypes loads F16, BF16 and F64 files into float32 and
// float64 models.
func TestLoadConvertsDTypes(t *testing.T) {
	src := newModel(t, tinyConfig(), graph.Float64, 3, 0.5)
	type conv struct {
		encode func(name string, shape []int, v []float64) (safetensors.Tensor, []float64) // tensor, exact values
	}
	convs := map[string]conv{
		// k/1024 for |k| < 2048 is exact in binary16.
		"F16": {func(name string, shape []int, v []float64) (safetensors.Tensor, []float64) {
			data := make([]byte, 2*len(v))
			exact := make([]float64, len(v))
			for i, x := range v {
				exact[i] = math.Round(x*1024) / 1024
				binary.LittleEndian.PutUint16(data[2*i:], toHalf(exact[i]))
			}
			return safetensors.Tensor{Name: name, DType: "F16", Shape: shape, Data: data}, exact
		}},
		// BF16 is the top half of a float32.
		"BF16": {func(name string, shape []int, v []float64) (safetensors.Tensor, []float64) {
			data := make([]byte, 2*len(v))
			exact := make([]float64, len(v))
			for i, x := range v {
				bits := math.Float32bits(float32(x)) >> 16
				binary.LittleEndian.PutUint16(data[2*i:], uint16(bits))
				exact[i] = float64(math.Float32frombits(bits << 16))
			}
			return safetensors.Tensor{Name: name, DType: "BF16", Shape: shape, Data: data}, exact
		}},
		"F64": {func(name string, shape []int, v []float64) (safetensors.Tensor, []float64) {
			return safetensors.FromFloat64s(name, shape, v), v
		}},
	}
	config := `{"n_layer": 2, "n_head": 2, "n_embd": 8, "n_positions": 6, "vocab_size": 257, "golora_tokenizer": "bytes"}`
	for name, c := range convs {
		t.Run(name, func(t *testing.T) {
			var tensors []safetensors.Tensor
			exact := map[string][]float64{}
			for _, p := range src.BaseParams() {
				tn, ex := c.encode(p.Name, p.Shape(), p.Values())
				tensors = append(tensors, tn)
				exact[p.Name] = ex
			}
			dir := writeFolder(t, config, tensors)
			for _, dt := range []graph.DType{graph.Float32, graph.Float64} {
				m, err := Load(dir, dt)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range m.BaseParams() {
					want := exact[p.Name]
					if dt == graph.Float32 {
						want = slices.Clone(want)
						for i, x := range want {
							want[i] = float64(float32(x))
						}
					}
					if !slices.Equal(p.Values(), want) {
						t.Errorf("%v from %s: %s converted wrongly", dt, name, p.Name)
					}
				}
			}
		})
	}
}

// toHalf encodes x, which must be 0 or a normal binary16 value with at most
// 11 significant bits, as IEEE binary16.
func toHalf(x float64) uint16 {
	if x == 0 {
		return 0
	}
	var sign uint16
	if x < 0 {
		sign, x = 0x8000, -x
	}
	frac, exp := math.Frexp(x) // x = frac·2^exp, frac in [0.5, 1)
	return sign | uint16(exp-1+15)<<10 | uint16((frac*2-1)*1024)
}

func TestLoadErrors(t *testing.T) {
	src := newModel(t, tinyConfig(), graph.Float32, 1, 0.5)
	good := t.TempDir() + "/good"
	if err := src.Save(good); err != nil {
		t.Fatal(err)
	}
	goodConfig, err := os.ReadFile(filepath.Join(good, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	config := string(goodConfig)
	plain := func(n string) string { return n }
	without := func(drop string) []safetensors.Tensor {
		var out []safetensors.Tensor
		for _, tn := range tensorsOf(src, plain) {
			if tn.Name != drop {
				out = append(out, tn)
			}
		}
		return out
	}
	with := func(extra ...safetensors.Tensor) []safetensors.Tensor { return append(tensorsOf(src, plain), extra...) }
	replace := func(tn safetensors.Tensor) []safetensors.Tensor { return append(without(tn.Name), tn) }
	nan := make([]float32, 8)
	nan[3] = float32(math.NaN())
	otherHead := slices.Clone(src.WTE.Weight.Float32s())
	otherHead[17]++
	edit := func(old, new string) string {
		if !strings.Contains(config, old) {
			t.Fatalf("config.json has no %q", old)
		}
		return strings.Replace(config, old, new, 1)
	}

	cases := []struct {
		name    string
		config  string // "" for no config.json
		tensors []safetensors.Tensor
		setup   func(dir string)
		want    []string // substrings of the error
	}{
		{"no config.json", "", tensorsOf(src, plain), nil, []string{ConfigFile, "no such file"}},
		{"no model.safetensors", config, nil, nil, []string{WeightsFile, "no such file"}},
		{"only pytorch_model.bin", config, nil, func(dir string) {
			_ = os.WriteFile(filepath.Join(dir, "pytorch_model.bin"), []byte("x"), 0o644)
		}, []string{"convert it to safetensors"}},
		{"corrupt weights", config, nil, func(dir string) {
			_ = os.WriteFile(filepath.Join(dir, WeightsFile), []byte("\x10\x00\x00\x00\x00\x00\x00\x00{}"), 0o644)
		}, []string{WeightsFile, "header length 16"}},
		{"missing tensor", config, without("h.1.mlp.c_fc.bias"), nil, []string{WeightsFile, `"h.1.mlp.c_fc.bias"`, "missing"}},
		{"mis-shaped tensor", config, replace(safetensors.FromFloat32s("h.0.attn.c_attn.weight", []int{8, 12}, make([]float32, 96))), nil,
			[]string{WeightsFile, `"h.0.attn.c_attn.weight"`, "shape [8 12], want [8 24]"}},
		{"unexpected tensor", config, with(safetensors.FromFloat32s("h.0.attn.rotary", []int{2}, make([]float32, 2))), nil,
			[]string{WeightsFile, `"h.0.attn.rotary"`, "unexpected tensor"}},
		{"config has fewer layers", edit(`"n_layer": 2`, `"n_layer": 1`), tensorsOf(src, plain), nil,
			[]string{`"h.1.`, "unexpected tensor", "n_layer 1"}},
		{"config has another width", edit(`"n_embd": 8`, `"n_embd": 12`), tensorsOf(src, plain), nil,
			[]string{`"wte.weight"`, "shape [257 8], want [257 12]", "n_embd 12"}},
		{"config has more positions", edit(`"n_positions": 6`, `"n_positions": 7`), tensorsOf(src, plain), nil,
			[]string{`"wpe.weight"`, "want [7 8]"}},
		{"untied lm_head", config, with(safetensors.FromFloat32s("lm_head.weight", []int{257, 8}, otherHead)), nil,
			[]string{`"lm_head.weight"`, "differs from wte.weight at element 17"}},
		{"mis-shaped lm_head", config, with(safetensors.FromFloat32s("lm_head.weight", []int{8}, make([]float32, 8))), nil,
			[]string{`"lm_head.weight"`, "shape [8]"}},
		{"stored twice", config, with(safetensors.FromFloat32s("transformer.ln_f.bias", []int{8}, make([]float32, 8))), nil,
			[]string{"ln_f.bias", "stored twice"}},
		{"NaN", config, replace(safetensors.FromFloat32s("h.1.ln_2.bias", []int{8}, nan)), nil,
			[]string{`"h.1.ln_2.bias"`, "element 3 is NaN"}},
		{"integer tensor", config, replace(safetensors.Tensor{Name: "ln_f.bias", DType: "I64", Shape: []int{8}, Data: make([]byte, 64)}), nil,
			[]string{`"ln_f.bias"`, "I64 is not a float type"}},
		{"not JSON", "{n_layer: 2}", tensorsOf(src, plain), nil, []string{ConfigFile, "not a GPT-2 config"}},
		{"another model type", edit(`"model_type": "gpt2"`, `"model_type": "bert"`), tensorsOf(src, plain), nil, []string{`model_type "bert"`}},
		{"erf GELU", edit(`"gelu_new"`, `"gelu"`), tensorsOf(src, plain), nil, []string{`activation_function "gelu"`}},
		{"n_inner", edit(`"n_layer": 2`, `"n_layer": 2, "n_inner": 16`), tensorsOf(src, plain), nil, []string{"n_inner 16", "32"}},
		{"unscaled attention", edit(`"n_layer": 2`, `"n_layer": 2, "scale_attn_weights": false`), tensorsOf(src, plain), nil, []string{"scale_attn_weights"}},
		{"no n_head", edit(`"n_head": 2,`, ``), tensorsOf(src, plain), nil, []string{"no n_head"}},
		{"string size", edit(`"n_head": 2`, `"n_head": "2"`), tensorsOf(src, plain), nil, []string{ConfigFile, "n_head"}},
		{"heads do not divide", edit(`"n_head": 2`, `"n_head": 3`), tensorsOf(src, plain), nil, []string{"n_embd 8 is not divisible by n_head 3"}},
		{"no tokenizer key", edit(`,
  "golora_tokenizer": "bytes"`, ``), tensorsOf(src, plain), nil,
			[]string{`no "golora_tokenizer" key`, "vocab_size 257"}},
		{"unknown tokenizer", edit(`"golora_tokenizer": "bytes"`, `"golora_tokenizer": "chars"`), tensorsOf(src, plain), nil, []string{`"chars"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.config != "" {
				if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(c.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if c.tensors != nil {
				if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), c.tensors, nil); err != nil {
					t.Fatal(err)
				}
			}
			if c.setup != nil {
				c.setup(dir)
			}
			m, err := Load(dir, graph.Float32)
			if err == nil {
				t.Fatalf("Load succeeded (%+v)", m.Config())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSaveErrors(t *testing.T) {
	m := newModel(t, tinyConfig(), graph.Float32, 1, 0.5)
	dir := filepath.Join(t.TempDir(), "m")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	// A folder with other files is left alone.
	extra := filepath.Join(dir, "tokenizer.json")
	if err := os.WriteFile(extra, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("Save over a folder with other files: err = %v", err)
	}
	if _, err := os.Stat(extra); err != nil {
		t.Errorf("Save removed tokenizer.json: %v", err)
	}
	if err := m.Save(filepath.Join(t.TempDir(), "no", "such", "parent")); err == nil {
		t.Error("Save into a missing parent folder succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	_ = os.WriteFile(file, nil, 0o644)
	if err := m.Save(file); err == nil {
		t.Error("Save onto a regular file succeeded")
	}
}

// TestReadConfigDefaults reads a minimal config.json: n_ctx stands in for
// n_positions, and absent dropouts and ε take GPT2Config's defaults.
func TestReadConfigDefaults(t *testing.T) {
	dir := t.TempDir()
	raw := `{"n_layer": 1, "n_head": 2, "n_embd": 8, "n_ctx": 16, "vocab_size": 50257}`
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{NLayer: 1, NHead: 2, NEmbd: 8, BlockSize: 16, VocabSize: 50257, LayerNormEps: 1e-5,
		EmbdDropout: 0.1, ResidDropout: 0.1, AttnDropout: 0.1, Tokenizer: "gpt2"}
	if got != want {
		t.Errorf("ReadConfig = %+v, want %+v", got, want)
	}
}
