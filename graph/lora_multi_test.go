package graph

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// multiSlice is one update of a multiAdapter under test: rank r, width w,
// output offset off.
type multiSlice struct{ r, w, off int }

type multiAdapter struct {
	ownX   bool // reads its own input X (a dropped-out x) instead of x
	scale  float64
	slices []multiSlice
}

// multiLayout describes a LoRALinearMulti or LoRAEmbedding under test. Its
// parameters, in order: x [n, in] (embedding: table [in, out]), W [in, out]
// (linear), b [out] (if bias), then per adapter X [n, in] (if ownX) and A, B
// per slice.
type multiLayout struct {
	name       string
	embed      bool
	n, in, out int
	bias       bool
	adapters   []multiAdapter
	rows, ids  []int // rows nil: every adapter on every row
}

func (l multiLayout) specs() []pspec {
	var ps []pspec
	if l.embed {
		ps = append(ps, pspec{name: "table", shape: []int{l.in, l.out}})
	} else {
		ps = append(ps, pspec{name: "x", shape: []int{l.n, l.in}}, pspec{name: "W", shape: []int{l.in, l.out}})
	}
	if l.bias {
		ps = append(ps, pspec{name: "b", shape: []int{l.out}})
	}
	for k, a := range l.adapters {
		if a.ownX {
			ps = append(ps, pspec{name: fmt.Sprintf("X%d", k), shape: []int{l.n, l.in}})
		}
		for j, s := range a.slices {
			ps = append(ps, pspec{name: fmt.Sprintf("A%d.%d", k, j), shape: []int{l.in, s.r}},
				pspec{name: fmt.Sprintf("B%d.%d", k, j), shape: []int{s.r, s.w}})
		}
	}
	return ps
}

// multiIntInput adds an integer input holding v, for graphs that runOpCase
// builds and runs without feeding inputs.
func multiIntInput(b *Builder, name string, v []int) *Node {
	n := b.IntInput(name, len(v))
	if n.Err() == nil {
		copy(n.n.Value().(*tensor.Dense).Data().([]int), v)
	}
	return n
}

func (l multiLayout) build(b *Builder, p []*Node) *Node {
	i := 0
	next := func() *Node { i++; return p[i-1] }
	x := next()
	var w, bias, rows *Node
	if l.embed {
		w = multiIntInput(b, "ids", l.ids)
	} else {
		w = next()
	}
	if l.bias {
		bias = next()
	}
	if l.rows != nil {
		rows = multiIntInput(b, "rows", l.rows)
	}
	ads := make([]LoRAAdapter, len(l.adapters))
	for k, a := range l.adapters {
		ads[k].Scale = a.scale
		if a.ownX {
			ads[k].X = next()
		}
		for _, s := range a.slices {
			ads[k].Slices = append(ads[k].Slices, LoRASlice{A: next(), B: next(), Offset: s.off})
		}
	}
	if l.embed {
		return LoRAEmbedding(x, w, ads, rows)
	}
	return LoRALinearMulti(x, w, bias, ads, rows)
}

// reference computes the op by plain loops from the parameter values.
func (l multiLayout) reference(vals [][]float64) []float64 {
	i := 0
	next := func() []float64 { i++; return vals[i-1] }
	x := next()
	var w, bias []float64
	if !l.embed {
		w = next()
	}
	if l.bias {
		bias = next()
	}
	y := make([]float64, l.n*l.out)
	for n := 0; n < l.n; n++ {
		for j := 0; j < l.out; j++ {
			if l.embed {
				y[n*l.out+j] = x[l.ids[n]*l.out+j]
				continue
			}
			v := 0.0
			if bias != nil {
				v = bias[j]
			}
			for k := 0; k < l.in; k++ {
				v += x[n*l.in+k] * w[k*l.out+j]
			}
			y[n*l.out+j] = v
		}
	}
	for k, a := range l.adapters {
		xk := x
		if a.ownX {
			xk = next()
		}
		for _, s := range a.slices {
			am, bm := next(), next()
			for n := 0; n < l.n; n++ {
				if l.rows != nil && l.rows[n] != k {
					continue
				}
				for p := 0; p < s.r; p++ {
					xa := 0.0
					if l.embed {
						xa = am[l.ids[n]*s.r+p]
					} else {
						for q := 0; q < l.in; q++ {
							xa += xk[n*l.in+q] * am[q*s.r+p]
						}
					}
					for j := 0; j < s.w; j++ {
						y[n*l.out+s.off+j] += a.scale * xa * bm[p*s.w+j]
					}
				}
			}
		}
	}
	return y
}

func multiCases() []multiLayout {
	qv := []multiSlice{{r: 2, w: 3, off: 0}, {r: 2, w: 3, off: 6}} // q and v of a [·, 9] q|k|v
	return []multiLayout{
		{name: "linear two adapters summed", n: 5, in: 4, out: 9, bias: true,
			adapters: []multiAdapter{{scale: 0.7, slices: []multiSlice{{r: 3, w: 9}}}, {ownX: true, scale: -1.3, slices: qv}}},
		{name: "linear routed rows", n: 6, in: 4, out: 9,
			adapters: []multiAdapter{{ownX: true, scale: 2, slices: []multiSlice{{r: 2, w: 9}}}, {scale: 0.5, slices: qv}, {scale: 3}},
			rows:     []int{1, 0, -1, 1, 2, 0}},
		{name: "linear routed shared X", n: 4, in: 3, out: 6, bias: true,
			adapters: []multiAdapter{{scale: 1, slices: []multiSlice{{r: 1, w: 6}}}, {scale: 0.25, slices: []multiSlice{{r: 2, w: 4, off: 1}}}},
			rows:     []int{0, 1, 1, 0}},
		{name: "embedding one adapter", embed: true, n: 5, in: 6, out: 4,
			adapters: []multiAdapter{{scale: 1.5, slices: []multiSlice{{r: 2, w: 4}}}}, ids: []int{3, 1, 3, 0, 5}},
		{name: "embedding routed rows", embed: true, n: 6, in: 5, out: 4,
			adapters: []multiAdapter{{scale: 1.5, slices: []multiSlice{{r: 2, w: 4}}}, {scale: -0.5, slices: []multiSlice{{r: 3, w: 2, off: 2}}}},
			ids:      []int{4, 4, 1, 0, 2, 4}, rows: []int{0, 1, 1, -1, 0, 1}},
	}
}

func TestLoRAMultiGradients(t *testing.T) {
	for _, l := range multiCases() {
		t.Run(l.name, func(t *testing.T) {
			runOpCase(t, opCase{name: l.name, params: l.specs(), build: l.build})
		})
	}
}

func TestLoRAMultiMatchesReference(t *testing.T) {
	for _, l := range multiCases() {
		t.Run(l.name, func(t *testing.T) {
			ps := makeParams(l.specs(), Float64, 9)
			vals := make([][]float64, len(ps))
			for i, p := range ps {
				vals[i] = p.Values()
			}
			got := forward(t, Float64, ps, l.build)
			compareRel(t, "output", got, l.reference(vals), 1e-13)
		})
	}
}

// TestLoRALinearMultiRowEqualsAlone checks the routing promise: a row sent
// to adapter k equals that row run alone through LoRALinear (or
// LoRALinearSliced) with adapter k, and a row sent to −1 equals Linear.
func TestLoRALinearMultiRowEqualsAlone(t *testing.T) {
	l := multiCases()[1]
	ps := makeParams(l.specs(), Float64, 4)
	routed := forward(t, Float64, ps, l.build)
	x, w := ps[0].Float64s(), ps[1]
	for n, k := range l.rows {
		row := NewParam("row", Float64, 1, l.in)
		copy(row.Float64s(), x[n*l.in:(n+1)*l.in])
		xd := row
		if k == 0 { // adapter 0 reads its own X
			xd = NewParam("xdrow", Float64, 1, l.in)
			copy(xd.Float64s(), ps[2].Float64s()[n*l.in:(n+1)*l.in])
		}
		alone := forward(t, Float64, []*Param{row, xd, w}, func(b *Builder, p []*Node) *Node {
			switch k {
			case 0:
				return LoRALinear(p[0], p[1], p[2], nil, b.Param(ps[3]), b.Param(ps[4]), 2)
			case 1:
				return LoRALinearSliced(p[0], p[0], p[2], nil, []LoRASlice{
					{A: b.Param(ps[5]), B: b.Param(ps[6]), Offset: 0}, {A: b.Param(ps[7]), B: b.Param(ps[8]), Offset: 6}}, 0.5)
			}
			return Linear(p[0], p[2], nil)
		})
		compareRel(t, fmt.Sprintf("row %d (adapter %d)", n, k), routed[n*l.out:(n+1)*l.out], alone, 1e-14)
	}
}

func TestLoRAMultiRunErrors(t *testing.T) {
	for _, embed := range []bool{false, true} {
		b := NewBuilder(Float64, 1)
		var x, w *Node
		a := b.Param(NewParam("A", Float64, 4, 2))
		if embed {
			x, w = b.Param(NewParam("table", Float64, 4, 3)), b.IntInput("ids", 2)
		} else {
			x, w = b.Param(NewParam("x", Float64, 2, 4)), b.Param(NewParam("W", Float64, 4, 3))
		}
		rows := b.IntInput("rows", 2)
		ads := []LoRAAdapter{{Scale: 1, Slices: []LoRASlice{{A: a, B: b.Param(NewParam("B", Float64, 2, 3))}}}}
		var out *Node
		if embed {
			out = LoRAEmbedding(x, w, ads, rows)
		} else {
			out = LoRALinearMulti(x, w, nil, ads, rows)
		}
		prog, err := b.Compile(Sum(out), out)
		if err != nil {
			t.Fatal(err)
		}
		if err := prog.SetInts(rows, []int{0, 1}); err != nil {
			t.Fatal(err)
		}
		err = prog.Run()
		if err == nil || !strings.Contains(err.Error(), "rows") || !strings.Contains(err.Error(), "adapter 1") {
			t.Errorf("embed=%v: run with row routed to adapter 1 of 1: err %v", embed, err)
		}
		if err := prog.SetInts(rows, []int{-1, 0}); err != nil {
			t.Fatal(err)
		}
		if err := prog.Run(); err != nil {
			t.Errorf("embed=%v: valid rows: %v", embed, err)
		}
	}
}

func TestLoRAMultiBuildErrors(t *testing.T) {
	cases := []struct {
		name, want string
		build      func(b *Builder) *Node
	}{
		{"no slices", "no LoRA slices", func(b *Builder) *Node {
			return LoRALinearMulti(b.Param(NewParam("x", Float64, 2, 4)), b.Param(NewParam("W", Float64, 4, 3)), nil, []LoRAAdapter{{Scale: 1}}, nil)
		}},
		{"slice outside", "outside", func(b *Builder) *Node {
			return LoRALinearMulti(b.Param(NewParam("x", Float64, 2, 4)), b.Param(NewParam("W", Float64, 4, 3)), nil,
				[]LoRAAdapter{{Scale: 1, Slices: []LoRASlice{{A: b.Param(NewParam("A", Float64, 4, 1)), B: b.Param(NewParam("B", Float64, 1, 2)), Offset: 2}}}}, nil)
		}},
		{"A rows", "A has shape", func(b *Builder) *Node {
			return LoRALinearMulti(b.Param(NewParam("x", Float64, 2, 4)), b.Param(NewParam("W", Float64, 4, 3)), nil,
				[]LoRAAdapter{{Scale: 1, Slices: []LoRASlice{{A: b.Param(NewParam("A", Float64, 3, 1)), B: b.Param(NewParam("B", Float64, 1, 3))}}}}, nil)
		}},
		{"rows length", "rows", func(b *Builder) *Node {
			return LoRALinearMulti(b.Param(NewParam("x", Float64, 2, 4)), b.Param(NewParam("W", Float64, 4, 3)), nil,
				[]LoRAAdapter{{Scale: 1, Slices: []LoRASlice{{A: b.Param(NewParam("A", Float64, 4, 1)), B: b.Param(NewParam("B", Float64, 1, 3))}}}}, b.IntInput("rows", 3))
		}},
		{"infinite scale", "not finite", func(b *Builder) *Node {
			return LoRALinearMulti(b.Param(NewParam("x", Float64, 2, 4)), b.Param(NewParam("W", Float64, 4, 3)), nil,
				[]LoRAAdapter{{Scale: math.Inf(1), Slices: []LoRASlice{{A: b.Param(NewParam("A", Float64, 4, 1)), B: b.Param(NewParam("B", Float64, 1, 3))}}}}, nil)
		}},
		{"float ids", "ids", func(b *Builder) *Node {
			return LoRAEmbedding(b.Param(NewParam("table", Float64, 4, 3)), b.Input("ids", 2),
				[]LoRAAdapter{{Scale: 1, Slices: []LoRASlice{{A: b.Param(NewParam("A", Float64, 4, 1)), B: b.Param(NewParam("B", Float64, 1, 3))}}}}, nil)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			out := c.build(b)
			if out.Err() == nil || !strings.Contains(out.Err().Error(), c.want) {
				t.Errorf("err %v, want one containing %q", out.Err(), c.want)
			}
		})
	}
}

// One training step (forward + backward) of c_attn at a small model's shape,
// x [16·128, 128] → [16·128, 384], rank 8, float32, W and b frozen, x an
// input: LoRALinear with one adapter against LoRALinearMulti with the same
// adapter on every row, and with the rows split evenly among k adapters.
//
//	go test ./graph -run XXX -bench LoRALinearMulti -benchmem -benchtime 20x
func BenchmarkLoRALinearMultiStep(b *testing.B) {
	const n, in, out, r = 16 * 128, 128, 384, 8
	for _, c := range []struct {
		name     string
		adapters int
		routed   bool
	}{{"LoRALinear", 0, false}, {"multi-1-all-rows", 1, false}, {"multi-2-routed", 2, true}, {"multi-4-routed", 4, true}} {
		b.Run(c.name, func(b *testing.B) {
			ps := makeParams([]pspec{{name: "W", shape: []int{in, out}, scale: 0.1}, {name: "b", shape: []int{out}, scale: 0.1}}, Float32, 1)
			for _, p := range ps {
				p.Trainable = false
			}
			g := NewBuilder(Float32, 1)
			x := g.Input("x", n, in)
			w, bias := g.Param(ps[0]), g.Param(ps[1])
			k := max(c.adapters, 1)
			var ads []LoRAAdapter
			for j := 0; j < k; j++ {
				ab := makeParams([]pspec{{name: fmt.Sprintf("A%d", j), shape: []int{in, r}, scale: 0.1}, {name: fmt.Sprintf("B%d", j), shape: []int{r, out}, scale: 0.1}}, Float32, uint64(2+j))
				ads = append(ads, LoRAAdapter{Scale: 2, Slices: []LoRASlice{{A: g.Param(ab[0]), B: g.Param(ab[1])}}})
			}
			var y *Node
			switch {
			case c.adapters == 0:
				y = LoRALinear(x, x, w, bias, ads[0].Slices[0].A, ads[0].Slices[0].B, 2)
			case c.routed:
				rows := make([]int, n)
				for i := range rows {
					rows[i] = i * k / n
				}
				y = LoRALinearMulti(x, w, bias, ads, multiIntInput(g, "rows", rows))
			default:
				y = LoRALinearMulti(x, w, bias, ads, nil)
			}
			prog, err := g.Compile(Sum(y))
			if err != nil {
				b.Fatal(err)
			}
			xs := make([]float32, n*in)
			for i := range xs {
				xs[i] = float32(i%7) * 0.1
			}
			if err := prog.SetInput(x, xs); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := prog.Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
