package graph

import (
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
)

// loraLayout describes a LoRA op under test. Its parameters, in order, are
// x [n, in], xd (unless shared), W [in, out], b [out] (if bias), then A_i
// [in, ranks[i]] and B_i [ranks[i], widths[i]] per slice.
type loraLayout struct {
	n, in, out   int
	shared, bias bool
	ranks        []int
	widths, offs []int // nil widths: one whole slice, built with LoRALinear
	scale        float64
}

func (l loraLayout) sliced() bool { return l.widths != nil }

func (l loraLayout) width(i int) int {
	if l.sliced() {
		return l.widths[i]
	}
	return l.out
}

func (l loraLayout) offset(i int) int {
	if l.sliced() {
		return l.offs[i]
	}
	return 0
}

func (l loraLayout) specs() []pspec {
	ps := []pspec{{name: "x", shape: []int{l.n, l.in}}}
	if !l.shared {
		ps = append(ps, pspec{name: "xd", shape: []int{l.n, l.in}})
	}
	ps = append(ps, pspec{name: "W", shape: []int{l.in, l.out}})
	if l.bias {
		ps = append(ps, pspec{name: "b", shape: []int{l.out}})
	}
	for i, r := range l.ranks {
		ps = append(ps, pspec{name: fmt.Sprintf("A%d", i), shape: []int{l.in, r}},
			pspec{name: fmt.Sprintf("B%d", i), shape: []int{r, l.width(i)}})
	}
	return ps
}

// loraSplit names the parameters (or their values) of a layout in spec order.
func loraSplit[T any](l loraLayout, p []T) (x, xd, w T, bias *T, a, bm []T) {
	x, xd, i := p[0], p[0], 1
	if !l.shared {
		xd, i = p[1], 2
	}
	w, i = p[i], i+1
	if l.bias {
		bias, i = &p[i], i+1
	}
	for ; i < len(p); i += 2 {
		a, bm = append(a, p[i]), append(bm, p[i+1])
	}
	return
}

func (l loraLayout) build(b *Builder, p []*Node) *Node {
	x, xd, w, bp, a, bm := loraSplit(l, p)
	var bias *Node
	if bp != nil {
		bias = *bp
	}
	if !l.sliced() {
		return LoRALinear(x, xd, w, bias, a[0], bm[0], l.scale)
	}
	slices := make([]LoRASlice, len(a))
	for i := range a {
		slices[i] = LoRASlice{A: a[i], B: bm[i], Offset: l.offs[i]}
	}
	return LoRALinearSliced(x, xd, w, bias, slices, l.scale)
}

// reference computes x·W + b + s·Σ_i (xd·A_i)·B_i by plain loops.
func (l loraLayout) reference(vals [][]float64) []float64 {
	x, xd, w, bp, a, bm := loraSplit(l, vals)
	y := make([]float64, l.n*l.out)
	for n := 0; n < l.n; n++ {
		for j := 0; j < l.out; j++ {
			v := 0.0
			if bp != nil {
				v = (*bp)[j]
			}
			for k := 0; k < l.in; k++ {
				v += x[n*l.in+k] * w[k*l.out+j]
			}
			y[n*l.out+j] = v
		}
		for i, r := range l.ranks {
			wd := l.width(i)
			for p := 0; p < r; p++ {
				xa := 0.0
				for k := 0; k < l.in; k++ {
					xa += xd[n*l.in+k] * a[i][k*r+p]
				}
				for j := 0; j < wd; j++ {
					y[n*l.out+l.offset(i)+j] += l.scale * xa * bm[i][p*wd+j]
				}
			}
		}
	}
	return y
}

func (l loraLayout) name() string {
	x := "xd≠x"
	if l.shared {
		x = "xd=x"
	}
	return fmt.Sprintf("%s/bias=%v/r=%v", x, l.bias, l.ranks)
}

// loraLayouts crosses xd = x or distinct, bias or not, and the given ranks.
func loraLayouts(base loraLayout, ranks [][]int) []loraLayout {
	var out []loraLayout
	for _, shared := range []bool{true, false} {
		for _, bias := range []bool{true, false} {
			for _, r := range ranks {
				l := base
				l.shared, l.bias, l.ranks = shared, bias, r
				out = append(out, l)
			}
		}
	}
	return out
}

var (
	// loraWhole is LoRALinear on a small odd shape.
	loraWhole = loraLayout{n: 5, in: 6, out: 7, scale: 0.75}
	// loraQV is GPT-2's c_attn with d = 3: q at 0 and v at 2d, k left alone.
	loraQV = loraLayout{n: 5, in: 3, out: 9, widths: []int{3, 3}, offs: []int{0, 6}, scale: 1.5}
	// loraRagged has unsorted slices of different widths and ranks and a gap.
	loraRagged = loraLayout{n: 4, in: 5, out: 11, widths: []int{2, 4}, offs: []int{8, 1}, scale: 0.5}
)

func TestLoRALinearGradients(t *testing.T) {
	for _, l := range loraLayouts(loraWhole, [][]int{{1}, {4}}) {
		t.Run(l.name(), func(t *testing.T) {
			runOpCase(t, opCase{params: l.specs(), build: l.build})
		})
	}
}

func TestLoRALinearSlicedGradients(t *testing.T) {
	layouts := append(loraLayouts(loraQV, [][]int{{1, 1}, {4, 4}}), loraLayouts(loraRagged, [][]int{{3, 1}})...)
	for _, l := range layouts {
		t.Run(fmt.Sprintf("%v/%s", l.offs, l.name()), func(t *testing.T) {
			runOpCase(t, opCase{params: l.specs(), build: l.build})
		})
	}
}

func TestLoRALinearMatchesReference(t *testing.T) {
	layouts := append(loraLayouts(loraWhole, [][]int{{1}, {4}}), loraLayouts(loraQV, [][]int{{2, 2}})...)
	layouts = append(layouts, loraLayouts(loraRagged, [][]int{{3, 1}})...)
	for _, l := range layouts {
		t.Run(fmt.Sprintf("%v/%s", l.offs, l.name()), func(t *testing.T) {
			ps := makeParams(l.specs(), Float64, 21)
			vals := make([][]float64, len(ps))
			for i, p := range ps {
				vals[i] = p.Values()
			}
			got := forward(t, Float64, ps, l.build)
			compareRel(t, "y", got, l.reference(vals), 1e-12)
		})
	}
}

// With B = 0 (LoRA's initialisation) the op is exactly the base Linear: the
// LoRA term adds +0 to every element.
func TestLoRALinearZeroBIsLinear(t *testing.T) {
	base := loraLayout{n: 37, in: 70, out: 45, scale: 2}
	layouts := loraLayouts(base, [][]int{{8}})
	qv := loraLayout{n: 37, in: 24, out: 72, widths: []int{24, 24}, offs: []int{0, 48}, scale: 2}
	layouts = append(layouts, loraLayouts(qv, [][]int{{8, 8}})...)
	for _, l := range layouts {
		for _, dt := range []DType{Float32, Float64} {
			t.Run(fmt.Sprintf("%v/%s/%v", l.offs, l.name(), dt), func(t *testing.T) {
				specs := l.specs()
				for i := range specs {
					if strings.HasPrefix(specs[i].name, "B") {
						specs[i].init = func(v []float64) { clear(v) }
					}
				}
				ps := makeParams(specs, dt, 4)
				got := forward(t, dt, ps, l.build)
				want := forward(t, dt, ps, func(b *Builder, p []*Node) *Node {
					x, _, w, bp, _, _ := loraSplit(l, p)
					var bias *Node
					if bp != nil {
						bias = *bp
					}
					return Linear(x, w, bias)
				})
				for i := range want {
					if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
						t.Fatalf("y[%d] = %v, Linear gives %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// loraProgramGrads runs build with every parameter trainable under the harness
// loss and returns the output and the gradients in parameter order.
func loraProgramGrads(t *testing.T, ps []*Param, build func(b *Builder, p []*Node) *Node) ([]float64, [][]float64) {
	t.Helper()
	b := NewBuilder(Float64, 5)
	nodes := make([]*Node, len(ps))
	for i, p := range ps {
		nodes[i] = b.Param(p)
	}
	out := build(b, nodes)
	prog, err := b.Compile(lossFor(b, out, 3), out)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	y, err := prog.Output(out)
	if err != nil {
		t.Fatal(err)
	}
	grads := make([][]float64, len(ps))
	for i, p := range ps {
		g, ok := prog.Grad(p)
		if !ok {
			t.Fatalf("no gradient for %s", p.Name)
		}
		grads[i] = g.Values()
	}
	return y.Values(), grads
}

// loraColumns returns columns [c0, c0+w) of a row-major matrix with cols columns.
func loraColumns(m []float64, cols, c0, w int) []float64 {
	var out []float64
	for i := 0; i+cols <= len(m); i += cols {
		out = append(out, m[i+c0:i+c0+w]...)
	}
	return out
}

// The q/v sliced op equals LoRALinear on the whole c_attn with the rank-2r
// factors A = [A_q | A_v] and B = [[B_q 0 0], [0 0 B_v]], the form golora
// writes to PEFT files; outputs and every gradient agree.
func TestLoRALinearSlicedMatchesDense(t *testing.T) {
	const d, r = 4, 2
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			sl := loraLayout{n: 5, in: d, out: 3 * d, shared: shared, bias: true,
				ranks: []int{r, r}, widths: []int{d, d}, offs: []int{0, 2 * d}, scale: 0.5}
			ps := makeParams(sl.specs(), Float64, 8)
			x, xd, w, bp, a, bm := loraSplit(sl, ps)

			dense := sl
			dense.ranks, dense.widths, dense.offs = []int{2 * r}, nil, nil
			da, db := NewParam("A", Float64, d, 2*r), NewParam("B", Float64, 2*r, 3*d)
			for k := 0; k < d; k++ {
				for p := 0; p < r; p++ {
					da.Float64s()[k*2*r+p] = a[0].Float64s()[k*r+p]
					da.Float64s()[k*2*r+r+p] = a[1].Float64s()[k*r+p]
				}
			}
			for p := 0; p < r; p++ {
				copy(db.Float64s()[p*3*d:], bm[0].Float64s()[p*d:(p+1)*d])
				copy(db.Float64s()[(r+p)*3*d+2*d:], bm[1].Float64s()[p*d:(p+1)*d])
			}
			dps := []*Param{x}
			if !shared {
				dps = append(dps, xd)
			}
			dps = append(dps, w, *bp, da, db)

			ys, gs := loraProgramGrads(t, ps, sl.build)
			yd, gd := loraProgramGrads(t, dps, dense.build)
			const tol = 1e-12
			compareRel(t, "y", ys, yd, tol)
			base := len(dps) - 2 // x, xd, W, b come first in both
			for i := 0; i < base; i++ {
				compareRel(t, "grad "+ps[i].Name, gs[i], gd[i], tol)
			}
			dA, dB := gd[base], gd[base+1]
			compareRel(t, "grad A_q", gs[base], loraColumns(dA, 2*r, 0, r), tol)
			compareRel(t, "grad A_v", gs[base+2], loraColumns(dA, 2*r, r, r), tol)
			compareRel(t, "grad B_q", gs[base+1], loraColumns(dB[:r*3*d], 3*d, 0, d), tol)
			compareRel(t, "grad B_v", gs[base+3], loraColumns(dB[r*3*d:], 3*d, 2*d, d), tol)
		})
	}
}

// loraFusedOps returns the ops of g's nodes whose kernel is named name.
func loraFusedOps(g *G.ExprGraph, name string) (nodes []*G.Node, ops []*fusedOp) {
	for _, n := range g.AllNodes() {
		if op, ok := n.Op().(*fusedOp); ok && op.k.String() == name {
			nodes, ops = append(nodes, n), append(ops, op)
		}
	}
	return nodes, ops
}

// A frozen W gets no gradient work: the dW op that SymDiff builds is not in
// the compiled subgraph and its kernel never runs (its output buffer, made on
// the first run, stays nil); with W trainable the same op does run. The
// shared dy·Bᵀ op runs once and feeds both dA and dx.
func TestLoRALinearFrozenWeightDoesNoWork(t *testing.T) {
	l := loraLayout{n: 6, in: 5, out: 4, shared: true, bias: true, ranks: []int{2}, scale: 0.5}
	var gradA [2][]float64
	for k, trainW := range []bool{false, true} {
		t.Run(fmt.Sprintf("W trainable=%v", trainW), func(t *testing.T) {
			ps := makeParams(l.specs(), Float32, 2)
			_, _, w, bias, a, bm := loraSplit(l, ps)
			w.Trainable, (*bias).Trainable = trainW, trainW
			b := NewBuilder(Float32, 1)
			x := b.Input("x", l.n, l.in)
			y := LoRALinear(x, x, b.Param(w), b.Param(*bias), b.Param(a[0]), b.Param(bm[0]), l.scale)
			prog, err := b.Compile(lossFor(b, y, 3))
			if err != nil {
				t.Fatal(err)
			}
			xs := make([]float64, l.n*l.in)
			for i := range xs {
				xs[i] = math.Sin(float64(i))
			}
			if err := prog.SetInput(x, xs); err != nil {
				t.Fatal(err)
			}
			for run := 0; run < 2; run++ {
				if err := prog.Run(); err != nil {
					t.Fatal(err)
				}
			}
			want := []*Param{a[0], bm[0]}
			if trainW {
				want = []*Param{w, *bias, a[0], bm[0]}
			}
			if got := prog.Trainable(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("trainable %v, want %v", got, want)
			}
			compiled := map[*G.Node]bool{}
			for _, n := range b.g.ExactSubgraphRoots(prog.fullRoots...).AllNodes() {
				compiled[n] = true
			}
			for _, c := range []struct {
				kernel string
				runs   bool
			}{
				{"LoRALinear.dW", trainW},
				{"ColSum", trainW},       // db
				{"LoRALinear.dx", false}, // x is an input
				{"LoRALinear.dyB", true},
				{"LoRALinear.dA0", true},
				{"LoRALinear.dB0", true},
			} {
				nodes, ops := loraFusedOps(b.g, c.kernel)
				if len(ops) != 1 {
					t.Fatalf("%d %s ops in the graph, want 1", len(ops), c.kernel)
				}
				if ran := ops[0].buf != nil; ran != c.runs || compiled[nodes[0]] != c.runs {
					t.Errorf("%s: ran %v, compiled %v, want %v", c.kernel, ran, compiled[nodes[0]], c.runs)
				}
			}
			dyb, _ := loraFusedOps(b.g, "LoRALinear.dyB")
			for _, user := range []string{"LoRALinear.dA0", "LoRALinear.dx"} {
				un, _ := loraFusedOps(b.g, user)
				if !b.g.HasEdgeFromTo(un[0].ID(), dyb[0].ID()) {
					t.Errorf("%s does not read the shared dy·Bᵀ", user)
				}
			}
			g, _ := prog.Grad(a[0])
			gradA[k] = g.Values()
		})
	}
	compareRel(t, "grad A frozen vs trainable W", gradA[0], gradA[1], 0)
}

// The dB ops read xd·A from the forward op's stash: a second run on new
// inputs must see the new stash. Checked against loops with dy = R.
func TestLoRALinearStashFollowsInputs(t *testing.T) {
	l := loraRagged
	l.shared, l.ranks = false, []int{3, 1}
	ps := makeParams(l.specs()[2:], Float64, 6) // W, A0, B0, A1, B1
	b := NewBuilder(Float64, 1)
	x, xd := b.Input("x", l.n, l.in), b.Input("xd", l.n, l.in)
	nodes := []*Node{x, xd}
	for _, p := range ps {
		nodes = append(nodes, b.Param(p))
	}
	y := l.build(b, nodes)
	rng := rand.New(rand.NewPCG(1, 2))
	rv := make([]float64, l.n*l.out)
	for i := range rv {
		rv[i] = rng.Float64() - 0.5
	}
	prog, err := b.Compile(Sum(Mul(y, b.Constant("R", rv, l.n, l.out))), y)
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 3; run++ {
		in := [2][]float64{make([]float64, l.n*l.in), make([]float64, l.n*l.in)}
		for _, v := range in {
			for i := range v {
				v[i] = 2*rng.Float64() - 1
			}
		}
		if err := prog.SetInput(x, in[0]); err != nil {
			t.Fatal(err)
		}
		if err := prog.SetInput(xd, in[1]); err != nil {
			t.Fatal(err)
		}
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		vals := [][]float64{in[0], in[1]}
		for _, p := range ps {
			vals = append(vals, p.Values())
		}
		out, err := prog.Output(y)
		if err != nil {
			t.Fatal(err)
		}
		compareRel(t, fmt.Sprintf("run %d y", run), out.Values(), l.reference(vals), 1e-12)
		_, xdv, _, _, av, _ := loraSplit(l, vals)
		for i, r := range l.ranks {
			// dB_i = s·(xd·A_i)ᵀ·R_i
			want := make([]float64, r*l.widths[i])
			for n := 0; n < l.n; n++ {
				for p := 0; p < r; p++ {
					xa := 0.0
					for k := 0; k < l.in; k++ {
						xa += xdv[n*l.in+k] * av[i][k*r+p]
					}
					for j := 0; j < l.widths[i]; j++ {
						want[p*l.widths[i]+j] += l.scale * xa * rv[n*l.out+l.offs[i]+j]
					}
				}
			}
			g, ok := prog.Grad(ps[2+2*i])
			if !ok {
				t.Fatalf("no gradient for B%d", i)
			}
			compareRel(t, fmt.Sprintf("run %d grad B%d", run, i), g.Values(), want, 1e-12)
		}
	}
}

func TestLoRALinearErrors(t *testing.T) {
	type nodes struct{ x, xd, w, bias, a, bm, a2, b2 *Node }
	mk := func(b *Builder) nodes {
		p := func(name string, shape ...int) *Node { return b.Param(NewParam(name, Float64, shape...)) }
		x := b.Input("x", 3, 4)
		return nodes{x: x, xd: x, w: p("W", 4, 6), bias: p("b", 6), a: p("A", 4, 2), bm: p("B", 2, 3), a2: p("A2", 4, 2), b2: p("B2", 2, 3)}
	}
	cases := []struct {
		name, want string
		build      func(b *Builder, n nodes) *Node
	}{
		{"overlap", "overlap", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, n.bias, []LoRASlice{{n.a, n.bm, 0}, {n.a2, n.b2, 2}}, 1)
		}},
		{"past the end", "outside", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, nil, []LoRASlice{{n.a, n.bm, 4}}, 1)
		}},
		{"negative offset", "outside", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, nil, []LoRASlice{{n.a, n.bm, -1}}, 1)
		}},
		{"no slices", "no LoRA slices", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, nil, nil, 1)
		}},
		{"nil A", "slice 1 A is nil", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, nil, []LoRASlice{{n.a, n.bm, 0}, {nil, n.b2, 3}}, 1)
		}},
		{"nil xd", "xd is nil", func(b *Builder, n nodes) *Node {
			return LoRALinear(n.x, nil, n.w, nil, n.a, n.bm, 1)
		}},
		{"rank mismatch", "slice 0: B has shape", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, nil, []LoRASlice{{b.Param(NewParam("A3", Float64, 4, 3)), n.bm, 0}}, 1)
		}},
		{"A rows", "slice 0: A has shape", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, nil, []LoRASlice{{b.Param(NewParam("A3", Float64, 5, 2)), n.bm, 0}}, 1)
		}},
		{"B narrower than W", "B has 3 columns, W has 6", func(b *Builder, n nodes) *Node {
			return LoRALinear(n.x, n.xd, n.w, nil, n.a, n.bm, 1)
		}},
		{"xd shape", "xd has shape", func(b *Builder, n nodes) *Node {
			return LoRALinear(n.x, b.Input("xd", 2, 4), n.w, nil, n.a, b.Param(NewParam("B6", Float64, 2, 6)), 1)
		}},
		{"W rows", "W has shape", func(b *Builder, n nodes) *Node {
			return LoRALinear(n.x, n.xd, b.Param(NewParam("W5", Float64, 5, 6)), nil, n.a, b.Param(NewParam("B6", Float64, 2, 6)), 1)
		}},
		{"bias", "bias has shape", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, b.Param(NewParam("b5", Float64, 5)), []LoRASlice{{n.a, n.bm, 0}}, 1)
		}},
		{"int input", "x (ids) is an integer input", func(b *Builder, n nodes) *Node {
			ids := b.IntInput("ids", 3, 4)
			return LoRALinear(ids, ids, n.w, nil, n.a, b.Param(NewParam("B6", Float64, 2, 6)), 1)
		}},
		{"scale", "not finite", func(b *Builder, n nodes) *Node {
			return LoRALinearSliced(n.x, n.xd, n.w, nil, []LoRASlice{{n.a, n.bm, 0}}, math.NaN())
		}},
		{"other builder", "different builders", func(b *Builder, n nodes) *Node {
			other := NewBuilder(Float64, 1).Param(NewParam("A", Float64, 4, 2))
			return LoRALinearSliced(n.x, n.xd, n.w, nil, []LoRASlice{{other, n.bm, 0}}, 1)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(Float64, 1)
			y := c.build(b, mk(b))
			if y.Err() == nil || !strings.Contains(y.Err().Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", y.Err(), c.want)
			}
			if _, err := b.Compile(Sum(y)); err == nil {
				t.Fatal("compile after a failed LoRA op succeeded")
			}
		})
	}
	// Adjacent and gapped slices are fine.
	b := NewBuilder(Float64, 1)
	n := mk(b)
	if y := LoRALinearSliced(n.x, n.xd, n.w, nil, []LoRASlice{{n.a2, n.b2, 3}, {n.a, n.bm, 0}}, 1); y.Err() != nil {
		t.Fatalf("adjacent slices: %v", y.Err())
	}
}

func ExampleLoRALinear() {
	b := NewBuilder(Float64, 1)
	param := func(name string, v []float64, shape ...int) *Node {
		p, err := NewParamFrom(name, v, shape...)
		if err != nil {
			log.Fatal(err)
		}
		return b.Param(p)
	}
	x := param("x", []float64{1, 2}, 1, 2)
	w := param("W", []float64{1, 0, 0, 1}, 2, 2)
	a := param("A", []float64{1, 1}, 2, 1)
	bm := param("B", []float64{0.5, -0.5}, 1, 2)
	// y = x·W + 2·(x·A)·B = [1 2] + 2·3·[0.5 −0.5]
	y := LoRALinear(x, x, w, nil, a, bm, 2)
	prog, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	if err := prog.Forward(); err != nil {
		log.Fatal(err)
	}
	out, _ := prog.Output(y)
	fmt.Println(out.F64)
	// Output: [4 -1]
}
