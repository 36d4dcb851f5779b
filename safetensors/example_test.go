package safetensors_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/safetensors"
)

// Save a parameter, read the file back and load it into another parameter.
func Example() {
	dir, err := os.MkdirTemp("", "safetensors-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	w, _ := graph.NewParamFrom("h.0.mlp.c_fc.weight", []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	err = safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.FromParam(w.Name, w),
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

	loaded := graph.NewParam("h.0.mlp.c_fc.weight", graph.Float64, 2, 3)
	if err := f.LoadInto("h.0.mlp.c_fc.weight", loaded); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(loaded.Float64s())

	wrong := graph.NewParam("h.0.mlp.c_fc.weight", graph.Float32, 3, 2)
	err = f.LoadInto("h.0.mlp.c_fc.weight", wrong)
	fmt.Println(err != nil)
	// Output:
	// [h.0.mlp.c_fc.weight scale] map[format:pt]
	// F32 [2 3] 24 bytes
	// [1 2 3 4 5 6]
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
