package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/golora/golora/internal/atomicfile"
)

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
