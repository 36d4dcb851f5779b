package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// These benchmarks time one forward + backward pass (float32) of the
// pieces of a Llama block at SmolLM2-135M's shape (batch 4 × 256 tokens,
// d 576, FFN 1536, 9 query heads and 3 key/value heads of width 64), with
// the weights frozen as under LoRA (only activations get gradients):
//
//	go test ./graph -run XXX -bench 'Llama' -benchtime 10x
//
// GatedMLP/gate compares the SiLU and product of the gated MLP with the
// whole MLP (its three products): the share of the elementwise part bounds
// what a fused SwiGLU op could save.

const (
	benchN, benchD, benchF   = 4 * 256, 576, 1536
	benchH, benchKV, benchHD = 9, 3, 64
)

func llamaBenchParam(name string, seed uint64, trainable bool, shape ...int) *Param {
	p := NewParam(name, Float32, shape...)
	rng := rand.New(rand.NewPCG(seed, 1))
	v := p.Float32s()
	for i := range v {
		v[i] = float32(rng.NormFloat64() * 0.05)
	}
	p.Trainable = trainable
	return p
}

// llamaBenchRun compiles loss and runs it b.N times (after one warm-up run).
func llamaBenchRun(b *testing.B, bl *Builder, loss *Node) {
	prog, err := bl.Compile(loss)
	if err != nil {
		b.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Run(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := prog.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLlamaGatedMLP(b *testing.B) {
	b.Run("gate", func(b *testing.B) { // SiLU(g) ⊙ u on [N, F] activations
		bl := NewBuilder(Float32, 1)
		g, u := bl.Param(llamaBenchParam("g", 1, true, benchN, benchF)), bl.Param(llamaBenchParam("u", 2, true, benchN, benchF))
		llamaBenchRun(b, bl, Sum(Mul(SiLU(g), u)))
	})
	b.Run("mlp", func(b *testing.B) { // down(SiLU(x·Wg) ⊙ x·Wu), frozen weights
		bl := NewBuilder(Float32, 1)
		x := bl.Param(llamaBenchParam("x", 1, true, benchN, benchD))
		wg, wu := bl.Param(llamaBenchParam("wg", 2, false, benchD, benchF)), bl.Param(llamaBenchParam("wu", 3, false, benchD, benchF))
		wd := bl.Param(llamaBenchParam("wd", 4, false, benchF, benchD))
		llamaBenchRun(b, bl, Sum(Linear(Mul(SiLU(Linear(x, wg, nil)), Linear(x, wu, nil)), wd, nil)))
	})
}

func BenchmarkLlamaOps(b *testing.B) {
	pos := make([]int, benchN)
	for i := range pos {
		pos[i] = i % 256
	}
	for _, c := range []struct {
		name  string
		build func(bl *Builder) *Node
	}{
		{"RMSNorm", func(bl *Builder) *Node {
			return RMSNorm(bl.Param(llamaBenchParam("x", 1, true, benchN, benchD)), bl.Param(llamaBenchParam("w", 2, false, benchD)), 1e-5)
		}},
		{"RoPE", func(bl *Builder) *Node {
			return RoPE(bl.Param(llamaBenchParam("q", 1, true, benchN, benchH*benchHD)), bl.IntConstant("pos", pos, benchN), benchHD, RoPEConfig{Theta: 1e5})
		}},
		{"GQA", func(bl *Builder) *Node {
			q := bl.Param(llamaBenchParam("q", 1, true, benchN, benchH*benchHD))
			k := bl.Param(llamaBenchParam("k", 2, true, benchN, benchKV*benchHD))
			v := bl.Param(llamaBenchParam("v", 3, true, benchN, benchKV*benchHD))
			return GroupedQueryAttention(q, k, v, 4, benchH, benchKV)
		}},
	} {
		b.Run(fmt.Sprint(c.name), func(b *testing.B) {
			bl := NewBuilder(Float32, 1)
			llamaBenchRun(b, bl, Sum(c.build(bl)))
		})
	}
}
