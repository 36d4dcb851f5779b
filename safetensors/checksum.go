package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
)

// ChecksumKey is the metadata key under which golora stores a checksum of
// every tensor's data: a JSON object mapping each tensor name to the
// CRC-32C (Castagnoli) of its bytes, as 8 lowercase hex digits, e.g.
//
//	"golora.crc32c": "{\"h.0.attn.c_attn.weight\":\"1f0c7a32\",…}"
//
// The key is optional. Other tools ignore metadata they do not know, so a
// file with it stays an ordinary .safetensors file; a file without it is
// read as before, unchecked. When a file has it, Read checks every tensor
// against it and reports the first one whose bytes changed, by name.
//
// Writing: when the metadata given to Write or WriteFile has this key (with
// any value; WithChecksums adds it), its value is replaced by the checksums
// of the tensors written, so the stored checksums always describe the file's
// own data, also when a file is rewritten from an edited copy.
//
// CRC-32C detects every error burst of up to 32 bits and misses random
// damage with probability 2⁻³²; it guards against corruption (a bad disk, a
// bad copy, a flipped byte), not against deliberate tampering. It runs at
// memory speed on amd64 and arm64 (the instruction sets have it), so checking
// a whole model costs little next to reading it.
const ChecksumKey = "golora.crc32c"

// castagnoli is the CRC-32C table (hardware-accelerated where available).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WithChecksums returns a copy of metadata (nil for none) with ChecksumKey
// added, so that Write and WriteFile store the tensors' checksums.
func WithChecksums(metadata map[string]string) map[string]string {
	out := make(map[string]string, len(metadata)+1)
	for k, v := range metadata {
		out[k] = v
	}
	out[ChecksumKey] = ""
	return out
}

// checksum is the CRC-32C of data as 8 hex digits.
func checksum(data []byte) string {
	s := strconv.FormatUint(uint64(crc32.Checksum(data, castagnoli)), 16)
	for len(s) < 8 {
		s = "0" + s
	}
	return s
}

// checksums returns the value of ChecksumKey for tensors: a JSON object with
// the names in sorted order.
func checksums(tensors []Tensor) string {
	m := make(map[string]string, len(tensors))
	for _, t := range tensors {
		m[t.Name] = checksum(t.Data)
	}
	b, _ := json.Marshal(m) // a map of strings always encodes (keys sorted)
	return string(b)
}

// fillChecksums returns metadata with ChecksumKey set to the checksums of
// tensors when metadata asks for them, and metadata itself otherwise.
func fillChecksums(metadata map[string]string, tensors []Tensor) map[string]string {
	if _, ok := metadata[ChecksumKey]; !ok {
		return metadata
	}
	out := make(map[string]string, len(metadata))
	for k, v := range metadata {
		out[k] = v
	}
	out[ChecksumKey] = checksums(tensors)
	return out
}

// verifyChecksums checks every tensor of f against the checksums its
// metadata stores, when it stores any.
func (f *File) verifyChecksums() error {
	raw, ok := f.Metadata[ChecksumKey]
	if !ok {
		return nil
	}
	var sums map[string]string
	if err := json.Unmarshal([]byte(raw), &sums); err != nil || sums == nil {
		return f.errorf("", "metadata %s is not a JSON object of checksums", ChecksumKey)
	}
	names := f.Names()
	for _, n := range names {
		want, ok := sums[n]
		if !ok {
			return f.errorf(n, "has no checksum in metadata %s (the file was changed after it was written)", ChecksumKey)
		}
		e := f.entries[n]
		if got := checksum(f.buf[e.begin:e.end]); got != want {
			return fileError(f.name, n, fmt.Errorf("%w: CRC-32C of its data is %s, metadata %s says %s (the data was damaged after it was written)", ErrChecksum, got, ChecksumKey, want))
		}
	}
	if len(sums) != len(names) {
		extra := make([]string, 0, len(sums))
		for n := range sums {
			if _, ok := f.entries[n]; !ok {
				extra = append(extra, n)
			}
		}
		sort.Strings(extra)
		return f.errorf(extra[0], "has a checksum in metadata %s but is not in the file (a tensor was removed after the file was written)", ChecksumKey)
	}
	return nil
}

// ErrChecksum is wrapped by the error of Read and ReadFile when a tensor's
// data does not match the checksum stored in the file (see ChecksumKey).
var ErrChecksum = errors.New("checksum mismatch")
