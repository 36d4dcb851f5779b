package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checksummed writes two tensors with checksums and returns the file and
// the offset of the data buffer.
func checksummed(t *testing.T) ([]byte, int) {
	t.Helper()
	var buf bytes.Buffer
	ts := []Tensor{
		FromFloat32s("a.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		FromFloat64s("b", []int{2}, []float64{-1, 0.5}),
		{Name: "empty", DType: "F32", Shape: []int{0}},
	}
	if err := Write(&buf, ts, WithChecksums(map[string]string{"format": "pt"})); err != nil {
		t.Fatal(err)
	}
	f, err := Read(buf.Bytes())
	if err != nil {
		t.Fatalf("a file written with checksums does not read back: %v", err)
	}
	return buf.Bytes(), len(buf.Bytes()) - len(f.buf)
}

func TestChecksumsWrittenAndVerified(t *testing.T) {
	data, start := checksummed(t)
	f, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	var sums map[string]string
	if err := json.Unmarshal([]byte(f.Metadata[ChecksumKey]), &sums); err != nil {
		t.Fatalf("metadata %s = %q: %v", ChecksumKey, f.Metadata[ChecksumKey], err)
	}
	// The algorithm is CRC-32C: its standard check value, of "123456789",
	// is e3069283.
	if got := checksum([]byte("123456789")); got != "e3069283" {
		t.Fatalf("CRC-32C(123456789) = %s, want e3069283", got)
	}
	if len(sums) != 3 || sums["empty"] != "00000000" || f.Metadata["format"] != "pt" {
		t.Fatalf("checksums %v, metadata %v", sums, f.Metadata)
	}
	// Every byte of the data buffer is covered: flipping any one of them is
	// reported, naming the tensor that holds it.
	owner := func(off int) string {
		for _, n := range f.Names() {
			if e := f.entries[n]; off >= e.begin && off < e.end {
				return n
			}
		}
		return ""
	}
	for off := start; off < len(data); off++ {
		bad := bytes.Clone(data)
		bad[off] ^= 0x01
		_, err := Read(bad)
		name := owner(off - start)
		if err == nil || !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), `tensor "`+name+`"`) {
			t.Fatalf("byte %d (in %q) flipped: error %v", off, name, err)
		}
	}
}

func TestChecksumsOptional(t *testing.T) {
	// A file without the key reads as before, whatever its data.
	var buf bytes.Buffer
	if err := Write(&buf, []Tensor{FromFloat32s("a", []int{1}, []float32{3})}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if f, err := Read(buf.Bytes()); err != nil || f.Metadata[ChecksumKey] != "" {
		t.Fatalf("plain file: %v, metadata %v", err, f.Metadata)
	}
	data := buf.Bytes()
	data[len(data)-1] ^= 0xff
	if _, err := Read(data); err != nil {
		t.Fatalf("a file without checksums is not checked, yet: %v", err)
	}
}

func TestChecksumsRejectEdits(t *testing.T) {
	data, _ := checksummed(t)
	f, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(md map[string]string, ts []Tensor) []byte {
		// Write would recompute the key: build the header by hand.
		header, order, err := prepare("", ts, md)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := emit(&out, header, order); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	var ts []Tensor
	for _, n := range f.Names() {
		tt, _ := f.Tensor(n)
		ts = append(ts, tt)
	}
	cases := []struct {
		name string
		md   map[string]string
		ts   []Tensor
		want string
	}{
		{"tensor removed", f.Metadata, ts[1:], `tensor "a.weight": has a checksum in metadata golora.crc32c but is not in the file`},
		{"tensor added", f.Metadata, append(append([]Tensor{}, ts...), FromFloat32s("z", []int{1}, []float32{1})), `tensor "z": has no checksum`},
		{"not JSON", map[string]string{ChecksumKey: "crc"}, ts, "metadata golora.crc32c is not a JSON object of checksums"},
		{"null", map[string]string{ChecksumKey: "null"}, ts, "not a JSON object of checksums"},
		{"wrong value", map[string]string{ChecksumKey: `{"a.weight":"00000000","b":"0","empty":"00000000"}`}, ts, `tensor "a.weight": checksum mismatch`},
	}
	for _, c := range cases {
		_, err := Read(rewrite(c.md, c.ts))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "safetensors: ") {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	// Write recomputes the key, so an edited copy written again is
	// consistent.
	ts[0] = FromFloat32s("a.weight", []int{2, 3}, []float32{9, 9, 9, 9, 9, 9})
	var buf bytes.Buffer
	if err := Write(&buf, ts, f.Metadata); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(buf.Bytes()); err != nil {
		t.Errorf("an edited copy written with Write: %v", err)
	}
}

func TestChecksumErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(path, []Tensor{FromFloat32s("w", []int{4}, []float32{1, 2, 3, 4})}, WithChecksums(nil)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 0x10
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), path+`: tensor "w": checksum mismatch`) {
		t.Errorf("error %v", err)
	}
}

func TestNotSafetensors(t *testing.T) {
	for name, data := range map[string][]byte{
		"text":        []byte("package main\n\nfunc main() {}\n"),
		"eight bytes": []byte("abcdefgh"),
		"zip":         append([]byte("PK\x03\x04"), make([]byte, 40)...),
		"json":        []byte(`{"a": 1, "b": 2}`),
		"short text":  []byte("hi"),
		"html":        []byte("<!DOCTYPE html><html></html>"),
	} {
		_, err := Read(data)
		if err == nil || !strings.Contains(err.Error(), "not a safetensors file") {
			t.Errorf("%s: error %v, want \"not a safetensors file\"", name, err)
		}
	}
}
