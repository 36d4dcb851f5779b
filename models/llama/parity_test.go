package llama

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// Parity with tools/llama_reference.py, Llama-family decoders and LoRA
// written independently in PyTorch. The script wrote every file under
// testdata/ (model folders, PEFT adapters, float64 reference results); its
// header says how to regenerate them.

// parityCases are the reference's cases: llama with llama3 rope scaling
// (F32), qwen2 with q/k/v biases and a tied head (BF16), qwen3 with q/k
// norms in three shards (LoRA also on the embedding and lm_head).
var parityCases = []string{"llama3", "qwen2", "qwen3"}

// parityTol bounds max|golora − PyTorch| / max(1, max|PyTorch|) per tensor:
// float64 agrees to rounding, float32 to its precision over the layers
// (the 1e-4).
var parityTol = map[graph.DType]float64{graph.Float64: 1e-9, graph.Float32: 1e-4}

type llamaRef struct {
	f            *safetensors.File
	batch, ctx   int
	smoothing    float64
	ids, targets []int
	mask         []float64
}

func readLlamaRef(t testing.TB, name string) *llamaRef {
	t.Helper()
	f, err := safetensors.ReadFile(filepath.Join("testdata", "parity_"+name+"_ref.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	r := &llamaRef{f: f}
	if r.batch, err = strconv.Atoi(f.Metadata["batch"]); err != nil {
		t.Fatal(err)
	}
	if r.ctx, err = strconv.Atoi(f.Metadata["ctx"]); err != nil {
		t.Fatal(err)
	}
	if r.smoothing, err = strconv.ParseFloat(f.Metadata["smoothing"], 64); err != nil {
		t.Fatal(err)
	}
	r.ids, r.targets, r.mask = r.ints(t, "ids"), r.ints(t, "targets"), r.floats(t, "mask")
	return r
}

func (r *llamaRef) floats(t testing.TB, name string) []float64 {
	t.Helper()
	v, _, err := r.f.Float64s(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (r *llamaRef) ints(t testing.TB, name string) []int {
	t.Helper()
	tn, ok := r.f.Tensor(name)
	if !ok || tn.DType != "I64" {
		t.Fatalf("reference has no I64 tensor %s", name)
	}
	out := make([]int, len(tn.Data)/8)
	for i := range out {
		out[i] = int(int64(binary.LittleEndian.Uint64(tn.Data[8*i:])))
	}
	return out
}

// transpose returns the transpose of v, a row-major [rows, cols] matrix.
func transpose(v []float64, rows, cols int) []float64 {
	out := make([]float64, len(v))
	for i := range rows {
		for j := range cols {
			out[j*rows+i] = v[i*cols+j]
		}
	}
	return out
}

// TestParity loads each reference model folder (F32, BF16, sharded) and its
// PEFT adapter with golora, in float64 and float32, and compares with
// PyTorch: the logits without LoRA, the logits and loss with LoRA, the
// gradients of every LoRA A and B, and the logits and loss after merging
// the adapter into the weights (PEFT's rule), which also equal the unmerged
// loss.
func TestParity(t *testing.T) {
	for _, name := range parityCases {
		r := readLlamaRef(t, name)
		for _, dt := range []graph.DType{graph.Float64, graph.Float32} {
			t.Run(name+"/"+dt.String(), func(t *testing.T) {
				checkLlamaParity(t, name, dt, r)
			})
		}
	}
}

func checkLlamaParity(t *testing.T, name string, dt graph.DType, r *llamaRef) {
	tol := parityTol[dt]
	worst := map[string]float64{}
	compare := func(what string, got, want []float64) {
		t.Helper()
		checkClose(t, what, got, want, tol)
		key := what
		if strings.HasPrefix(what, "grad ") {
			key = "LoRA gradients"
		}
		worst[key] = math.Max(worst[key], maxRelErr(got, want))
	}
	m, err := Load(filepath.Join("testdata", "parity_"+name), dt)
	if err != nil {
		t.Fatal(err)
	}
	n := r.batch * r.ctx
	compare("logits_base", runLogits(t, m, r.ids, r.batch, r.ctx), r.floats(t, "logits_base"))

	lm, err := lora.Load(m, filepath.Join("testdata", "parity_"+name+"_adapter"))
	if err != nil {
		t.Fatal(err)
	}
	lm.MergeEmbeddings = !m.Config().TieEmbeddings
	paths, _ := lm.Paths(lora.DefaultAdapter)
	b := graph.NewBuilder(dt, 1)
	logits := m.Logits(b.IntConstant("ids", r.ids, n), r.batch, r.ctx)
	loss := graph.SoftmaxCrossEntropy(logits, b.IntConstant("targets", r.targets, n), b.Constant("mask", r.mask, n), r.smoothing)
	prog, err := b.Compile(loss, logits)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	if got, want := len(prog.Trainable()), 2*len(paths); got != want {
		t.Errorf("%d trainable parameters, want the %d LoRA matrices", got, want)
	}
	out, _ := prog.Output(logits)
	compare("logits", out.Values(), r.floats(t, "logits"))
	compare("loss", []float64{prog.Loss()}, r.floats(t, "loss"))
	unmergedLoss := prog.Loss()
	for _, path := range paths {
		ad, err := lm.Adapter(path, lora.DefaultAdapter)
		if err != nil {
			t.Fatal(err)
		}
		a, bn := "lora_A", "lora_B"
		if path == "model.embed_tokens" {
			a, bn = "lora_embedding_A", "lora_embedding_B"
		}
		for _, x := range []struct {
			key string
			p   *graph.Param
		}{{path + "." + a, ad.Slices[0].A}, {path + "." + bn, ad.Slices[0].B}} {
			g, ok := prog.Grad(x.p)
			if !ok {
				t.Fatalf("no gradient for %s", x.key)
			}
			s := x.p.Shape() // golora's [in, r] and [r, out] are PEFT's transposed
			compare("grad "+x.key, transpose(g.Values(), s[0], s[1]), r.floats(t, "grad."+x.key))
		}
	}
	if err := lm.Merge(); err != nil {
		t.Fatal(err)
	}
	b2 := graph.NewBuilder(dt, 1)
	logits2 := m.Logits(b2.IntConstant("ids", r.ids, n), r.batch, r.ctx)
	loss2 := graph.SoftmaxCrossEntropy(logits2, b2.IntConstant("targets", r.targets, n), b2.Constant("mask", r.mask, n), r.smoothing)
	merged, err := b2.Compile(nil, logits2, loss2)
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()
	if err := merged.Forward(); err != nil {
		t.Fatal(err)
	}
	mo, _ := merged.Output(logits2)
	ml, _ := merged.Output(loss2)
	compare("logits_merged", mo.Values(), r.floats(t, "logits_merged"))
	compare("loss_merged", ml.Values(), r.floats(t, "loss_merged"))
	compare("merged vs unmerged loss", ml.Values(), []float64{unmergedLoss})
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range worst {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Logf("%v %-24s max relative error %.2e (tolerance %.0e)", dt, k, worst[k], tol)
	}
}

// TestParityFiles checks what the reference's files hold beyond the maths:
// the configs read as intended, and an adapter golora saves back has PEFT's
// keys, shapes and values of the one PyTorch wrote.
func TestParityFiles(t *testing.T) {
	for _, c := range []struct {
		name  string
		check func(c Config) bool
	}{
		{"llama3", func(c Config) bool {
			return c.Arch == ArchLlama && c.RoPE.Type == "llama3" && c.RoPE.OriginalMaxPositions == 64 && !c.TieEmbeddings && c.KVHeads == 2
		}},
		{"qwen2", func(c Config) bool { return c.Arch == ArchQwen2 && c.QKVBias && c.TieEmbeddings && c.KVHeads == 1 }},
		{"qwen3", func(c Config) bool {
			return c.Arch == ArchQwen3 && c.QKNorm && c.HeadDim == 12 && c.RoPE.Type == "linear" && c.RoPE.Factor == 2
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(filepath.Join("testdata", "parity_"+c.name), graph.Float32)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(m.Config()) {
				t.Errorf("config %+v", m.Config())
			}
			adapterDir := filepath.Join("testdata", "parity_"+c.name+"_adapter")
			lm, err := lora.Load(m, adapterDir)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "adapter")
			if err := lm.Save(dir, lora.DefaultAdapter); err != nil {
				t.Fatal(err)
			}
			ref, err := safetensors.ReadFile(filepath.Join(adapterDir, lora.WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			got, err := safetensors.ReadFile(filepath.Join(dir, lora.WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Names(), ref.Names()) {
				t.Fatalf("saved keys %v\nPyTorch's %v", got.Names(), ref.Names())
			}
			for _, k := range ref.Names() {
				a, sa, _ := ref.Float32s(k)
				b, sb, _ := got.Float32s(k)
				if !slices.Equal(sa, sb) || !slices.Equal(a, b) {
					t.Errorf("%s: shape %v vs %v, or values differ", k, sb, sa)
				}
			}
		})
	}
}
