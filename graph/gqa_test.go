package graph

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// refGQA is grouped-query attention written out in float64: query head h
// reads key/value head h/(H/KV), causal, scale 1/√hd.
func refGQA(q, k, v []float64, batch, heads, kvHeads, hd int) []float64 {
	qw, kw := heads*hd, kvHeads*hd
	rows := len(q) / qw
	tt := rows / batch
	y := make([]float64, rows*qw)
	s := make([]float64, tt)
	for b := range batch {
		for h := range heads {
			g := h / (heads / kvHeads)
			for i := range tt {
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					s[j] = 0
					for c := range hd {
						s[j] += q[(b*tt+i)*qw+h*hd+c] * k[(b*tt+j)*kw+g*hd+c]
					}
					s[j] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, s[j])
				}
				var z float64
				for j := 0; j <= i; j++ {
					s[j] = math.Exp(s[j] - mx)
					z += s[j]
				}
				for c := range hd {
					var acc float64
					for j := 0; j <= i; j++ {
						acc += s[j] / z * v[(b*tt+j)*kw+g*hd+c]
					}
					y[(b*tt+i)*qw+h*hd+c] = acc
				}
			}
		}
	}
	return y
}

func gqaCase(name string, batch, tt, heads, kvHeads, hd int, scale float64) opCase {
	n := batch * tt
	return opCase{name: name,
		params: []pspec{{name: "q", shape: []int{n, heads * hd}, scale: scale}, {name: "k", shape: []int{n, kvHeads * hd}, scale: scale}, {name: "v", shape: []int{n, kvHeads * hd}}},
		build: func(b *Builder, p []*Node) *Node {
			return GroupedQueryAttention(p[0], p[1], p[2], batch, heads, kvHeads)
		}}
}

func TestGroupedQueryAttentionGradients(t *testing.T) {
	cases := []opCase{
		gqaCase("multi-head (KV = H)", 2, 3, 2, 2, 2, 1),
		gqaCase("grouped: 4 heads, 2 kv", 2, 4, 4, 2, 3, 1),
		gqaCase("multi-query: 3 heads, 1 kv", 1, 5, 3, 1, 4, 1),
		// more tokens than one causal row block (attnBlock), so the blocked
		// products and dK/dV accumulation across blocks are exercised
		gqaCase("two row blocks", 1, attnBlock+5, 2, 1, 2, 0.5),
		gqaCase("large scores", 1, 4, 2, 1, 4, 6),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

func TestGroupedQueryAttentionMatchesReference(t *testing.T) {
	for _, c := range []struct {
		name                 string
		batch, tt, h, kv, hd int
		scale                float64
	}{{"gqa", 2, 7, 6, 2, 4, 1}, {"mqa long", 1, 70, 3, 1, 8, 1}, {"mha", 3, 5, 2, 2, 6, 2}} {
		t.Run(c.name, func(t *testing.T) {
			n := c.batch * c.tt
			ps := makeParams([]pspec{{name: "q", shape: []int{n, c.h * c.hd}, scale: c.scale}, {name: "k", shape: []int{n, c.kv * c.hd}, scale: c.scale}, {name: "v", shape: []int{n, c.kv * c.hd}}}, Float64, 9)
			want := refGQA(ps[0].Float64s(), ps[1].Float64s(), ps[2].Float64s(), c.batch, c.h, c.kv, c.hd)
			build := func(b *Builder, p []*Node) *Node { return GroupedQueryAttention(p[0], p[1], p[2], c.batch, c.h, c.kv) }
			compareRel(t, "float64", forward(t, Float64, ps, build), want, 1e-13)
			ps32 := []*Param{ps[0].Convert(Float32), ps[1].Convert(Float32), ps[2].Convert(Float32)}
			compareRel(t, "float32", forward(t, Float32, ps32, build), want, 2e-5)
		})
	}
}

// TestGroupedQueryAttentionIsCausalSelfAttention checks that with one
// key/value head per query head the op computes GPT-2's attention on the
// same q, k and v laid out as one q|k|v matrix, gradients included.
func TestGroupedQueryAttentionIsCausalSelfAttention(t *testing.T) {
	const batch, tt, heads, hd = 2, 5, 3, 4
	d := heads * hd
	ps := makeParams([]pspec{{name: "qkv", shape: []int{batch * tt, 3 * d}}}, Float64, 3)
	qkv := ps[0].Float64s()
	split := func(block int) *Param {
		v := make([]float64, batch*tt*d)
		for r := range batch * tt {
			copy(v[r*d:(r+1)*d], qkv[r*3*d+block*d:])
		}
		p, _ := NewParamFrom([]string{"q", "k", "v"}[block], v, batch*tt, d)
		return p
	}
	q, k, v := split(0), split(1), split(2)
	run := func(ps []*Param, build func(b *Builder, n []*Node) *Node) ([]float64, [][]float64) {
		b := NewBuilder(Float64, 1)
		nodes := make([]*Node, len(ps))
		for i, p := range ps {
			nodes[i] = b.Param(p)
		}
		y := build(b, nodes)
		prog, err := b.Compile(lossFor(b, y, 7), y)
		if err != nil {
			t.Fatal(err)
		}
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		out, _ := prog.Output(y)
		var grads [][]float64
		for _, p := range ps {
			g, _ := prog.Grad(p)
			grads = append(grads, g.Values())
		}
		return out.Values(), grads
	}
	yGQA, gGQA := run([]*Param{q, k, v}, func(b *Builder, n []*Node) *Node {
		return GroupedQueryAttention(n[0], n[1], n[2], batch, heads, heads)
	})
	yGPT, gGPT := run(ps, func(b *Builder, n []*Node) *Node { return CausalSelfAttention(n[0], batch, heads, 0) })
	compareRel(t, "output", yGQA, yGPT, 1e-14)
	for block, name := range []string{"dq", "dk", "dv"} {
		want := make([]float64, batch*tt*d)
		for r := range batch * tt {
			copy(want[r*d:(r+1)*d], gGPT[0][r*3*d+block*d:])
		}
		compareRel(t, name, gGQA[block], want, 1e-14)
	}
}

func TestGroupedQueryAttentionBuildErrors(t *testing.T) {
	cases := []struct {
		name         string
		qs, ks, vs   []int
		batch, h, kv int
		intQ         bool
		want         string
	}{
		{"heads do not split q", []int{4, 6}, []int{4, 3}, []int{4, 3}, 1, 4, 2, false, "do not split into 4 heads"},
		{"groups", []int{4, 6}, []int{4, 4}, []int{4, 4}, 1, 3, 2, false, "groups of 2"},
		{"batch", []int{5, 6}, []int{5, 2}, []int{5, 2}, 2, 3, 1, false, "batch 2"},
		{"k width", []int{4, 6}, []int{4, 3}, []int{4, 3}, 1, 3, 1, false, "want [4, 2]"},
		{"k rows", []int{4, 6}, []int{3, 2}, []int{3, 2}, 1, 3, 1, false, "want [4, 2]"},
		{"v shape", []int{4, 6}, []int{4, 2}, []int{4, 4}, 1, 3, 1, false, "v "},
		{"integer q", []int{4, 6}, []int{4, 2}, []int{4, 2}, 1, 3, 1, true, "integer"},
		{"zero kv heads", []int{4, 6}, []int{4, 2}, []int{4, 2}, 1, 3, 0, false, "key/value heads"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			q := b.Input("q", c.qs...)
			if c.intQ {
				q = b.IntInput("q", c.qs...)
			}
			y := GroupedQueryAttention(q, b.Input("k", c.ks...), b.Input("v", c.vs...), c.batch, c.h, c.kv)
			if y.Err() == nil {
				t.Fatal("built without error")
			}
			if msg := y.Err().Error(); !strings.Contains(msg, "GroupedQueryAttention") || !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not name the op and %q", msg, c.want)
			}
		})
	}
}

// gqaKVRig is a compiled CachedGroupedQueryAttention program for R rows of
// T tokens against caches of C positions per row.
type gqaKVRig struct {
	prog               *Program
	q, k, v, pos, y    *Node
	kc, vc             *Param
	R, T, C, h, kv, hd int
}

func newGQAKVRig(t *testing.T, dt DType, R, T, C, h, kv, hd int) *gqaKVRig {
	t.Helper()
	r := &gqaKVRig{R: R, T: T, C: C, h: h, kv: kv, hd: hd}
	r.kc, r.vc = NewParam("kc", dt, R*C, kv*hd), NewParam("vc", dt, R*C, kv*hd)
	r.kc.Trainable, r.vc.Trainable = false, false
	b := NewBuilder(dt, 1)
	r.q, r.k, r.v = b.Input("q", R*T, h*hd), b.Input("k", R*T, kv*hd), b.Input("v", R*T, kv*hd)
	r.pos = b.IntInput("pos", R, T)
	r.y = CachedGroupedQueryAttention(r.q, r.k, r.v, b.Param(r.kc), b.Param(r.vc), r.pos, h, kv)
	var err error
	if r.prog, err = b.Compile(nil, r.y); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCachedGroupedQueryAttentionMatchesReference decodes sequences of
// different lengths in chunks of 1 … T tokens (rows at their own pace,
// padding carrying huge values that must not reach the cache) against
// NaN-poisoned caches, and compares every output with the full causal
// reference over the whole sequence.
func TestCachedGroupedQueryAttentionMatchesReference(t *testing.T) {
	cases := []struct {
		name            string
		lens            []int
		T, C, h, kv, hd int
	}{
		{"one token per call", []int{5, 1, 7}, 1, 8, 4, 2, 3},
		{"chunks of 3, MQA", []int{9, 4}, 3, 10, 3, 1, 4},
		{"whole prompt, MHA", []int{6, 6}, 6, 6, 2, 2, 2},
		{"long rows", []int{70, 33}, 4, 72, 6, 3, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			qw, kw := c.h*c.hd, c.kv*c.hd
			type seq struct{ q, k, v, want []float64 }
			seqs := make([]seq, len(c.lens))
			for r, l := range c.lens {
				s := seq{q: make([]float64, l*qw), k: make([]float64, l*kw), v: make([]float64, l*kw)}
				for _, x := range [][]float64{s.q, s.k, s.v} {
					for i := range x {
						x[i] = 2*rng.Float64() - 1
					}
				}
				s.want = refGQA(s.q, s.k, s.v, 1, c.h, c.kv, c.hd)
				seqs[r] = s
			}
			for _, dt := range []DType{Float64, Float32} {
				t.Run(dt.String(), func(t *testing.T) {
					rig := newGQAKVRig(t, dt, len(c.lens), c.T, c.C, c.h, c.kv, c.hd)
					nan := make([]float64, rig.kc.Len())
					for i := range nan {
						nan[i] = math.NaN()
					}
					_ = rig.kc.SetValues(nan)
					_ = rig.vc.SetValues(nan)
					done := make([]int, rig.R)
					got := make([][]float64, rig.R)
					for call := 0; ; call++ {
						q, k, v := make([]float64, rig.R*c.T*qw), make([]float64, rig.R*c.T*kw), make([]float64, rig.R*c.T*kw)
						pos := make([]int, rig.R*c.T)
						active := false
						for r := range rig.R {
							n := min(1+(call+r)%c.T, c.lens[r]-done[r])
							for tk := range c.T {
								i := r*c.T + tk
								pos[i] = -1
								if tk >= n {
									for _, x := range [][]float64{q[i*qw : (i+1)*qw], k[i*kw : (i+1)*kw], v[i*kw : (i+1)*kw]} {
										for j := range x {
											x[j] = 1e6
										}
									}
									continue
								}
								active = true
								p := done[r] + tk
								pos[i] = p
								copy(q[i*qw:(i+1)*qw], seqs[r].q[p*qw:])
								copy(k[i*kw:(i+1)*kw], seqs[r].k[p*kw:])
								copy(v[i*kw:(i+1)*kw], seqs[r].v[p*kw:])
							}
						}
						if !active {
							break
						}
						for _, in := range []struct {
							n *Node
							v []float64
						}{{rig.q, q}, {rig.k, k}, {rig.v, v}} {
							if err := rig.prog.SetInput(in.n, in.v); err != nil {
								t.Fatal(err)
							}
						}
						if err := rig.prog.SetInts(rig.pos, pos); err != nil {
							t.Fatal(err)
						}
						if err := rig.prog.Forward(); err != nil {
							t.Fatal(err)
						}
						out, _ := rig.prog.Output(rig.y)
						y := out.Values()
						for r := range rig.R {
							for tk := range c.T {
								i := r*c.T + tk
								row := y[i*qw : (i+1)*qw]
								if pos[i] < 0 {
									for _, x := range row {
										if x != 0 {
											t.Fatalf("call %d: skipped token (%d, %d) has output %v", call, r, tk, x)
										}
									}
									continue
								}
								got[r] = append(got[r], row...)
								done[r]++
							}
						}
					}
					tol := 1e-13
					if dt == Float32 {
						tol = 2e-5
					}
					for r := range seqs {
						compareRel(t, "outputs", got[r], seqs[r].want, tol)
					}
				})
			}
		})
	}
}

func TestCachedGroupedQueryAttentionErrors(t *testing.T) {
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
		{"cache width", func(b *Builder) *Node {
			return CachedGroupedQueryAttention(b.Input("q", 2, 8), b.Input("k", 2, 4), b.Input("v", 2, 4),
				b.Param(frozen("kc", 8, 8)), b.Param(frozen("vc", 8, 8)), b.IntInput("pos", 2, 1), 4, 2)
		}, "kCache shape"},
		{"trainable cache", func(b *Builder) *Node {
			return CachedGroupedQueryAttention(b.Input("q", 2, 8), b.Input("k", 2, 4), b.Input("v", 2, 4),
				b.Param(NewParam("kc", Float64, 8, 4)), b.Param(frozen("vc", 8, 4)), b.IntInput("pos", 2, 1), 4, 2)
		}, "trainable"},
		{"same cache twice", func(b *Builder) *Node {
			c := b.Param(frozen("kc", 8, 4))
			return CachedGroupedQueryAttention(b.Input("q", 2, 8), b.Input("k", 2, 4), b.Input("v", 2, 4), c, c, b.IntInput("pos", 2, 1), 4, 2)
		}, "same parameter"},
		{"float pos", func(b *Builder) *Node {
			return CachedGroupedQueryAttention(b.Input("q", 2, 8), b.Input("k", 2, 4), b.Input("v", 2, 4),
				b.Param(frozen("kc", 8, 4)), b.Param(frozen("vc", 8, 4)), b.Input("pos", 2, 1), 4, 2)
		}, "not an integer"},
		{"rows from pos", func(b *Builder) *Node {
			return CachedGroupedQueryAttention(b.Input("q", 2, 8), b.Input("k", 2, 4), b.Input("v", 2, 4),
				b.Param(frozen("kc", 9, 4)), b.Param(frozen("vc", 9, 4)), b.IntInput("pos", 3, 1), 4, 2)
		}, "want R·T"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := c.build(NewBuilder(Float64, 1))
			if y.Err() == nil || !strings.Contains(y.Err().Error(), c.want) || !strings.Contains(y.Err().Error(), "CachedGroupedQueryAttention") {
				t.Fatalf("error %v, want it to contain %q", y.Err(), c.want)
			}
		})
	}
	// A position at the capacity is a run error naming pos.
	rig := newGQAKVRig(t, Float64, 1, 2, 3, 2, 1, 2)
	_ = rig.prog.SetInts(rig.pos, []int{2, 3})
	if err := rig.prog.Forward(); err == nil || !strings.Contains(err.Error(), "pos[0, 1] = 3 is outside") {
		t.Errorf("position at capacity: %v", err)
	}
}
