package safetensors

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// gpt2Like returns a file with GPT-2 small's 12 blocks of tensor names and
// one float32 per tensor, so that reading it times the header alone.
func gpt2Like(b *testing.B) []byte {
	var ts []Tensor
	for i := range 12 {
		for _, n := range []string{"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
			"attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
			"mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"} {
			ts = append(ts, FromFloat32s(fmt.Sprintf("h.%d.%s", i, n), []int{1}, []float32{1}))
		}
	}
	var buf bytes.Buffer
	if err := Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkReadHeader parses a 144-tensor header.
func BenchmarkReadHeader(b *testing.B) {
	data := gpt2Like(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Read(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode decodes 1M elements of each float dtype into float32.
func BenchmarkDecode(b *testing.B) {
	const n = 1 << 20
	for _, dt := range []string{"F32", "F64", "F16", "BF16"} {
		b.Run(dt, func(b *testing.B) {
			size := dtypeSize(dt)
			var buf bytes.Buffer
			if err := Write(&buf, []Tensor{{Name: "w", DType: dt, Shape: []int{n}, Data: make([]byte, n*size)}}, nil); err != nil {
				b.Fatal(err)
			}
			f, err := Read(buf.Bytes())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(n * size))
			for b.Loop() {
				if _, _, err := f.Float32s("w"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWrite encodes and writes 1M float32s.
func BenchmarkWrite(b *testing.B) {
	const n = 1 << 20
	v := make([]float32, n)
	b.SetBytes(4 * n)
	for b.Loop() {
		if err := Write(io.Discard, []Tensor{FromFloat32s("w", []int{n}, v)}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
