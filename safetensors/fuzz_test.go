package safetensors

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// validSeeds are well-formed files of every shape of header: one per dtype
// family, scalars, empty tensors, metadata, escaped names.
func validSeeds(t testing.TB) [][]byte {
	sets := []struct {
		tensors  []Tensor
		metadata map[string]string
	}{
		{nil, nil},
		{nil, map[string]string{"format": "pt"}},
		{[]Tensor{FromFloat32s("a", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6})}, nil},
		{[]Tensor{
			FromFloat64s("d", []int{}, []float64{-0.5}),
			{Name: "h", DType: "F16", Shape: []int{2}, Data: binary.LittleEndian.AppendUint32(nil, 0x7c003c00)},
			{Name: "b", DType: "BF16", Shape: []int{1, 1}, Data: []byte{0x80, 0x3f}},
			{Name: "ids", DType: "I64", Shape: []int{1}, Data: make([]byte, 8)},
			{Name: "mask", DType: "BOOL", Shape: []int{3}, Data: []byte{0, 1, 1}},
			{Name: "e", DType: "U8", Shape: []int{0, 4}, Data: nil},
		}, map[string]string{"format": "pt", "note": "x\"y\n"}},
		{[]Tensor{{Name: "ü\t\"", DType: "C64", Shape: []int{1}, Data: make([]byte, 8)}}, nil},
		{[]Tensor{FromFloat32s("w", []int{2}, []float32{1, -2}), FromFloat64s("v", []int{1}, []float64{3})}, WithChecksums(map[string]string{"format": "pt"})},
	}
	var out [][]byte
	for _, s := range sets {
		var buf bytes.Buffer
		if err := Write(&buf, s.tensors, s.metadata); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return append(out, validFile())
}

// FuzzRead checks that no input makes Read or the File's methods panic, that
// every error is one of ours, and that any file Read accepts re-serialises
// into a file that reads back equal (and re-serialises to the same bytes).
func FuzzRead(f *testing.F) {
	for _, s := range validSeeds(f) {
		f.Add(s)
	}
	for _, c := range corruptCases() {
		f.Add(c.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Read(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "safetensors: ") {
				t.Fatalf("error without the package prefix: %v", err)
			}
			return
		}
		var tensors []Tensor
		for _, name := range file.Names() {
			tt, ok := file.Tensor(name)
			if !ok {
				t.Fatalf("Names lists %q but Tensor does not find it", name)
			}
			tensors = append(tensors, tt)
			v32, s32, err32 := file.Float32s(name)
			v64, _, err64 := file.Float64s(name)
			if (err32 == nil) != (err64 == nil) {
				t.Fatalf("tensor %q: Float32s error %v, Float64s error %v", name, err32, err64)
			}
			if err32 == nil && (len(v32) != len(v64) || !reflect.DeepEqual(s32, tt.Shape)) {
				t.Fatalf("tensor %q: %d float32s, %d float64s, shape %v vs %v", name, len(v32), len(v64), s32, tt.Shape)
			}
		}
		var buf bytes.Buffer
		if err := Write(&buf, tensors, file.Metadata); err != nil {
			t.Fatalf("re-serialising an accepted file: %v", err)
		}
		back, err := Read(buf.Bytes())
		if err != nil {
			t.Fatalf("reading a re-serialised file: %v", err)
		}
		if !sameMetadata(file.Metadata, back.Metadata) {
			t.Fatalf("metadata %v read back as %v", file.Metadata, back.Metadata)
		}
		if !reflect.DeepEqual(file.Names(), back.Names()) {
			t.Fatalf("names %v read back as %v", file.Names(), back.Names())
		}
		for _, want := range tensors {
			got, _ := back.Tensor(want.Name)
			if got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("tensor %q: %s %v read back as %s %v", want.Name, want.DType, want.Shape, got.DType, got.Shape)
			}
		}
		var again bytes.Buffer
		if err := Write(&again, tensors, back.Metadata); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
			t.Fatalf("second re-serialisation differs (err %v)", err)
		}
	})
}

// sameMetadata treats a nil and an empty map as equal: Write leaves an empty
// map out.
func sameMetadata(a, b map[string]string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}
