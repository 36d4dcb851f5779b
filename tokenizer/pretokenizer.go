package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// A preTokenizer cuts a normalized piece into words (and may rewrite
// them); the model then encodes each word on its own. Empty words are
// dropped.
type preTokenizer interface {
	apply(n nstr, out []nstr) ([]nstr, error)
}

// gpt2Pattern is GPT-2's word pattern, the regex of the ByteLevel
// pre-tokenizer: contractions, letters, numbers and other symbols (each
// after at most one space), then runs of white space, the last space of a
// run left to start the next word.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

func parsePreTokenizer(o *object) (preTokenizer, error) {
	if o == nil {
		return nil, nil
	}
	t, err := o.typ()
	if err != nil {
		return nil, err
	}
	var p preTokenizer
	switch t {
	case "Split":
		var s splitPre
		if s.p, err = compilePattern(o, "pattern"); err != nil {
			return nil, err
		}
		b, err := o.str("behavior", "")
		if err != nil {
			return nil, err
		}
		if s.behavior, err = parseBehavior(o, b); err != nil {
			return nil, err
		}
		if s.invert, err = o.boolean("invert", false); err != nil {
			return nil, err
		}
		p = s
	case "ByteLevel":
		var b byteLevelPre
		if b.addPrefixSpace, err = o.boolean("add_prefix_space", true); err != nil {
			return nil, err
		}
		useRegex, err := o.boolean("use_regex", true)
		if err != nil {
			return nil, err
		}
		if useRegex {
			if b.re, err = compileRegex(gpt2Pattern); err != nil {
				return nil, o.errorf("GPT-2 pattern: %v", err)
			}
		}
		o.ignore("trim_offsets") // offsets only: the post-processor's trim_offsets is the one applied
		p = b
	case "Digits":
		var d digitsPre
		if d.individual, err = o.boolean("individual_digits", false); err != nil {
			return nil, err
		}
		p = d
	case "Metaspace":
		m, err := parseMetaspace(o)
		if err != nil {
			return nil, err
		}
		p = m
	case "Sequence":
		seq, err := objectList(o, "pretokenizers", parsePreTokenizer)
		if err != nil {
			return nil, err
		}
		p = seqPre(seq)
	default:
		return nil, unsupported(o, "pre-tokenizer", t, "Split", "ByteLevel", "Digits", "Metaspace", "Sequence")
	}
	return p, o.done()
}

// behavior is what Split does with the pieces its pattern matches.
type behavior int

const (
	removed            behavior = iota // matches are dropped
	isolated                           // each match is a word of its own
	mergedWithPrevious                 // a match joins the word before it
	mergedWithNext                     // a match joins the word after it
	contiguous                         // adjacent matches form one word
)

func parseBehavior(o *object, s string) (behavior, error) {
	switch s {
	case "Removed":
		return removed, nil
	case "Isolated":
		return isolated, nil
	case "MergedWithPrevious":
		return mergedWithPrevious, nil
	case "MergedWithNext":
		return mergedWithNext, nil
	case "Contiguous":
		return contiguous, nil
	}
	return 0, o.errorf("behavior %q: want Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous", s)
}

// splitBy cuts n at the ranges (covering all of n) as b says and appends
// the non-empty pieces to out.
func splitBy(n nstr, ranges []splitRange, b behavior, out []nstr) []nstr {
	type piece struct {
		lo, hi int
		drop   bool
	}
	var ps []piece
	switch b {
	case removed:
		for _, r := range ranges {
			ps = append(ps, piece{r.lo, r.hi, r.match})
		}
	case isolated:
		for _, r := range ranges {
			ps = append(ps, piece{r.lo, r.hi, false})
		}
	case contiguous:
		prevMatch := false
		for _, r := range ranges {
			if r.match == prevMatch && len(ps) > 0 {
				ps[len(ps)-1].hi = r.hi
			} else {
				ps = append(ps, piece{r.lo, r.hi, false})
			}
			prevMatch = r.match
		}
	case mergedWithPrevious:
		prevMatch := false
		for _, r := range ranges {
			if r.match && !prevMatch && len(ps) > 0 {
				ps[len(ps)-1].hi = r.hi
			} else {
				ps = append(ps, piece{r.lo, r.hi, false})
			}
			prevMatch = r.match
		}
	case mergedWithNext:
		prevMatch := false
		for i := len(ranges) - 1; i >= 0; i-- {
			r := ranges[i]
			if r.match && !prevMatch && len(ps) > 0 {
				ps[len(ps)-1].lo = r.lo
			} else {
				ps = append(ps, piece{r.lo, r.hi, false})
			}
			prevMatch = r.match
		}
		for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
			ps[i], ps[j] = ps[j], ps[i]
		}
	}
	for _, p := range ps {
		if !p.drop && p.hi > p.lo {
			out = append(out, n.slice(p.lo, p.hi))
		}
	}
	return out
}

// splitPre is the Split pre-tokenizer.
type splitPre struct {
	p        *pattern
	behavior behavior
	invert   bool
}

func (s splitPre) apply(n nstr, out []nstr) ([]nstr, error) {
	m, err := s.p.find(n.s)
	if err != nil {
		return out, err
	}
	ranges := cover(m, len(n.s))
	if s.invert {
		for i := range ranges {
			ranges[i].match = !ranges[i].match
		}
	}
	return splitBy(n, ranges, s.behavior, out), nil
}

// byteLevelPre is the ByteLevel pre-tokenizer: an optional space in front
// of each piece, an optional split by GPT-2's pattern, then every byte
// written as its printable stand-in character (see byteChars).
type byteLevelPre struct {
	addPrefixSpace bool
	re             *regexp2.Regexp // nil: no split
}

func (b byteLevelPre) apply(n nstr, out []nstr) ([]nstr, error) {
	if b.addPrefixSpace && n.s != "" && n.s[0] != ' ' {
		n = n.prepend(" ")
	}
	start := len(out)
	if b.re != nil {
		m, err := findRegex(b.re, n.s)
		if err != nil {
			return out, err
		}
		out = splitBy(n, cover(m, len(n.s)), isolated, out)
	} else if n.s != "" {
		out = append(out, n)
	}
	for i := start; i < len(out); i++ {
		out[i] = toByteChars(out[i])
	}
	return out, nil
}

// toByteChars writes each byte of n as its stand-in character, aligned to
// that byte's input range.
func toByteChars(n nstr) nstr {
	b := newBuilder(2 * len(n.s))
	for i := 0; i < len(n.s); i++ {
		b.emit(byteChars[n.s[i]], n.lo[i], n.hi[i])
	}
	return b.nstr()
}

// digitsPre is the Digits pre-tokenizer: numeric characters (Unicode N,
// Rust's char::is_numeric) form words of their own, one each when
// individual is set, else one per run.
type digitsPre struct{ individual bool }

func (d digitsPre) apply(n nstr, out []nstr) ([]nstr, error) {
	var ranges []splitRange
	last := 0
	for i, r := range n.s {
		if unicode.IsNumber(r) {
			if last < i {
				ranges = append(ranges, splitRange{last, i, false})
			}
			w := utf8.RuneLen(r)
			ranges = append(ranges, splitRange{i, i + w, true})
			last = i + w
		}
	}
	if last < len(n.s) {
		ranges = append(ranges, splitRange{last, len(n.s), false})
	}
	b := contiguous
	if d.individual {
		b = isolated
	}
	return splitBy(n, ranges, b, out), nil
}

// prependScheme says when Metaspace puts a replacement in front of a piece.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst                // only for the piece that starts the input
	prependNever
)

// metaspace is the Metaspace pre-tokenizer (SentencePiece's ▁): spaces
// become the replacement character, one is put in front as the scheme
// says, and with split the text is cut before each replacement.
type metaspace struct {
	replacement string
	scheme      prependScheme
	split       bool
}

func parseMetaspace(o *object) (metaspace, error) {
	var m metaspace
	r, err := o.str("replacement", "")
	if err != nil {
		return m, err
	}
	if utf8.RuneCountInString(r) != 1 {
		return m, o.errorf("replacement %q: want one character", r)
	}
	m.replacement = r
	scheme, err := o.str("prepend_scheme", "always")
	if err != nil {
		return m, err
	}
	switch scheme {
	case "always":
		m.scheme = prependAlways
	case "first":
		m.scheme = prependFirst
	case "never":
		m.scheme = prependNever
	default:
		return m, o.errorf("prepend_scheme %q: want always, first or never", scheme)
	}
	if o.has("add_prefix_space") { // the older setting
		add, err := o.boolean("add_prefix_space", true)
		if err != nil {
			return m, err
		}
		if !add {
			if m.scheme != prependNever && o.has("prepend_scheme") {
				return m, o.errorf("add_prefix_space false contradicts prepend_scheme %q", scheme)
			}
			m.scheme = prependNever
		}
	}
	o.ignore("add_prefix_space", "str_rep")
	if m.split, err = o.boolean("split", true); err != nil {
		return m, err
	}
	return m, nil
}

func (m metaspace) apply(n nstr, out []nstr) ([]nstr, error) {
	var spaces [][2]int
	for i := 0; i < len(n.s); i++ {
		if n.s[i] == ' ' {
			spaces = append(spaces, [2]int{i, i + 1})
		}
	}
	n = n.replaceAll(spaces, m.replacement)
	if n.s != "" && !strings.HasPrefix(n.s, m.replacement) &&
		(m.scheme == prependAlways || (m.scheme == prependFirst && n.start() == 0)) {
		n = n.prepend(m.replacement)
	}
	if !m.split {
		if n.s != "" {
			out = append(out, n)
		}
		return out, nil
	}
	var matches [][2]int
	for i := 0; ; {
		j := strings.Index(n.s[i:], m.replacement)
		if j < 0 {
			break
		}
		matches = append(matches, [2]int{i + j, i + j + len(m.replacement)})
		i += j + len(m.replacement)
	}
	return splitBy(n, cover(matches, len(n.s)), mergedWithNext, out), nil
}

// seqPre applies pre-tokenizers in order, each to every word of the last.
type seqPre []preTokenizer

func (s seqPre) apply(n nstr, out []nstr) ([]nstr, error) {
	words := []nstr{n}
	for _, p := range s {
		var next []nstr
		for _, w := range words {
			var err error
			if next, err = p.apply(w, next); err != nil {
				return out, err
			}
		}
		words = next
	}
	return append(out, words...), nil
}

// byteChars is GPT-2's byte-to-character table: the 188 bytes that are
// printable Latin-1 characters ('!'…'~', '¡'…'¬', '®'…'ÿ') stand for
// themselves and the other 68, in increasing order, for U+0100, U+0101, …
// (so the space byte 0x20 is 'Ġ', U+0120).
var byteChars = func() (t [256]string) {
	next := rune(256)
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = string(rune(b))
		} else {
			t[b] = string(next)
			next++
		}
	}
	return t
}()
