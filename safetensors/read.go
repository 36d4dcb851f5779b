package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/golora/golora/internal/memlimit"
)

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
