package graph

import (
	"math"
	"strings"
	"testing"
)

// refAttention is the naive per-(b, h, i, j) loop of CausalSelfAttention
// without dropout, in float64: qkv [B·T, 3d] → [B·T, d].
func refAttention(qkv []float64, rows, d, batch, heads int) []float64 {
	tt, hd := rows/batch, d/heads
	y := make([]float64, rows*d)
	s := make([]float64, tt)
	for b := 0; b < batch; b++ {
		for h := 0; h < heads; h++ {
			at := func(t, block, c int) float64 { return qkv[(b*tt+t)*3*d+block*d+h*hd+c] }
			for i := 0; i < tt; i++ {
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					s[j] = 0
					for c := 0; c < hd; c++ {
						s[j] += at(i, 0, c) * at(j, 1, c)
					}
					s[j] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, s[j])
				}
				var z float64
				for j := 0; j <= i; j++ {
					s[j] = math.Exp(s[j] - mx)
					z += s[j]
				}
				for c := 0; c < hd; c++ {
					var acc float64
					for j := 0; j <= i; j++ {
						acc += s[j] / z * at(j, 2, c)
					}
					y[(b*tt+i)*d+h*hd+c] = acc
				}
			}
		}
	}
	return y
}

func attnCase(name string, rows, d, batch, heads int, p, scale float64) opCase {
	return opCase{name: name, params: []pspec{{name: "qkv", shape: []int{rows, 3 * d}, scale: scale}},
		build: func(b *Builder, ps []*Node) *Node { return CausalSelfAttention(ps[0], batch, heads, p) }}
}

func TestCausalSelfAttentionGradients(t *testing.T) {
	cases := []opCase{
		attnCase("B2 T4 d6 h2", 8, 6, 2, 2, 0, 1),
		attnCase("B1 T5 d4 h1", 5, 4, 1, 1, 0, 2),
		attnCase("B3 T3 d8 h4", 9, 8, 3, 4, 0, 1),
		attnCase("T1", 2, 4, 2, 2, 0, 1),
		// T = 70 spans three row blocks of the causal products, the last partial.
		attnCase("T70 blocks", 140, 4, 2, 2, 0, 1),
		attnCase("T70 blocks dropout", 70, 4, 1, 1, 0.2, 1),
		// The same mask must be used forward and backward (and is held fixed
		// across the finite-difference runs by the RNG state).
		attnCase("dropout 0.3", 8, 6, 2, 2, 0.3, 1),
		attnCase("dropout 0.5 h3", 12, 9, 2, 3, 0.5, 1),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

func TestCausalSelfAttentionMatchesReference(t *testing.T) {
	for _, c := range []struct{ rows, d, batch, heads int }{
		{8, 6, 2, 2}, {12, 12, 3, 4}, {7, 5, 1, 1}, {64, 16, 4, 2}, {140, 8, 2, 2}, {96, 6, 1, 3},
	} {
		ps := makeParams([]pspec{{name: "qkv", shape: []int{c.rows, 3 * c.d}, scale: 2}}, Float64, 6)
		got := forward(t, Float64, ps, func(b *Builder, p []*Node) *Node {
			return CausalSelfAttention(p[0], c.batch, c.heads, 0)
		})
		want := refAttention(ps[0].Float64s(), c.rows, c.d, c.batch, c.heads)
		compareRel(t, "attention", got, want, 1e-14)
	}
}

// TestCausalSelfAttentionHugeScores uses q·k of order 1e4: without a per-row
// max, exp overflows to Inf and the softmax to NaN.
func TestCausalSelfAttentionHugeScores(t *testing.T) {
	const rows, d, batch, heads = 8, 8, 2, 2
	for _, dt := range []DType{Float64, Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			spec := []pspec{{name: "qkv", shape: []int{rows, 3 * d}, scale: 1, init: func(v []float64) {
				for r := 0; r < rows; r++ {
					for c := 0; c < 2*d; c++ {
						v[r*3*d+c] *= 100 // q and k: scores ~ 1e4
					}
				}
			}}}
			ps := makeParams(spec, dt, 8)
			b := NewBuilder(dt, 1)
			y := CausalSelfAttention(b.Param(ps[0]), batch, heads, 0)
			prog, err := b.Compile(lossFor(b, y, 3), y)
			if err != nil {
				t.Fatal(err)
			}
			if err := prog.Run(); err != nil {
				t.Fatal(err)
			}
			out, err := prog.Output(y)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := prog.Grad(ps[0])
			for name, vals := range map[string][]float64{"output": out.Values(), "gradient": g.Values()} {
				for i, v := range vals {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("%s[%d] = %v", name, i, v)
					}
				}
			}
			want := refAttention(makeParams(spec, Float64, 8)[0].Float64s(), rows, d, batch, heads)
			compareRel(t, "output", out.Values(), want, 1e-4)
		})
	}
}

// TestCausalSelfAttentionCausal changes the q, k and v of one token: outputs
// of earlier tokens of its sequence and all tokens of other sequences stay
// bit-identical; the token itself and later ones change.
func TestCausalSelfAttentionCausal(t *testing.T) {
	const tt, d, batch, heads, changed = 6, 8, 2, 2, 3 // token 3 of sequence 0
	ps := makeParams([]pspec{{name: "qkv", shape: []int{batch * tt, 3 * d}}}, Float64, 2)
	build := func(b *Builder, p []*Node) *Node { return CausalSelfAttention(p[0], batch, heads, 0) }
	before := forward(t, Float64, ps, build)
	v := ps[0].Float64s()
	for c := 0; c < 3*d; c++ {
		v[changed*3*d+c] += 0.5
	}
	after := forward(t, Float64, ps, build)
	for r := 0; r < batch*tt; r++ {
		same := true
		for c := 0; c < d; c++ {
			same = same && before[r*d+c] == after[r*d+c]
		}
		if wantSame := r < changed || r >= tt; same != wantSame {
			t.Errorf("row %d: unchanged = %v, want %v", r, same, wantSame)
		}
	}
}

// TestCausalSelfAttentionDropout makes V the identity (T = hd, one head), so
// each output row is a row of drop(P): every entry must be 0 or P/(1−p), the
// dropped share must be near p, and with training off the op is exact.
func TestCausalSelfAttentionDropout(t *testing.T) {
	const tt, d, batch, p = 8, 8, 60, 0.25
	ps := makeParams([]pspec{{name: "qkv", shape: []int{batch * tt, 3 * d}, init: func(v []float64) {
		for r := 0; r < batch*tt; r++ {
			for c := 0; c < d; c++ {
				v[r*3*d+2*d+c] = 0
			}
			v[r*3*d+2*d+r%tt] = 1
		}
	}}}, Float64, 3)
	want := refAttention(ps[0].Float64s(), batch*tt, d, batch, 1)

	b := NewBuilder(Float64, 42)
	y := CausalSelfAttention(b.Param(ps[0]), batch, 1, p)
	prog, err := b.Compile(nil, y)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	out, _ := prog.Output(y)
	got := out.Values()
	var kept, dropped int
	for r := 0; r < batch*tt; r++ {
		for j := 0; j < tt; j++ {
			g, w := got[r*d+j], want[r*d+j]
			switch {
			case j > r%tt:
				if g != 0 {
					t.Fatalf("row %d: future key %d has weight %v", r, j, g)
				}
			case g == 0:
				dropped++
			case math.Abs(g-w/(1-p)) <= 1e-14:
				kept++
			default:
				t.Fatalf("row %d key %d: %v, want 0 or %v", r, j, g, w/(1-p))
			}
		}
	}
	// 2160 Bernoulli(0.25) draws: the standard deviation of the share is 0.0093.
	if share := float64(dropped) / float64(kept+dropped); math.Abs(share-p) > 0.04 {
		t.Errorf("dropped share %.3f, want about %v", share, p)
	}

	prog.SetTraining(false)
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
	out, _ = prog.Output(y)
	compareRel(t, "training off", out.Values(), want, 1e-14)
}

func TestCausalSelfAttentionErrors(t *testing.T) {
	cases := []struct {
		name         string
		shape        []int
		batch, heads int
		p            float64
		want         string
	}{
		{"rows", []int{7, 12}, 2, 2, 0, "batch 2"},
		{"columns", []int{8, 10}, 2, 2, 0, "3·d"},
		{"heads", []int{8, 12}, 2, 3, 0, "3 heads"},
		{"zero batch", []int{8, 12}, 0, 2, 0, "batch 0"},
		{"zero heads", []int{8, 12}, 2, 0, 0, "0 heads"},
		{"dropout 1", []int{8, 12}, 2, 2, 1, "dropout"},
		{"dropout <0", []int{8, 12}, 2, 2, -0.1, "dropout"},
		{"dropout NaN", []int{8, 12}, 2, 2, math.NaN(), "dropout"},
		{"1-D", []int{12}, 1, 1, 0, "shape"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			y := CausalSelfAttention(b.Input("qkv", c.shape...), c.batch, c.heads, c.p)
			if y.Err() == nil {
				t.Fatal("built without error")
			}
			if !strings.Contains(y.Err().Error(), c.want) || !strings.Contains(y.Err().Error(), "qkv") {
				t.Errorf("error %q does not mention qkv and %q", y.Err(), c.want)
			}
		})
	}
	b := NewBuilder(Float64, 1)
	if y := CausalSelfAttention(b.IntInput("ids", 4, 6), 1, 1, 0); y.Err() == nil {
		t.Error("integer input built without error")
	}
}

// TestCausalSelfAttentionRerun runs one program on two inputs: the reused
// output and probability buffers must follow the new values, giving the same
// output and gradient as a fresh program.
func TestCausalSelfAttentionRerun(t *testing.T) {
	const rows, d, batch, heads = 8, 6, 2, 3
	run := func(prog *Program, y *Node, w *Param) (out, grad []float64) {
		t.Helper()
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		o, err := prog.Output(y)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := prog.Grad(w)
		if !ok {
			t.Fatal("no gradient")
		}
		return o.Values(), g.Values()
	}
	compile := func(w *Param) (*Program, *Node) {
		b := NewBuilder(Float64, 1)
		y := CausalSelfAttention(b.Param(w), batch, heads, 0)
		prog, err := b.Compile(lossFor(b, y, 3), y)
		if err != nil {
			t.Fatal(err)
		}
		return prog, y
	}
	spec := []pspec{{name: "qkv", shape: []int{rows, 3 * d}}}
	w := makeParams(spec, Float64, 1)[0]
	prog, y := compile(w)
	run(prog, y, w)
	second := makeParams(spec, Float64, 2)[0]
	copy(w.Float64s(), second.Float64s())
	gotOut, gotGrad := run(prog, y, w)
	freshProg, freshY := compile(second)
	wantOut, wantGrad := run(freshProg, freshY, second)
	compareRel(t, "output", gotOut, wantOut, 0)
	compareRel(t, "gradient", gotGrad, wantGrad, 0)
	compareRel(t, "reference", gotOut, refAttention(second.Float64s(), rows, d, batch, heads), 1e-14)
}
