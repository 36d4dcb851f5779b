package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// raw builds a file from a header and a data buffer, with a correct length
// prefix.
func raw(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// withLength builds a file whose length prefix is n, whatever follows.
func withLength(n uint64, rest string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
}

// validHeader describes two F32 tensors: a [2] at [0,8) and b [1] at [8,12).
const validHeader = `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`

func validFile() []byte { return raw(validHeader, make([]byte, 12)) }

// entry1 is a header with one tensor "a" described by the given JSON fields.
func entry1(fields string) string { return `{"a":{` + fields + `}}` }

type corruptCase struct {
	name string
	data []byte
	want string // a substring of the error
}

// corruptCases are files Read must reject; FuzzRead seeds its corpus with
// them.
func corruptCases() []corruptCase {
	valid := validFile()
	f32 := func(shape, offsets string) string {
		return `"dtype":"F32","shape":` + shape + `,"data_offsets":` + offsets
	}
	return []corruptCase{
		{"empty file", nil, "file is 0 bytes, shorter than the 8-byte header length"},
		{"truncated length prefix", valid[:5], "file is 5 bytes"},
		{"truncated header", valid[:20], "header length 108 but only 12 bytes follow"},
		{"truncated data", valid[:len(valid)-3], `tensor "b": data_offsets [8, 12] out of range of the 9-byte data buffer`},
		{"header larger than the file", withLength(1000, `{}`), "header length 1000 but only 2 bytes follow"},
		{"absurd header length", withLength(1<<62, `{}`), "over the 100000000-byte limit"},
		{"header length wraps", withLength(math.MaxUint64, `{}`), "over the 100000000-byte limit"},
		{"bad header JSON", raw(`{"a":`, nil), "header is not valid JSON"},
		{"header is an array", raw(`[1,2]   `, nil), "header is not a JSON object"},
		{"empty header", raw(``, nil), "header is not a JSON object"},
		{"header starts with a space", raw(` {}`, nil), "header is not a JSON object"},
		{"garbage after the header", raw(`{} x`, nil), "header is not valid JSON"},
		{"header padded with NULs", raw("{}\x00\x00", nil), "header is not valid JSON"},
		{"header not UTF-8", raw("{\"\xff\":1}", nil), "header is not valid UTF-8"},
		{"tensor entry not an object", raw(`{"a":1}`, nil), `tensor "a": a number is not an object`},
		{"tensor entry null", raw(`{"a":null}`, nil), `tensor "a": null is not an object`},
		{"unknown dtype", raw(entry1(`"dtype":"F12","shape":[1],"data_offsets":[0,4]`), make([]byte, 4)), `tensor "a": unknown dtype "F12"`},
		{"sub-byte dtype", raw(entry1(`"dtype":"F4","shape":[2],"data_offsets":[0,1]`), make([]byte, 1)), `unknown dtype "F4"`},
		{"dtype not a string", raw(entry1(`"dtype":4,"shape":[1],"data_offsets":[0,4]`), make([]byte, 4)), "dtype is a number, want a string"},
		{"negative shape", raw(entry1(f32(`[-1]`, `[0,4]`)), make([]byte, 4)), "shape[0] is -1, want a non-negative integer"},
		{"fractional shape", raw(entry1(f32(`[1.5]`, `[0,4]`)), make([]byte, 4)), "shape[0] is 1.5"},
		{"shape as string", raw(entry1(f32(`["1"]`, `[0,4]`)), make([]byte, 4)), `shape[0] is "1"`},
		{"shape null", raw(entry1(f32(`null`, `[0,4]`)), make([]byte, 4)), "shape is null, want an array of integers"},
		{"shape overflows", raw(entry1(f32(`[4611686018427387904,4]`, `[0,4]`)), make([]byte, 4)), "size overflows"},
		{"shape beyond int", raw(entry1(f32(`[99999999999999999999]`, `[0,4]`)), make([]byte, 4)), "shape[0] is 99999999999999999999"},
		{"offsets out of range", raw(entry1(f32(`[1]`, `[0,100]`)), make([]byte, 4)), "data_offsets [0, 100] out of range of the 4-byte data buffer"},
		{"offsets reversed", raw(entry1(f32(`[1]`, `[4,0]`)), make([]byte, 4)), "data_offsets [4, 0] out of range"},
		{"offsets negative", raw(entry1(f32(`[1]`, `[-4,0]`)), make([]byte, 4)), "data_offsets[0] is -4"},
		{"three offsets", raw(entry1(f32(`[1]`, `[0,4,8]`)), make([]byte, 4)), "data_offsets has 3 numbers, want 2"},
		{"offsets not dtype x shape", raw(entry1(f32(`[3]`, `[0,8]`)), make([]byte, 8)), "data_offsets [0, 8] hold 8 bytes, but F32 [3] needs 12"},
		{"overlapping offsets", raw(`{"a":{`+f32(`[2]`, `[0,8]`)+`},"b":{`+f32(`[2]`, `[4,12]`)+`}}`, make([]byte, 12)),
			`tensor "b": data_offsets [4, 12] overlap tensor "a", which ends at 8`},
		{"empty tensor inside another", raw(`{"a":{`+f32(`[2]`, `[0,8]`)+`},"b":{`+f32(`[0]`, `[4,4]`)+`}}`, make([]byte, 8)),
			`tensor "b": data_offsets [4, 4] overlap tensor "a"`},
		{"gap between tensors", raw(`{"a":{`+f32(`[2]`, `[0,8]`)+`},"b":{`+f32(`[1]`, `[9,13]`)+`}}`, make([]byte, 13)),
			`tensor "b": data_offsets [9, 13] leave a gap of 1 bytes after offset 8`},
		{"gap at the start", raw(entry1(f32(`[1]`, `[4,8]`)), make([]byte, 8)), "leave a gap of 4 bytes after offset 0"},
		{"bytes after the last tensor", append(validFile(), 1, 2, 3, 4), "4 bytes of data after the last tensor"},
		{"data without tensors", raw(`{}`, []byte{1}), "1 bytes of data after the last tensor"},
		{"duplicate names", raw(`{"a":{`+f32(`[1]`, `[0,4]`)+`},"a":{`+f32(`[1]`, `[4,8]`)+`}}`, make([]byte, 8)), `tensor "a": appears twice in the header`},
		{"duplicate field", raw(entry1(`"dtype":"F32","dtype":"F64","shape":[1],"data_offsets":[0,4]`), make([]byte, 4)), `tensor "a": duplicate key "dtype"`},
		{"missing dtype", raw(entry1(`"shape":[1],"data_offsets":[0,4]`), make([]byte, 4)), `tensor "a": missing field "dtype"`},
		{"missing shape", raw(entry1(`"dtype":"F32","data_offsets":[0,4]`), make([]byte, 4)), `missing field "shape"`},
		{"missing offsets", raw(entry1(`"dtype":"F32","shape":[1]`), make([]byte, 4)), `missing field "data_offsets"`},
		{"extra field", raw(entry1(f32(`[1]`, `[0,4]`)+`,"offsets":[0,4]`), make([]byte, 4)), `unknown field "offsets"`},
		{"metadata value not a string", raw(`{"__metadata__":{"format":"pt","step":3}}`, nil), `__metadata__: value of "step" is a number, want a string`},
		{"metadata value null", raw(`{"__metadata__":{"k":null}}`, nil), `value of "k" is null`},
		{"metadata not an object", raw(`{"__metadata__":"pt"}`, nil), "__metadata__: a string is not an object"},
		{"metadata null", raw(`{"__metadata__":null}`, nil), "__metadata__: null is not an object"},
		{"duplicate metadata", raw(`{"__metadata__":{},"__metadata__":{}}`, nil), `header: __metadata__ appears twice`},
		{"duplicate metadata key", raw(`{"__metadata__":{"k":"1","k":"2"}}`, nil), `__metadata__: duplicate key "k"`},
	}
}

func TestReadRejectsCorruptFiles(t *testing.T) {
	for _, c := range corruptCases() {
		t.Run(c.name, func(t *testing.T) {
			f, err := Read(c.data)
			if err == nil {
				t.Fatalf("Read accepted the file: %v", f.Names())
			}
			if !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want one containing %q", err, c.want)
			}
		})
	}
}

// ReadFile's errors name the path, for a missing file and a corrupt one.
func TestReadFileErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.safetensors")
	if _, err := ReadFile(missing); err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("error %v, want one naming %s and wrapping os.ErrNotExist", err, missing)
	}
	corrupt := filepath.Join(dir, "model.safetensors")
	data := raw(entry1(`"dtype":"F32","shape":[2],"data_offsets":[0,4]`), make([]byte, 4))
	if err := os.WriteFile(corrupt, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(corrupt)
	want := "safetensors: " + corrupt + `: tensor "a": data_offsets [0, 4] hold 4 bytes, but F32 [2] needs 8`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant      %s", err, want)
	}
}

func TestReadValid(t *testing.T) {
	// Header keys in no particular order, a scalar, an empty tensor, metadata.
	header := `{"z":{"dtype":"U8","shape":[3],"data_offsets":[8,11]},` +
		`"__metadata__":{"format":"pt","note":"a \"quoted\" é"},` +
		`"e":{"dtype":"F64","shape":[0,5],"data_offsets":[8,8]},` +
		`"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`
	data := []byte{7, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3}
	f, err := Read(raw(header, data))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"e", "s", "z"}) {
		t.Fatalf("Names() = %v, want sorted [e s z]", got)
	}
	if want := map[string]string{"format": "pt", "note": `a "quoted" é`}; !reflect.DeepEqual(f.Metadata, want) {
		t.Fatalf("Metadata = %v, want %v", f.Metadata, want)
	}
	want := map[string]Tensor{
		"s": {"s", "I64", []int{}, data[0:8]},
		"e": {"e", "F64", []int{0, 5}, []byte{}},
		"z": {"z", "U8", []int{3}, []byte{1, 2, 3}},
	}
	for name, w := range want {
		got, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("Tensor(%q) missing", name)
		}
		if got.Name != w.Name || got.DType != w.DType || !reflect.DeepEqual(got.Shape, w.Shape) || !bytes.Equal(got.Data, w.Data) {
			t.Errorf("Tensor(%q) = %+v, want %+v", name, got, w)
		}
		if cap(got.Data) != len(got.Data) {
			t.Errorf("Tensor(%q).Data has spare capacity %d: an append would overwrite the next tensor", name, cap(got.Data))
		}
	}
	if _, ok := f.Tensor("missing"); ok {
		t.Error("Tensor(missing) found")
	}
	if f, err := Read(raw(`{}`, nil)); err != nil || len(f.Names()) != 0 || f.Metadata != nil {
		t.Fatalf("empty file: %v, %v", f, err)
	}
	// JSON whitespace anywhere after the opening '{' is allowed, as other
	// writers (Python's json.dumps) put it there.
	spaced := "{\"a\" : {\n  \"dtype\" :  \"F32\", \"shape\":\t[ 2 ] , \"data_offsets\" : [ 0 , 8 ] } ,\n" +
		" \"__metadata__\" : { \"k\" :  \"v\" } }  \n"
	f, err = Read(raw(spaced, le32(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if v, shape, err := f.Float32s("a"); err != nil || !reflect.DeepEqual(v, []float32{1, 2}) || !reflect.DeepEqual(shape, []int{2}) || f.Metadata["k"] != "v" {
		t.Fatalf("spaced header: %v %v %v %v", v, shape, err, f.Metadata)
	}
}

// specialFloat32s are bit patterns a round trip must keep exactly.
var specialFloat32s = []uint32{
	0x00000000, 0x80000000, // ±0
	0x7f800000, 0xff800000, // ±Inf
	0x7fc00000, 0x7fc00001, 0xffc12345, // quiet NaNs with payloads
	0x7f800001,             // a signalling NaN
	0x00000001, 0x007fffff, // smallest and largest subnormal
	0x7f7fffff, 0x3eaaaaab, // MaxFloat32, ≈1/3
}

var specialFloat64s = []uint64{
	0x0000000000000000, 0x8000000000000000,
	0x7ff0000000000000, 0xfff0000000000000,
	0x7ff8000000000000, 0x7ff8000000000001, 0xfff8deadbeef0001,
	0x7ff0000000000001,
	0x0000000000000001, 0x000fffffffffffff,
	0x7fefffffffffffff, 0x3fd5555555555555,
}

func TestRoundTripBitExact(t *testing.T) {
	t.Run("float32", func(t *testing.T) {
		v := make([]float32, len(specialFloat32s))
		for i, b := range specialFloat32s {
			v[i] = math.Float32frombits(b)
		}
		shape := []int{3, len(v) / 3}
		var buf bytes.Buffer
		if err := Write(&buf, []Tensor{FromFloat32s("x", shape, v)}, nil); err != nil {
			t.Fatal(err)
		}
		f, err := Read(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got, gotShape, err := f.Float32s("x")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotShape, shape) {
			t.Fatalf("shape %v, want %v", gotShape, shape)
		}
		for i := range v {
			if math.Float32bits(got[i]) != specialFloat32s[i] {
				t.Errorf("element %d: bits %#08x, want %#08x", i, math.Float32bits(got[i]), specialFloat32s[i])
			}
		}
	})
	t.Run("float64", func(t *testing.T) {
		v := make([]float64, len(specialFloat64s))
		for i, b := range specialFloat64s {
			v[i] = math.Float64frombits(b)
		}
		shape := []int{len(v)}
		var buf bytes.Buffer
		if err := Write(&buf, []Tensor{FromFloat64s("x", shape, v)}, nil); err != nil {
			t.Fatal(err)
		}
		f, err := Read(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := f.Float64s("x")
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			if math.Float64bits(got[i]) != specialFloat64s[i] {
				t.Errorf("element %d: bits %#016x, want %#016x", i, math.Float64bits(got[i]), specialFloat64s[i])
			}
		}
	})
}

// Half-precision decoding against hand-computed bit patterns.
func TestHalfDecoding(t *testing.T) {
	cases := []struct {
		dtype string
		bits  uint16
		want  float64 // exact; NaN means any NaN
		neg   bool    // for zeros: want the sign bit set
	}{
		// F16: sign | 5 exponent bits (bias 15) | 10 fraction bits.
		{"F16", 0x3c00, 1, false},                     // 0 01111 0000000000 = 2^0
		{"F16", 0xc100, -2.5, false},                  // 1 10000 0100000000 = -1.25·2^1
		{"F16", 0x7bff, 65504, false},                 // 0 11110 1111111111 = (2-2^-10)·2^15, largest finite
		{"F16", 0x3555, 0.333251953125, false},        // 0 01101 0101010101 = (1+341/1024)·2^-2
		{"F16", 0x0400, 6.103515625e-05, false},       // smallest normal 2^-14
		{"F16", 0x03ff, 6.097555160522461e-05, false}, // largest subnormal 1023·2^-24
		{"F16", 0x0001, 5.960464477539063e-08, false}, // smallest subnormal 2^-24
		{"F16", 0x8001, -5.960464477539063e-08, false},
		{"F16", 0x0000, 0, false},
		{"F16", 0x8000, 0, true}, // -0
		{"F16", 0x7c00, math.Inf(1), false},
		{"F16", 0xfc00, math.Inf(-1), false},
		{"F16", 0x7e00, math.NaN(), false},
		{"F16", 0x7c01, math.NaN(), false}, // signalling NaN stays NaN, not Inf
		// BF16: the top 16 bits of a float32.
		{"BF16", 0x3f80, 1, false},
		{"BF16", 0xc020, -2.5, false},
		{"BF16", 0x477f, 65280, false},                  // 65504 is not representable; 0x477f = 255·2^8
		{"BF16", 0x7f7f, 3.3895313892515355e+38, false}, // largest finite (2-2^-7)·2^127
		{"BF16", 0x0080, 1.1754943508222875e-38, false}, // smallest normal 2^-126
		{"BF16", 0x0001, 9.183549615799121e-41, false},  // smallest subnormal 2^-133
		{"BF16", 0x8000, 0, true},
		{"BF16", 0x7f80, math.Inf(1), false},
		{"BF16", 0xff80, math.Inf(-1), false},
		{"BF16", 0x7fc0, math.NaN(), false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s_%04x", c.dtype, c.bits), func(t *testing.T) {
			data := binary.LittleEndian.AppendUint16(nil, c.bits)
			var buf bytes.Buffer
			if err := Write(&buf, []Tensor{{Name: "h", DType: c.dtype, Shape: []int{1}, Data: data}}, nil); err != nil {
				t.Fatal(err)
			}
			f, err := Read(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			v32, _, err := f.Float32s("h")
			if err != nil {
				t.Fatal(err)
			}
			v64, _, err := f.Float64s("h")
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []float64{float64(v32[0]), v64[0]} {
				switch {
				case math.IsNaN(c.want):
					if !math.IsNaN(got) {
						t.Errorf("got %v, want NaN", got)
					}
				case got != c.want || math.Signbit(got) != (c.neg || c.want < 0):
					t.Errorf("got %v (sign %v), want %v (sign %v)", got, math.Signbit(got), c.want, c.neg || c.want < 0)
				}
			}
		})
	}
}

// Float32s rounds F64 to nearest; Float64s widens F32 exactly.
func TestFloatConversions(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, []Tensor{
		FromFloat64s("d", []int{3}, []float64{0.1, 1e300, -1e-300}),
		FromFloat32s("s", []int{2}, []float32{0.1, -3.5}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	d32, _, _ := f.Float32s("d")
	if want := []float32{0.1, float32(math.Inf(1)), float32(math.Copysign(0, -1))}; !reflect.DeepEqual(d32, want) || !math.Signbit(float64(d32[2])) {
		t.Errorf("F64→float32 = %v, want %v", d32, want)
	}
	s64, _, _ := f.Float64s("s")
	if want := []float64{float64(float32(0.1)), -3.5}; !reflect.DeepEqual(s64, want) {
		t.Errorf("F32→float64 = %v, want %v", s64, want)
	}
}

func TestFloatsErrors(t *testing.T) {
	f, err := Read(raw(entry1(`"dtype":"I32","shape":[1],"data_offsets":[0,4]`), make([]byte, 4)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Float32s("a"); err == nil || err.Error() != `safetensors: tensor "a": dtype I32 is not a float type (want F32, F64, F16 or BF16)` {
		t.Errorf("Float32s of I32: %v", err)
	}
	if _, _, err := f.Float64s("a"); err == nil || !strings.Contains(err.Error(), "dtype I32 is not a float type") {
		t.Errorf("Float64s of I32: %v", err)
	}
	if _, _, err := f.Float32s("b"); !errors.Is(err, ErrNotFound) || err.Error() != `safetensors: tensor "b": not in the file` {
		t.Errorf("Float32s of a missing tensor: %v", err)
	}
	if _, _, err := f.Float64s("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Float64s of a missing tensor: %v", err)
	}
}

func le32(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// Write's bytes against layouts written out by hand.
func TestWriteGolden(t *testing.T) {
	cases := []struct {
		name     string
		tensors  []Tensor
		metadata map[string]string
		length   []byte // the 8-byte prefix
		header   string // including the space padding
		data     []byte
	}{
		{
			// Larger alignment first (I64 before F32), then by name;
			// metadata first; header padded from 196 to 200 bytes.
			name: "mixed dtypes with metadata",
			tensors: []Tensor{
				FromFloat32s("w", []int{2}, []float32{1, -2}),
				FromFloat32s("a", []int{1}, []float32{0.5}),
				{Name: "step", DType: "I64", Shape: []int{}, Data: []byte{7, 0, 0, 0, 0, 0, 0, 0}},
			},
			metadata: map[string]string{"format": "pt"},
			length:   []byte{0xc8, 0, 0, 0, 0, 0, 0, 0},
			header: `{"__metadata__":{"format":"pt"},` +
				`"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},` +
				`"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},` +
				`"w":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}    `,
			data: []byte{
				7, 0, 0, 0, 0, 0, 0, 0, // step = 7
				0x00, 0x00, 0x00, 0x3f, // a = 0.5 = 0x3f000000
				0x00, 0x00, 0x80, 0x3f, // 1 = 0x3f800000
				0x00, 0x00, 0x00, 0xc0, // -2 = 0xc0000000
			},
		},
		{
			// The reference implementation's own test vectors: 64 bytes
			// need no padding, 65 get 7 spaces.
			name:    "reference attn.0",
			tensors: []Tensor{FromFloat32s("attn.0", []int{1, 2, 3}, []float32{0, 1, 2, 3, 4, 5})},
			length:  []byte{64, 0, 0, 0, 0, 0, 0, 0},
			header:  `{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`,
			data:    le32(0, 1, 2, 3, 4, 5),
		},
		{
			name:    "reference attn0",
			tensors: []Tensor{FromFloat32s("attn0", []int{1, 1, 2, 3}, []float32{0, 1, 2, 3, 4, 5})},
			length:  []byte{72, 0, 0, 0, 0, 0, 0, 0},
			header:  `{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `,
			data:    le32(0, 1, 2, 3, 4, 5),
		},
		{
			name:   "empty",
			length: []byte{8, 0, 0, 0, 0, 0, 0, 0},
			header: `{}      `,
		},
		{
			name:     "metadata only",
			metadata: map[string]string{"framework": "pt"},
			length:   []byte{40, 0, 0, 0, 0, 0, 0, 0},
			header:   `{"__metadata__":{"framework":"pt"}}     `,
		},
		{
			// Only '"', '\\' and control characters are escaped; '<' and
			// non-ASCII are written as they are.
			name:    "escaping",
			tensors: []Tensor{{Name: "a\"b\\\n\x01<é>", DType: "U8", Shape: []int{0}, Data: nil}},
			length:  []byte{72, 0, 0, 0, 0, 0, 0, 0},
			header:  `{"a\"b\\\n\u0001<é>":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}  `,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := append(append(append([]byte{}, c.length...), c.header...), c.data...)
			var buf bytes.Buffer
			if err := Write(&buf, c.tensors, c.metadata); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("Write produced\n%q\nwant\n%q", buf.Bytes(), want)
			}
			f, err := Read(want)
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range c.tensors {
				got, ok := f.Tensor(tt.Name)
				if !ok || !bytes.Equal(got.Data, tt.Data) || got.DType != tt.DType || !reflect.DeepEqual(got.Shape, tt.Shape) {
					t.Errorf("tensor %q read back as %+v", tt.Name, got)
				}
			}
		})
	}
}

type failingWriter struct{ after int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.after {
		return 0, errDiskFull
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWriteRejects(t *testing.T) {
	good := FromFloat32s("a", []int{1}, []float32{1})
	cases := []struct {
		name     string
		tensors  []Tensor
		metadata map[string]string
		want     string
	}{
		{"duplicate name", []Tensor{good, good}, nil, `tensor "a": name appears twice`},
		{"reserved name", []Tensor{FromFloat32s("__metadata__", []int{1}, []float32{1})}, nil, `tensor "__metadata__": name is reserved`},
		{"name not UTF-8", []Tensor{FromFloat32s("\xff", []int{1}, []float32{1})}, nil, `name is not valid UTF-8`},
		{"unknown dtype", []Tensor{{Name: "a", DType: "float32", Shape: []int{1}, Data: make([]byte, 4)}}, nil, `tensor "a": unknown dtype "float32"`},
		{"negative size", []Tensor{{Name: "a", DType: "F32", Shape: []int{-1, -4}, Data: make([]byte, 16)}}, nil, `shape [-1 -4] has a negative size`},
		{"too little data", []Tensor{FromFloat32s("a", []int{2, 2}, []float32{1, 2, 3})}, nil, `tensor "a": 12 bytes of data, but F32 [2 2] needs 16`},
		{"metadata not UTF-8", []Tensor{good}, map[string]string{"k": "\xfe"}, `metadata "k": not valid UTF-8`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, c.tensors, c.metadata)
			if err == nil || !strings.HasPrefix(err.Error(), "safetensors: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
	t.Run("writer fails", func(t *testing.T) {
		big := FromFloat32s("big", []int{1 << 16}, make([]float32, 1<<16))
		err := Write(&failingWriter{after: 100}, []Tensor{big}, nil)
		if !errors.Is(err, errDiskFull) {
			t.Fatalf("error %v, want one wrapping %v", err, errDiskFull)
		}
	})
}

// WriteFile replaces a file in place and, when the tensors are invalid,
// leaves the previous file and no temporary file.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "adapter_model.safetensors")
	if err := WriteFile(path, []Tensor{FromFloat32s("a", []int{2}, []float32{1, 2})}, map[string]string{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []Tensor{FromFloat32s("a", []int{2}, []float32{3, 4})}, map[string]string{"v": "2"}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	err = WriteFile(path, []Tensor{FromFloat32s("a", []int{3}, []float32{3, 4})}, nil)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want one naming %s", err, path)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("a failed WriteFile changed the file")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("folder holds %d entries, want 1", len(ents))
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, _, _ := f.Float32s("a")
	if !reflect.DeepEqual(v, []float32{3, 4}) || f.Metadata["v"] != "2" {
		t.Fatalf("read back %v %v", v, f.Metadata)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "x.safetensors"), nil, nil); err == nil || !strings.HasPrefix(err.Error(), "safetensors: ") {
		t.Fatalf("writing into a missing folder: %v", err)
	}
}

// Float32sInto and Float64sInto decode in place, convert half precision,
// and reject a wrong shape, a wrong destination length, a non-float dtype
// and a missing tensor without touching dst.
func TestFloatsInto(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, []Tensor{
		FromFloat64s("w", []int{2, 2}, []float64{1, -2, 0.5, 8}),
		{Name: "h", DType: "F16", Shape: []int{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc1}}, // 1, -2.5
		{Name: "ids", DType: "I32", Shape: []int{2}, Data: make([]byte, 8)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	d32 := make([]float32, 4)
	if err := f.Float32sInto("w", []int{2, 2}, d32); err != nil || !reflect.DeepEqual(d32, []float32{1, -2, 0.5, 8}) {
		t.Errorf("Float32sInto(w) = %v, %v", d32, err)
	}
	d64 := make([]float64, 2)
	if err := f.Float64sInto("h", []int{2}, d64); err != nil || !reflect.DeepEqual(d64, []float64{1, -2.5}) {
		t.Errorf("Float64sInto(h) = %v, %v", d64, err)
	}
	bad := []struct {
		name  string
		shape []int
		dst   []float64
		want  string
	}{
		{"w", []int{4}, make([]float64, 4), `tensor "w": shape [2 2], want [4]`},
		{"w", []int{2, 2}, make([]float64, 3), `tensor "w": 3 values to decode into, want 4`},
		{"ids", []int{2}, make([]float64, 2), `tensor "ids": dtype I32 is not a float type (want F32, F64, F16 or BF16), cannot decode into float64`},
		{"x", []int{1}, make([]float64, 1), `tensor "x": not in the file`},
	}
	for _, c := range bad {
		for i := range c.dst {
			c.dst[i] = 7
		}
		err := f.Float64sInto(c.name, c.shape, c.dst)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Float64sInto(%s, %v, len %d) = %v, want an error containing %q", c.name, c.shape, len(c.dst), err, c.want)
		}
		for _, x := range c.dst {
			if x != 7 {
				t.Errorf("Float64sInto(%s) changed dst on error: %v", c.name, c.dst)
				break
			}
		}
	}
}
