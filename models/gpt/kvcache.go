package gpt

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/golora/golora/graph"
)

// KVCache is the state of incremental decoding: for Rows() sequences (rows)
// and every block of the model, the attention keys and values of up to
// Capacity() positions, and how many positions of each row are filled. It
// is passed to Decoder.Decode and returned by it rather than kept inside the
// model, so one compiled Decoder can serve several caches, and a cache can
// be reordered (beam search), truncated or copied between steps.
//
// Block i's keys and values are two frozen parameters [Rows·Capacity, w]
// ("kv.{i}.k", "kv.{i}.v"; row r's position j at row r·Capacity + j; w is
// NEmbd for GPT-2, KV heads × head width for a Llama-family model), which a
// Decoder's graph binds by pointer: nothing is copied per step. A cache
// takes 2·layers·Rows·Capacity·w elements of the model's dtype (Bytes).
//
// A KVCache is not safe for concurrent use.
type KVCache struct {
	rows, capacity, d int
	dtype             graph.DType
	keys, values      []*graph.Param // per block, [rows·capacity, d]
	lens              []int          // filled positions per row

	// scratch for Reorder: one row of every block's keys and values
	spare32 []float32
	spare64 []float64
}

// NewKVCache returns an empty cache of rows sequences of up to capacity
// positions each (1 ≤ capacity ≤ BlockSize), in the model's dtype.
func (m *Model) NewKVCache(rows, capacity int) (*KVCache, error) {
	return NewKVCacheFor(m, rows, capacity)
}

// NewKVCacheFor returns an empty cache for model m (any Decodable) of rows
// sequences of up to capacity positions each (1 ≤ capacity ≤
// m.ContextSize()), with m.CacheShape() layers of cached rows in m's dtype.
func NewKVCacheFor(m Decodable, rows, capacity int) (*KVCache, error) {
	if m == nil {
		return nil, errors.New("gpt: kv cache: nil model")
	}
	if rows < 1 {
		return nil, fmt.Errorf("gpt: kv cache: %d rows, want ≥ 1", rows)
	}
	if ctx := m.ContextSize(); capacity < 1 || capacity > ctx {
		return nil, fmt.Errorf("gpt: kv cache: capacity %d, want 1 … %d (the model's context)", capacity, ctx)
	}
	layers, width := m.CacheShape()
	dt := m.DType()
	c := &KVCache{rows: rows, capacity: capacity, d: width, dtype: dt, lens: make([]int, rows)}
	for i := range layers {
		h := "kv." + strconv.Itoa(i)
		k := graph.NewParam(h+".k", dt, rows*capacity, width)
		v := graph.NewParam(h+".v", dt, rows*capacity, width)
		k.Trainable, v.Trainable = false, false
		c.keys = append(c.keys, k)
		c.values = append(c.values, v)
	}
	return c, nil
}

// Rows is the number of sequences the cache holds.
func (c *KVCache) Rows() int { return c.rows }

// Capacity is the number of positions each row can hold.
func (c *KVCache) Capacity() int { return c.capacity }

// Layers is the number of blocks whose keys and values the cache holds.
func (c *KVCache) Layers() int { return len(c.keys) }

// Bytes is the memory the keys and values take.
func (c *KVCache) Bytes() int { return 2 * len(c.keys) * c.rows * c.capacity * c.d * c.dtype.Size() }

// Len is the number of filled positions of row r (0 for a row out of range).
func (c *KVCache) Len(r int) int {
	if r < 0 || r >= c.rows {
		return 0
	}
	return c.lens[r]
}

// Lens returns a copy of every row's length.
func (c *KVCache) Lens() []int { return append([]int(nil), c.lens...) }

// Params lists the key and value parameters, block by block (keys of block 0,
// values of block 0, keys of block 1, …).
func (c *KVCache) Params() []*graph.Param {
	out := make([]*graph.Param, 0, 2*len(c.keys))
	for i := range c.keys {
		out = append(out, c.keys[i], c.values[i])
	}
	return out
}

// Reset empties every row. Nothing is cleared: positions beyond a row's
// length are never read.
func (c *KVCache) Reset() { clear(c.lens) }

// Truncate shortens row r to its first n positions (0 empties it), so that
// decoding continues from position n.
func (c *KVCache) Truncate(r, n int) error {
	if r < 0 || r >= c.rows {
		return fmt.Errorf("gpt: kv cache truncate: row %d outside [0, %d)", r, c.rows)
	}
	if n < 0 || n > c.lens[r] {
		return fmt.Errorf("gpt: kv cache truncate: row %d to %d positions, want 0 … %d", r, n, c.lens[r])
	}
	c.lens[r] = n
	return nil
}

// Reorder makes row r hold what row src[r] held before the call (keys,
// values and length), for every row r: what beam search does when it keeps
// the best continuations. Rows with src[r] = r are not touched; others copy
// the filled positions of their source only, so a step that keeps most beams
// in place copies little. Any src is allowed (a row may be copied to several
// rows, rows may swap); one row of scratch breaks cycles.
func (c *KVCache) Reorder(src []int) error {
	if len(src) != c.rows {
		return fmt.Errorf("gpt: kv cache reorder: %d sources for %d rows", len(src), c.rows)
	}
	for r, s := range src {
		if s < 0 || s >= c.rows {
			return fmt.Errorf("gpt: kv cache reorder: row %d takes row %d, outside [0, %d)", r, s, c.rows)
		}
	}
	// readers[s] counts the rows still to be written from s's old content;
	// a row can be overwritten once nobody needs its old content.
	readers := make([]int, c.rows)
	pending := 0
	for r, s := range src {
		if s != r {
			readers[s]++
			pending++
		}
	}
	if pending == 0 {
		return nil
	}
	lens := c.Lens()
	done := make([]bool, c.rows)
	spared := -1 // the row whose old content is in the scratch
	var queue []int
	for r, s := range src {
		if s != r && readers[r] == 0 {
			queue = append(queue, r)
		}
	}
	for pending > 0 {
		if len(queue) == 0 {
			// Only cycles are left: save one member, then it can be written.
			for r, s := range src {
				if s != r && !done[r] {
					c.saveRow(r, lens[r])
					spared = r
					queue = append(queue, r)
					break
				}
			}
		}
		r := queue[0]
		queue = queue[1:]
		s := src[r]
		if s == spared {
			c.restoreRow(r, lens[s])
		} else {
			c.copyRow(c, r, s, lens[s])
		}
		c.lens[r] = lens[s]
		done[r] = true
		pending--
		if readers[s]--; readers[s] == 0 && src[s] != s && !done[s] && s != spared {
			queue = append(queue, s)
		}
	}
	return nil
}

// CopyRows makes row r of c hold row from[r] of src (its keys, values and
// length) for every r with from[r] ≥ 0; rows with from[r] = −1 are left as
// they are. src is another cache of the same model shape and dtype (use
// Reorder within one cache), whose rows must fit c's capacity: this is how a
// prompt decoded in a small cache is copied into a row of a larger one.
func (c *KVCache) CopyRows(src *KVCache, from []int) error {
	switch {
	case src == nil:
		return errors.New("gpt: kv cache copy: nil source")
	case src == c:
		return errors.New("gpt: kv cache copy: source is the cache itself (use Reorder)")
	case len(src.keys) != len(c.keys) || src.d != c.d || src.dtype != c.dtype:
		return fmt.Errorf("gpt: kv cache copy: source has %d blocks of width %d in %v, want %d of %d in %v", len(src.keys), src.d, src.dtype, len(c.keys), c.d, c.dtype)
	case len(from) != c.rows:
		return fmt.Errorf("gpt: kv cache copy: %d sources for %d rows", len(from), c.rows)
	}
	for r, s := range from {
		if s < -1 || s >= src.rows {
			return fmt.Errorf("gpt: kv cache copy: row %d takes source row %d, outside [0, %d)", r, s, src.rows)
		}
		if s >= 0 && src.lens[s] > c.capacity {
			return fmt.Errorf("gpt: kv cache copy: source row %d holds %d positions, more than the capacity %d", s, src.lens[s], c.capacity)
		}
	}
	for r, s := range from {
		if s >= 0 {
			c.copyRow(src, r, s, src.lens[s])
			c.lens[r] = src.lens[s]
		}
	}
	return nil
}

// copyRow copies the first n positions of src's row s into c's row r, in
// every block.
func (c *KVCache) copyRow(src *KVCache, r, s, n int) {
	for i := range c.keys {
		for _, pair := range [2][2]*graph.Param{{c.keys[i], src.keys[i]}, {c.values[i], src.values[i]}} {
			dst, from := pair[0], pair[1]
			do, so, w := r*c.capacity*c.d, s*src.capacity*src.d, n*c.d
			if c.dtype == graph.Float64 {
				copy(dst.Float64s()[do:do+w], from.Float64s()[so:so+w])
			} else {
				copy(dst.Float32s()[do:do+w], from.Float32s()[so:so+w])
			}
		}
	}
}

// saveRow copies the first n positions of row r, in every block, to the
// scratch.
func (c *KVCache) saveRow(r, n int) {
	w := n * c.d
	at := 0
	for i := range c.keys {
		for _, p := range [2]*graph.Param{c.keys[i], c.values[i]} {
			o := r * c.capacity * c.d
			if c.dtype == graph.Float64 {
				c.spare64 = grow(c.spare64, at+w)
				copy(c.spare64[at:at+w], p.Float64s()[o:o+w])
			} else {
				c.spare32 = grow(c.spare32, at+w)
				copy(c.spare32[at:at+w], p.Float32s()[o:o+w])
			}
			at += w
		}
	}
}

// restoreRow writes the scratch (n positions per block) into row r.
func (c *KVCache) restoreRow(r, n int) {
	w := n * c.d
	at := 0
	for i := range c.keys {
		for _, p := range [2]*graph.Param{c.keys[i], c.values[i]} {
			o := r * c.capacity * c.d
			if c.dtype == graph.Float64 {
				copy(p.Float64s()[o:o+w], c.spare64[at:at+w])
			} else {
				copy(p.Float32s()[o:o+w], c.spare32[at:at+w])
			}
			at += w
		}
	}
}

// grow returns s with length at least n, keeping its contents.
func grow[T any](s []T, n int) []T {
	if len(s) >= n {
		return s
	}
	return append(s, make([]T, n-len(s))...)
}
