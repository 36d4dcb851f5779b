package graph_test

// Examples of package graph's entry points, as used in docs/guide.md. Each
// prints values that can be checked by hand from the numbers in it.

import (
	"errors"
	"fmt"
	"log"
	"math"

	"github.com/golora/golora/graph"
)

// guideParam wraps values as a parameter, stopping the example on error.
func guideParam(name string, values []float64, shape ...int) *graph.Param {
	p, err := graph.NewParamFrom(name, values, shape...)
	if err != nil {
		log.Fatal(err)
	}
	return p
}

// guideForward compiles an inference program for outputs, runs it once and
// returns each output's values.
func guideForward(b *graph.Builder, outputs ...*graph.Node) [][]float64 {
	prog, err := b.Compile(nil, outputs...)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Forward(); err != nil {
		log.Fatal(err)
	}
	var vals [][]float64
	for _, o := range outputs {
		a, err := prog.Output(o)
		if err != nil {
			log.Fatal(err)
		}
		vals = append(vals, a.Values())
	}
	return vals
}

// round4 rounds every value to 4 decimals, for stable printing.
func round4(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Round(x*1e4) / 1e4
		if out[i] == 0 {
			out[i] = 0 // no "-0"
		}
	}
	return out
}

// A graph is built once from parameters, inputs and ops, compiled, then fed
// and run.
func ExampleNewBuilder() {
	w := guideParam("W", []float64{1, 2, 3, 4}, 2, 2) // [in=2, out=2]
	bias := guideParam("b", []float64{0.5, -0.5}, 2)

	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Input("x", 1, 2)                         // [N=1, in=2]
	y := graph.Linear(x, b.Param(w), b.Param(bias)) // [1, 2]·[2, 2] + [2] → [1, 2]
	prog, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	for _, in := range [][]float64{{1, 2}, {0, 1}} {
		if err := prog.SetInput(x, in); err != nil {
			log.Fatal(err)
		}
		if err := prog.Forward(); err != nil {
			log.Fatal(err)
		}
		out, _ := prog.Output(y)
		fmt.Println(in, "→", out.F64) // [x₀ + 3x₁ + 0.5, 2x₀ + 4x₁ − 0.5]
	}
	// Output:
	// [1 2] → [7.5 9.5]
	// [0 1] → [3.5 3.5]
}

// Compile differentiates the loss with respect to the parameters that are
// trainable at that moment; a frozen parameter gets no gradient.
func ExampleBuilder_Compile() {
	w := guideParam("W", []float64{1, 2, 3, 4}, 2, 2)
	bias := guideParam("b", []float64{0, 0}, 2)
	bias.Trainable = false // frozen

	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2}, 1, 2)
	loss := graph.Sum(graph.Linear(x, b.Param(w), b.Param(bias))) // Σ_j (x·W + b)_j = 7 + 10
	prog, err := b.Compile(loss)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Run(); err != nil {
		log.Fatal(err)
	}
	gw, _ := prog.Grad(w) // ∂loss/∂W_ij = x_i
	_, ok := prog.Grad(bias)
	fmt.Println("loss", prog.Loss(), "dW", gw.F64, "gradient for b:", ok)
	fmt.Println("trainable:", prog.Trainable())
	// Output:
	// loss 17 dW [1 1 2 2] gradient for b: false
	// trainable: [W [2 2] float64]
}

// Errors are sticky: an op on bad input gives a failed node, every op after
// it fails too, and Compile reports the first error.
func ExampleBuilder_Err() {
	b := graph.NewBuilder(graph.Float32, 1)
	x := b.Input("x", 4, 3)
	w := b.Param(graph.NewParam("W", graph.Float32, 2, 5)) // wrong: in = 2, x has 3 columns
	y := graph.GELU(graph.Linear(x, w, nil))
	fmt.Println(y.Err() != nil, b.Err() != nil)
	_, err := b.Compile(nil, y)
	fmt.Println(err == b.Err())
	// Output:
	// true true
	// true
}

// A layer written outside package graph reports its own bad arguments with
// Fail, and the builder's error rule applies to it.
func ExampleBuilder_Fail() {
	scale := func(x *graph.Node, s float64) *graph.Node {
		if s == 0 {
			return x.Builder().Fail(errors.New("mylayer: scale 0"))
		}
		return graph.Mul(x, x.Builder().Constant("s", []float64{s, s}, 2))
	}
	b := graph.NewBuilder(graph.Float64, 1)
	y := scale(b.Constant("x", []float64{1, 2}, 2), 0)
	fmt.Println(y.Err(), "|", b.Err())
	// Output: mylayer: scale 0 | mylayer: scale 0
}

// A Program is compiled once and run many times; it reads parameter values
// when it runs, so an in-place update (what an optimizer does) is seen by
// the next run without compiling again.
func ExampleProgram() {
	w := guideParam("w", []float64{2}, 1)
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{3}, 1)
	loss := graph.Sum(graph.Mul(graph.Mul(x, b.Param(w)), b.Param(w))) // x·w²
	prog, err := b.Compile(loss)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	for step := 0; step < 3; step++ {
		if err := prog.Run(); err != nil {
			log.Fatal(err)
		}
		g, _ := prog.Grad(w) // 2·x·w
		fmt.Printf("w = %.3f  loss = %.4f  grad = %.3f\n", w.Values()[0], prog.Loss(), g.At(0))
		w.Float64s()[0] -= 0.1 * g.At(0) // gradient descent, in place
	}
	// Output:
	// w = 2.000  loss = 12.0000  grad = 12.000
	// w = 0.800  loss = 1.9200  grad = 4.800
	// w = 0.320  loss = 0.3072  grad = 1.920
}

// SetTraining switches dropout off for evaluation; RNGState and SetRNGState
// save and restore the dropout masks' random source.
func ExampleProgram_SetTraining() {
	b := graph.NewBuilder(graph.Float64, 42)
	x := b.Constant("x", []float64{1, 1, 1, 1, 1, 1, 1, 1}, 8)
	y := graph.Dropout(x, 0.5) // each element 0 or 1/(1−0.5) = 2
	prog, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	run := func() []float64 {
		if err := prog.Forward(); err != nil {
			log.Fatal(err)
		}
		out, _ := prog.Output(y)
		return out.Values()
	}
	state, _ := prog.RNGState()
	first := run()
	if err := prog.SetRNGState(state); err != nil {
		log.Fatal(err)
	}
	again := run()
	fmt.Println("same mask after restoring the state:", fmt.Sprint(first) == fmt.Sprint(again))
	onlyZeroOrTwo := true
	for _, v := range first {
		onlyZeroOrTwo = onlyZeroOrTwo && (v == 0 || v == 2)
	}
	fmt.Println("elements are 0 or 2:", onlyZeroOrTwo)
	prog.SetTraining(false)
	fmt.Println("training:", prog.Training(), run())
	// Output:
	// same mask after restoring the state: true
	// elements are 0 or 2: true
	// training: false [1 1 1 1 1 1 1 1]
}

// A parameter is a named tensor that outlives graphs.
func ExampleParam() {
	p := graph.NewParam("h.0.mlp.c_fc.weight", graph.Float32, 2, 3) // zeros, trainable
	if err := p.SetValues([]float64{1, 2, 3, 4, 5, 6}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(p, p.Len(), p.Trainable)
	fmt.Println(p.Float32s(), p.Float64s() == nil)

	c := p.Convert(graph.Float64) // a float64 deep copy
	c.Float64s()[0] = 10
	fmt.Println(c, c.Values()[0], p.Values()[0])
	if err := p.CopyFrom(c); err != nil { // back into p, converted to float32
		log.Fatal(err)
	}
	fmt.Println(p.Values())
	p.Zero()
	fmt.Println(p.Values())
	// Output:
	// h.0.mlp.c_fc.weight [2 3] float32 6 true
	// [1 2 3 4 5 6] true
	// h.0.mlp.c_fc.weight [2 3] float64 10 1
	// [10 2 3 4 5 6]
	// [0 0 0 0 0 0]
}

func ExampleNewParamFrom() {
	p, err := graph.NewParamFrom("wpe.weight", []float32{1, 2, 3, 4}, 2, 2)
	fmt.Println(p, err)
	_, err = graph.NewParamFrom("bad", []float32{1, 2, 3}, 2, 2)
	fmt.Println(err != nil)
	// Output:
	// wpe.weight [2 2] float32 <nil>
	// true
}

func ExampleCountParams() {
	ps := []*graph.Param{
		graph.NewParam("W", graph.Float32, 48, 144),
		graph.NewParam("b", graph.Float32, 144),
	}
	fmt.Println(graph.CountParams(ps)) // 48·144 + 144
	// Output: 7056
}

func ExampleParseDType() {
	for _, s := range []string{"float32", "f64", "int8"} {
		dt, err := graph.ParseDType(s)
		if err != nil {
			fmt.Println("error:", err != nil)
			continue
		}
		fmt.Println(dt, dt.Size())
	}
	// Output:
	// float32 4
	// float64 8
	// error: true
}

// Array is a read-only view of an output, the loss or a gradient.
func ExampleArray() {
	b := graph.NewBuilder(graph.Float32, 1)
	x := b.Constant("x", []float64{1, 2, 3, 4, 5, 6}, 2, 3)
	y := graph.Add(x, x)
	prog, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Forward(); err != nil {
		log.Fatal(err)
	}
	a, _ := prog.Output(y)
	fmt.Println(a.Shape, a.DType(), a.Len(), a.At(4), a.Values())
	// Output: [2 3] float32 6 10 [2 4 6 8 10 12]
}

func ExampleBLASName() {
	name := graph.BLASName() // "openblas" when built with -tags openblas
	fmt.Println(name == "gonum" || name == "openblas")
	// Output: true
}

// Every initialiser draws from a *rand.Rand the caller seeds: the same seed
// gives the same values on every machine.
func ExampleNewRand() {
	a, b := graph.NewParam("a", graph.Float64, 5), graph.NewParam("b", graph.Float64, 5)
	graph.InitNormal(a, graph.NewRand(7), 1)
	graph.InitNormal(b, graph.NewRand(7), 1)
	fmt.Println(fmt.Sprint(a.Values()) == fmt.Sprint(b.Values()))
	// Output: true
}

func ExampleInitNormal() {
	p := graph.NewParam("wte.weight", graph.Float64, 100, 100)
	graph.InitNormal(p, graph.NewRand(1), 0.02) // GPT-2's std
	var sum, sq float64
	for _, v := range p.Values() {
		sum += v
		sq += v * v
	}
	n := float64(p.Len())
	fmt.Printf("mean %.3f, std %.3f\n", sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n)))
	// Output: mean 0.000, std 0.020
}

func ExampleInitUniform() {
	p := graph.NewParam("p", graph.Float32, 1000)
	graph.InitUniform(p, graph.NewRand(1), -0.5, 0.5)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range p.Values() {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	fmt.Println(lo >= -0.5, hi < 0.5, lo < -0.49, hi > 0.49)
	// Output: true true true true
}

// kaiming_uniform_ with a = √5 (nn.Linear's default): bound = 1/√fanIn.
func ExampleInitKaimingUniform() {
	p := graph.NewParam("A", graph.Float64, 16, 4) // fan-in 16: bound 1/4
	graph.InitKaimingUniform(p, graph.NewRand(1), math.Sqrt(5), 16)
	worst := 0.0
	for _, v := range p.Values() {
		worst = math.Max(worst, math.Abs(v))
	}
	fmt.Println(worst <= 0.25, worst > 0.2)
	// Output: true true
}

func ExampleInitConstant() {
	p := graph.NewParam("ln_f.weight", graph.Float32, 4)
	graph.InitConstant(p, 1)
	fmt.Println(p.Values())
	// Output: [1 1 1 1]
}

// CheckGradients compares symbolic gradients with central differences; use
// it in tests of layers built from these ops.
func ExampleCheckGradients() {
	w := graph.NewParam("W", graph.Float64, 3, 2)
	g := graph.NewParam("gamma", graph.Float64, 2)
	graph.InitNormal(w, graph.NewRand(1), 1)
	graph.InitConstant(g, 1)
	beta := graph.NewParam("beta", graph.Float64, 2)
	beta.Trainable = false
	build := func(b *graph.Builder) (*graph.Node, error) {
		x := b.Constant("x", []float64{1, -2, 0.5, 0.3, 0.1, -1}, 2, 3)
		h := graph.LayerNorm(graph.Linear(x, b.Param(w), nil), b.Param(g), b.Param(beta), 1e-5)
		y := graph.GELU(h)
		return graph.Sum(graph.Mul(y, y)), b.Err()
	}
	results, err := graph.CheckGradients(build, []*graph.Param{w, g}, graph.GradCheckOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Println(r.Param, r.Checked, r.OK(1e-7, 1e-5))
	}
	// Output:
	// W 6 true
	// gamma 2 true
}

func ExampleAdd() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2}, 2)
	y := b.Constant("y", []float64{10, 20}, 2)
	fmt.Println(guideForward(b, graph.Add(x, y), graph.Mul(x, y), graph.Sum(y)))
	// Output: [[11 22] [10 40] [30]]
}

func ExampleMul() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3}, 3)
	mask := b.Constant("mask", []float64{1, 0, 1}, 3)
	fmt.Println(guideForward(b, graph.Mul(x, mask)))
	// Output: [[1 0 3]]
}

func ExampleSum() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3, 4}, 2, 2)
	fmt.Println(guideForward(b, graph.Sum(x)))
	// Output: [[10]]
}

func ExampleLinear() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 0, 0, 1}, 2, 2)                // two rows
	w := b.Param(guideParam("W", []float64{1, 2, 3, 4, 5, 6}, 2, 3)) // [in=2, out=3]
	fmt.Println(guideForward(b, graph.Linear(x, w, nil)))            // the rows of W
	// Output: [[1 2 3 4 5 6]]
}

// LinearT multiplies by Wᵀ: GPT-2's LM head reuses the [V, d] token
// embedding as its weight.
func ExampleLinearT() {
	b := graph.NewBuilder(graph.Float64, 1)
	wte := b.Param(guideParam("wte", []float64{1, 0, 0, 1, 1, 1}, 3, 2)) // [V=3, d=2]
	h := b.Constant("h", []float64{2, 3}, 1, 2)
	fmt.Println(guideForward(b, graph.LinearT(h, wte, nil))) // h·wteᵀ: one logit per token
	// Output: [[2 3 5]]
}

// Embedding looks rows up by id; its gradient adds up the rows of repeated
// ids.
func ExampleEmbedding() {
	table := guideParam("wte", []float64{1, 2, 3, 4, 5, 6}, 3, 2) // [V=3, d=2]
	b := graph.NewBuilder(graph.Float64, 1)
	ids := b.IntConstant("ids", []int{2, 0, 2}, 3)
	y := graph.Embedding(b.Param(table), ids) // [3, 2]
	prog, err := b.Compile(graph.Sum(y), y)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Run(); err != nil {
		log.Fatal(err)
	}
	out, _ := prog.Output(y)
	g, _ := prog.Grad(table)
	fmt.Println(out.F64, g.F64) // row 2 is used twice
	// Output: [5 6 1 2 5 6] [1 1 0 0 2 2]
}

func ExampleLayerNorm() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{1, 2, 3}, 1, 3) // μ = 2, σ² = 2/3
	gamma := b.Constant("gamma", []float64{1, 1, 2}, 3)
	beta := b.Constant("beta", []float64{0, 0, 1}, 3)
	out := guideForward(b, graph.LayerNorm(x, gamma, beta, 0))
	fmt.Println(round4(out[0])) // (x − μ)/σ·γ + β, (x − μ)/σ = ±√1.5
	// Output: [-1.2247 0 3.4495]
}

func ExampleGELU() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{-1, 0, 1, 3}, 4)
	out := guideForward(b, graph.GELU(x))
	fmt.Println(round4(out[0])) // ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
	// Output: [-0.1588 0 0.8412 2.9964]
}

func ExampleDropout() {
	b := graph.NewBuilder(graph.Float32, 7)
	x := b.Constant("x", make([]float64, 1000), 1000)
	ones := make([]float64, 1000)
	for i := range ones {
		ones[i] = 1
	}
	y := graph.Dropout(graph.Add(x, b.Constant("one", ones, 1000)), 0.1)
	out := guideForward(b, y)[0]
	kept, sum := 0, 0.0
	for _, v := range out {
		if v != 0 {
			kept++
		}
		sum += v
	}
	// About 90% kept, each scaled by 1/0.9, so the mean stays near 1.
	fmt.Println(kept > 850 && kept < 950, math.Abs(sum/1000-1) < 0.05)
	// Output: true true
}

func ExampleSoftmax() {
	b := graph.NewBuilder(graph.Float64, 1)
	x := b.Constant("x", []float64{0, 0, 100, 0, 1, 2}, 3, 2)
	out := guideForward(b, graph.Softmax(x)) // one max per row: no overflow
	fmt.Println(round4(out[0]))
	// Output: [0.5 0.5 1 0 0.2689 0.7311]
}

// The masked mean cross-entropy: with equal logits over V = 4 tokens every
// row costs ln 4; a row with mask 0 does not count.
func ExampleSoftmaxCrossEntropy() {
	b := graph.NewBuilder(graph.Float64, 1)
	logits := b.Constant("logits", []float64{
		0, 0, 0, 0,
		0, 0, 0, 0,
		9, 0, 0, 0}, 3, 4)
	targets := b.IntConstant("targets", []int{1, 3, 2}, 3)
	mask := b.Constant("mask", []float64{1, 1, 0}, 3)
	out := guideForward(b, graph.SoftmaxCrossEntropy(logits, targets, mask, 0))
	fmt.Printf("%.4f = ln 4 = %.4f\n", out[0][0], math.Log(4))
	// Output: 1.3863 = ln 4 = 1.3863
}

// The head and the loss in one op: h·Wᵀ gives the logits [0, 0, ln 2], so
// p(target 2) = 2/(1+1+2) and the loss is ln 2, without the logits being
// stored.
func ExampleLinearCrossEntropy() {
	b := graph.NewBuilder(graph.Float64, 1)
	h := b.Constant("h", []float64{1, 5}, 1, 2)
	w := b.Constant("w", []float64{
		0, 0,
		0, 0,
		math.Ln2, 0}, 3, 2)
	targets := b.IntConstant("targets", []int{2}, 1)
	out := guideForward(b, graph.LinearCrossEntropy(h, w, targets, nil, 0))
	fmt.Printf("%.4f = ln 2 = %.4f\n", out[0][0], math.Log(2))
	// Output: 0.6931 = ln 2 = 0.6931
}

// With queries of zero every position attends uniformly to itself and the
// positions before it: output row t is the mean of v_0 … v_t.
func ExampleCausalSelfAttention() {
	b := graph.NewBuilder(graph.Float64, 1)
	// One sequence of T = 3 tokens, d = 1, one head; columns q | k | v.
	qkv := b.Constant("qkv", []float64{
		0, 1, 3,
		0, 2, 6,
		0, 3, 0}, 3, 3)
	out := guideForward(b, graph.CausalSelfAttention(qkv, 1, 1, 0))
	fmt.Println(out[0]) // [3, (3+6)/2, (3+6+0)/3]
	// Output: [3 4.5 3]
}

// Incremental decoding: each call feeds one new token, whose key and value
// are written into the caches, and attends over everything cached so far.
// The outputs equal those of CausalSelfAttention over the whole sequence.
func ExampleCachedSelfAttention() {
	// q | k | v of 3 tokens, d = 1: token 1 weighs v by softmax(1·[1 2]),
	// token 2 by softmax(−1·[1 2 3]).
	rows := [][]float64{{0.5, 1, 3}, {1, 2, 6}, {-1, 3, 0}}
	kc := graph.NewParam("k_cache", graph.Float64, 4, 1) // C = 4 positions of one row
	vc := graph.NewParam("v_cache", graph.Float64, 4, 1)
	kc.Trainable, vc.Trainable = false, false

	b := graph.NewBuilder(graph.Float64, 1)
	qkv := b.Input("qkv", 1, 3) // one new token per call
	pos := b.IntInput("pos", 1)
	y := graph.CachedSelfAttention(qkv, b.Param(kc), b.Param(vc), pos, 1)
	step, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer step.Close()
	var cached []float64
	for t, r := range rows {
		if err := step.SetInput(qkv, r); err != nil {
			log.Fatal(err)
		}
		if err := step.SetInts(pos, []int{t}); err != nil {
			log.Fatal(err)
		}
		if err := step.Forward(); err != nil {
			log.Fatal(err)
		}
		out, _ := step.Output(y)
		cached = append(cached, out.At(0))
	}

	full := graph.NewBuilder(graph.Float64, 1)
	all := full.Constant("qkv", append(append(append([]float64{}, rows[0]...), rows[1]...), rows[2]...), 3, 3)
	whole := guideForward(full, graph.CausalSelfAttention(all, 1, 1, 0))[0]
	fmt.Println(round4(cached), round4(whole))
	// Output: [3 5.1932 3.4641] [3 5.1932 3.4641]
}

// BindParam points a compiled program at another frozen parameter of the
// same shape, without compiling again (a decoder switches key/value caches
// this way).
func ExampleProgram_BindParam() {
	w1 := guideParam("W1", []float64{1, 2}, 1, 2)
	w2 := guideParam("W2", []float64{10, 20}, 1, 2)
	w1.Trainable, w2.Trainable = false, false
	b := graph.NewBuilder(graph.Float64, 1)
	wn := b.Param(w1)
	y := graph.Linear(b.Constant("x", []float64{3}, 1, 1), wn, nil)
	prog, err := b.Compile(nil, y)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	for _, w := range []*graph.Param{w1, w2} {
		if w != w1 {
			if err := prog.BindParam(wn, w); err != nil {
				log.Fatal(err)
			}
		}
		if err := prog.Forward(); err != nil {
			log.Fatal(err)
		}
		out, _ := prog.Output(y)
		fmt.Println(w.Name, out.F64)
	}
	// Output:
	// W1 [3 6]
	// W2 [30 60]
}
