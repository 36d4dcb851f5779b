package lora_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// comparable renders the fields of a Config that a file keeps (Seed is
// not saved; nil and empty maps print alike).
func comparable(c lora.Config) string {
	c.Seed = 0
	return fmt.Sprintf("%+v", c)
}

// TestSaveLoadRoundTrip: a saved adapter loads into a fresh copy of the
// base model with bit-identical A, B, trained biases and modules, config
// and outputs.
func TestSaveLoadRoundTrip(t *testing.T) {
	for _, dt := range dtypes {
		for _, c := range configCases() {
			t.Run(dt.String()+"/"+c.name, func(t *testing.T) {
				h1, m1 := mustInject(t, dt, c.cfg)
				train(t, h1, 3, 0.5)
				dir := filepath.Join(t.TempDir(), "adapter")
				if err := m1.Save(dir, lora.DefaultAdapter); err != nil {
					t.Fatal(err)
				}
				h2 := newTiny(dt, 2, 1).untie()
				if c.cfg.Init == lora.InitPiSSA { // a PiSSA adapter needs its residual base
					byName := map[string]*graph.Param{}
					for _, p := range h1.Params() {
						byName[p.Name] = p
					}
					for _, p := range h2.Params() {
						_ = p.CopyFrom(byName[p.Name])
					}
				}
				m2, err := lora.Load(h2, dir)
				if err != nil {
					t.Fatal(err)
				}
				c1, _ := m1.Config(lora.DefaultAdapter)
				c2, _ := m2.Config(lora.DefaultAdapter)
				if comparable(c1) != comparable(c2) {
					t.Errorf("config\n%s\nloaded as\n%s", comparable(c1), comparable(c2))
				}
				p1, p2 := m1.Params(), m2.Params()
				if len(p1) != len(p2) {
					t.Fatalf("%d parameters, loaded model has %d", len(p1), len(p2))
				}
				for i := range p1 {
					if p1[i].Name != p2[i].Name || p1[i].Trainable != p2[i].Trainable || !bitEqual(p1[i].Values(), p2[i].Values()) {
						t.Errorf("parameter %s (trainable %v) loaded as %s (trainable %v), values equal %v",
							p1[i].Name, p1[i].Trainable, p2[i].Name, p2[i].Trainable, bitEqual(p1[i].Values(), p2[i].Values()))
					}
				}
				if !bitEqual(forward(t, h1, false), forward(t, h2, false)) {
					t.Error("loaded model's logits differ")
				}
				// Saving again over the folder replaces it.
				if err := m2.Save(dir, lora.DefaultAdapter); err != nil {
					t.Fatalf("save over an adapter folder: %v", err)
				}
			})
		}
	}
}

func readJSON(t testing.TB, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeJSON(t testing.TB, path string, m map[string]any) {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGPT2SmallAdapterFile: PEFT's default on a GPT-2-small-shaped model
// (12 layers, c_attn [768, 2304], r = 8) gives 24 tensors, lora_A
// [8, 768] and lora_B [2304, 8], 294,912 trainable parameters, PEFT's
// config keys; and it loads back bit for bit.
func TestGPT2SmallAdapterFile(t *testing.T) {
	cfg := lora.PEFTDefault()
	cfg.BaseModel = "gpt2"
	m, err := lora.Inject(gpt2Shaped(12, 768), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Report(); r.Trainable != 294912 {
		t.Errorf("trainable %d, want 294,912", r.Trainable)
	}
	rng := graph.NewRand(4)
	for _, path := range mustPaths(t, m, lora.DefaultAdapter) {
		ad, _ := m.Adapter(path, lora.DefaultAdapter)
		graph.InitNormal(ad.Slices[0].B, rng, 0.1) // B = 0 would hide a transposition
	}
	dir := filepath.Join(t.TempDir(), "gpt2-lora")
	if err := m.Save(dir, lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, lora.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.Names()); n != 24 {
		t.Errorf("%d tensors, want 24", n)
	}
	for i := 0; i < 12; i++ {
		key := fmt.Sprintf("base_model.model.transformer.h.%d.attn.c_attn.lora_", i)
		a, okA := f.Tensor(key + "A.weight")
		b, okB := f.Tensor(key + "B.weight")
		if !okA || !okB || fmt.Sprint(a.Shape, b.Shape) != "[8 768] [2304 8]" || a.DType != "F32" {
			t.Fatalf("layer %d: A %v %v %s, B %v %v", i, okA, a.Shape, a.DType, okB, b.Shape)
		}
		if i == 0 { // B_file = Bᵀ: B_file[c, p] = B[p, c]
			ad, _ := m.Adapter("h.0.attn.c_attn", lora.DefaultAdapter)
			v, _, _ := f.Float32s(key + "B.weight")
			bm := ad.Slices[0].B.Float32s()
			if v[5*8+3] != bm[3*2304+5] {
				t.Errorf("lora_B is not stored transposed")
			}
		}
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v, want format pt", f.Metadata)
	}
	c := readJSON(t, filepath.Join(dir, lora.ConfigFile))
	for k, want := range map[string]any{"peft_type": "LORA", "r": 8.0, "lora_alpha": 8.0, "task_type": "CAUSAL_LM", "bias": "none",
		"fan_in_fan_out": false, "use_rslora": false, "init_lora_weights": true, "base_model_name_or_path": "gpt2", "lora_dropout": 0.0} {
		if c[k] != want {
			t.Errorf("%s = %v, want %v", k, c[k], want)
		}
	}
	if fmt.Sprint(c["target_modules"]) != "[c_attn]" || c["golora"] != nil {
		t.Errorf("target_modules %v, golora %v", c["target_modules"], c["golora"])
	}
	m2, err := lora.Load(gpt2Shaped(12, 768), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range mustPaths(t, m, lora.DefaultAdapter) {
		a1, _ := m.Adapter(path, lora.DefaultAdapter)
		a2, _ := m2.Adapter(path, lora.DefaultAdapter)
		if !bitEqual(a1.Slices[0].A.Values(), a2.Slices[0].A.Values()) || !bitEqual(a1.Slices[0].B.Values(), a2.Slices[0].B.Values()) {
			t.Fatalf("%s: A or B differs after the round trip", path)
		}
	}
}

// TestBlockForm: a q,v adapter is written as a rank-2r update of the whole
// c_attn (A stacks A_q and A_v, B has zero rows for k, alpha doubled or
// ×√2 for rsLoRA); golora's key brings back the compact form, and without
// the key it loads as a whole-layer adapter with the same outputs.
func TestBlockForm(t *testing.T) {
	for _, rs := range []bool{false, true} {
		t.Run(fmt.Sprintf("rslora=%v", rs), func(t *testing.T) {
			h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Alpha: 6, RSLoRA: rs, Targets: []string{"q", "v"}, Seed: 1})
			train(t, h, 3, 0.5)
			want := forward(t, h, false)
			dir := filepath.Join(t.TempDir(), "qv")
			if err := m.Save(dir, lora.DefaultAdapter); err != nil {
				t.Fatal(err)
			}
			c := readJSON(t, filepath.Join(dir, lora.ConfigFile))
			wantAlpha := 12.0
			if rs {
				wantAlpha = 6 * math.Sqrt2
			}
			if c["r"] != 4.0 || math.Abs(c["lora_alpha"].(float64)-wantAlpha) > 1e-12 || fmt.Sprint(c["target_modules"]) != "[c_attn]" {
				t.Errorf("block config: r %v, lora_alpha %v (want %v), target_modules %v", c["r"], c["lora_alpha"], wantAlpha, c["target_modules"])
			}
			g, _ := c["golora"].(map[string]any)
			if g == nil || g["r"] != 2.0 || fmt.Sprint(g["targets"]) != "[q v]" || fmt.Sprint(g["slices"]) != "map[h.0.attn.c_attn:[q v] h.1.attn.c_attn:[q v]]" {
				t.Errorf("golora key %v", g)
			}
			f, err := safetensors.ReadFile(filepath.Join(dir, lora.WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			const key = "base_model.model.transformer.h.0.attn.c_attn.lora_"
			a, sa, _ := f.Float64s(key + "A.weight")
			b, sb, _ := f.Float64s(key + "B.weight")
			if fmt.Sprint(sa, sb) != "[4 8] [24 4]" {
				t.Fatalf("block shapes %v %v, want [4 8] [24 4]", sa, sb)
			}
			ad, _ := m.Adapter("h.0.attn.c_attn", lora.DefaultAdapter)
			aq, av := ad.Slices[0].A.Values(), ad.Slices[1].A.Values()
			bq, bv := ad.Slices[0].B.Values(), ad.Slices[1].B.Values()
			for c := 0; c < 24; c++ {
				for p := 0; p < 4; p++ {
					var w float64
					switch {
					case c < 8 && p < 2:
						w = bq[p*8+c]
					case c >= 16 && p >= 2:
						w = bv[(p-2)*8+c-16]
					}
					if b[c*4+p] != w {
						t.Fatalf("block B[%d, %d] = %v, want %v", c, p, b[c*4+p], w)
					}
				}
			}
			for i := 0; i < 8; i++ {
				if a[0*8+i] != aq[i*2] || a[3*8+i] != av[i*2+1] {
					t.Fatalf("block A row 0 or 3 at %d is not A_qᵀ / A_vᵀ", i)
				}
			}
			h2 := newTiny(graph.Float64, 2, 1).untie()
			m2, err := lora.Load(h2, dir)
			if err != nil {
				t.Fatal(err)
			}
			if ad2, _ := m2.Adapter("h.1.attn.c_attn", lora.DefaultAdapter); len(ad2.Slices) != 2 || ad2.Rank != 2 {
				t.Errorf("compact form not restored: %d slices of rank %d", len(ad2.Slices), ad2.Rank)
			}
			if !bitEqual(forward(t, h2, false), want) {
				t.Error("compact reload: logits differ")
			}
			delete(c, "golora") // what PEFT (or a user) sees: a rank-4 adapter on c_attn
			writeJSON(t, filepath.Join(dir, lora.ConfigFile), c)
			h3 := newTiny(graph.Float64, 2, 1).untie()
			m3, err := lora.Load(h3, dir)
			if err != nil {
				t.Fatal(err)
			}
			if ad3, _ := m3.Adapter("h.0.attn.c_attn", lora.DefaultAdapter); len(ad3.Slices) != 1 || ad3.Rank != 4 || ad3.Slices[0].Part != "" {
				t.Errorf("without the golora key: %d slices of rank %d", len(ad3.Slices), ad3.Rank)
			}
			if e := maxRel(forward(t, h3, false), want); e > 1e-13 {
				t.Errorf("block form as a whole-layer adapter: logits differ by %.3g", e)
			}
		})
	}
}

// TestPEFTConfigVariants loads configs written the ways PEFT writes them:
// a regex target, layers_to_transform as one integer, layers_pattern as a
// list, init_lora_weights false or "pissa_niter_4", patterns naming the
// prefixed module key.
func TestPEFTConfigVariants(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Targets: []string{"c_fc"}, Layers: []int{1},
		RankPattern: map[string]int{"c_fc": 3}, Seed: 1})
	train(t, h, 2, 0.5)
	want := forward(t, h, false)
	dir := filepath.Join(t.TempDir(), "a")
	if err := m.Save(dir, lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(c map[string]any){
		"as saved": func(c map[string]any) {},
		"regex, int layer, pattern list, prefixed rank key": func(c map[string]any) {
			c["target_modules"] = `.*\.mlp\.c_fc`
			c["layers_to_transform"] = 1
			c["layers_pattern"] = []any{"h"}
			c["rank_pattern"] = map[string]any{`transformer\.h\.1\.mlp\.c_fc`: 3}
			c["init_lora_weights"] = false
		},
		"pissa_niter": func(c map[string]any) { c["init_lora_weights"] = "pissa_niter_4" },
		"extra PEFT keys": func(c map[string]any) {
			c["revision"], c["megatron_config"], c["exclude_modules"] = nil, nil, nil
		},
	} {
		c := readJSON(t, filepath.Join(dir, lora.ConfigFile))
		edit(c)
		d := copyDir(t, dir)
		writeJSON(t, filepath.Join(d, lora.ConfigFile), c)
		h2 := newTiny(graph.Float64, 2, 1).untie()
		m2, err := lora.Load(h2, d)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if p := mustPaths(t, m2, lora.DefaultAdapter); fmt.Sprint(p) != "[h.1.mlp.c_fc]" {
			t.Errorf("%s: adapted %v", name, p)
		}
		if !bitEqual(forward(t, h2, false), want) {
			t.Errorf("%s: logits differ", name)
		}
	}
	c := readJSON(t, filepath.Join(dir, lora.ConfigFile))
	if c["layers_pattern"] != nil || fmt.Sprint(c["layers_to_transform"]) != "[1]" || fmt.Sprint(c["rank_pattern"]) != "map[c_fc:3]" {
		t.Errorf("saved layers_pattern %v, layers_to_transform %v, rank_pattern %v", c["layers_pattern"], c["layers_to_transform"], c["rank_pattern"])
	}
	for _, bad := range []any{"x", []any{"a", "b"}} {
		c["layers_pattern"] = bad
		d := copyDir(t, dir)
		writeJSON(t, filepath.Join(d, lora.ConfigFile), c)
		if _, err := lora.Load(newTiny(graph.Float64, 2, 1), d); err == nil {
			t.Errorf("layers_pattern %v accepted", bad)
		}
	}
	c["layers_pattern"], c["layers_to_transform"] = "h", "one"
	d := copyDir(t, dir)
	writeJSON(t, filepath.Join(d, lora.ConfigFile), c)
	if _, err := lora.Load(newTiny(graph.Float64, 2, 1), d); err == nil || !strings.Contains(err.Error(), "layers_to_transform") {
		t.Errorf("layers_to_transform \"one\": %v", err)
	}
}

func TestSaveRefusesForeignFolder(t *testing.T) {
	_, m := mustInject(t, graph.Float64, lora.PEFTDefault())
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir, lora.DefaultAdapter); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("save over a folder with other files: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "notes.txt")); err != nil || string(b) != "keep" {
		t.Error("the foreign file was touched")
	}
	if err := m.Save(filepath.Join(dir, "x"), "nope"); err == nil {
		t.Error("saving an unknown adapter")
	}
}

// rawFile is a .safetensors file taken apart, to corrupt it precisely.
type rawFile struct {
	header map[string]any
	data   []byte
}

func readRaw(t testing.TB, path string) rawFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var r rawFile
	if err := json.Unmarshal(b[8:8+n], &r.header); err != nil {
		t.Fatal(err)
	}
	r.data = append([]byte(nil), b[8+n:]...)
	return r
}

func (r rawFile) bytes(t testing.TB) []byte {
	t.Helper()
	h, err := json.Marshal(r.header)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), r.data...)
}

func (r rawFile) entry(key string) map[string]any { return r.header[key].(map[string]any) }

// setF64 overwrites element i of an F64 tensor.
func (r rawFile) setF64(key string, i int, v float64) {
	off := int(r.entry(key)["data_offsets"].([]any)[0].(float64))
	binary.LittleEndian.PutUint64(r.data[off+8*i:], math.Float64bits(v))
}

// rewrite writes the file again from the tensors edit returns.
func rewrite(t testing.TB, path string, edit func(ts []safetensors.Tensor) []safetensors.Tensor) {
	t.Helper()
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, n := range f.Names() {
		tt, _ := f.Tensor(n)
		ts = append(ts, tt)
	}
	if err := safetensors.WriteFile(path, edit(ts), f.Metadata); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{lora.ConfigFile, lora.WeightsFile} {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// savedAdapters writes the two adapters the corruption tests start from,
// from a float64 tiny model: "qv" (block form of q,v, the embedding, and
// the c_attn biases with bias lora_only) and "plain" (c_fc).
func savedAdapters(t testing.TB, layers int) (qv, plain string) {
	t.Helper()
	root := t.TempDir()
	for name, cfg := range map[string]lora.Config{
		"qv":    {R: 2, Alpha: 4, Targets: []string{"q", "v", "wte"}, Bias: lora.BiasLoRAOnly, Seed: 1},
		"plain": {R: 2, Targets: []string{"c_fc"}, Seed: 2},
	} {
		h := newTiny(graph.Float64, layers, 1)
		m, err := lora.Inject(h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		train(t, h, 2, 0.5)
		if err := m.Save(filepath.Join(root, name), lora.DefaultAdapter); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(root, "qv"), filepath.Join(root, "plain")
}

const (
	keyQA  = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"
	keyQB  = "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"
	keyEB  = "base_model.model.transformer.wte.lora_embedding_B"
	keyBia = "base_model.model.transformer.h.1.attn.c_attn.bias"
)

// corruptions lists damaged adapter folders and the error each must give.
func corruptions() []struct {
	name, base, want string
	edit             func(t testing.TB, dir string)
} {
	weights := func(dir string) string { return filepath.Join(dir, lora.WeightsFile) }
	config := func(dir string) string { return filepath.Join(dir, lora.ConfigFile) }
	editRaw := func(f func(r rawFile)) func(t testing.TB, dir string) {
		return func(t testing.TB, dir string) {
			r := readRaw(t, weights(dir))
			f(r)
			// As another tool would write it: no golora checksums, so the
			// content checks are what catch the damage.
			delete(r.header["__metadata__"].(map[string]any), safetensors.ChecksumKey)
			if err := os.WriteFile(weights(dir), r.bytes(t), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	editConfig := func(f func(c map[string]any)) func(t testing.TB, dir string) {
		return func(t testing.TB, dir string) {
			c := readJSON(t, config(dir))
			f(c)
			writeJSON(t, config(dir), c)
		}
	}
	writeBytes := func(file func(string) string, f func(b []byte) []byte) func(t testing.TB, dir string) {
		return func(t testing.TB, dir string) {
			b, err := os.ReadFile(file(dir))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file(dir), f(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return []struct {
		name, base, want string
		edit             func(t testing.TB, dir string)
	}{
		{"truncated safetensors", "qv", "safetensors", writeBytes(weights, func(b []byte) []byte { return b[:len(b)/2] })},
		{"shorter than 8 bytes", "qv", "safetensors", writeBytes(weights, func(b []byte) []byte { return b[:5] })},
		{"bad header", "qv", "safetensors", writeBytes(weights, func(b []byte) []byte {
			for i := 8; i < 40; i++ {
				b[i] = '#'
			}
			return b
		})},
		{"header larger than file", "qv", "safetensors", writeBytes(weights, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b, uint64(len(b)+100))
			return b
		})},
		{"offsets out of range", "qv", "safetensors", editRaw(func(r rawFile) {
			r.entry(keyQA)["data_offsets"] = []any{0, 1 << 30}
		})},
		{"wrong dtype", "qv", "not a float type", editRaw(func(r rawFile) { r.entry(keyQA)["dtype"] = "I64" })},
		{"wrong shape", "qv", `has shape [8 4], want [4 8]`, editRaw(func(r rawFile) { r.entry(keyQA)["shape"] = []any{8, 4} })},
		{"missing key", "qv", `missing tensor "` + keyEB + `"`, func(t testing.TB, dir string) {
			rewrite(t, weights(dir), func(ts []safetensors.Tensor) []safetensors.Tensor {
				var out []safetensors.Tensor
				for _, x := range ts {
					if x.Name != keyEB {
						out = append(out, x)
					}
				}
				return out
			})
		}},
		{"extra key", "qv", `unexpected tensor "base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight"`, func(t testing.TB, dir string) {
			rewrite(t, weights(dir), func(ts []safetensors.Tensor) []safetensors.Tensor {
				return append(ts, safetensors.FromFloat64s("base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight", []int{2, 8}, make([]float64, 16)))
			})
		}},
		{"wrong bias shape", "qv", "tensor \"" + keyBia + "\" has shape [4 6], want [24]", editRaw(func(r rawFile) { r.entry(keyBia)["shape"] = []any{4, 6} })},
		{"NaN", "qv", "holds NaN", editRaw(func(r rawFile) { r.setF64(keyQA, 3, math.NaN()) })},
		{"flipped byte", "qv", `tensor "` + keyQA + `": checksum mismatch`, func(t testing.TB, dir string) {
			b, err := os.ReadFile(weights(dir))
			if err != nil {
				t.Fatal(err)
			}
			r := readRaw(t, weights(dir))
			off := len(b) - len(r.data) + int(r.entry(keyQA)["data_offsets"].([]any)[0].(float64))
			b[off+5] ^= 0x40
			if err := os.WriteFile(weights(dir), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"not block form", "qv", "not in golora's block form", editRaw(func(r rawFile) { r.setF64(keyQB, 10*4+1, 0.5) })}, // row 10 is k
		{"rank mismatch with config", "plain", "rank 2 in the file, 3 from adapter_config.json", editConfig(func(c map[string]any) { c["r"] = 3 })},
		{"block rank mismatch", "qv", "disagree with the golora key", editConfig(func(c map[string]any) {
			for k := range c["rank_pattern"].(map[string]any) {
				c["rank_pattern"].(map[string]any)[k] = 2
			}
		})},
		{"golora slices", "qv", "slices of h.0.attn.c_attn", editConfig(func(c map[string]any) {
			c["golora"].(map[string]any)["slices"].(map[string]any)["h.0.attn.c_attn"] = []any{"q"}
		})},
		{"golora format", "qv", "format 7", editConfig(func(c map[string]any) { c["golora"].(map[string]any)["format"] = 7 })},
		{"config not JSON", "qv", "not a valid config", writeBytes(config, func([]byte) []byte { return []byte("{\"r\": ") })},
		{"config trailing data", "plain", "trailing data", writeBytes(config, func(b []byte) []byte { return append(b, "{}"...) })},
		{"peft type", "plain", `peft_type "PREFIX_TUNING"`, editConfig(func(c map[string]any) { c["peft_type"] = "PREFIX_TUNING" })},
		{"no r", "plain", "no r", editConfig(func(c map[string]any) { delete(c, "r") })},
		{"r not an integer", "plain", "not a valid config", editConfig(func(c map[string]any) { c["r"] = 2.5 })},
		{"bad targets", "plain", "target_modules", editConfig(func(c map[string]any) { c["target_modules"] = 5 })},
		{"target matches nothing", "plain", `target "c_zz" matches no layer`, editConfig(func(c map[string]any) { c["target_modules"] = []any{"c_zz"} })},
		{"bad bias", "plain", "bias", editConfig(func(c map[string]any) { c["bias"] = "some" })},
		{"dora without magnitudes", "plain", `missing tensor "base_model.model.transformer.h.0.mlp.c_fc.lora_magnitude_vector"`, editConfig(func(c map[string]any) { c["use_dora"] = true })},
		{"init", "plain", `"olora" is not supported`, editConfig(func(c map[string]any) { c["init_lora_weights"] = "olora" })},
		{"dropout", "plain", "dropout", editConfig(func(c map[string]any) { c["lora_dropout"] = 1.5 })},
		{"no config", "plain", "adapter_config.json", func(t testing.TB, dir string) { _ = os.Remove(config(dir)) }},
		{"no weights", "plain", "adapter_model.safetensors", func(t testing.TB, dir string) { _ = os.Remove(weights(dir)) }},
	}
}

// TestLoadCorrupt: every damaged folder gives one clear error, no panic,
// and leaves the model exactly as it was, whether it is loaded into a bare
// host (Load) or as a second adapter (LoadAdapter).
func TestLoadCorrupt(t *testing.T) {
	qv, plain := savedAdapters(t, 2)
	for _, c := range corruptions() {
		t.Run(c.name, func(t *testing.T) {
			src := qv
			if c.base == "plain" {
				src = plain
			}
			dir := copyDir(t, src)
			c.edit(t, dir)

			h := newTiny(graph.Float64, 2, 1)
			layers, params := layersOf(h), snap(h.Params())
			if _, err := lora.Load(h, dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load: err %v, want one containing %q", err, c.want)
			} else if !strings.Contains(err.Error(), "lora: load") {
				t.Errorf("Load: err %v does not say what failed", err)
			}
			if !sameLayers(layers, layersOf(h)) {
				t.Error("Load changed the host's layers")
			}
			if d := params.diff(h.Params()); d != "" {
				t.Errorf("Load changed the host: %s", d)
			}

			h2, m := mustInject(t, graph.Float64, lora.Config{R: 3, Targets: []string{"c_proj", "c_attn"}, Bias: lora.BiasAll, Seed: 4})
			train(t, h2, 1, 0.5)
			layers, params = layersOf(h2), snap(m.Params())
			if err := m.LoadAdapter(dir, "second"); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("LoadAdapter: err %v, want one containing %q", err, c.want)
			}
			if !sameLayers(layers, layersOf(h2)) || fmt.Sprint(m.Adapters()) != "[default]" {
				t.Error("LoadAdapter changed the model's layers or adapters")
			}
			if d := params.diff(m.Params()); d != "" {
				t.Errorf("LoadAdapter changed the model: %s", d)
			}
		})
	}
	// The undamaged folders load.
	for _, dir := range []string{qv, plain} {
		if _, err := lora.Load(newTiny(graph.Float64, 2, 1), dir); err != nil {
			t.Errorf("undamaged %s: %v", filepath.Base(dir), err)
		}
	}
}

// TestLoadRollsBackWrapping: when the host refuses a layer halfway through,
// the layers already wrapped are put back.
func TestLoadRollsBackWrapping(t *testing.T) {
	qv, _ := savedAdapters(t, 2)
	h := newTiny(graph.Float64, 2, 1)
	h.setLayerFailsFor = "h.1.attn.c_attn"
	layers, params := layersOf(h), snap(h.Params())
	if _, err := lora.Load(h, qv); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("err %v", err)
	}
	if !sameLayers(layers, layersOf(h)) {
		t.Error("layers wrapped before the failure were not put back")
	}
	if d := params.diff(h.Params()); d != "" {
		t.Error(d)
	}
}

// TestLoadF32FileIntoF64 loads a float32 adapter into a float64 model:
// dtypes convert at the boundary.
func TestLoadF32FileIntoF64(t *testing.T) {
	h, m := mustInject(t, graph.Float32, lora.Config{R: 2, Targets: []string{"c_fc"}, Seed: 1})
	train(t, h, 2, 0.5)
	dir := filepath.Join(t.TempDir(), "a")
	if err := m.Save(dir, lora.DefaultAdapter); err != nil {
		t.Fatal(err)
	}
	m64, err := lora.Load(newTiny(graph.Float64, 2, 1).untie(), dir)
	if err != nil {
		t.Fatal(err)
	}
	a32, _ := m.Adapter("h.1.mlp.c_fc", lora.DefaultAdapter)
	a64, _ := m64.Adapter("h.1.mlp.c_fc", lora.DefaultAdapter)
	if !bitEqual(a32.Slices[0].B.Values(), a64.Slices[0].B.Values()) {
		t.Error("float32 values did not widen exactly")
	}
}

// FuzzLoadAdapter feeds arbitrary adapter_config.json and
// adapter_model.safetensors contents to Load: it must never panic, and an
// error must leave the host exactly as it was. It works on a one-block
// model to keep each run short. Run it bounded with
//
//	go test ./nn/lora -run '^$' -fuzz FuzzLoadAdapter -fuzztime 15s -fuzzminimizetime 20x
//
// (with the default minimisation time of 60 s a short run is spent
// shrinking its first interesting inputs).
func FuzzLoadAdapter(f *testing.F) {
	qv, plain := savedAdapters(f, 1)
	for _, dir := range []string{qv, plain} {
		cfg, _ := os.ReadFile(filepath.Join(dir, lora.ConfigFile))
		w, _ := os.ReadFile(filepath.Join(dir, lora.WeightsFile))
		f.Add(cfg, w)
		f.Add(cfg, w[:len(w)-3])
		f.Add([]byte(strings.Replace(string(cfg), `"r": `, `"r": 1`, 1)), w)
	}
	f.Add([]byte(`{"peft_type":"LORA","r":1,"lora_alpha":1,"target_modules":"h\\.0\\..*"}`), []byte{})
	f.Fuzz(func(t *testing.T, cfg, weights []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, lora.ConfigFile), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, lora.WeightsFile), weights, 0o644); err != nil {
			t.Fatal(err)
		}
		h := newTiny(graph.Float64, 1, 1)
		layers, params := layersOf(h), snap(h.Params())
		m, err := lora.Load(h, dir)
		if err != nil {
			if !sameLayers(layers, layersOf(h)) {
				t.Fatalf("error %v, and the layers changed", err)
			}
			if d := params.diff(h.Params()); d != "" {
				t.Fatalf("error %v, and the host changed: %s", err, d)
			}
			return
		}
		if len(m.Adapters()) != 1 {
			t.Fatalf("loaded %v", m.Adapters())
		}
		forward(t, h, false) // a loaded model runs
	})
}
