package tokenizer

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is a byte-pair-encoding model (Hugging Face's models.BPE): a word is
// cut into characters, each looked up in the vocabulary, and adjacent
// symbols are merged by the rank of their pair in the merge list, the
// lowest rank first and, among equal ranks, the leftmost first.
type bpe struct {
	vocab  map[string]int
	tokens []string // by id; "" for an id with no token

	merges map[[2]int32]mergeInfo // pair of ids → rank and merged id

	unk          int  // id of unk_token, or −1
	fuseUnk      bool // consecutive unknown characters make one unk
	byteFallback bool // unknown characters become <0xNN> byte tokens
	byteIDs      [256]int32
	ignoreMerges bool   // a word that is a vocabulary token is that token
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	cacheMu sync.RWMutex
	cache   map[string][]piece // word → its tokens
}

type mergeInfo struct {
	rank int32
	id   int32
}

// piece is one token of a word: its id and byte range in the word.
type piece struct {
	id     int32
	lo, hi int32
}

// maxCache bounds the word cache (entries), and maxCachedWord the length
// of a cached word (bytes), as Hugging Face bounds its own.
const (
	maxCache      = 1 << 17
	maxCachedWord = 256
)

func parseBPE(o *object) (*bpe, error) {
	if o == nil {
		return nil, fmt.Errorf("model: missing")
	}
	t, err := o.str("type", "BPE")
	if err != nil {
		return nil, err
	}
	if t != "BPE" {
		return nil, unsupported(o, "model", t, "BPE")
	}
	m := &bpe{unk: -1, cache: map[string][]piece{}}
	var dropout *float64
	if err := o.decode("dropout", &dropout); err != nil {
		return nil, err
	}
	if dropout != nil && *dropout != 0 {
		return nil, o.errorf("dropout %v: BPE dropout (random merges) is not supported; set it to null", *dropout)
	}
	unk, err := o.str("unk_token", "")
	if err != nil {
		return nil, err
	}
	if m.prefix, err = o.str("continuing_subword_prefix", ""); err != nil {
		return nil, err
	}
	if m.suffix, err = o.str("end_of_word_suffix", ""); err != nil {
		return nil, err
	}
	if m.fuseUnk, err = o.boolean("fuse_unk", false); err != nil {
		return nil, err
	}
	if m.byteFallback, err = o.boolean("byte_fallback", false); err != nil {
		return nil, err
	}
	if m.ignoreMerges, err = o.boolean("ignore_merges", false); err != nil {
		return nil, err
	}
	if !o.has("vocab") {
		return nil, o.errorf("no \"vocab\"")
	}
	if err := o.decode("vocab", &m.vocab); err != nil {
		return nil, err
	}
	pairs, err := parseMerges(o)
	if err != nil {
		return nil, err
	}
	if err := m.build(unk, pairs); err != nil {
		return nil, o.errorf("%v", err)
	}
	return m, o.done()
}

// parseMerges reads "merges": a list of "a b" strings (the older form) or
// of ["a", "b"] pairs.
func parseMerges(o *object) ([][2]string, error) {
	o.used["merges"] = true
	raw := bytes.TrimSpace(o.m["merges"])
	if isNull(raw) {
		return nil, nil
	}
	if len(raw) > 1 && raw[0] == '[' && bytes.TrimSpace(raw[1:])[0] == '"' {
		var ss []string
		if err := json.Unmarshal(raw, &ss); err != nil {
			return nil, o.errorf("merges: want a list of \"a b\" strings or of [\"a\", \"b\"] pairs: %v", err)
		}
		pairs := make([][2]string, len(ss))
		for i, s := range ss {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, o.errorf("merges[%d]: %q is not two tokens separated by one space", i, s)
			}
			pairs[i] = [2]string{a, b}
		}
		return pairs, nil
	}
	var ls [][]string
	if err := json.Unmarshal(raw, &ls); err != nil {
		return nil, o.errorf("merges: want a list of \"a b\" strings or of [\"a\", \"b\"] pairs: %v", err)
	}
	pairs := make([][2]string, len(ls))
	for i, l := range ls {
		if len(l) != 2 {
			return nil, o.errorf("merges[%d]: %q is not a pair", i, l)
		}
		pairs[i] = [2]string{l[0], l[1]}
	}
	return pairs, nil
}

// build checks the vocabulary and merges and fills the lookup tables.
func (m *bpe) build(unk string, pairs [][2]string) error {
	maxID := -1
	for tok, id := range m.vocab {
		if id < 0 {
			return fmt.Errorf("vocab: token %q has negative id %d", tok, id)
		}
		maxID = max(maxID, id)
	}
	if maxID >= 1<<31-1 {
		return fmt.Errorf("vocab: id %d is too large", maxID)
	}
	m.tokens = make([]string, maxID+1)
	seen := make([]bool, maxID+1)
	for tok, id := range m.vocab {
		if seen[id] {
			return fmt.Errorf("vocab: id %d is given to both %q and %q", id, m.tokens[id], tok)
		}
		seen[id], m.tokens[id] = true, tok
	}
	if unk != "" {
		id, ok := m.vocab[unk]
		if !ok {
			return fmt.Errorf("unk_token %q is not in the vocabulary", unk)
		}
		m.unk = id
	}
	if m.byteFallback {
		for b := range 256 {
			id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]
			if !ok {
				return fmt.Errorf("byte_fallback is set but the vocabulary has no token <0x%02X>", b)
			}
			m.byteIDs[b] = int32(id)
		}
	}
	m.merges = make(map[[2]int32]mergeInfo, len(pairs))
	for rank, p := range pairs {
		a, okA := m.vocab[p[0]]
		b, okB := m.vocab[p[1]]
		merged := p[0] + p[1]
		if m.prefix != "" {
			if !strings.HasPrefix(p[1], m.prefix) {
				return fmt.Errorf("merges[%d] %q %q: the second token lacks the continuing_subword_prefix %q", rank, p[0], p[1], m.prefix)
			}
			merged = p[0] + p[1][len(m.prefix):]
		}
		id, okM := m.vocab[merged]
		switch {
		case !okA:
			return fmt.Errorf("merges[%d] %q %q: %q is not in the vocabulary", rank, p[0], p[1], p[0])
		case !okB:
			return fmt.Errorf("merges[%d] %q %q: %q is not in the vocabulary", rank, p[0], p[1], p[1])
		case !okM:
			return fmt.Errorf("merges[%d] %q %q: the merged token %q is not in the vocabulary", rank, p[0], p[1], merged)
		}
		// A pair listed twice keeps its later rank, as in Hugging Face's map.
		m.merges[[2]int32{int32(a), int32(b)}] = mergeInfo{int32(rank), int32(id)}
	}
	return nil
}

// encodeWord appends the tokens of word (a non-empty pre-tokenized word) to
// out, with byte ranges relative to the word.
func (m *bpe) encodeWord(word string, out []piece) []piece {
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return append(out, piece{int32(id), 0, int32(len(word))})
		}
	}
	cacheable := len(word) < maxCachedWord
	if cacheable {
		m.cacheMu.RLock()
		hit, ok := m.cache[word]
		m.cacheMu.RUnlock()
		if ok {
			return append(out, hit...)
		}
	}
	start := len(out)
	out = m.merge(word, out)
	if cacheable {
		m.cacheMu.Lock()
		if len(m.cache) < maxCache {
			m.cache[word] = append([]piece(nil), out[start:]...)
		}
		m.cacheMu.Unlock()
	}
	return out
}

// symbol is one symbol of a word being merged: a doubly linked list over
// the word's characters; a merged-away symbol has len 0.
type symbol struct {
	id         int32
	lo, len    int32
	prev, next int32
}

// merge runs the BPE merges on word (see bpe).
func (m *bpe) merge(word string, out []piece) []piece {
	syms := make([]symbol, 0, len(word))
	unkStart, unkEnd := -1, -1 // a pending unk covering [unkStart, unkEnd)
	add := func(id int32, lo, n int) {
		syms = append(syms, symbol{id: id, lo: int32(lo), len: int32(n), prev: int32(len(syms) - 1), next: -1})
	}
	flushUnk := func() {
		if unkStart >= 0 {
			add(int32(m.unk), unkStart, unkEnd-unkStart)
			unkStart = -1
		}
	}
	for i := 0; i < len(word); {
		_, w := utf8.DecodeRuneInString(word[i:])
		s := word[i : i+w]
		if i > 0 && m.prefix != "" {
			s = m.prefix + s
		}
		if i+w == len(word) && m.suffix != "" {
			s += m.suffix
		}
		if id, ok := m.vocab[s]; ok {
			flushUnk()
			add(int32(id), i, w)
		} else if m.byteFallback {
			flushUnk()
			for k := range w {
				add(m.byteIDs[word[i+k]], i+k, 1)
			}
		} else if m.unk >= 0 {
			if unkStart >= 0 && m.fuseUnk {
				unkEnd = i + w
			} else {
				flushUnk()
				unkStart, unkEnd = i, i+w
			}
		}
		// else: the character is dropped, as Hugging Face drops it; Load
		// refuses tokenizers where this can happen (see checkTotal).
		i += w
	}
	flushUnk()
	for k := range syms {
		if k+1 < len(syms) {
			syms[k].next = int32(k + 1)
		}
	}

	var q mergeQueue
	for k := 0; k+1 < len(syms); k++ {
		if mi, ok := m.merges[[2]int32{syms[k].id, syms[k+1].id}]; ok {
			q = append(q, mergeItem{pos: int32(k), rank: mi.rank, id: mi.id})
		}
	}
	heap.Init(&q)
	for q.Len() > 0 {
		top := heap.Pop(&q).(mergeItem)
		cur := &syms[top.pos]
		if cur.len == 0 || cur.next < 0 {
			continue
		}
		right := syms[cur.next]
		if mi, ok := m.merges[[2]int32{cur.id, right.id}]; !ok || mi.id != top.id {
			continue // stale: one side has changed since this pair was queued
		}
		cur.id = top.id
		cur.len += right.len
		syms[cur.next].len = 0
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if mi, ok := m.merges[[2]int32{syms[cur.prev].id, cur.id}]; ok {
				heap.Push(&q, mergeItem{pos: cur.prev, rank: mi.rank, id: mi.id})
			}
		}
		if cur.next >= 0 {
			if mi, ok := m.merges[[2]int32{cur.id, syms[cur.next].id}]; ok {
				heap.Push(&q, mergeItem{pos: top.pos, rank: mi.rank, id: mi.id})
			}
		}
	}
	for _, s := range syms {
		if s.len > 0 {
			out = append(out, piece{s.id, s.lo, s.lo + s.len})
		}
	}
	return out
}

// mergeItem is a candidate merge of the symbol at pos with the next one.
type mergeItem struct {
	pos, rank, id int32
}

// mergeQueue is a min-heap on (rank, pos).
type mergeQueue []mergeItem

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(mergeItem)) }
func (q *mergeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
