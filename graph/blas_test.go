package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmParallelMatchesSerial checks the block split of gemm (rows or
// columns of C, every transpose, strided operands, β ≠ 0) against one BLAS
// call: the blocks are the same products, so the results agree to rounding.
func TestGemmParallelMatchesSerial(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = 2*rng.Float64() - 1
		}
		return v
	}
	for _, sz := range [][3]int{{37, 5, 11}, {6, 41, 9}, {64, 64, 1}, {3, 3, 70}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				name := fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v", m, n, k, tA, tB)
				t.Run(name, func(t *testing.T) {
					// stored shapes with one spare column each (strides > width)
					ar, ac := m, k
					if tA {
						ar, ac = k, m
					}
					br, bc := k, n
					if tB {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+1, bc+1, n+1
					a, b, c0 := fill(ar*lda), fill(br*ldb), fill(m*ldc)
					for _, blocks := range []int{2, 3, 7} {
						want := append([]float64(nil), c0...)
						gemmCall(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 2, want, ldc)
						got := append([]float64(nil), c0...)
						gemmParallel(blocks, tA, tB, m, n, k, 0.5, a, lda, b, ldb, 2, got, ldc)
						for i := range got {
							if math.Abs(got[i]-want[i]) > 1e-12 {
								t.Fatalf("%d blocks: element %d = %v, want %v", blocks, i, got[i], want[i])
							}
						}
						// float32 too: the same code with the other BLAS call (whose
						// kernels may round a block's edge columns differently)
						a32, b32, g32 := to32(a), to32(b), to32(c0)
						w32 := to32(c0)
						gemmCall(tA, tB, m, n, k, 0.5, a32, lda, b32, ldb, 2, w32, ldc)
						gemmParallel(blocks, tA, tB, m, n, k, 0.5, a32, lda, b32, ldb, 2, g32, ldc)
						for i := range g32 {
							if math.Abs(float64(g32[i]-w32[i])) > 1e-5 {
								t.Fatalf("float32, %d blocks: element %d = %v, want %v", blocks, i, g32[i], w32[i])
							}
						}
					}
				})
			}
		}
	}
}

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// BenchmarkGemm measures float32 gemm (as the ops call it, split into
// parallel blocks where gemmBlocks says so) on the products of the standard
// benchmark configurations, in GFLOP/s (2·m·n·k per product). Shapes are
// m×k·k×n; "T" marks a transposed second operand (the tied LM head).
func BenchmarkGemm(b *testing.B) {
	shapes := []struct {
		name    string
		m, n, k int
		tB      bool
	}{
		{"peak-2048x2048x2048", 2048, 2048, 2048, false},
		{"tiny-c_attn-1024x192x64", 1024, 192, 64, false},
		{"tiny-c_fc-1024x256x64", 1024, 256, 64, false},
		{"tiny-mlp_proj-1024x64x256", 1024, 64, 256, false},
		{"tiny-head-1024x257x64T", 1024, 257, 64, true},
		{"small-c_attn-2048x384x128", 2048, 384, 128, false},
		{"small-c_fc-2048x512x128", 2048, 512, 128, false},
		{"small-mlp_proj-2048x128x512", 2048, 128, 512, false},
		{"small-head-2048x257x128T", 2048, 257, 128, true},
		{"gpt2-c_attn-1024x2304x768", 1024, 2304, 768, false},
		{"gpt2-c_proj-1024x768x768", 1024, 768, 768, false},
		{"gpt2-c_fc-1024x3072x768", 1024, 3072, 768, false},
		{"gpt2-mlp_proj-1024x768x3072", 1024, 768, 3072, false},
		{"gpt2-head-1024x50257x768T", 1024, 50257, 768, true},
		{"gpt2-lowrankA-1024x8x768", 1024, 8, 768, false},
		{"gpt2-lowrankB-1024x768x8", 1024, 768, 8, false},
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			a := ops1Values(s.m*s.k, 1)
			bm := ops1Values(s.k*s.n, 2)
			c := make([]float32, s.m*s.n)
			ldb := s.n
			if s.tB {
				ldb = s.k
			}
			gemm(false, s.tB, s.m, s.n, s.k, 1, a, s.k, bm, ldb, 0, c, s.n)
			b.ResetTimer()
			for range b.N {
				gemm(false, s.tB, s.m, s.n, s.k, 1, a, s.k, bm, ldb, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkLinearOp measures the Linear op as a training step runs it
// (Program.Run: forward, then dx, then dW when W trains) on GPT-2-124M's
// projections at batch 4 × 256 tokens, in GFLOP/s, to compare with
// BenchmarkGemm's rate on the same shapes: what the op adds to its
// products (bias, ColSum, the loss op around it) shows as the gap.
func BenchmarkLinearOp(b *testing.B) {
	const n = 1024
	shapes := []struct {
		name    string
		in, out int
		tied    bool
	}{
		{"c_attn-768x2304", 768, 2304, false},
		{"c_fc-768x3072", 768, 3072, false},
		{"mlp_proj-3072x768", 3072, 768, false},
		{"head-768x50257T", 768, 50257, true},
	}
	for _, s := range shapes {
		for _, trainW := range []bool{false, true} {
			name := s.name + "/dx"
			if trainW {
				name = s.name + "/dx+dW"
			}
			b.Run(name, func(b *testing.B) {
				x := NewParam("x", Float32, n, s.in)
				copy(x.Float32s(), ops1Values(x.Len(), 1))
				wShape := []int{s.in, s.out}
				if s.tied {
					wShape = []int{s.out, s.in}
				}
				w := NewParam("w", Float32, wShape...)
				copy(w.Float32s(), ops1Values(w.Len(), 2))
				w.Trainable = trainW
				bl := NewBuilder(Float32, 1)
				var y *Node
				if s.tied {
					y = LinearT(bl.Param(x), bl.Param(w), nil)
				} else {
					y = Linear(bl.Param(x), bl.Param(w), bl.Param(NewParam("b", Float32, s.out)))
				}
				prog, err := bl.Compile(Sum(y)) // dy = 1: the loss adds one pass over y
				if err != nil {
					b.Fatal(err)
				}
				if err := prog.Run(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := prog.Run(); err != nil {
						b.Fatal(err)
					}
				}
				products := 2.0 // forward and dx
				if trainW {
					products = 3
				}
				flops := products * 2 * float64(n) * float64(s.in) * float64(s.out)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
