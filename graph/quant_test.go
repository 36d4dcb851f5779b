package graph

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func normals(n int, seed uint64, std float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * std)
	}
	return out
}

// blockAbsmax is the true absmax of each NF4 block of w.
func blockAbsmax(w []float32) []float64 {
	var out []float64
	for b := 0; b*NF4Block < len(w); b++ {
		var a float64
		for _, v := range w[b*NF4Block : min(len(w), (b+1)*NF4Block)] {
			a = max(a, math.Abs(float64(v)))
		}
		out = append(out, a)
	}
	return out
}

// TestNF4ErrorMatchesCodeBook checks every element's error against the code
// book: rounding to the nearest code errs by at most half the gap between
// the two codes around w/absmax, times absmax. With double quantization the
// absmax a' used is itself rounded; then the bound holds with a', and a
// value beyond a' is clipped to ±a'.
func TestNF4ErrorMatchesCodeBook(t *testing.T) {
	const rows, cols = 37, 70 // 2590 elements: a partial last block
	w := normals(rows*cols, 3, 0.05)
	w[5] = 0.9 // an outlier block
	for _, double := range []bool{false, true} {
		q, err := Quantize(w, rows, cols, NF4, QuantizeOptions{NoDoubleQuant: !double})
		if err != nil {
			t.Fatal(err)
		}
		dq := q.Dequantize()
		am := blockAbsmax(w)
		worst := 0.0
		for i, v := range w {
			a := float64(q.absmax(i / NF4Block))
			if !double && a != am[i/NF4Block] {
				t.Fatalf("block %d absmax %v, want %v", i/NF4Block, a, am[i/NF4Block])
			}
			x := float64(v)
			var bound float64
			if math.Abs(x) <= a {
				bound = NF4HalfGap(x/a) * a
			} else {
				bound = math.Abs(x) - a
			}
			e := math.Abs(x - float64(dq[i]))
			if e > bound*(1+1e-6)+1e-9 {
				t.Fatalf("double=%v: element %d = %v dequantized to %v: error %.3g above the code book's %.3g", double, i, x, dq[i], e, bound)
			}
			worst = max(worst, e/am[i/NF4Block])
		}
		// the largest half gap, between the two lowest codes
		if maxHalf := (float64(NF4Codes[1]) - float64(NF4Codes[0])) / 2; worst > maxHalf*1.01 {
			t.Fatalf("double=%v: worst error %.4f absmax, above the largest half gap %.4f", double, worst, maxHalf)
		}
		if double {
			// the absmax values are off by at most half a step of their 8-bit scale
			for b, a := range am {
				if d := math.Abs(float64(q.absmax(b)) - a); d > float64(q.amScale[b/NF4DQBlock])/2*1.001+1e-9 {
					t.Fatalf("block %d: double-quantized absmax off by %.3g, step %.3g", b, d, q.amScale[b/NF4DQBlock])
				}
			}
		}
	}
}

// TestNF4RoundTripExact quantizes values that are codes times their
// block's absmax: dequantization gives them back bit for bit, and the
// stored indices are the codes'.
func TestNF4RoundTripExact(t *testing.T) {
	const n = 4 * NF4Block
	for _, double := range []bool{false, true} {
		w := make([]float32, n)
		want := make([]byte, n)
		for i := range w {
			a := float32(0.5)
			if !double {
				a = float32(0.25 * float64(1+i/NF4Block)) // a different absmax per block
			}
			c := byte((i*7 + i/NF4Block) % 16)
			if i%NF4Block == 0 {
				c = 15 // the block's absmax is a itself
			}
			want[i] = c
			w[i] = NF4Codes[c] * a
		}
		q, err := Quantize(w, 4, NF4Block, NF4, QuantizeOptions{NoDoubleQuant: !double})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range q.Dequantize() {
			if v != w[i] {
				t.Fatalf("double=%v: element %d: %v → %v", double, i, w[i], v)
			}
			if c := (q.nibbles[i/2] >> (4 * (i % 2))) & 15; c != want[i] {
				t.Fatalf("double=%v: element %d stored as code %d, want %d", double, i, c, want[i])
			}
		}
	}
	// the storage: two indices a byte, one 8-bit absmax a block
	q, _ := Quantize(normals(1<<14, 1, 1), 128, 128, NF4, QuantizeOptions{})
	if got, want := q.Bytes(), int64(1<<13+1<<14/NF4Block+4+4); got != want {
		t.Fatalf("nf4 of 16384 elements holds %d bytes, want %d", got, want)
	}
}

func TestInt8AndBF16ErrorBounds(t *testing.T) {
	const rows, cols = 9, 13
	w := normals(rows*cols, 5, 0.1)
	for _, rowScale := range []bool{false, true} {
		q, err := Quantize(w, rows, cols, Int8, QuantizeOptions{RowScale: rowScale})
		if err != nil {
			t.Fatal(err)
		}
		dq := q.Dequantize()
		for i, v := range w {
			r, c := i/cols, i%cols
			var a float64
			for k := range max(rows, cols) {
				if rowScale && k < cols {
					a = max(a, math.Abs(float64(w[r*cols+k])))
				}
				if !rowScale && k < rows {
					a = max(a, math.Abs(float64(w[k*cols+c])))
				}
			}
			if e := math.Abs(float64(v - dq[i])); e > a/127/2*(1+1e-5) {
				t.Fatalf("int8 rowScale=%v element %d: error %.3g above half a step %.3g", rowScale, i, e, a/127/2)
			}
		}
	}
	q, _ := Quantize(w, rows, cols, BF16, QuantizeOptions{})
	for i, v := range q.Dequantize() {
		if e := math.Abs(float64(v - w[i])); e > math.Abs(float64(w[i]))*math.Pow(2, -8) {
			t.Fatalf("bf16 element %d: %v → %v, error above half an ulp (2⁻⁸ relative)", i, w[i], v)
		}
	}
	// bf16 values round-trip exactly
	for i, v := range q.Dequantize() {
		if fromBF16(toBF16(v)) != v {
			t.Fatalf("bf16 value %d does not round-trip", i)
		}
	}
	if _, err := Quantize([]float32{1, float32(math.NaN())}, 1, 2, NF4, QuantizeOptions{}); err == nil || !strings.Contains(err.Error(), "element 1") {
		t.Fatalf("NaN quantized: %v", err)
	}
	if _, err := ParsePrecision("fp4"); err == nil || !strings.Contains(err.Error(), "fp4") {
		t.Fatalf("ParsePrecision(fp4): %v", err)
	}
}

// quantPair returns a frozen quantized parameter and a float parameter of
// dtype dt holding its dequantized values.
func quantPair(t *testing.T, rows, cols int, p Precision, dt DType, seed uint64) (*Param, *Param) {
	t.Helper()
	w := normals(rows*cols, seed, 0.3)
	qp, err := NewParamFrom("w", w, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	qp.Trainable = false
	if err := qp.Quantize(p, QuantizeOptions{}); err != nil {
		t.Fatal(err)
	}
	fp := NewParam("wf", dt, rows, cols)
	fp.Trainable = false
	if err := fp.SetValues(qp.Values()); err != nil {
		t.Fatal(err)
	}
	return qp, fp
}

// runQuantLinear runs y = op(x, W, b) and loss = Σ y⊙c for fixed c and
// returns y and dL/dx, with tiles of 3 rows so that the tiling is exercised.
func runQuantLinear(t *testing.T, dt DType, x, w, bias *Param, transW bool) ([]float64, []float64) {
	t.Helper()
	b := NewBuilder(dt, 1)
	b.scratch().elems = 3 * w.Shape()[1]
	var bn *Node
	if bias != nil {
		bn = b.Param(bias)
	}
	var y *Node
	if transW {
		y = LinearT(b.Param(x), b.Param(w), bn)
	} else {
		y = Linear(b.Param(x), b.Param(w), bn)
	}
	c := b.Input("c", y.Shape()...)
	loss := Sum(Mul(y, c))
	prog, err := b.Compile(loss, y)
	if err != nil {
		t.Fatal(err)
	}
	cv := normals(y.Shape()[0]*y.Shape()[1], 9, 1)
	if err := prog.SetInput(c, cv); err != nil {
		t.Fatal(err)
	}
	if err := prog.Run(); err != nil {
		t.Fatal(err)
	}
	out, _ := prog.Output(y)
	g, ok := prog.Grad(x)
	if !ok {
		t.Fatal("no gradient for x")
	}
	return out.Values(), g.Values()
}

// TestQuantLinearMatchesDequantized compares Linear and LinearT on a
// quantized weight with the float ops on its dequantized values: forward
// and dx, float32 and float64, every precision.
func TestQuantLinearMatchesDequantized(t *testing.T) {
	for _, p := range []Precision{BF16, Int8, NF4} {
		for _, dt := range []DType{Float64, Float32} {
			for _, transW := range []bool{false, true} {
				qw, fw := quantPair(t, 11, 7, p, dt, 2)
				x := NewParam("x", dt, 5, 11)
				if transW {
					x = NewParam("x", dt, 5, 7)
				}
				_ = x.SetValues(toF64(normals(x.Len(), 4, 1)))
				bias := NewParam("b", dt, 7)
				if transW {
					bias = NewParam("b", dt, 11)
				}
				_ = bias.SetValues(toF64(normals(bias.Len(), 6, 1)))
				bias.Trainable = false
				yq, gq := runQuantLinear(t, dt, x, qw, bias, transW)
				yf, gf := runQuantLinear(t, dt, x, fw, bias, transW)
				tol := 1e-12
				if dt == Float32 {
					tol = 2e-5
				}
				compareRel(t, p.String()+" y", yq, yf, tol)
				compareRel(t, p.String()+" dx", gq, gf, tol)
			}
		}
	}
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestQuantLinearGradients checks dx through the quantized ops against
// central differences in float64, and float32 against float64.
func TestQuantLinearGradients(t *testing.T) {
	for _, transW := range []bool{false, true} {
		qw, _ := quantPair(t, 6, 4, NF4, Float64, 8)
		in := 6
		if transW {
			in = 4
		}
		x := NewParam("x", Float64, 3, in)
		_ = x.SetValues(toF64(normals(x.Len(), 10, 1)))
		res, err := CheckGradients(func(b *Builder) (*Node, error) {
			b.scratch().elems = 2 * 4
			var y *Node
			if transW {
				y = LinearT(b.Param(x), b.Param(qw), nil)
			} else {
				y = Linear(b.Param(x), b.Param(qw), nil)
			}
			return Sum(Mul(y, GELU(y))), b.Err()
		}, []*Param{x}, GradCheckOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if !r.OK(1e-7, 1e-6) {
				t.Fatalf("transW=%v: %v", transW, r)
			}
		}
		x32 := x.Convert(Float32)
		_, g64 := runQuantLinear(t, Float64, x, qw, nil, transW)
		_, g32 := runQuantLinear(t, Float32, x32, qw, nil, transW)
		compareRel(t, "float32 vs float64 dx", g32, g64, 1e-5)
	}
}

func TestQuantEmbeddingAndNorms(t *testing.T) {
	for _, dt := range []DType{Float64, Float32} {
		qw, fw := quantPair(t, 9, 6, NF4, dt, 12)
		ids := []int{3, 0, 8, 3}
		get := func(w *Param) []float64 {
			b := NewBuilder(dt, 1)
			in := b.IntInput("ids", len(ids))
			y := Embedding(b.Param(w), in)
			prog, err := b.Compile(nil, y)
			if err != nil {
				t.Fatal(err)
			}
			_ = prog.SetInts(in, ids)
			if err := prog.Forward(); err != nil {
				t.Fatal(err)
			}
			a, _ := prog.Output(y)
			return a.Values()
		}
		compareRel(t, "embedding", get(qw), get(fw), 0)

		// norms of W + Δ, Δ placed in columns [2, 5)
		d := NewParam("d", dt, 9, 3)
		_ = d.SetValues(toF64(normals(27, 13, 1)))
		norms := func(w *Param) []float64 {
			b := NewBuilder(dt, 1)
			b.scratch().elems = 12
			var y *Node
			if w.Quantized() != nil {
				y = QuantColNorms(b.Param(w), []*Node{b.Param(d)}, []int{2})
			} else {
				y = L2Norm(AddCols(b.Param(w), b.Param(d), 2), 0)
			}
			prog, err := b.Compile(nil, y)
			if err != nil {
				t.Fatal(err)
			}
			if err := prog.Forward(); err != nil {
				t.Fatal(err)
			}
			a, _ := prog.Output(y)
			return a.Values()
		}
		tol := 1e-14
		if dt == Float32 {
			tol = 1e-6
		}
		compareRel(t, "norms", norms(qw), norms(fw), tol)
	}
}

func TestQuantizedParamRules(t *testing.T) {
	qw, _ := quantPair(t, 4, 4, Int8, Float32, 1)
	b := NewBuilder(Float32, 1)
	if y := Add(b.Param(qw), b.Input("x", 4, 4)); y.Err() == nil || !strings.Contains(y.Err().Error(), "int8") {
		t.Fatalf("Add on a quantized weight: %v", y.Err())
	}
	p := NewParam("t", Float32, 2, 2)
	if err := p.Quantize(NF4, QuantizeOptions{}); err == nil || !strings.Contains(err.Error(), "trainable") {
		t.Fatalf("quantizing a trainable parameter: %v", err)
	}
	if err := qw.SetValues(make([]float64, 16)); err == nil || !strings.Contains(err.Error(), "dequantize") {
		t.Fatalf("writing a quantized parameter: %v", err)
	}
	v := qw.Values()
	qw.Dequantize()
	if qw.Precision() != F32 || qw.Float32s() == nil {
		t.Fatal("Dequantize left the parameter quantized")
	}
	compareRel(t, "dequantized", qw.Values(), v, 0)
}
