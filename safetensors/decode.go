package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
)

// DataBytes is the size of the file's data buffer: the bytes of all its
// tensors.
func (f *File) DataBytes() int64 { return int64(len(f.buf)) }

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.entries))
	for n := range f.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Tensor returns the named tensor and whether the file has it. Its Data
// shares the file's buffer and must not be modified; Shape is a copy.
func (f *File) Tensor(name string) (Tensor, bool) {
	e, ok := f.entries[name]
	if !ok {
		return Tensor{}, false
	}
	return Tensor{
		Name:  name,
		DType: e.dtype,
		Shape: append([]int{}, e.shape...),
		Data:  f.buf[e.begin:e.end:e.end],
	}, true
}

func (f *File) lookup(name string) (entry, error) {
	e, ok := f.entries[name]
	if !ok {
		return e, fileError(f.name, name, ErrNotFound)
	}
	return e, nil
}

// Float32s decodes the named tensor into a new []float32 and returns it with
// a copy of its shape. F32 is copied exactly, F16 and BF16 widen exactly, F64
// rounds to nearest (values beyond float32's range become ±Inf). Other
// dtypes are an error.
func (f *File) Float32s(name string) ([]float32, []int, error) {
	return decodeNew[float32](f, name)
}

// Float64s decodes the named tensor into a new []float64 and returns it with
// a copy of its shape. F64 is copied exactly and F32, F16 and BF16 widen
// exactly. Other dtypes are an error.
func (f *File) Float64s(name string) ([]float64, []int, error) {
	return decodeNew[float64](f, name)
}

func decodeNew[T float32 | float64](f *File, name string) ([]T, []int, error) {
	e, err := f.lookup(name)
	if err != nil {
		return nil, nil, err
	}
	if err := checkFloat(e.dtype); err != nil {
		return nil, nil, fileError(f.name, name, err)
	}
	out := make([]T, (e.end-e.begin)/dtypeSize(e.dtype))
	decode(out, e.dtype, f.buf[e.begin:e.end])
	return out, append([]int{}, e.shape...), nil
}

// Float32sInto decodes the named tensor into dst without allocating,
// converting its dtype as Float32s does. The tensor's shape must equal shape
// exactly and len(dst) must be its element count; dst is unchanged on error.
// graph.LoadParam uses it to load a tensor into a parameter's storage.
func (f *File) Float32sInto(name string, shape []int, dst []float32) error {
	return decodeInto(f, name, shape, dst, "float32")
}

// Float64sInto is Float32sInto for float64 values.
func (f *File) Float64sInto(name string, shape []int, dst []float64) error {
	return decodeInto(f, name, shape, dst, "float64")
}

func decodeInto[T float32 | float64](f *File, name string, shape []int, dst []T, kind string) error {
	e, err := f.lookup(name)
	if err != nil {
		return err
	}
	if !slices.Equal(e.shape, shape) {
		return f.errorf(name, "shape %v, want %v", e.shape, shape)
	}
	if err := checkFloat(e.dtype); err != nil {
		return fileError(f.name, name, fmt.Errorf("%w, cannot decode into %s", err, kind))
	}
	src := f.buf[e.begin:e.end]
	if n := len(src) / dtypeSize(e.dtype); len(dst) != n {
		return f.errorf(name, "%d values to decode into, want %d", len(dst), n)
	}
	decode(dst, e.dtype, src)
	return nil
}

func dtypeSize(dt string) int {
	size, _, _ := dtypeInfo(dt)
	return size
}

// checkFloat reports whether decode handles dtype dt.
func checkFloat(dt string) error {
	switch dt {
	case "F32", "F64", "F16", "BF16":
		return nil
	}
	return fmt.Errorf("dtype %s is not a float type (want F32, F64, F16 or BF16)", dt)
}

// decode converts the little-endian elements of src, of a dtype checkFloat
// accepts, into dst, which has exactly one slot per element.
func decode[T float32 | float64](dst []T, dt string, src []byte) {
	le := binary.LittleEndian
	switch dt {
	case "F32":
		for i := range dst {
			dst[i] = T(math.Float32frombits(le.Uint32(src[4*i:])))
		}
	case "F64":
		for i := range dst {
			dst[i] = T(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case "F16":
		for i := range dst {
			dst[i] = T(halfToFloat32(le.Uint16(src[2*i:])))
		}
	case "BF16":
		for i := range dst {
			dst[i] = T(math.Float32frombits(uint32(le.Uint16(src[2*i:])) << 16))
		}
	}
}

// halfToFloat32 widens an IEEE 754 binary16 value (1 sign bit, 5 exponent
// bits with bias 15, 10 fraction bits) to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch exp {
	case 0x1f: // ±Inf (frac = 0) or NaN, keeping the payload's top bits
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case 0: // ±0 or subnormal: frac × 2⁻²⁴, exact in float32
		v := float32(frac) * 0x1p-24
		if sign != 0 {
			v = -v
		}
		return v
	}
	// Normal: rebias the exponent from 15 to 127.
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}
