package tokenizer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// A decoder turns token strings back into text, as a chain: each step
// takes the list of strings the last one made (Hugging Face's
// Decoder.decode_chain); Decode joins the final list. With raw set, the
// steps that turn bytes into text (ByteLevel, ByteFallback) keep invalid
// UTF-8 as it is instead of writing U+FFFD.
type decoder interface {
	decode(tokens []string, raw bool) ([]string, error)
}

func parseDecoder(o *object) (decoder, error) {
	if o == nil {
		return nil, nil
	}
	t, err := o.typ()
	if err != nil {
		return nil, err
	}
	var d decoder
	switch t {
	case "ByteLevel":
		o.ignore("add_prefix_space", "trim_offsets", "use_regex") // no effect on decoding
		d = byteLevelDec{}
	case "Metaspace":
		m, err := parseMetaspace(o)
		if err != nil {
			return nil, err
		}
		d = metaspaceDec{m}
	case "Replace":
		p, c, err := parseReplace(o)
		if err != nil {
			return nil, err
		}
		d = replaceDec{p, c}
	case "ByteFallback":
		d = byteFallbackDec{}
	case "Fuse":
		d = fuseDec{}
	case "Strip":
		c, err := o.str("content", "")
		if err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(c) != 1 {
			return nil, o.errorf("content %q: want one character", c)
		}
		s := stripDec{content: c}
		if s.start, err = o.integer("start", 0); err != nil {
			return nil, err
		}
		if s.stop, err = o.integer("stop", 0); err != nil {
			return nil, err
		}
		if s.start < 0 || s.stop < 0 {
			return nil, o.errorf("start %d, stop %d: want ≥ 0", s.start, s.stop)
		}
		d = s
	case "Sequence":
		seq, err := objectList(o, "decoders", parseDecoder)
		if err != nil {
			return nil, err
		}
		d = seqDec(seq)
	default:
		return nil, unsupported(o, "decoder", t, "ByteLevel", "Metaspace", "Replace", "ByteFallback", "Fuse", "Strip", "Sequence")
	}
	return d, o.done()
}

// byteLevelDec maps each stand-in character back to its byte and reads the
// bytes of all tokens as UTF-8 at once; a token with a character outside
// the table (an added token, say) gives its own bytes.
type byteLevelDec struct{}

func (byteLevelDec) decode(tokens []string, raw bool) ([]string, error) {
	var b []byte
	for _, t := range tokens {
		start := len(b)
		ok := true
		for _, r := range t {
			c, in := charByte(r)
			if !in {
				ok = false
				break
			}
			b = append(b, c)
		}
		if !ok {
			b = append(b[:start], t...)
		}
	}
	if raw {
		return []string{string(b)}, nil
	}
	return []string{lossyUTF8(b)}, nil
}

// charByte is the inverse of byteChars.
func charByte(r rune) (byte, bool) {
	switch {
	case r >= '!' && r <= '~', r >= 0xA1 && r <= 0xAC, r >= 0xAE && r <= 0xFF:
		return byte(r), true
	case r >= 0x100 && r < 0x100+68:
		return byteOfStandIn[r-0x100], true
	}
	return 0, false
}

// byteOfStandIn[k] is the byte that U+0100+k stands for.
var byteOfStandIn = func() (t [68]byte) {
	k := 0
	for b := range 256 {
		if r, _ := utf8.DecodeRuneInString(byteChars[b]); r >= 0x100 {
			t[k] = byte(b)
			k++
		}
	}
	return t
}()

// metaspaceDec turns the replacement character back into spaces; in the
// first token it is dropped unless the prepend scheme is never.
type metaspaceDec struct{ m metaspace }

func (d metaspaceDec) decode(tokens []string, raw bool) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		with := " "
		if i == 0 && d.m.scheme != prependNever {
			with = ""
		}
		out[i] = strings.ReplaceAll(t, d.m.replacement, with)
	}
	return out, nil
}

// replaceDec replaces pattern matches in each token.
type replaceDec struct {
	p    *pattern
	with string
}

func (d replaceDec) decode(tokens []string, raw bool) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		m, err := d.p.find(t)
		if err != nil {
			return nil, err
		}
		var sb strings.Builder
		prev := 0
		for _, r := range m {
			sb.WriteString(t[prev:r[0]])
			sb.WriteString(d.with)
			prev = r[1]
		}
		sb.WriteString(t[prev:])
		out[i] = sb.String()
	}
	return out, nil
}

// byteFallbackDec turns runs of <0xNN> tokens into the text their bytes
// spell; a run that is not valid UTF-8 becomes one U+FFFD per byte.
type byteFallbackDec struct{}

func (byteFallbackDec) decode(tokens []string, raw bool) ([]string, error) {
	var out []string
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if raw || utf8.Valid(run) {
			out = append(out, string(run))
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, t := range tokens {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
			if v, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
				run = append(run, byte(v))
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out, nil
}

// fuseDec joins all tokens into one.
type fuseDec struct{}

func (fuseDec) decode(tokens []string, raw bool) ([]string, error) {
	return []string{strings.Join(tokens, "")}, nil
}

// stripDec removes up to start copies of content from the front of each
// token and up to stop from the back.
type stripDec struct {
	content     string
	start, stop int
}

func (d stripDec) decode(tokens []string, raw bool) ([]string, error) {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		for k := 0; k < d.start && strings.HasPrefix(t, d.content); k++ {
			t = t[len(d.content):]
		}
		for k := 0; k < d.stop && strings.HasSuffix(t, d.content); k++ {
			t = t[:len(t)-len(d.content)]
		}
		out[i] = t
	}
	return out, nil
}

// seqDec chains decoders.
type seqDec []decoder

func (s seqDec) decode(tokens []string, raw bool) ([]string, error) {
	var err error
	for _, d := range s {
		if tokens, err = d.decode(tokens, raw); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// lossyUTF8 reads b as UTF-8, writing U+FFFD for each maximal ill-formed
// subsequence (the Unicode Standard's recommendation, which Rust's
// String::from_utf8_lossy and the WHATWG decoder follow).
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		n, ok := utf8Seq(b[i:])
		if ok {
			sb.Write(b[i : i+n])
		} else {
			sb.WriteString("\uFFFD")
		}
		i += n
	}
	return sb.String()
}

// utf8Seq returns the length of the well-formed character at the start of
// b (ok), or of the maximal ill-formed subsequence there (always ≥ 1).
func utf8Seq(b []byte) (int, bool) {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the second byte
	switch {
	case c < 0x80:
		return 1, true
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1, false
	}
	for k := 1; k <= need; k++ {
		if k >= len(b) || b[k] < lo || b[k] > hi {
			return k, false
		}
		lo, hi = 0x80, 0xBF
	}
	return need + 1, true
}
