package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/internal/memlimit"
)

// maxHeaderLen is the largest header Read accepts: 100 MB, the reference
// implementation's limit (a GPT-2 header is about 15 kB).
const maxHeaderLen = 100_000_000

// metadataKey is the header key that holds the free-form string map.
const metadataKey = "__metadata__"

// ErrNotFound is wrapped by the errors of Float32s, Float64s and LoadInto
// when the file has no tensor of the given name.
var ErrNotFound = errors.New("not in the file")

// Tensor is one named tensor as stored in a file.
type Tensor struct {
	// Name is the tensor's key in the header, e.g. "h.0.attn.c_attn.weight".
	Name string
	// DType is the element type as written in the file: "F32", "F64", "F16",
	// "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL",
	// "F8_E5M2", "F8_E4M3", "F8_E8M0" or "C64".
	DType string
	// Shape is the size of each dimension, outermost first; [] is a scalar.
	Shape []int
	// Data is the raw little-endian, row-major bytes:
	// len(Data) = product(Shape) × size of DType.
	Data []byte
}

// File is a parsed .safetensors file. Its tensors' bytes stay in the buffer
// it was read from.
type File struct {
	// Metadata is the header's "__metadata__" map, nil when the file has
	// none.
	Metadata map[string]string

	name    string           // path, for errors; "" for Read
	buf     []byte           // the data buffer (the bytes after the header)
	entries map[string]entry // by tensor name
}

// entry locates one tensor: buf[begin:end].
type entry struct {
	dtype      string
	shape      []int
	begin, end int
}

// dtypeInfo gives a dtype's element size in bytes and its rank in the
// reference implementation's enum (ordered by increasing alignment), which
// decides the layout order of Write. Sub-byte dtypes (F4, F6_*) are not
// supported.
func dtypeInfo(dt string) (size, rank int, ok bool) {
	switch dt {
	case "BOOL":
		return 1, 0, true
	case "U8":
		return 1, 1, true
	case "I8":
		return 1, 2, true
	case "F8_E5M2":
		return 1, 3, true
	case "F8_E4M3":
		return 1, 4, true
	case "F8_E8M0":
		return 1, 5, true
	case "I16":
		return 2, 6, true
	case "U16":
		return 2, 7, true
	case "F16":
		return 2, 8, true
	case "BF16":
		return 2, 9, true
	case "I32":
		return 4, 10, true
	case "U32":
		return 4, 11, true
	case "F32":
		return 4, 12, true
	case "C64":
		return 8, 13, true
	case "F64":
		return 8, 14, true
	case "I64":
		return 8, 15, true
	case "U64":
		return 8, 16, true
	}
	return 0, 0, false
}

// fileError builds "safetensors: <file>: tensor "<name>": <err>", leaving
// out the parts that are empty; it unwraps to err.
func fileError(file, tensor string, err error) error {
	prefix := "safetensors: "
	if file != "" {
		prefix += file + ": "
	}
	if tensor != "" {
		prefix += "tensor " + strconv.Quote(tensor) + ": "
	}
	return &prefixedError{prefix: prefix, err: err}
}

// prefixedError adds context to an error and unwraps to it.
type prefixedError struct {
	prefix string
	err    error
}

func (e *prefixedError) Error() string { return e.prefix + e.err.Error() }
func (e *prefixedError) Unwrap() error { return e.err }

// tensorError carries a header entry's error up to parse, which adds the
// file name.
type tensorError struct {
	name string
	err  error
}

func (e *tensorError) Error() string { return strconv.Quote(e.name) + ": " + e.err.Error() }

func (f *File) errorf(tensor, format string, args ...any) error {
	return fileError(f.name, tensor, fmt.Errorf(format, args...))
}

// Read parses a whole .safetensors file held in data and validates all of it
// (see the package documentation). The File keeps data without copying it:
// data must not be modified while the File is in use.
func Read(data []byte) (*File, error) { return parse("", data) }

// ReadFile reads and parses the file at path, as Read does. Its errors name
// the path.
func ReadFile(path string) (*File, error) {
	// Only regular files: a device (/dev/zero) or a pipe would be read
	// without end or block.
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err) // the *PathError names the path
	}
	if !st.Mode().IsRegular() {
		return nil, fileError(path, "", fmt.Errorf("not a regular file, so %w", ErrNotSafetensors))
	}
	if err := memlimit.Check(st.Size(), fmt.Sprintf("reading this %s file", memlimit.Bytes(st.Size()))); err != nil {
		return nil, fileError(path, "", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return parse(path, data)
}

func parse(name string, data []byte) (*File, error) {
	f := &File{name: name}
	if len(data) < 8 {
		return nil, f.errorf("", "file is %d bytes, shorter than the 8-byte header length: not a safetensors file", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if (len(data) == 8 || data[8] != '{') && (n > maxHeaderLen || n > uint64(len(data)-8)) {
		// Neither a plausible length nor a JSON header after it: another
		// kind of file, not a damaged safetensors one.
		return nil, f.errorf("", "%w: it does not start with an 8-byte header length followed by a JSON header", ErrNotSafetensors)
	}
	if n > maxHeaderLen {
		return nil, f.errorf("", "header length %d is over the %d-byte limit", n, maxHeaderLen)
	}
	if n > uint64(len(data)-8) {
		return nil, f.errorf("", "header length %d but only %d bytes follow (truncated file?)", n, len(data)-8)
	}
	header := data[8 : 8+n]
	f.buf = data[8+n:]
	if !utf8.Valid(header) {
		return nil, f.errorf("", "header is not valid UTF-8")
	}
	if len(header) == 0 || header[0] != '{' {
		return nil, f.errorf("", "header is not a JSON object (it must start with '{')")
	}
	if !json.Valid(header) {
		var v any
		err := json.Unmarshal(header, &v) // for the position of the error
		return nil, f.errorf("", "header is not valid JSON: %v", err)
	}

	f.entries = map[string]entry{}
	var order []string // tensor names in header order, for deterministic errors
	err := eachField(header, func(key string, val []byte) error {
		if key == metadataKey {
			m, err := parseMetadata(val)
			if err != nil {
				return fmt.Errorf("%s: %w", metadataKey, err)
			}
			f.Metadata = m
			return nil
		}
		e, err := parseEntry(val, len(f.buf))
		if err != nil {
			return &tensorError{name: key, err: err}
		}
		f.entries[key] = e
		order = append(order, key)
		return nil
	})
	if err != nil {
		var te *tensorError
		if errors.As(err, &te) {
			return nil, fileError(name, te.name, te.err)
		}
		if dup, ok := err.(*duplicateKeyError); ok { // a top-level key
			if dup.key == metadataKey {
				return nil, f.errorf("", "header: %s appears twice", metadataKey)
			}
			return nil, f.errorf(dup.key, "appears twice in the header")
		}
		return nil, f.errorf("", "header: %v", err)
	}

	// The tensors must tile the buffer: sorted by offsets, each begins where
	// the previous one ended, and the last ends at the end of the file.
	sort.SliceStable(order, func(i, j int) bool {
		a, b := f.entries[order[i]], f.entries[order[j]]
		return a.begin < b.begin || (a.begin == b.begin && a.end < b.end)
	})
	pos, prev := 0, ""
	for _, key := range order {
		e := f.entries[key]
		switch {
		case e.begin < pos:
			return nil, f.errorf(key, "data_offsets [%d, %d] overlap tensor %q, which ends at %d", e.begin, e.end, prev, pos)
		case e.begin > pos:
			return nil, f.errorf(key, "data_offsets [%d, %d] leave a gap of %d bytes after offset %d", e.begin, e.end, e.begin-pos, pos)
		}
		pos, prev = e.end, key
	}
	if pos != len(f.buf) {
		return nil, f.errorf("", "%d bytes of data after the last tensor (the tensors cover %d of %d)", len(f.buf)-pos, pos, len(f.buf))
	}
	if err := f.verifyChecksums(); err != nil {
		return nil, err
	}
	return f, nil
}

// ErrNotSafetensors is wrapped by the error of Read and ReadFile for data
// that is not a .safetensors file at all (a text file, an archive, …) rather
// than a damaged one.
var ErrNotSafetensors = errors.New("not a safetensors file")

// eachField calls fn for each member of the JSON object raw, in order, and
// fails on a duplicate key or when raw is not an object. raw must be valid
// JSON.
func eachField(raw []byte, fn func(key string, val []byte) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%s is not an object", kind(raw))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key %v is not a string", tok)
		}
		if seen[key] {
			return &duplicateKeyError{key}
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return err
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	_, err = dec.Token() // the closing '}'
	return err
}

// duplicateKeyError reports a key that appears twice in one JSON object.
type duplicateKeyError struct{ key string }

func (e *duplicateKeyError) Error() string { return fmt.Sprintf("duplicate key %q", e.key) }

// kind names the JSON type of a valid JSON value, for error messages.
func kind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "empty value"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func parseMetadata(raw []byte) (map[string]string, error) {
	m := map[string]string{}
	err := eachField(raw, func(key string, val []byte) error {
		var s string
		if val[0] != '"' || json.Unmarshal(val, &s) != nil {
			return fmt.Errorf("value of %q is %s, want a string", key, kind(val))
		}
		m[key] = s
		return nil
	})
	return m, err
}

// parseEntry parses {"dtype": ..., "shape": [...], "data_offsets": [b, e]}
// and checks it against a data buffer of bufLen bytes.
func parseEntry(raw []byte, bufLen int) (entry, error) {
	var e entry
	var has struct{ dtype, shape, offsets bool }
	var offsets []int
	err := eachField(raw, func(key string, val []byte) error {
		var err error
		switch key {
		case "dtype":
			has.dtype = true
			if val[0] != '"' || json.Unmarshal(val, &e.dtype) != nil {
				return fmt.Errorf("dtype is %s, want a string", kind(val))
			}
		case "shape":
			has.shape = true
			e.shape, err = parseInts(val, "shape")
		case "data_offsets":
			has.offsets = true
			offsets, err = parseInts(val, "data_offsets")
		default:
			return fmt.Errorf("unknown field %q (want dtype, shape, data_offsets)", key)
		}
		return err
	})
	if err != nil {
		return e, err
	}
	switch {
	case !has.dtype:
		return e, errors.New(`missing field "dtype"`)
	case !has.shape:
		return e, errors.New(`missing field "shape"`)
	case !has.offsets:
		return e, errors.New(`missing field "data_offsets"`)
	}
	size, _, ok := dtypeInfo(e.dtype)
	if !ok {
		return e, fmt.Errorf("unknown dtype %q", e.dtype)
	}
	if len(offsets) != 2 {
		return e, fmt.Errorf("data_offsets has %d numbers, want 2", len(offsets))
	}
	e.begin, e.end = offsets[0], offsets[1]
	if e.begin > e.end || e.end > bufLen {
		return e, fmt.Errorf("data_offsets [%d, %d] out of range of the %d-byte data buffer", e.begin, e.end, bufLen)
	}
	nbytes, ok := byteLen(e.shape, size)
	if !ok {
		return e, fmt.Errorf("shape %v: size overflows", e.shape)
	}
	if nbytes != e.end-e.begin {
		return e, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, but %s %v needs %d", e.begin, e.end, e.end-e.begin, e.dtype, e.shape, nbytes)
	}
	return e, nil
}

// parseInts parses a JSON array of non-negative integers that fit an int.
func parseInts(raw []byte, what string) ([]int, error) {
	var elems []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
		return nil, fmt.Errorf("%s is %s, want an array of integers", what, kind(raw))
	}
	out := make([]int, len(elems))
	for i, el := range elems {
		s := string(bytes.TrimSpace(el))
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s[%d] is %s, want a non-negative integer that fits an int", what, i, s)
		}
		out[i] = v
	}
	return out, nil
}

// byteLen returns product(shape) × size, and false when a size is negative
// or the result overflows an int. A shape with a zero size holds no bytes,
// whatever its other sizes.
func byteLen(shape []int, size int) (int, bool) {
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			return 0, true
		}
	}
	n := uint64(size)
	for _, d := range shape {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return 0, false
		}
		n = lo
	}
	return int(n), true
}

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

// LoadInto overwrites p's values with the named tensor. The tensor's shape
// must equal p's exactly; its dtype (F32, F64, F16 or BF16) is converted to
// p's as Float32s or Float64s would. p is unchanged on error.
func (f *File) LoadInto(name string, p *graph.Param) error {
	if p == nil {
		return fileError(f.name, name, errors.New("nil parameter"))
	}
	e, err := f.lookup(name)
	if err != nil {
		return err
	}
	if !slices.Equal(e.shape, p.Shape()) {
		return f.errorf(name, "shape %v, want %v", e.shape, p.Shape())
	}
	if err := checkFloat(e.dtype); err != nil {
		return fileError(f.name, name, fmt.Errorf("%w, cannot load into a %s parameter", err, p.DType()))
	}
	src := f.buf[e.begin:e.end]
	n := len(src) / dtypeSize(e.dtype)
	if p.DType() == graph.Float64 {
		if dst := p.Float64s(); len(dst) == n {
			decode(dst, e.dtype, src)
			return nil
		}
	} else if dst := p.Float32s(); len(dst) == n {
		decode(dst, e.dtype, src)
		return nil
	}
	// A Param whose storage is not a slice of its Len() (a shape-[] Param
	// is held as a tensor scalar) cannot be loaded in place.
	return f.errorf(name, "parameter %q does not expose %d values to load into", p.Name, n)
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

// FromFloat32s returns an F32 tensor holding v, which should have
// product(shape) elements (Write reports a mismatch). v and shape are copied.
func FromFloat32s(name string, shape []int, v []float32) Tensor {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: "F32", Shape: append([]int{}, shape...), Data: data}
}

// FromFloat64s returns an F64 tensor holding v, which should have
// product(shape) elements (Write reports a mismatch). v and shape are copied.
func FromFloat64s(name string, shape []int, v []float64) Tensor {
	data := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(data[8*i:], math.Float64bits(x))
	}
	return Tensor{Name: name, DType: "F64", Shape: append([]int{}, shape...), Data: data}
}

// FromParam returns a copy of p's values as an F32 or F64 tensor, following
// p's dtype.
func FromParam(name string, p *graph.Param) Tensor {
	if p.DType() == graph.Float64 {
		return FromFloat64s(name, p.Shape(), p.Float64s())
	}
	return FromFloat32s(name, p.Shape(), p.Float32s())
}

// Write writes tensors and metadata (nil or empty for none) as a
// .safetensors file to w; metadata with ChecksumKey gets the tensors'
// checksums. It checks every tensor first (a known dtype, sizes
// ≥ 0, len(Data) matching dtype and shape, a unique name that is valid UTF-8
// and not "__metadata__") and writes nothing if one is wrong. See the package
// documentation for the layout.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	header, order, err := prepare("", tensors, fillChecksums(metadata, tensors))
	if err != nil {
		return err
	}
	if err := emit(w, header, order); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

// WriteFile writes a .safetensors file to path atomically: the data goes to a
// temporary file in the same folder, which is synced and renamed over path,
// so path holds either its previous contents or the complete new file, even
// if the process dies midway.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	header, order, err := prepare(path, tensors, fillChecksums(metadata, tensors))
	if err != nil {
		return err
	}
	err = atomicfile.WriteFile(path, func(w io.Writer) error {
		return emit(w, header, order)
	})
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// prepare checks the tensors and returns the padded header and the tensors
// in layout order.
func prepare(file string, tensors []Tensor, metadata map[string]string) ([]byte, []*Tensor, error) {
	seen := make(map[string]bool, len(tensors))
	order := make([]*Tensor, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		order[i] = t
		switch {
		case !utf8.ValidString(t.Name):
			return nil, nil, fileError(file, t.Name, errors.New("name is not valid UTF-8"))
		case t.Name == metadataKey:
			return nil, nil, fileError(file, t.Name, errors.New("name is reserved for the metadata"))
		case seen[t.Name]:
			return nil, nil, fileError(file, t.Name, errors.New("name appears twice"))
		}
		seen[t.Name] = true
		size, _, ok := dtypeInfo(t.DType)
		if !ok {
			return nil, nil, fileError(file, t.Name, fmt.Errorf("unknown dtype %q", t.DType))
		}
		n, ok := byteLen(t.Shape, size)
		if !ok {
			return nil, nil, fileError(file, t.Name, fmt.Errorf("shape %v has a negative size or overflows", t.Shape))
		}
		if n != len(t.Data) {
			return nil, nil, fileError(file, t.Name, fmt.Errorf("%d bytes of data, but %s %v needs %d", len(t.Data), t.DType, t.Shape, n))
		}
	}
	keys := make([]string, 0, len(metadata))
	for k := range metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !utf8.ValidString(k) || !utf8.ValidString(metadata[k]) {
			return nil, nil, fileError(file, "", fmt.Errorf("metadata %q: not valid UTF-8", k))
		}
	}

	// The reference order: larger alignment first, then by name.
	sort.Slice(order, func(i, j int) bool {
		_, ri, _ := dtypeInfo(order[i].DType)
		_, rj, _ := dtypeInfo(order[j].DType)
		if ri != rj {
			return ri > rj
		}
		return order[i].Name < order[j].Name
	})

	h := []byte{'{'}
	if len(keys) > 0 {
		h = appendString(h, metadataKey)
		h = append(h, ":{"...)
		for i, k := range keys {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendString(h, k)
			h = append(h, ':')
			h = appendString(h, metadata[k])
		}
		h = append(h, '}')
	}
	offset := 0
	for i, t := range order {
		if i > 0 || len(keys) > 0 {
			h = append(h, ',')
		}
		h = appendString(h, t.Name)
		h = append(h, `:{"dtype":`...)
		h = appendString(h, t.DType)
		h = append(h, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = strconv.AppendInt(h, int64(d), 10)
		}
		h = append(h, `],"data_offsets":[`...)
		h = strconv.AppendInt(h, int64(offset), 10)
		offset += len(t.Data)
		h = append(h, ',')
		h = strconv.AppendInt(h, int64(offset), 10)
		h = append(h, "]}"...)
	}
	h = append(h, '}')
	for len(h)%8 != 0 { // align the data buffer to 8 bytes, as the reference does
		h = append(h, ' ')
	}
	if len(h) > maxHeaderLen {
		return nil, nil, fileError(file, "", fmt.Errorf("header of %d bytes is over the %d-byte limit", len(h), maxHeaderLen))
	}
	return h, order, nil
}

// emit writes the length prefix and the header in one call, then each
// tensor's data straight from its slice (no copy of the weights).
func emit(w io.Writer, header []byte, order []*Tensor) error {
	head := make([]byte, 8, 8+len(header))
	binary.LittleEndian.PutUint64(head, uint64(len(header)))
	if _, err := w.Write(append(head, header...)); err != nil {
		return err
	}
	for _, t := range order {
		if len(t.Data) == 0 {
			continue
		}
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// appendString appends s as a JSON string the way the reference writer
// (serde_json) does: only '"', '\\' and control characters are escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}
