package graph_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/safetensors"
)

// LoadParam loads every float dtype into both parameter dtypes, and every
// mismatch is an error naming the file and the tensor that leaves the
// parameter unchanged.
func TestLoadParam(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	h := []uint16{0x3c00, 0xc100, 0x7bff} // F16 1, -2.5, 65504
	bf := []uint16{0x3f80, 0xc020}        // BF16 1, -2.5
	var hb, bb []byte
	for _, x := range h {
		hb = binary.LittleEndian.AppendUint16(hb, x)
	}
	for _, x := range bf {
		bb = binary.LittleEndian.AppendUint16(bb, x)
	}
	err := safetensors.WriteFile(path, []safetensors.Tensor{
		safetensors.FromFloat32s("h.0.attn.c_attn.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		safetensors.FromFloat64s("d", []int{2}, []float64{0.25, -8}),
		{Name: "half", DType: "F16", Shape: []int{3}, Data: hb},
		{Name: "brain", DType: "BF16", Shape: []int{1, 2}, Data: bb},
		{Name: "ids", DType: "I64", Shape: []int{2}, Data: make([]byte, 16)},
		safetensors.FromFloat64s("scalar", []int{}, []float64{0.5}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	ok := []struct {
		tensor string
		dt     graph.DType
		shape  []int
		want   []float64
	}{
		{"h.0.attn.c_attn.weight", graph.Float32, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{"h.0.attn.c_attn.weight", graph.Float64, []int{2, 3}, []float64{1, 2, 3, 4, 5, 6}},
		{"d", graph.Float32, []int{2}, []float64{0.25, -8}},
		{"half", graph.Float64, []int{3}, []float64{1, -2.5, 65504}},
		{"brain", graph.Float32, []int{1, 2}, []float64{1, -2.5}},
	}
	for _, c := range ok {
		t.Run(c.tensor+"/"+c.dt.String(), func(t *testing.T) {
			p := graph.NewParam(c.tensor, c.dt, c.shape...)
			if err := graph.LoadParam(f, c.tensor, p); err != nil {
				t.Fatal(err)
			}
			if got := p.Values(); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("values %v, want %v", got, c.want)
			}
		})
	}

	bad := []struct {
		name   string
		tensor string
		param  *graph.Param
		want   string
		is     error
	}{
		{"wrong shape", "h.0.attn.c_attn.weight", graph.NewParam("w", graph.Float32, 3, 2),
			`safetensors: ` + path + `: tensor "h.0.attn.c_attn.weight": shape [2 3], want [3 2]`, nil},
		{"wrong rank", "d", graph.NewParam("d", graph.Float64, 2, 1),
			`tensor "d": shape [2], want [2 1]`, nil},
		{"wrong dtype", "ids", graph.NewParam("ids", graph.Float32, 2),
			`tensor "ids": dtype I64 is not a float type (want F32, F64, F16 or BF16), cannot decode into float32`, nil},
		{"missing key", "h.1.attn.c_attn.weight", graph.NewParam("w", graph.Float32, 2, 3),
			`safetensors: ` + path + `: tensor "h.1.attn.c_attn.weight": not in the file`, safetensors.ErrNotFound},
		{"scalar into a vector", "scalar", graph.NewParam("s", graph.Float32, 1), `tensor "scalar": shape [], want [1]`, nil},
		// graph holds a shape-[] Param as a tensor scalar, whose storage
		// Float32s cannot return: an error, not a silent no-op.
		{"scalar tensor into a [1] param", "scalar", graph.NewParam("s", graph.Float32), `tensor "scalar": shape [], want [1]`, nil},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			var before []float64
			// Fill the parameter so the test can check an error leaves it unchanged.
			if c.param != nil && len(c.param.Float32s())+len(c.param.Float64s()) == c.param.Len() {
				for i := range c.param.Len() {
					before = append(before, float64(i)+0.5)
				}
				if err := c.param.SetValues(before); err != nil {
					t.Fatal(err)
				}
			}
			err := graph.LoadParam(f, c.tensor, c.param)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "safetensors: "+path+": ") {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v does not wrap %v", err, c.is)
			}
			if before != nil && !reflect.DeepEqual(c.param.Values(), before) {
				t.Fatal("a failed LoadParam changed the parameter")
			}
		})
	}

	if err := graph.LoadParam(f, "d", nil); err == nil || !strings.Contains(err.Error(), `"d": nil parameter`) {
		t.Errorf("LoadParam into nil: %v", err)
	}
}

// ParamTensor then LoadParam keeps every bit, NaN payloads, signed zeros
// and subnormals included, and follows the parameter's dtype.
func TestParamTensorRoundTrip(t *testing.T) {
	f32 := []uint32{0x80000000, 0x7fc00001, 0xffc12345, 0x00000001, 0x7f7fffff, 0x3eaaaaab}
	f64 := []uint64{0x8000000000000000, 0x7ff8000000000001, 0xfff8deadbeef0001, 0x0000000000000001, 0x7fefffffffffffff, 0x3fd5555555555555}
	v32, v64 := make([]float32, len(f32)), make([]float64, len(f64))
	for i := range f32 {
		v32[i], v64[i] = math.Float32frombits(f32[i]), math.Float64frombits(f64[i])
	}
	p32, err := graph.NewParamFrom("a", v32, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	p64, err := graph.NewParamFrom("b", v64, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, []safetensors.Tensor{graph.ParamTensor("a", p32), graph.ParamTensor("b", p64)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "F32", "b": "F64"} {
		if tt, _ := f.Tensor(name); tt.DType != want {
			t.Errorf("ParamTensor %s wrote %s, want %s", name, tt.DType, want)
		}
	}
	q32, q64 := graph.NewParam("a", graph.Float32, 2, 3), graph.NewParam("b", graph.Float64, 3, 2)
	if err := graph.LoadParam(f, "a", q32); err != nil {
		t.Fatal(err)
	}
	if err := graph.LoadParam(f, "b", q64); err != nil {
		t.Fatal(err)
	}
	for i, x := range q32.Float32s() {
		if math.Float32bits(x) != f32[i] {
			t.Errorf("float32 element %d: bits %#08x, want %#08x", i, math.Float32bits(x), f32[i])
		}
	}
	for i, x := range q64.Float64s() {
		if math.Float64bits(x) != f64[i] {
			t.Errorf("float64 element %d: bits %#016x, want %#016x", i, math.Float64bits(x), f64[i])
		}
	}
}
