package gpt

import (
	"errors"
	"fmt"

	"github.com/golora/golora/graph"
)

// ErrCacheFull is returned (wrapped) by Decoder.Decode when a row's new
// tokens do not fit the cache's remaining positions.
var ErrCacheFull = errors.New("gpt: key/value cache row is full")

// Decoder is GPT-2 compiled for incremental decoding: a graph Program of
// fixed shape that takes up to Tokens() new tokens for each of Rows() rows,
// appends their keys and values to a KVCache and returns the logits of the
// next token of every row, [Rows, VocabSize]. A token costs one position of
// work (plus attention over the cached ones), not a pass over the whole
// prefix. Decoders with Tokens() = 1 run generation steps; larger ones feed
// prompts in chunks.
//
// The graph goes through the model's own layers (Embed, each block's Ln1,
// Attn.CAttn, Attn.CProj, Ln2 and MLP, then Head), with
// graph.CachedSelfAttention in place of the causal attention and dropout
// off, so whatever layers are installed when the Decoder is built — LoRA
// wrappers with their active adapter, merged or not — are what it runs.
// Weight values changed in place later (training steps, loading
// weights) are seen by the next Decode; a change of what the layers compute
// (SetLayer; switching, merging, unmerging or disabling a LoRA adapter,
// which changes what a wrapper's Forward builds) needs a new Decoder: after
// a LoRA change Decode returns an error wrapping graph.ErrStale.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	m                      Decodable
	rows, tokens, capacity int

	prog                  *graph.Program
	ids, wpos, cpos, last *graph.Node // inputs
	logits                *graph.Node // [rows, V]
	kNodes, vNodes        []*graph.Node
	bound                 *KVCache // the cache the program reads and writes

	idsBuf, wposBuf, cposBuf, lastBuf []int // input staging, reused
}

// NewDecoder compiles a decoding step for rows rows of up to tokens new
// tokens each, against caches of capacity positions per row
// (1 ≤ tokens ≤ capacity ≤ BlockSize), and returns it with an empty cache
// of that shape. More caches for it come from NewCache.
func (m *Model) NewDecoder(rows, tokens, capacity int) (*Decoder, *KVCache, error) {
	return NewDecoderFor(m, rows, tokens, capacity)
}

// NewDecoderFor is NewDecoder for any Decodable model (GPT-2, or a
// Llama-family model of package llama): capacity is at most
// m.ContextSize(), and the step's graph is m.StepGraph then m.StepHead on
// each row's last new token.
func NewDecoderFor(m Decodable, rows, tokens, capacity int) (*Decoder, *KVCache, error) {
	if tokens < 1 || tokens > capacity {
		return nil, nil, fmt.Errorf("gpt: new decoder: %d tokens per row, want 1 … capacity = %d", tokens, capacity)
	}
	cache, err := NewKVCacheFor(m, rows, capacity)
	if err != nil {
		return nil, nil, fmt.Errorf("gpt: new decoder: %w", err)
	}
	d := &Decoder{m: m, rows: rows, tokens: tokens, capacity: capacity, bound: cache}
	n := rows * tokens
	b := graph.NewBuilder(m.DType(), 0)
	d.ids = b.IntInput("ids", n)                         // [R·T] row r's token t at r·T + t
	d.wpos = b.IntInput("positions", n)                  // [R·T] positions (0 for padding)
	d.cpos = b.IntInput("cache_positions", rows, tokens) // [R, T] cache positions, −1 = padding
	for i := range cache.keys {
		d.kNodes = append(d.kNodes, b.Param(cache.keys[i]))
		d.vNodes = append(d.vNodes, b.Param(cache.values[i]))
	}
	x := m.StepGraph(d.ids, d.wpos, d.cpos, d.kNodes, d.vNodes) // [R·T, d]
	if tokens > 1 {
		d.last = b.IntInput("last", rows) // row r's last new token
		x = graph.Embedding(x, d.last)    // [R·T, d] → [R, d]
	}
	d.logits = m.StepHead(x) // [R, V]
	if d.prog, err = b.Compile(nil, d.logits); err != nil {
		return nil, nil, fmt.Errorf("gpt: new decoder: %w", err)
	}
	d.prog.SetTraining(false)
	d.idsBuf, d.wposBuf, d.cposBuf = make([]int, n), make([]int, n), make([]int, n)
	d.lastBuf = make([]int, rows)
	return d, cache, nil
}

// Rows is the number of rows a call decodes.
func (d *Decoder) Rows() int { return d.rows }

// Tokens is the most new tokens a call takes per row.
func (d *Decoder) Tokens() int { return d.tokens }

// Capacity is the number of positions per row of the caches it uses.
func (d *Decoder) Capacity() int { return d.capacity }

// NewCache returns another empty cache that fits the decoder.
func (d *Decoder) NewCache() (*KVCache, error) { return NewKVCacheFor(d.m, d.rows, d.capacity) }

// Decode appends ids[r] (0 … Tokens() tokens) to row r of cache c for every
// row, at positions c.Len(r), c.Len(r)+1, …, and returns the logits of the
// token that follows each row's last new token, [Rows, VocabSize]: row r's
// logits at r·VocabSize. A row given no tokens is left as it is and its
// logits row is meaningless. The returned cache is c itself, advanced; it is
// returned to make the flow of state explicit. The logits are a view of the
// decoder's buffer, overwritten by its next call: copy what must outlive it.
//
// c must have the decoder's rows and capacity and belong to the same model
// shape; switching between caches costs nothing (the program is pointed at
// the other cache's parameters). A row whose new tokens do not fit its
// remaining capacity is an error wrapping ErrCacheFull, and a token outside
// [0, VocabSize) an error naming it; then nothing is decoded and c is
// unchanged.
func (d *Decoder) Decode(c *KVCache, ids [][]int) (graph.Array, *KVCache, error) {
	if err := d.bind(c); err != nil {
		return graph.Array{}, c, err
	}
	if len(ids) != d.rows {
		return graph.Array{}, c, fmt.Errorf("gpt: decode: %d rows of ids, the decoder has %d", len(ids), d.rows)
	}
	v := d.m.VocabSize()
	for r, row := range ids {
		switch {
		case len(row) > d.tokens:
			return graph.Array{}, c, fmt.Errorf("gpt: decode: row %d has %d tokens, the decoder takes at most %d", r, len(row), d.tokens)
		case c.lens[r]+len(row) > c.capacity:
			return graph.Array{}, c, fmt.Errorf("gpt: decode: row %d: %d cached + %d new tokens exceed the capacity %d: %w", r, c.lens[r], len(row), c.capacity, ErrCacheFull)
		}
		for t, id := range row {
			if id < 0 || id >= v {
				return graph.Array{}, c, fmt.Errorf("gpt: decode: row %d token %d: id %d outside [0, %d)", r, t, id, v)
			}
		}
		base := r * d.tokens
		for t := range d.tokens {
			i := base + t
			if t < len(row) {
				d.idsBuf[i], d.wposBuf[i], d.cposBuf[i] = row[t], c.lens[r]+t, c.lens[r]+t
			} else {
				d.idsBuf[i], d.wposBuf[i], d.cposBuf[i] = 0, 0, -1 // padding: skipped by the attention
			}
		}
		d.lastBuf[r] = base + max(len(row), 1) - 1
	}
	for _, in := range []struct {
		n *graph.Node
		v []int
	}{{d.ids, d.idsBuf}, {d.wpos, d.wposBuf}, {d.cpos, d.cposBuf}, {d.last, d.lastBuf}} {
		if in.n == nil {
			continue
		}
		if err := d.prog.SetInts(in.n, in.v); err != nil {
			return graph.Array{}, c, fmt.Errorf("gpt: decode: %w", err)
		}
	}
	if err := d.prog.Forward(); err != nil {
		return graph.Array{}, c, fmt.Errorf("gpt: decode: %w", err)
	}
	for r, row := range ids {
		c.lens[r] += len(row)
	}
	out, err := d.prog.Output(d.logits)
	if err != nil {
		return graph.Array{}, c, fmt.Errorf("gpt: decode: %w", err)
	}
	return out, c, nil
}

// bind points the program at c's parameters when it uses another cache.
func (d *Decoder) bind(c *KVCache) error {
	switch {
	case c == nil:
		return errors.New("gpt: decode: nil cache")
	case c == d.bound:
		return nil
	case c.rows != d.rows || c.capacity != d.capacity:
		return fmt.Errorf("gpt: decode: cache of %d rows × %d positions, the decoder needs %d × %d", c.rows, c.capacity, d.rows, d.capacity)
	case len(c.keys) != len(d.kNodes) || c.d != d.bound.d || c.dtype != d.bound.dtype:
		return fmt.Errorf("gpt: decode: cache of %d blocks of width %d in %v, the model has %d of %d in %v", len(c.keys), c.d, c.dtype, len(d.kNodes), d.bound.d, d.bound.dtype)
	}
	if err := d.bindParams(c); err != nil {
		_ = d.bindParams(d.bound) // back to the cache it was bound to
		return fmt.Errorf("gpt: decode: %w", err)
	}
	d.bound = c
	return nil
}

func (d *Decoder) bindParams(c *KVCache) error {
	for i := range d.kNodes {
		if err := d.prog.BindParam(d.kNodes[i], c.keys[i]); err != nil {
			return err
		}
		if err := d.prog.BindParam(d.vNodes[i], c.values[i]); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the compiled program.
func (d *Decoder) Close() error { return d.prog.Close() }
