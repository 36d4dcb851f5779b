package graph

import (
	"testing"
)

// BenchmarkLoRALinearNodes times one training step of a low-rank update of
// the q and v blocks of a fused projection, built from generic nodes as
// package lora builds it, with the executor's passes on and off:
//
//	y = AddCols(AddCols(Linear(x, W, b), Scale(MatMul(MatMul(x, Aq), Bq), s), 0), Scale(MatMul(MatMul(x, Av), Bv), s), 2d)
//
// at x [2048, 128] → [2048, 384] (GPT-2's c_attn at d = 128), r = 8, W
// and b frozen, x trainable (a layer inside a network). storage-MiB is
// what the program's values occupy (the arena and the roots' buffers).
//
//	go test ./graph -run XXX -bench LoRALinearNodes -benchmem
func BenchmarkLoRALinearNodes(b *testing.B) {
	const n, d, r = 2048, 128, 8
	for _, v := range []struct {
		name string
		opt  ExecOptions
	}{
		{"all-passes", ExecOptions{}},
		{"no-fold", ExecOptions{NoFold: true}},
		{"no-accumulate", ExecOptions{NoAccumulate: true}},
		{"no-reuse-no-inplace", ExecOptions{NoReuse: true, NoInPlace: true}},
		{"none", ExecOptions{NoReuse: true, NoFold: true, NoAccumulate: true, NoInPlace: true}},
	} {
		b.Run(v.name, func(b *testing.B) {
			param := func(name string, seed uint64, shape ...int) *Param {
				p := NewParam(name, Float32, shape...)
				copy(p.Float32s(), ops1Values(len(p.Float32s()), seed))
				return p
			}
			x := param("x", 1, n, d)
			w, bias := param("W", 2, d, 3*d), param("b", 3, 3*d)
			w.Trainable, bias.Trainable = false, false
			aq, bq, av, bv := param("Aq", 4, d, r), param("Bq", 5, r, d), param("Av", 6, d, r), param("Bv", 7, r, d)
			bl := NewBuilder(Float32, 1)
			xn := bl.Param(x)
			y := Linear(xn, bl.Param(w), bl.Param(bias))
			y = AddCols(y, Scale(MatMul(MatMul(xn, bl.Param(aq), false, false), bl.Param(bq), false, false), 2), 0)
			y = AddCols(y, Scale(MatMul(MatMul(xn, bl.Param(av), false, false), bl.Param(bv), false, false), 2), 2*d)
			rv := make([]float64, n*3*d)
			for i, f := range ops1Values(n*3*d, 9) {
				rv[i] = float64(f)
			}
			prog, err := bl.Compile(Sum(Mul(y, bl.Constant("R", rv, n, 3*d))))
			if err != nil {
				b.Fatal(err)
			}
			defer prog.Close()
			prog.SetExecOptions(v.opt)
			if err := prog.Run(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := prog.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(prog.storageBytes())/(1<<20), "storage-MiB")
		})
	}
}
