package gpt

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
)

// tinyConfig is a small but complete GPT-2 for tests: 2 blocks, 2 heads of
// width 4, context 6, the "bytes" vocabulary.
func tinyConfig() Config {
	return Config{NLayer: 2, NHead: 2, NEmbd: 8, BlockSize: 6, VocabSize: 257, LayerNormEps: 1e-5, Tokenizer: "bytes"}
}

// newModel returns a model of cfg whose every parameter (biases and
// LayerNorm shifts included) is random, so no term of the forward pass is
// trivially zero or one: weights uniform in ±scale, LayerNorm scales in
// 1 ± 0.5.
func newModel(t testing.TB, cfg Config, dt graph.DType, seed uint64, scale float64) *Model {
	t.Helper()
	m, err := New(cfg, dt)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, p := range m.BaseParams() {
		v := make([]float64, p.Len())
		for i := range v {
			v[i] = (2*rng.Float64() - 1) * scale
			if isLNScale(p.Name) {
				v[i] = 1 + (2*rng.Float64()-1)*0.5
			}
		}
		if err := p.SetValues(v); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func isLNScale(name string) bool {
	return strings.HasSuffix(name, ".ln_1.weight") || strings.HasSuffix(name, ".ln_2.weight") || name == "ln_f.weight"
}

// randomIDs returns n ids in [0, vocab).
func randomIDs(seed uint64, n, vocab int) []int {
	rng := rand.New(rand.NewPCG(seed, 9))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
}

// runLogits compiles m.Logits for ids and returns the logits as float64s,
// computed with dropout off.
func runLogits(t testing.TB, m *Model, ids []int, batch, ctx int) []float64 {
	t.Helper()
	b := graph.NewBuilder(m.DType(), 1)
	in := b.IntInput("ids", batch*ctx)
	logits := m.Logits(in, batch, ctx)
	prog, err := b.Compile(nil, logits)
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	prog.SetTraining(false)
	if err := prog.SetInts(in, ids); err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	out, err := prog.Output(logits)
	if err != nil {
		t.Fatal(err)
	}
	return out.Values()
}

// refLogits is GPT-2's forward pass written with plain loops in float64,
// straight from the parameter values: the reference the graph model must
// match. tok is the table the token lookup reads (wte's values unless a test
// swaps the lookup); the head always uses wte.
func refLogits(m *Model, tok []float64, ids []int, batch, ctx int) []float64 {
	cfg := m.Config()
	d, nh := cfg.NEmbd, cfg.NHead
	hd := d / nh
	w := map[string][]float64{}
	for _, p := range m.BaseParams() {
		w[p.Name] = p.Values()
	}
	n := batch * ctx
	x := make([]float64, n*d)
	for r := 0; r < n; r++ {
		for j := 0; j < d; j++ {
			x[r*d+j] = tok[ids[r]*d+j] + w["wpe.weight"][(r%ctx)*d+j]
		}
	}
	for i := 0; i < cfg.NLayer; i++ {
		h := "h." + strconv.Itoa(i) + "."
		a := refLinear(refLN(x, w[h+"ln_1.weight"], w[h+"ln_1.bias"], cfg.LayerNormEps), w[h+"attn.c_attn.weight"], w[h+"attn.c_attn.bias"])
		att := refAttention(a, batch, ctx, nh, hd)
		x = refAdd(x, refLinear(att, w[h+"attn.c_proj.weight"], w[h+"attn.c_proj.bias"]))
		f := refLinear(refLN(x, w[h+"ln_2.weight"], w[h+"ln_2.bias"], cfg.LayerNormEps), w[h+"mlp.c_fc.weight"], w[h+"mlp.c_fc.bias"])
		for k, v := range f {
			f[k] = 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		}
		x = refAdd(x, refLinear(f, w[h+"mlp.c_proj.weight"], w[h+"mlp.c_proj.bias"]))
	}
	x = refLN(x, w["ln_f.weight"], w["ln_f.bias"], cfg.LayerNormEps)
	wte, v := w["wte.weight"], cfg.VocabSize
	out := make([]float64, n*v)
	for r := 0; r < n; r++ {
		for t := 0; t < v; t++ {
			var s float64
			for j := 0; j < d; j++ {
				s += x[r*d+j] * wte[t*d+j]
			}
			out[r*v+t] = s
		}
	}
	return out
}

// refLinear is x·W + b for x [n, in], W [in, out].
func refLinear(x, w, b []float64) []float64 {
	out := len(b)
	in := len(w) / out
	n := len(x) / in
	y := make([]float64, n*out)
	for r := 0; r < n; r++ {
		for o := 0; o < out; o++ {
			s := b[o]
			for i := 0; i < in; i++ {
				s += x[r*in+i] * w[i*out+o]
			}
			y[r*out+o] = s
		}
	}
	return y
}

// refLN is LayerNorm over rows of width len(g), biased variance.
func refLN(x, g, b []float64, eps float64) []float64 {
	d := len(g)
	y := make([]float64, len(x))
	for r := 0; r < len(x)/d; r++ {
		row := x[r*d : (r+1)*d]
		var mu, va float64
		for _, v := range row {
			mu += v
		}
		mu /= float64(d)
		for _, v := range row {
			va += (v - mu) * (v - mu)
		}
		va /= float64(d)
		for j, v := range row {
			y[r*d+j] = (v-mu)/math.Sqrt(va+eps)*g[j] + b[j]
		}
	}
	return y
}

// refAttention is causal multi-head attention on qkv [batch·ctx, 3d].
func refAttention(qkv []float64, batch, ctx, nh, hd int) []float64 {
	d := nh * hd
	y := make([]float64, batch*ctx*d)
	for b := 0; b < batch; b++ {
		for h := 0; h < nh; h++ {
			for i := 0; i < ctx; i++ {
				q := qkv[(b*ctx+i)*3*d+h*hd:]
				s := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					k := qkv[(b*ctx+j)*3*d+d+h*hd:]
					for c := 0; c < hd; c++ {
						s[j] += q[c] * k[c]
					}
					s[j] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, s[j])
				}
				var z float64
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					z += s[j]
				}
				for j := 0; j <= i; j++ {
					v := qkv[(b*ctx+j)*3*d+2*d+h*hd:]
					for c := 0; c < hd; c++ {
						y[(b*ctx+i)*d+h*hd+c] += s[j] / z * v[c]
					}
				}
			}
		}
	}
	return y
}

func refAdd(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

// maxRelErr returns max|got−want| / max|want|: an error relative to the
// tensor's scale, which (unlike an element-wise ratio) does not blow up on
// elements near zero.
func maxRelErr(got, want []float64) float64 {
	var e, s float64
	for i := range want {
		if math.IsNaN(got[i]) {
			return math.Inf(1)
		}
		e = math.Max(e, math.Abs(got[i]-want[i]))
		s = math.Max(s, math.Abs(want[i]))
	}
	if s == 0 {
		return e
	}
	return e / s
}

// checkClose fails when got and want differ by more than tol relative to
// want's largest magnitude.
func checkClose(t testing.TB, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	if e := maxRelErr(got, want); !(e <= tol) {
		t.Errorf("%s: relative error %.3g, tolerance %.3g", what, e, tol)
	}
}
