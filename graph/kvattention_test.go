package graph

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// kvRig is a compiled CachedSelfAttention program for R rows of T tokens
// against caches of C positions per row, with qkv fed as an input.
type kvRig struct {
	prog           *Program
	qkv, pos, y    *Node
	kn, vn         *Node
	kc, vc         *Param
	R, T, C, d, nh int
}

func newKVRig(t *testing.T, dt DType, R, T, C, d, heads int) *kvRig {
	t.Helper()
	r := &kvRig{R: R, T: T, C: C, d: d, nh: heads}
	r.kc = NewParam("k", dt, R*C, d)
	r.vc = NewParam("v", dt, R*C, d)
	r.kc.Trainable, r.vc.Trainable = false, false
	b := NewBuilder(dt, 1)
	r.qkv = b.Input("qkv", R*T, 3*d)
	r.pos = b.IntInput("pos", R, T)
	r.kn, r.vn = b.Param(r.kc), b.Param(r.vc)
	r.y = CachedSelfAttention(r.qkv, r.kn, r.vn, r.pos, heads)
	var err error
	if r.prog, err = b.Compile(nil, r.y); err != nil {
		t.Fatal(err)
	}
	return r
}

// run feeds qkv and pos and returns the output as float64s.
func (r *kvRig) run(t *testing.T, qkv []float64, pos []int) []float64 {
	t.Helper()
	if err := r.prog.SetInput(r.qkv, qkv); err != nil {
		t.Fatal(err)
	}
	if err := r.prog.SetInts(r.pos, pos); err != nil {
		t.Fatal(err)
	}
	if err := r.prog.Forward(); err != nil {
		t.Fatal(err)
	}
	out, err := r.prog.Output(r.y)
	if err != nil {
		t.Fatal(err)
	}
	return out.Values()
}

// fillNaN poisons both caches, so that reading any entry not written by an
// earlier call shows up as a NaN in the output.
func (r *kvRig) fillNaN() {
	for _, p := range []*Param{r.kc, r.vc} {
		v := make([]float64, p.Len())
		for i := range v {
			v[i] = math.NaN()
		}
		_ = p.SetValues(v)
	}
}

// randSeqs draws one [L_r, 3d] qkv sequence per row.
func randSeqs(seed uint64, lens []int, d int, scale float64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 17))
	out := make([][]float64, len(lens))
	for r, l := range lens {
		out[r] = make([]float64, l*3*d)
		for i := range out[r] {
			out[r][i] = (2*rng.Float64() - 1) * scale
		}
	}
	return out
}

// decodeAll feeds every row's sequence through the rig, up to T tokens per
// row per call, rows advancing at their own pace (row r takes
// 1 + (call+r) mod T tokens, so rows mix full, partial and empty chunks).
// It returns each row's outputs in order, [L_r, d].
func decodeAll(t *testing.T, rig *kvRig, seqs [][]float64) [][]float64 {
	t.Helper()
	d3 := 3 * rig.d
	done := make([]int, rig.R)
	outs := make([][]float64, rig.R)
	for call := 0; ; call++ {
		qkv := make([]float64, rig.R*rig.T*d3)
		pos := make([]int, rig.R*rig.T)
		any := false
		for r := range rig.R {
			n := min(1+(call+r)%rig.T, len(seqs[r])/d3-done[r])
			for tk := range rig.T {
				pos[r*rig.T+tk] = -1
				if tk < n {
					pos[r*rig.T+tk] = done[r] + tk
					copy(qkv[(r*rig.T+tk)*d3:(r*rig.T+tk+1)*d3], seqs[r][(done[r]+tk)*d3:])
					any = true
				} else {
					// padding carries values that must not reach the cache
					for c := range d3 {
						qkv[(r*rig.T+tk)*d3+c] = 1e6
					}
				}
			}
		}
		if !any {
			return outs
		}
		y := rig.run(t, qkv, pos)
		for r := range rig.R {
			for tk := range rig.T {
				row := y[(r*rig.T+tk)*rig.d : (r*rig.T+tk+1)*rig.d]
				if pos[r*rig.T+tk] < 0 {
					for c, v := range row {
						if v != 0 {
							t.Fatalf("call %d: skipped token (%d, %d) output[%d] = %v, want 0", call, r, tk, c, v)
						}
					}
					continue
				}
				outs[r] = append(outs[r], row...)
				done[r]++
			}
		}
	}
}

// TestCachedSelfAttentionMatchesReference decodes sequences of different
// lengths in chunks of 1 … T tokens and compares every output row with the
// naive full causal attention over the whole sequence (refAttention), with
// the caches poisoned by NaN beforehand: a finite, matching output shows
// that each token reads exactly the positions 0 … p that were written, never
// a later or unwritten one.
func TestCachedSelfAttentionMatchesReference(t *testing.T) {
	cases := []struct {
		name           string
		lens           []int
		T, C, d, heads int
		scale          float64
	}{
		{name: "one token per call", lens: []int{5, 1, 7}, T: 1, C: 8, d: 6, heads: 2, scale: 1},
		{name: "chunks of 3", lens: []int{9, 4}, T: 3, C: 10, d: 8, heads: 4, scale: 1},
		{name: "whole prompt", lens: []int{6, 6}, T: 6, C: 6, d: 4, heads: 1, scale: 2},
		{name: "long rows", lens: []int{70, 33}, T: 4, C: 72, d: 12, heads: 3, scale: 1},
		{name: "huge scores", lens: []int{6, 3}, T: 2, C: 6, d: 8, heads: 2, scale: 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seqs := randSeqs(3, c.lens, c.d, c.scale)
			want := make([][]float64, len(seqs))
			for r, s := range seqs {
				want[r] = refAttention(s, c.lens[r], c.d, 1, c.heads)
			}
			for _, dt := range []DType{Float64, Float32} {
				t.Run(dt.String(), func(t *testing.T) {
					rig := newKVRig(t, dt, len(c.lens), c.T, c.C, c.d, c.heads)
					rig.fillNaN()
					got := decodeAll(t, rig, seqs)
					// float64: rounding only; float32: relative to the
					// largest output, as in the float32-vs-float64 harness.
					tol := 1e-13
					if dt == Float32 {
						tol = 2e-5
						if c.scale > 10 {
							tol = 1e-4 // scores of order 1e4 lose digits in float32
						}
					}
					for r := range seqs {
						compareRel(t, "row outputs", got[r], want[r], tol)
					}
					// The caches hold exactly the keys and values fed.
					kc, vc := rig.kc.Values(), rig.vc.Values()
					for r, s := range seqs {
						for j := range c.lens[r] {
							for col := range c.d {
								k, v := s[j*3*c.d+c.d+col], s[j*3*c.d+2*c.d+col]
								i := (r*c.C+j)*c.d + col
								if math.Abs(kc[i]-k) > 1e-6*math.Abs(k) || math.Abs(vc[i]-v) > 1e-6*math.Abs(v) {
									t.Fatalf("row %d position %d col %d: cache (%v, %v), want (%v, %v)", r, j, col, kc[i], vc[i], k, v)
								}
							}
						}
						for j := c.lens[r]; j < c.C; j++ {
							if i := (r*c.C + j) * c.d; !math.IsNaN(kc[i]) || !math.IsNaN(vc[i]) {
								t.Fatalf("row %d position %d beyond the sequence was written", r, j)
							}
						}
					}
				})
			}
		})
	}
}

// TestCachedSelfAttentionFloat32 compares float32 with float64 on the same
// inputs for one multi-token call over a partly filled cache.
func TestCachedSelfAttentionFloat32(t *testing.T) {
	const R, T, C, d, heads = 3, 4, 9, 8, 2
	seqs := randSeqs(5, []int{9, 9, 9}, d, 1)
	var outs [2][]float64
	for k, dt := range []DType{Float64, Float32} {
		rig := newKVRig(t, dt, R, T, C, d, heads)
		// Cache positions 0 … 4 hold earlier tokens; this call adds 5 … 8.
		kc, vc := make([]float64, R*C*d), make([]float64, R*C*d)
		qkv := make([]float64, R*T*3*d)
		pos := make([]int, R*T)
		for r := range R {
			for j := range 5 {
				copy(kc[(r*C+j)*d:(r*C+j+1)*d], seqs[r][j*3*d+d:])
				copy(vc[(r*C+j)*d:(r*C+j+1)*d], seqs[r][j*3*d+2*d:])
			}
			for tk := range T {
				pos[r*T+tk] = 5 + tk
				copy(qkv[(r*T+tk)*3*d:(r*T+tk+1)*3*d], seqs[r][(5+tk)*3*d:])
			}
		}
		_ = rig.kc.SetValues(kc)
		_ = rig.vc.SetValues(vc)
		outs[k] = rig.run(t, qkv, pos)
	}
	compareRel(t, "output", outs[1], outs[0], 2e-5)
}

func TestCachedSelfAttentionRunErrors(t *testing.T) {
	cases := []struct {
		name string
		pos  []int
		want string
	}{
		{"position at capacity", []int{0, 1, 4, -1}, "pos[1, 0] = 4 is outside"},
		{"below -1", []int{-2, -1, -1, -1}, "pos[0, 0] = -2 is outside"},
		{"not increasing", []int{2, 2, -1, -1}, "does not increase along row 0"},
		{"decreasing after a skip", []int{-1, 3, 1, 0}, "pos[1, 1] = 0 does not increase"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rig := newKVRig(t, Float64, 2, 2, 4, 4, 2)
			_ = rig.prog.SetInts(rig.pos, c.pos)
			err := rig.prog.Forward()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestCachedSelfAttentionBuildErrors(t *testing.T) {
	frozen := func(name string, shape ...int) *Param {
		p := NewParam(name, Float64, shape...)
		p.Trainable = false
		return p
	}
	cases := []struct {
		name  string
		build func(b *Builder) *Node
		want  string
	}{
		{"trainable cache", func(b *Builder) *Node {
			return CachedSelfAttention(b.Input("qkv", 2, 12), b.Param(NewParam("k", Float64, 8, 4)), b.Param(frozen("v", 8, 4)), b.IntInput("pos", 2), 2)
		}, "cache k is trainable"},
		{"cache not a parameter", func(b *Builder) *Node {
			return CachedSelfAttention(b.Input("qkv", 2, 12), b.Input("k", 8, 4), b.Param(frozen("v", 8, 4)), b.IntInput("pos", 2), 2)
		}, "cache k is not a parameter node"},
		{"same parameter", func(b *Builder) *Node {
			k := b.Param(frozen("kv", 8, 4))
			return CachedSelfAttention(b.Input("qkv", 2, 12), k, k, b.IntInput("pos", 2), 2)
		}, "are the same parameter"},
		{"float pos", func(b *Builder) *Node {
			return CachedSelfAttention(b.Input("qkv", 2, 12), b.Param(frozen("k", 8, 4)), b.Param(frozen("v", 8, 4)), b.Input("pos", 2), 2)
		}, "pos pos is not an integer input"},
		{"heads", func(b *Builder) *Node {
			return CachedSelfAttention(b.Input("qkv", 2, 12), b.Param(frozen("k", 8, 4)), b.Param(frozen("v", 8, 4)), b.IntInput("pos", 2), 3)
		}, "does not split into 3 heads"},
		{"rows", func(b *Builder) *Node {
			return CachedSelfAttention(b.Input("qkv", 3, 12), b.Param(frozen("k", 8, 4)), b.Param(frozen("v", 8, 4)), b.IntInput("pos", 2), 2)
		}, "qkv has 3 rows, want R·T = 2·1"},
		{"cache width", func(b *Builder) *Node {
			return CachedSelfAttention(b.Input("qkv", 2, 12), b.Param(frozen("k", 8, 5)), b.Param(frozen("v", 8, 5)), b.IntInput("pos", 2), 2)
		}, "kCache shape [8 5], want [R·C, 4]"},
		{"cache rows", func(b *Builder) *Node {
			return CachedSelfAttention(b.Input("qkv", 2, 12), b.Param(frozen("k", 7, 4)), b.Param(frozen("v", 7, 4)), b.IntInput("pos", 2), 2)
		}, "not a positive multiple of R = 2"},
		{"cache shapes differ", func(b *Builder) *Node {
			return CachedSelfAttention(b.Input("qkv", 2, 12), b.Param(frozen("k", 8, 4)), b.Param(frozen("v", 6, 4)), b.IntInput("pos", 2), 2)
		}, "differ"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			y := c.build(b)
			_, err := b.Compile(nil, y)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestCachedSelfAttentionHasNoGradient: the op is forward-only (DiffWRT is
// false for every input), so compiling a loss through it with a trainable
// parameter upstream fails: Gorgonia finds no gradient path back to it.
func TestCachedSelfAttentionHasNoGradient(t *testing.T) {
	x := NewParam("x", Float64, 2, 12)
	k, v := NewParam("k", Float64, 8, 4), NewParam("v", Float64, 8, 4)
	k.Trainable, v.Trainable = false, false
	b := NewBuilder(Float64, 1)
	y := CachedSelfAttention(b.Param(x), b.Param(k), b.Param(v), b.IntInput("pos", 2), 2)
	_, err := b.Compile(Sum(y), y)
	if err == nil || !strings.Contains(err.Error(), "gradients") || !strings.Contains(err.Error(), "x") {
		t.Fatalf("compile error %v, want a gradient error naming x", err)
	}
	// With a nil loss the same graph compiles and runs.
	b = NewBuilder(Float64, 1)
	y = CachedSelfAttention(b.Param(x), b.Param(k), b.Param(v), b.IntInput("pos", 2), 2)
	prog, err := b.Compile(nil, y)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		t.Fatal(err)
	}
}

// TestBindParam switches a compiled program between two caches: writes go
// to the bound cache only, and what was written before the switch is still
// read after switching back.
func TestBindParam(t *testing.T) {
	const R, C, d, heads = 1, 4, 4, 2
	rig := newKVRig(t, Float64, R, 1, C, d, heads)
	other := NewParam("k2", Float64, R*C, d)
	otherV := NewParam("v2", Float64, R*C, d)
	other.Trainable, otherV.Trainable = false, false
	seqs := randSeqs(9, []int{3}, d, 1)
	step := func(j int) []float64 { return rig.run(t, seqs[0][j*3*d:(j+1)*3*d], []int{j}) }

	want := refAttention(seqs[0], 3, d, 1, heads)
	y0 := step(0) // into the first cache
	if err := rig.prog.BindParam(rig.kn, other); err != nil {
		t.Fatal(err)
	}
	if err := rig.prog.BindParam(rig.vn, otherV); err != nil {
		t.Fatal(err)
	}
	// The second cache is empty (zeros) at position 0: a token at position
	// 1 would read zeros, so start it at 0 as well.
	y0b := step(0)
	compareRel(t, "fresh cache, token 0", y0b, y0, 0)
	if got := other.Values()[0]; got != seqs[0][d] {
		t.Fatalf("second cache position 0 = %v, want the key %v", got, seqs[0][d])
	}
	// Back to the first cache, which holds position 0: continue at 1 and 2.
	if err := rig.prog.BindParam(rig.kn, rig.kc); err != nil {
		t.Fatal(err)
	}
	if err := rig.prog.BindParam(rig.vn, rig.vc); err != nil {
		t.Fatal(err)
	}
	got := append(append(y0, step(1)...), step(2)...)
	compareRel(t, "after switching back", got, want, 1e-13)
	if other.Values()[d] != 0 || other.Values()[2*d] != 0 {
		t.Fatal("the unbound cache was written")
	}

	// Errors name what is wrong.
	bad := []struct {
		name string
		prm  *Param
		want string
	}{
		{"shape", func() *Param { p := NewParam("s", Float64, 2*R*C, d); p.Trainable = false; return p }(), "shape [8 4], want [4 4]"},
		{"dtype", func() *Param { p := NewParam("f", Float32, R*C, d); p.Trainable = false; return p }(), "parameter is float32"},
		{"trainable", NewParam("t", Float64, R*C, d), "trainable parameters cannot be rebound"},
		{"already bound", rig.vc, "already in the program"},
		{"nil", nil, "nil parameter"},
	}
	for _, c := range bad {
		if err := rig.prog.BindParam(rig.kn, c.prm); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
	if err := rig.prog.BindParam(rig.y, other); err == nil || !strings.Contains(err.Error(), "not a parameter node") {
		t.Errorf("binding an op node: error %v", err)
	}
}
