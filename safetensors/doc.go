// Package safetensors reads and writes Hugging Face .safetensors files, the
// format of every weight file golora loads or saves: GPT-2 checkpoints,
// PEFT adapters, training checkpoints.
//
// # Overview
//
// A file is
//
//	8 bytes   N, the header length, unsigned little-endian
//	N bytes   a UTF-8 JSON object, padded with spaces:
//	          {"__metadata__": {"key": "value", ...},              (optional)
//	           "name": {"dtype": "F32", "shape": [768, 2304],
//	                    "data_offsets": [begin, end]}, ...}
//	rest      the data buffer; tensor bytes are buffer[begin:end],
//	          row-major (C order), little-endian
//
// Read and ReadFile parse a whole file held in memory and return a *File;
// Tensor gives a tensor's raw bytes, Float32s and Float64s decode the float
// dtypes (F32, F64, F16, BF16), and Float32sInto and Float64sInto decode into
// a slice of the caller's after checking the shape. The package depends on
// nothing of golora's outside internal/: graph.LoadParam and
// graph.ParamTensor adapt a graph.Param to it. Write and WriteFile produce
// files that the reference implementation reads, and WriteFile replaces its
// file atomically (a temporary file in the same folder, renamed into place).
//
// # Validation
//
// Read rejects, with an error naming the file and the tensor, any file that
// is shorter than 8 bytes; whose header length is over 100 MB or runs past
// the end of the file; whose header is not valid UTF-8, not a JSON object, or
// has a duplicate key at any level; whose tensor entry lacks a field, has an
// extra one, or has an unknown dtype; whose shape has a negative or
// non-integer size or an element count that overflows; whose data_offsets
// are not two integers with begin ≤ end inside the buffer or do not equal
// dtype size × element count; whose tensors overlap, leave a gap, or do not
// end exactly at the end of the file; or whose __metadata__ is not an object
// of strings. Data that is not a safetensors file at all (no plausible
// header length followed by '{') is reported as such (ErrNotSafetensors).
// No input makes Read, or any method of the File it returns, panic.
//
// # Checksums
//
// golora writes, in its own model, adapter and checkpoint files, an optional
// metadata entry ChecksumKey ("golora.crc32c") holding the CRC-32C of every
// tensor's data. Read verifies it when present and names the first tensor
// whose bytes no longer match (ErrChecksum); files without it (those other
// tools write) are read as before. Other readers ignore the entry.
//
// # Writing
//
// Write lays tensors out in the reference implementation's order (dtypes of
// larger alignment first, then by name) so that every tensor starts at a
// multiple of its element size; a file of one dtype is in plain name order.
// The header lists __metadata__ first (keys sorted), then the tensors in that
// order, and is padded with spaces to a multiple of 8 bytes. Tensors in one
// dtype, without metadata or with one metadata key, come out byte for byte as
// the reference implementation writes them.
//
// # Errors and concurrency
//
// Every error starts with "safetensors: " and names the file when there is
// one and the tensor it concerns, e.g.
//
//	safetensors: model.safetensors: tensor "h.0.attn.c_attn.weight": shape [768 2304], want [768 768]
//
// A missing tensor wraps ErrNotFound. A *File is never modified after Read
// returns, so its methods may be called from several goroutines at once.
package safetensors
