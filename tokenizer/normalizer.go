package tokenizer

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// A normalizer rewrites a piece of text before pre-tokenization, keeping
// each byte's alignment to the input.
type normalizer interface {
	normalize(n nstr) (nstr, error)
}

// parseNormalizer reads the "normalizer" value (nil for null).
func parseNormalizer(o *object) (normalizer, error) {
	if o == nil {
		return nil, nil
	}
	t, err := o.typ()
	if err != nil {
		return nil, err
	}
	var n normalizer
	switch t {
	case "NFC":
		n = unicodeNorm{norm.NFC}
	case "NFD":
		n = unicodeNorm{norm.NFD}
	case "NFKC":
		n = unicodeNorm{norm.NFKC}
	case "NFKD":
		n = unicodeNorm{norm.NFKD}
	case "Prepend":
		s, err := o.str("prepend", "")
		if err != nil {
			return nil, err
		}
		if !o.has("prepend") {
			return nil, o.errorf("Prepend: no \"prepend\"")
		}
		n = prependNorm{s}
	case "Replace":
		p, c, err := parseReplace(o)
		if err != nil {
			return nil, err
		}
		n = replaceNorm{p, c}
	case "Strip":
		var s stripNorm
		if s.left, err = o.boolean("strip_left", true); err != nil {
			return nil, err
		}
		if s.right, err = o.boolean("strip_right", true); err != nil {
			return nil, err
		}
		n = s
	case "Sequence":
		seq, err := objectList(o, "normalizers", parseNormalizer)
		if err != nil {
			return nil, err
		}
		n = seqNorm(seq)
	default:
		return nil, unsupported(o, "normalizer", t, "NFC", "NFD", "NFKC", "NFKD", "Prepend", "Replace", "Strip", "Sequence")
	}
	return n, o.done()
}

// unicodeNorm is NFC, NFD, NFKC or NFKD (golang.org/x/text/unicode/norm).
// Each normalization segment (a starter and the marks that follow it) that
// changes is aligned as a whole to the input it came from.
type unicodeNorm struct{ form norm.Form }

func (u unicodeNorm) normalize(n nstr) (nstr, error) {
	if u.form.IsNormalString(n.s) {
		return n, nil
	}
	b := newBuilder(len(n.s) + len(n.s)/4)
	var it norm.Iter
	it.InitString(u.form, n.s)
	for prev := 0; !it.Done(); {
		seg := it.Next()
		pos := it.Pos()
		if string(seg) == n.s[prev:pos] {
			b.copy(n, prev, pos)
		} else {
			lo, hi := n.span(prev, pos)
			b.emit(string(seg), lo, hi)
		}
		prev = pos
	}
	return b.nstr(), nil
}

// prependNorm puts its string in front of any non-empty piece.
type prependNorm struct{ s string }

func (p prependNorm) normalize(n nstr) (nstr, error) {
	if n.s == "" {
		return n, nil
	}
	return n.prepend(p.s), nil
}

// replaceNorm replaces every match of a pattern.
type replaceNorm struct {
	p    *pattern
	with string
}

func (r replaceNorm) normalize(n nstr) (nstr, error) {
	m, err := r.p.find(n.s)
	if err != nil {
		return n, err
	}
	return n.replaceAll(m, r.with), nil
}

// stripNorm removes white space (the Unicode White_Space property) at
// either end.
type stripNorm struct{ left, right bool }

func (s stripNorm) normalize(n nstr) (nstr, error) {
	i, j := 0, len(n.s)
	if s.left {
		for i < j {
			r, w := utf8.DecodeRuneInString(n.s[i:])
			if !unicode.Is(unicode.White_Space, r) {
				break
			}
			i += w
		}
	}
	if s.right {
		for j > i {
			r, w := utf8.DecodeLastRuneInString(n.s[i:j])
			if !unicode.Is(unicode.White_Space, r) {
				break
			}
			j -= w
		}
	}
	return n.slice(i, j), nil
}

// seqNorm applies normalizers in order.
type seqNorm []normalizer

func (s seqNorm) normalize(n nstr) (nstr, error) {
	var err error
	for _, c := range s {
		if n, err = c.normalize(n); err != nil {
			return n, err
		}
	}
	return n, nil
}
