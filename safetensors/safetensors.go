package safetensors

import (
	"errors"
	"fmt"
	"strconv"
)

// maxHeaderLen is the largest header Read accepts: 100 MB, the reference
// implementation's limit (a GPT-2 header is about 15 kB).
const maxHeaderLen = 100_000_000

// metadataKey is the header key that holds the free-form string map.
const metadataKey = "__metadata__"

// ErrNotFound is wrapped by the errors of Float32s, Float64s, Float32sInto
// and Float64sInto when the file has no tensor of the given name.
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
