package graph

import (
	"math"
	"strings"
	"testing"
)

// ropeCase builds RoPE on parameter x [len(pos), heads·hd] at pos.
func ropeCase(name string, pos []int, heads, hd int, cfg RoPEConfig, scale float64) opCase {
	return opCase{name: name, params: []pspec{{name: "x", shape: []int{len(pos), heads * hd}, scale: scale}},
		build: func(b *Builder, p []*Node) *Node {
			return RoPE(p[0], b.IntConstant("pos", pos, len(pos)), hd, cfg)
		}}
}

func TestRoPEGradients(t *testing.T) {
	plain := RoPEConfig{Theta: 10000}
	llama3 := RoPEConfig{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 16}
	cases := []opCase{
		// two sequences of 3 tokens: positions repeat (the table path)
		ropeCase("batch of 2×3, 2 heads", []int{0, 1, 2, 0, 1, 2}, 2, 4, plain, 1),
		// positions beyond the row count (the per-row path, as in decoding)
		ropeCase("far positions", []int{17, 5, 300}, 3, 6, plain, 1),
		ropeCase("linear scaling", []int{0, 3, 9, 4}, 1, 8, RoPEConfig{Theta: 100, Type: "linear", Factor: 4}, 2),
		ropeCase("llama3 scaling", []int{2, 40, 7, 1000}, 2, 8, llama3, 1),
		{name: "q and k share a position", params: []pspec{{name: "q", shape: []int{3, 8}}, {name: "k", shape: []int{3, 4}}},
			build: func(b *Builder, p []*Node) *Node {
				pos := b.IntConstant("pos", []int{4, 0, 2}, 3)
				// q·k per row, through both rotations
				return Mul(Sum(Mul(RoPE(p[0], pos, 4, plain), RoPE(p[0], pos, 4, plain))), Sum(RoPE(p[1], pos, 4, plain)))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// ropeRef is the rotate-half formula on one [N, H·hd] matrix in float64:
// x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁].
func ropeRef(x []float64, pos []int, hd int, freq []float64) []float64 {
	out := make([]float64, len(x))
	width := len(x) / len(pos)
	h := hd / 2
	for r, p := range pos {
		for o := 0; o < width; o += hd {
			for j := range hd {
				i := j % h
				c, s := math.Cos(float64(p)*freq[i]), math.Sin(float64(p)*freq[i])
				var rot float64
				if j < h {
					rot = -x[r*width+o+j+h]
				} else {
					rot = x[r*width+o+j-h]
				}
				out[r*width+o+j] = x[r*width+o+j]*c + rot*s
			}
		}
	}
	return out
}

func TestRoPEMatchesReference(t *testing.T) {
	for _, c := range []struct {
		name   string
		pos    []int
		hd, nh int
		cfg    RoPEConfig
		tol32  float64 // float32 angles p·f lose p·2⁻²⁴ rad
	}{
		{"batch", []int{0, 1, 2, 3, 0, 1, 2, 3}, 8, 2, RoPEConfig{Theta: 10000}, 1e-6},
		{"decode positions", []int{100, 7, 2047}, 16, 3, RoPEConfig{Theta: 1e5}, 3e-4},
		{"llama3", []int{0, 5, 9000, 70000}, 8, 1, RoPEConfig{Theta: 500000, Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}, 1e-2},
	} {
		t.Run(c.name, func(t *testing.T) {
			ps := makeParams([]pspec{{name: "x", shape: []int{len(c.pos), c.nh * c.hd}}}, Float64, 2)
			freq, err := c.cfg.InvFreq(c.hd)
			if err != nil {
				t.Fatal(err)
			}
			want := ropeRef(ps[0].Float64s(), c.pos, c.hd, freq)
			build := func(b *Builder, p []*Node) *Node {
				return RoPE(p[0], b.IntConstant("pos", c.pos, len(c.pos)), c.hd, c.cfg)
			}
			compareRel(t, "float64", forward(t, Float64, ps, build), want, 1e-14)
			compareRel(t, "float32", forward(t, Float32, []*Param{ps[0].Convert(Float32)}, build), want, c.tol32)
		})
	}
}

// TestRoPERelativePosition checks the property RoPE exists for: the dot
// product of a rotated query and key depends on their positions only
// through the difference, and each rotation keeps the norm of every pair.
func TestRoPERelativePosition(t *testing.T) {
	const hd = 8
	cfg := RoPEConfig{Theta: 10000}
	ps := makeParams([]pspec{{name: "q", shape: []int{1, hd}}, {name: "k", shape: []int{1, hd}}}, Float64, 4)
	q, k := ps[0].Float64s(), ps[1].Float64s()
	rot := func(v []float64, p int) []float64 {
		x, _ := NewParamFrom("x", v, 1, hd)
		return forward(t, Float64, []*Param{x}, func(b *Builder, n []*Node) *Node {
			return RoPE(n[0], b.IntConstant("pos", []int{p}, 1), hd, cfg)
		})
	}
	dot := func(a, b []float64) (s float64) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	want := dot(rot(q, 3), rot(k, 1))
	for _, p := range [][2]int{{5, 3}, {102, 100}, {2, 0}} {
		if got := dot(rot(q, p[0]), rot(k, p[1])); math.Abs(got-want) > 1e-12 {
			t.Errorf("q at %d · k at %d = %v, want %v (as at 3 and 1)", p[0], p[1], got, want)
		}
	}
	r := rot(q, 37)
	for i := range hd / 2 {
		a := q[i]*q[i] + q[i+hd/2]*q[i+hd/2]
		b := r[i]*r[i] + r[i+hd/2]*r[i+hd/2]
		if math.Abs(a-b) > 1e-12 {
			t.Errorf("pair %d: norm² %v before, %v after", i, a, b)
		}
	}
}

// TestRoPEInvFreq pins the frequencies: plain θ^(−2i/hd), linear scaling,
// and Llama 3.1's rule (θ = 500000, factor 8, low 1, high 4, original
// context 8192, head width 128; the expected values were computed by
// tools/llama_reference.py's inv_freq in float64).
func TestRoPEInvFreq(t *testing.T) {
	plain, err := RoPEConfig{Theta: 10000}.InvFreq(4)
	if err != nil || plain[0] != 1 || math.Abs(plain[1]-0.01) > 1e-18 {
		t.Errorf("θ 10000, hd 4: %v, %v; want [1 0.01]", plain, err)
	}
	lin, err := RoPEConfig{Theta: 10000, Type: "linear", Factor: 4}.InvFreq(4)
	if err != nil || lin[0] != 0.25 || math.Abs(lin[1]-0.0025) > 1e-18 {
		t.Errorf("linear ×4: %v, %v; want [0.25 0.0025]", lin, err)
	}
	l3 := RoPEConfig{Theta: 500000, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192}
	f, err := l3.InvFreq(128)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		i    int
		want float64
	}{{0, 1}, {28, math.Pow(500000, -56.0/128)}, {29, 0.002166570763503359}, {30, 0.0013718935677611381},
		{35, 9.556212353964683e-05}, {36, 7.78465527393245e-05}, {63, 3.068925988914511e-07}} {
		if math.Abs(f[c.i]-c.want) > 1e-15*c.want {
			t.Errorf("llama3 f[%d] = %v, want %v", c.i, f[c.i], c.want)
		}
	}
}

func TestRoPEErrors(t *testing.T) {
	ok := RoPEConfig{Theta: 10000}
	cases := []struct {
		name      string
		xs, ps    []int
		intPos    bool
		hd        int
		cfg       RoPEConfig
		wantInErr string
	}{
		{"odd head width", []int{2, 6}, []int{2}, true, 3, ok, "even"},
		{"width not heads·hd", []int{2, 6}, []int{2}, true, 4, ok, "heads·4"},
		{"pos per row", []int{2, 8}, []int{3}, true, 4, ok, "one position per row"},
		{"float pos", []int{2, 8}, []int{2}, false, 4, ok, "not an integer"},
		{"zero theta", []int{2, 8}, []int{2}, true, 4, RoPEConfig{}, "theta"},
		{"yarn", []int{2, 8}, []int{2}, true, 4, RoPEConfig{Theta: 1e4, Type: "yarn", Factor: 4}, `"yarn" is not supported`},
		{"dynamic", []int{2, 8}, []int{2}, true, 4, RoPEConfig{Theta: 1e4, Type: "dynamic", Factor: 4}, `"dynamic"`},
		{"linear without factor", []int{2, 8}, []int{2}, true, 4, RoPEConfig{Theta: 1e4, Type: "linear"}, "factor"},
		{"llama3 bands", []int{2, 8}, []int{2}, true, 4, RoPEConfig{Theta: 1e4, Type: "llama3", Factor: 8, LowFreqFactor: 4, HighFreqFactor: 1, OriginalMaxPositions: 64}, "low < high"},
		{"llama3 context", []int{2, 8}, []int{2}, true, 4, RoPEConfig{Theta: 1e4, Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4}, "original_max_position_embeddings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			pos := b.Input("pos", c.ps...)
			if c.intPos {
				pos = b.IntInput("pos", c.ps...)
			}
			y := RoPE(b.Input("x", c.xs...), pos, c.hd, c.cfg)
			if y.Err() == nil {
				t.Fatal("built without error")
			}
			if msg := y.Err().Error(); !strings.Contains(msg, "RoPE") || !strings.Contains(msg, c.wantInErr) {
				t.Errorf("error %q does not name the op and %q", msg, c.wantInErr)
			}
		})
	}
	// A negative position is a run error naming the input.
	b := NewBuilder(Float64, 1)
	y := RoPE(b.Input("x", 2, 4), b.IntConstant("positions", []int{0, -1}, 2), 4, ok)
	prog, err := b.Compile(nil, y)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err == nil || !strings.Contains(err.Error(), "positions[1] = -1") {
		t.Errorf("negative position: %v", err)
	}
}
