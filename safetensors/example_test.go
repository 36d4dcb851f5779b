package safetensors_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/golora/golora/safetensors"
)

// Save a tensor, read the file back and decode it, converted to float64,
// then into a slice of the caller's.
func Example() {
	dir, err := os.MkdirTemp("", "safetensors-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	err = safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.FromFloat32s("h.0.mlp.c_fc.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		safetensors.FromFloat64s("scale", []int{}, []float64{0.5}),
	}, map[string]string{"format": "pt"})
	if err != nil {
		fmt.Println(err)
		return
	}

	f, err := safetensors.ReadFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Names(), f.Metadata)
	t, _ := f.Tensor("h.0.mlp.c_fc.weight")
	fmt.Println(t.DType, t.Shape, len(t.Data), "bytes")

	v, shape, err := f.Float64s("h.0.mlp.c_fc.weight")
	fmt.Println(v, shape, err)

	dst := make([]float32, 6)
	err = f.Float32sInto("h.0.mlp.c_fc.weight", []int{3, 2}, dst)
	fmt.Println(err != nil)
	// Output:
	// [h.0.mlp.c_fc.weight scale] map[format:pt]
	// F32 [2 3] 24 bytes
	// [1 2 3 4 5 6] [2 3] <nil>
	// true
}

// Write lays out a file exactly: the 8-byte header length, the JSON header
// padded with spaces to a multiple of 8, then the data.
func ExampleWrite() {
	var buf bytes.Buffer
	t := safetensors.FromFloat32s("bias", []int{2}, []float32{1, -2})
	if err := safetensors.Write(&buf, []safetensors.Tensor{t}, nil); err != nil {
		fmt.Println(err)
		return
	}
	b := buf.Bytes()
	fmt.Println(b[:8])
	fmt.Printf("%q\n", b[8:len(b)-8])
	fmt.Println(b[len(b)-8:])
	// Output:
	// [64 0 0 0 0 0 0 0]
	// "{\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}       "
	// [0 0 128 63 0 0 0 192]
}

// Errors name the file and the tensor.
func ExampleRead() {
	header := `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`
	data := append([]byte{byte(len(header)), 0, 0, 0, 0, 0, 0, 0}, header...)
	data = append(data, 0, 0, 0, 0)
	_, err := safetensors.Read(data)
	fmt.Println(err)
	// Output:
	// safetensors: tensor "w": data_offsets [0, 4] hold 4 bytes, but F32 [2] needs 8
}
