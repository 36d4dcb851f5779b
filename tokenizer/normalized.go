package tokenizer

import "unicode/utf8"

// nstr is a piece of text on its way through the pipeline together with its
// alignment: byte i of s came from bytes [lo[i], hi[i]) of the text given to
// Encode. Normalizers and pre-tokenizers build new nstrs from old ones, so a
// token's offsets in the input are known however the text was rewritten
// (the role of NormalizedString in Hugging Face's library).
type nstr struct {
	s      string
	lo, hi []int
}

// newNstr returns s, starting at byte base of the input, each byte aligned
// to the character it belongs to (as Hugging Face aligns them). Bytes that
// are not valid UTF-8 are read as U+FFFD, one for each maximal ill-formed
// sequence (see lossyUTF8), aligned to the bytes it replaces.
func newNstr(s string, base int) nstr {
	if !utf8.ValidString(s) {
		b := newBuilder(len(s) + 8)
		for i := 0; i < len(s); {
			n, ok := utf8Seq([]byte(s[i:min(len(s), i+4)]))
			if ok {
				b.emit(s[i:i+n], base+i, base+i+n)
			} else {
				b.emit("\uFFFD", base+i, base+i+n)
			}
			i += n
		}
		return b.nstr()
	}
	n := nstr{s: s, lo: make([]int, len(s)), hi: make([]int, len(s))}
	for i := 0; i < len(s); {
		_, w := utf8.DecodeRuneInString(s[i:])
		for k := i; k < i+w; k++ {
			n.lo[k], n.hi[k] = base+i, base+i+w
		}
		i += w
	}
	return n
}

// slice returns bytes [i, j) of n with their alignment.
func (n nstr) slice(i, j int) nstr {
	return nstr{s: n.s[i:j], lo: n.lo[i:j], hi: n.hi[i:j]}
}

// span is the input range that bytes [i, j) of n came from. An empty range
// (an insertion point) is the empty input range at the byte before it, or
// after the byte at i when there is none before.
func (n nstr) span(i, j int) (int, int) {
	switch {
	case j > i:
		return n.lo[i], n.hi[j-1]
	case i > 0:
		return n.hi[i-1], n.hi[i-1]
	case len(n.s) > 0:
		return n.lo[0], n.lo[0]
	}
	return 0, 0
}

// start is the input offset n begins at (0 for an empty n).
func (n nstr) start() int {
	if len(n.s) == 0 {
		return 0
	}
	return n.lo[0]
}

// nbuilder assembles a new nstr.
type nbuilder struct {
	b      []byte
	lo, hi []int
}

func newBuilder(capacity int) *nbuilder {
	return &nbuilder{b: make([]byte, 0, capacity), lo: make([]int, 0, capacity), hi: make([]int, 0, capacity)}
}

// copy appends bytes [i, j) of n with their own alignment.
func (b *nbuilder) copy(n nstr, i, j int) {
	b.b = append(b.b, n.s[i:j]...)
	b.lo = append(b.lo, n.lo[i:j]...)
	b.hi = append(b.hi, n.hi[i:j]...)
}

// emit appends s, every byte of it aligned to input range [lo, hi).
func (b *nbuilder) emit(s string, lo, hi int) {
	b.b = append(b.b, s...)
	for range len(s) {
		b.lo = append(b.lo, lo)
		b.hi = append(b.hi, hi)
	}
}

func (b *nbuilder) nstr() nstr { return nstr{s: string(b.b), lo: b.lo, hi: b.hi} }

// prepend returns n with p in front, p aligned to n's first character (as
// Hugging Face's NormalizedString.prepend does). n must not be empty.
func (n nstr) prepend(p string) nstr {
	_, w := utf8.DecodeRuneInString(n.s)
	lo, hi := n.span(0, w)
	b := newBuilder(len(p) + len(n.s))
	b.emit(p, lo, hi)
	b.copy(n, 0, len(n.s))
	return b.nstr()
}

// replaceAll returns n with each byte range in matches (sorted, disjoint)
// replaced by with, aligned to the range it replaces.
func (n nstr) replaceAll(matches [][2]int, with string) nstr {
	if len(matches) == 0 {
		return n
	}
	b := newBuilder(len(n.s) + len(matches)*len(with))
	prev := 0
	for _, m := range matches {
		b.copy(n, prev, m[0])
		lo, hi := n.span(m[0], m[1])
		b.emit(with, lo, hi)
		prev = m[1]
	}
	b.copy(n, prev, len(n.s))
	return b.nstr()
}
