package graph

import (
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// intConst adds an integer input whose value is set here, so that cases run
// by runOpCase (which feeds no inputs) can carry targets.
func intConst(b *Builder, name string, ids []int) *Node {
	n := b.IntInput(name, len(ids))
	if n.Err() == nil {
		copy(n.n.Value().(*tensor.Dense).Data().([]int), ids)
	}
	return n
}

// refXent is the direct formula in float64, with log p = x − log Σ exp(x)
// (no max: the test logits are small).
func refXent(x []float64, v int, ids []int, mask []float64, eps float64) float64 {
	var num, den float64
	for i, t := range ids {
		m := 1.0
		if mask != nil {
			m = mask[i]
		}
		row := x[i*v : (i+1)*v]
		var z float64
		for _, xv := range row {
			z += math.Exp(xv)
		}
		logp := func(j int) float64 { return row[j] - math.Log(z) }
		var mean float64
		for j := range row {
			mean -= logp(j) / float64(v)
		}
		num += m * ((1-eps)*-logp(t) + eps*mean)
		den += m
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func xentCase(name string, n, v int, ids []int, mask []float64, eps float64, init func([]float64)) opCase {
	return opCase{name: name, params: []pspec{{name: "logits", shape: []int{n, v}, scale: 2, init: init}},
		build: func(b *Builder, p []*Node) *Node {
			var m *Node
			if mask != nil {
				m = b.Constant("mask", mask, n)
			}
			return SoftmaxCrossEntropy(p[0], intConst(b, "targets", ids), m, eps)
		}}
}

func TestSoftmaxCrossEntropyGradients(t *testing.T) {
	ids := []int{0, 4, 2, 2, 1}
	cases := []opCase{
		xentCase("plain", 5, 5, ids, nil, 0, nil),
		xentCase("smoothing", 5, 5, ids, nil, 0.1, nil),
		xentCase("mask", 5, 5, ids, []float64{1, 0, 1, 1, 0}, 0, nil),
		xentCase("mask+smoothing", 5, 5, ids, []float64{0, 1, 1, 0, 1}, 0.3, nil),
		xentCase("weights", 5, 5, ids, []float64{0.5, 2, 1, 0, 3}, 0.2, nil),
		xentCase("all masked", 5, 5, ids, []float64{0, 0, 0, 0, 0}, 0.1, nil),
		xentCase("V=1", 3, 1, []int{0, 0, 0}, nil, 0.5, nil),
		// Rows shifted by ±1000 only work with a per-row max.
		xentCase("offset rows", 3, 4, []int{1, 3, 0}, nil, 0.1, func(v []float64) {
			for j := 0; j < 4; j++ {
				v[j] += 1000
				v[8+j] -= 1000
			}
		}),
		xentCase("wide", 40, 1000, func() []int {
			out := make([]int, 40)
			for i := range out {
				out[i] = (i * 37) % 1000
			}
			return out
		}(), nil, 0.1, nil),
	}
	// loss² makes the upstream gradient 2·loss instead of 1.
	sq := xentCase("squared", 5, 5, ids, []float64{1, 0, 2, 1, 1}, 0.1, nil)
	inner := sq.build
	sq.build = func(b *Builder, p []*Node) *Node { l := inner(b, p); return Mul(l, l) }
	cases = append(cases, sq)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

// xentRun compiles logits (a parameter) → SoftmaxCrossEntropy with fed
// targets and mask, runs forward and backward, and returns the loss and the
// logits gradient.
func xentRun(t *testing.T, dt DType, x []float64, n, v int, ids []int, mask []float64, eps float64) (float64, []float64, error) {
	t.Helper()
	p, err := NewParamFrom("logits", x, n, v)
	if err != nil {
		t.Fatal(err)
	}
	p = p.Convert(dt)
	b := NewBuilder(dt, 1)
	tg := b.IntInput("targets", n)
	var m *Node
	if mask != nil {
		m = b.Input("mask", n)
	}
	loss := SoftmaxCrossEntropy(b.Param(p), tg, m, eps)
	prog, err := b.Compile(loss)
	if err != nil {
		t.Fatal(err)
	}
	if err := prog.SetInts(tg, ids); err != nil {
		t.Fatal(err)
	}
	if m != nil {
		if err := prog.SetInput(m, mask); err != nil {
			t.Fatal(err)
		}
	}
	if err := prog.Run(); err != nil {
		return 0, nil, err
	}
	g, ok := prog.Grad(p)
	if !ok {
		t.Fatal("no gradient for logits")
	}
	return prog.Loss(), g.Values(), nil
}

func TestSoftmaxCrossEntropyMatchesReference(t *testing.T) {
	const n, v = 6, 7
	x := makeParams([]pspec{{name: "x", shape: []int{n, v}, scale: 3}}, Float64, 12)[0].Float64s()
	ids := []int{6, 0, 3, 3, 5, 1}
	for _, c := range []struct {
		name string
		mask []float64
		eps  float64
	}{
		{"plain", nil, 0},
		{"smoothing", nil, 0.1},
		{"mask", []float64{1, 1, 0, 1, 0, 1}, 0},
		{"weights+smoothing", []float64{0.5, 1, 2, 0, 1, 3}, 0.25},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := refXent(x, v, ids, c.mask, c.eps)
			for _, dt := range []DType{Float64, Float32} {
				got, _, err := xentRun(t, dt, x, n, v, ids, c.mask, c.eps)
				if err != nil {
					t.Fatal(err)
				}
				// float32 logits carry a relative rounding of 6e-8.
				tol := 1e-14
				if dt == Float32 {
					tol = 1e-6
				}
				if math.Abs(got-want) > tol*math.Max(1, want) {
					t.Errorf("%v: loss %v, want %v", dt, got, want)
				}
			}
		})
	}
}

// TestSoftmaxCrossEntropyWide uses rows large enough to be split over
// goroutines, checking the loss and the gradient's closed form
// (p − (1−ε)·onehot − ε/V)·m_i/Σm.
func TestSoftmaxCrossEntropyWide(t *testing.T) {
	const n, v, eps = 64, 2000, 0.1
	x := makeParams([]pspec{{name: "x", shape: []int{n, v}, scale: 4}}, Float64, 21)[0].Float64s()
	ids, mask := xentData(n, v)
	loss, grad, err := xentRun(t, Float64, x, n, v, ids, mask, eps)
	if err != nil {
		t.Fatal(err)
	}
	if want := refXent(x, v, ids, mask, eps); math.Abs(loss-want) > 1e-13*want {
		t.Errorf("loss %v, want %v", loss, want)
	}
	var msum float64
	for _, m := range mask {
		msum += m
	}
	want := make([]float64, n*v)
	for i := 0; i < n; i++ {
		row := x[i*v : (i+1)*v]
		var z float64
		for _, xv := range row {
			z += math.Exp(xv)
		}
		for j, xv := range row {
			g := math.Exp(xv)/z - eps/v
			if j == ids[i] {
				g -= 1 - eps
			}
			want[i*v+j] = g * mask[i] / msum
		}
	}
	compareRel(t, "gradient", grad, want, 1e-15)
}

// TestSoftmaxCrossEntropyMaskedRows checks that a row with zero mask adds
// nothing: the loss equals the loss of the other rows alone, and its
// gradient row is exactly zero. Its target may be out of range.
func TestSoftmaxCrossEntropyMaskedRows(t *testing.T) {
	const n, v = 4, 5
	x := makeParams([]pspec{{name: "x", shape: []int{n, v}}}, Float64, 3)[0].Float64s()
	loss, grad, err := xentRun(t, Float64, x, n, v, []int{1, -7, 2, 99}, []float64{1, 0, 1, 0}, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	kept := append(append([]float64{}, x[:v]...), x[2*v:3*v]...)
	if want := refXent(kept, v, []int{1, 2}, nil, 0.1); math.Abs(loss-want) > 1e-14 {
		t.Errorf("loss %v, want %v from the unmasked rows", loss, want)
	}
	for _, r := range []int{1, 3} {
		for j := 0; j < v; j++ {
			if grad[r*v+j] != 0 {
				t.Errorf("masked row %d: gradient %v", r, grad[r*v:(r+1)*v])
				break
			}
		}
	}
	// Unmasked rows: g·(p − (1−ε)·onehot − ε/V)/Σm, summing to zero per row.
	for _, r := range []int{0, 2} {
		var s float64
		for j := 0; j < v; j++ {
			s += grad[r*v+j]
		}
		if math.Abs(s) > 1e-15 {
			t.Errorf("row %d: gradient sums to %v, want 0", r, s)
		}
	}
}

func TestSoftmaxCrossEntropyZeroMask(t *testing.T) {
	for _, dt := range []DType{Float64, Float32} {
		x := []float64{1, 2, 3, 4, 5, 6}
		loss, grad, err := xentRun(t, dt, x, 2, 3, []int{0, 1}, []float64{0, 0}, 0.1)
		if err != nil {
			t.Fatal(err)
		}
		if loss != 0 {
			t.Errorf("%v: loss %v, want 0", dt, loss)
		}
		for i, g := range grad {
			if g != 0 {
				t.Errorf("%v: gradient[%d] = %v, want 0", dt, i, g)
			}
		}
	}
}

func TestSoftmaxCrossEntropyTargetOutOfRange(t *testing.T) {
	x := make([]float64, 3*4)
	for _, c := range []struct {
		ids  []int
		want string
	}{
		{[]int{0, 1, 4}, "row 2: id 4 outside [0, 4)"},
		{[]int{0, -1, 3}, "row 1: id -1 outside [0, 4)"},
	} {
		_, _, err := xentRun(t, Float32, x, 3, 4, c.ids, nil, 0)
		if err == nil {
			t.Fatalf("targets %v: no error", c.ids)
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "targets") {
			t.Errorf("targets %v: error %q, want one naming targets and %q", c.ids, err, c.want)
		}
	}
}

func TestSoftmaxCrossEntropyBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *Builder) *Node
		want  string
	}{
		{"smoothing 1", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 2, 3), b.IntInput("t", 2), nil, 1)
		}, "smoothing"},
		{"smoothing <0", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 2, 3), b.IntInput("t", 2), nil, -0.1)
		}, "smoothing"},
		{"smoothing NaN", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 2, 3), b.IntInput("t", 2), nil, math.NaN())
		}, "smoothing"},
		{"float targets", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 2, 3), b.Input("t", 2), nil, 0)
		}, `targets "t"`},
		{"int mask", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 2, 3), b.IntInput("t", 2), b.IntInput("m", 2), 0)
		}, `mask "m"`},
		{"int logits", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.IntInput("x", 2, 3), b.IntInput("t", 2), nil, 0)
		}, `logits "x"`},
		{"targets length", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 2, 3), b.IntInput("t", 3), nil, 0)
		}, "targets shape"},
		{"mask length", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 2, 3), b.IntInput("t", 2), b.Input("m", 3), 0)
		}, "mask shape"},
		{"1-D logits", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 6), b.IntInput("t", 6), nil, 0)
		}, "logits shape"},
		{"nil targets", func(b *Builder) *Node {
			return SoftmaxCrossEntropy(b.Input("x", 2, 3), nil, nil, 0)
		}, "input 1 is nil"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := c.build(NewBuilder(Float64, 1))
			if y.Err() == nil {
				t.Fatal("built without error")
			}
			if !strings.Contains(y.Err().Error(), c.want) {
				t.Errorf("error %q does not mention %q", y.Err(), c.want)
			}
		})
	}
}

// TestSoftmaxCrossEntropyRerun feeds new targets and mask to one program: the
// loss and gradient follow them (the stashed softmax is refreshed).
func TestSoftmaxCrossEntropyRerun(t *testing.T) {
	const n, v = 3, 4
	p := makeParams([]pspec{{name: "logits", shape: []int{n, v}}}, Float64, 5)[0]
	b := NewBuilder(Float64, 1)
	tg, m := b.IntInput("targets", n), b.Input("mask", n)
	prog, err := b.Compile(SoftmaxCrossEntropy(b.Param(p), tg, m, 0.2))
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range []struct {
		ids  []int
		mask []float64
	}{{[]int{0, 1, 2}, []float64{1, 1, 1}}, {[]int{3, 3, 0}, []float64{1, 0, 1}}} {
		if k == 1 {
			p.Float64s()[0] += 0.7
		}
		if err := prog.SetInts(tg, c.ids); err != nil {
			t.Fatal(err)
		}
		if err := prog.SetInput(m, c.mask); err != nil {
			t.Fatal(err)
		}
		if err := prog.Run(); err != nil {
			t.Fatal(err)
		}
		g, _ := prog.Grad(p)
		wantLoss, wantGrad, err := xentRun(t, Float64, p.Float64s(), n, v, c.ids, c.mask, 0.2)
		if err != nil {
			t.Fatal(err)
		}
		if prog.Loss() != wantLoss {
			t.Errorf("run %d: loss %v, fresh program %v", k, prog.Loss(), wantLoss)
		}
		compareRel(t, "gradient", g.Values(), wantGrad, 0)
	}
}
