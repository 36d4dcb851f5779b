package gpt

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// endOfText is the text of the special token that separates documents.
const endOfText = "<|endoftext|>"

// delByte (U+007F) and its stand-in delStandIn (U+0001); see encodeSegment.
const (
	delByte    = 0x7f
	delStandIn = 0x01
)

// replacementChar is what Decode writes for an id that stands for no token (U+FFFD).
const replacementChar = "\uFFFD"

// Sizes of the two vocabularies.
const (
	byteEOT   = 256   // bytes: ids 0..255 are the bytes themselves, 256 is <|endoftext|>
	gpt2EOT   = 50256 // gpt2: ids 0..50255 are BPE tokens, 50256 is <|endoftext|>
	byteVocab = byteEOT + 1
	gpt2Vocab = gpt2EOT + 1
)

// Tokenizer turns text into token ids and back.
//
// Every Tokenizer encodes the literal text "<|endoftext|>" as the single id
// EOT(), wherever it appears, and decodes EOT() back to that text. Decode never
// fails: an id outside [0, VocabSize()) decodes to U+FFFD. Decode returns the
// bytes the ids stand for, so Decode(Encode(text)) == text for valid UTF-8
// text, and decoding ids one at a time and concatenating gives the same bytes
// as decoding them all at once (a multi-byte character split over several
// tokens is whole again once its last token is appended).
//
// Tokenizers hold no mutable state after construction; one value may be used
// from several goroutines at once.
type Tokenizer interface {
	Name() string             // "bytes" or "gpt2"; recorded in model folders
	Encode(text string) []int // text → ids, each in [0, VocabSize())
	Decode(ids []int) string  // ids → text; U+FFFD for an id outside [0, VocabSize())
	VocabSize() int           // bytes: 257 (256 bytes + <|endoftext|>); gpt2: 50257
	EOT() int                 // id of <|endoftext|>: 256 for bytes, 50256 for gpt2
}

// CheckedEncoder is a Tokenizer whose codec can fail: EncodeChecked returns
// the codec's error, which Encode, having no error result, cannot. The
// gpt2 tokenizer and the file tokenizers are CheckedEncoders; the bytes
// tokenizer cannot fail and is not.
type CheckedEncoder interface {
	Tokenizer
	EncodeChecked(text string) ([]int, error)
}

// EncodeText encodes text with t and returns the codec's error, if t's
// codec can fail (see CheckedEncoder), rather than losing it. Library code
// and programs that encode text they did not write use EncodeText.
//
// Encode of a CheckedEncoder whose codec fails returns nil: no ids, never
// a silent substitute encoding and never a panic.
func EncodeText(t Tokenizer, text string) ([]int, error) {
	if t == nil {
		return nil, errors.New("gpt: encode: nil tokenizer")
	}
	if c, ok := t.(CheckedEncoder); ok {
		return c.EncodeChecked(text)
	}
	return t.Encode(text), nil
}

// NewTokenizer returns the tokenizer called name: "bytes" (ByteTokenizer) or
// "gpt2" (GPT2Tokenizer). Any other name is an error that quotes it.
func NewTokenizer(name string) (Tokenizer, error) {
	switch name {
	case "bytes":
		return ByteTokenizer(), nil
	case "gpt2":
		return GPT2Tokenizer()
	case TokenizerHF:
		return nil, fmt.Errorf("gpt: tokenizer %q is the Hugging Face files of a model folder: use LoadTokenizer(dir) or Model.Tokenizer", name)
	default:
		return nil, fmt.Errorf("gpt: unknown tokenizer %q (want \"bytes\" or \"gpt2\")", name)
	}
}

// splitEOT encodes text into ids (appending to ids): each occurrence of
// "<|endoftext|>" becomes eot and the text between occurrences is encoded by
// segment, so no token ever spans a document boundary.
func splitEOT(ids []int, text string, eot int, segment func(ids []int, s string) []int) []int {
	ids, _ = splitEOTChecked(ids, text, eot, func(ids []int, s string) ([]int, error) { return segment(ids, s), nil })
	return ids
}

// splitEOTChecked is splitEOT with a segment encoder that can fail.
func splitEOTChecked(ids []int, text string, eot int, segment func(ids []int, s string) ([]int, error)) ([]int, error) {
	for {
		i := strings.Index(text, endOfText)
		if i < 0 {
			return segment(ids, text)
		}
		var err error
		if ids, err = segment(ids, text[:i]); err != nil {
			return nil, err
		}
		ids = append(ids, eot)
		text = text[i+len(endOfText):]
	}
}

// byteTokenizer is the "bytes" tokenizer: one id per UTF-8 byte.
type byteTokenizer struct{}

// ByteTokenizer returns the "bytes" tokenizer: each byte of the text is its own
// id (0..255) and the text "<|endoftext|>" is id 256, so VocabSize is 257. It
// needs no vocabulary and round-trips any string, including invalid UTF-8:
// Decode(Encode(s)) == s for every s. Ids outside [0, 257) decode to U+FFFD.
func ByteTokenizer() Tokenizer { return byteTokenizer{} }

// Name returns "bytes".
func (byteTokenizer) Name() string { return "bytes" }

// VocabSize returns 257: 256 byte values and <|endoftext|>.
func (byteTokenizer) VocabSize() int { return byteVocab }

// EOT returns 256, the id of <|endoftext|>.
func (byteTokenizer) EOT() int { return byteEOT }

// Encode returns one id per byte of text, with "<|endoftext|>" as 256.
func (byteTokenizer) Encode(text string) []int {
	ids := make([]int, 0, len(text))
	return splitEOT(ids, text, byteEOT, func(ids []int, s string) []int {
		for i := 0; i < len(s); i++ {
			ids = append(ids, int(s[i]))
		}
		return ids
	})
}

// Decode returns the bytes the ids stand for: id b < 256 is byte b, 256 is
// "<|endoftext|>" and any other id is U+FFFD.
func (byteTokenizer) Decode(ids []int) string {
	var sb strings.Builder
	sb.Grow(len(ids))
	for _, id := range ids {
		switch {
		case id >= 0 && id < byteEOT:
			sb.WriteByte(byte(id))
		case id == byteEOT:
			sb.WriteString(endOfText)
		default:
			sb.WriteString(replacementChar)
		}
	}
	return sb.String()
}

// gpt2Tokenizer is GPT-2's byte-level BPE (r50k_base).
type gpt2Tokenizer struct {
	codec tokenizer.Codec // r50k_base; only Encode is called, its error mode is never changed
	// pieces holds the bytes of every BPE token back to back: token id's
	// bytes are pieces[offsets[id]:offsets[id+1]], for id in [0, 50256).
	pieces  string
	offsets []int32
	byteIDs [256]int32 // the id of the token made of byte b alone
}

// GPT2Tokenizer returns GPT-2's tokenizer: byte-level BPE with the r50k_base
// vocabulary (50,000 merges over 256 byte tokens, then <|endoftext|> = 50256),
// the same ids as GPT-2's own encoder. The vocabulary is compiled into the
// binary (github.com/tiktoken-go/tokenizer), so nothing is downloaded.
// Building one takes tens of milliseconds; build it once and share it.
//
// Encode:
//
//   - "<|endoftext|>" in the text is the special token 50256, never the seven
//     tokens its characters would otherwise give. This is what Hugging Face's
//     GPT-2 tokenizers do (it is an added, unsplittable token) and what GPT-2
//     training pipelines need to mark document boundaries; OpenAI's original
//     encoder.py had no special tokens and tiktoken refuses the text unless it
//     is allowed. The text between two markers is encoded on its own, exactly
//     as GPT-2 would encode it: the marker's neighbouring spaces stay in the
//     neighbouring text.
//   - Text that is not valid UTF-8 has each run of invalid bytes replaced by
//     U+FFFD first (Go's strings.ToValidUTF8 rule), as GPT-2 encodes text, not
//     bytes.
//   - U+007F (DEL), which tiktoken-go v0.10.0 silently drops, is encoded as
//     GPT-2 encodes it (token 221).
//
// Decode returns the raw bytes of the tokens (see Tokenizer); 50256 decodes to
// "<|endoftext|>" and an id outside [0, 50257) to U+FFFD.
func GPT2Tokenizer() (Tokenizer, error) {
	// The library's codec keeps no per-call state: its vocabulary is a
	// read-only map shared by all codecs (built once behind a sync.Once), its
	// regexp2 matcher takes a runner from a sync.Pool per match and has no
	// match timeout, and the error mode (left at ErrorModeNone) is only read.
	// So one codec is safe for concurrent Encode calls.
	c, err := tokenizer.Get(tokenizer.R50kBase)
	if err != nil {
		return nil, fmt.Errorf("gpt: gpt2 tokenizer: %w", err)
	}
	t := &gpt2Tokenizer{codec: c, offsets: make([]int32, gpt2EOT+1)}
	// The codec's Decode errors on an unknown id (including 50256, which it
	// has no entry for), so Decode uses this table of the token bytes instead.
	var sb strings.Builder
	for id := range gpt2EOT {
		piece, err := c.Decode([]uint{uint(id)})
		if err != nil {
			return nil, fmt.Errorf("gpt: gpt2 tokenizer: vocabulary token %d: %w", id, err)
		}
		sb.WriteString(piece)
		t.offsets[id+1] = int32(sb.Len())
	}
	t.pieces = sb.String()
	// Every byte has a token of its own, and neither DEL nor its stand-in is
	// part of a longer token (encodeSegment relies on it).
	var seen [256]bool
	for id := range gpt2EOT {
		piece := t.piece(id)
		if len(piece) == 1 {
			b := piece[0]
			if seen[b] {
				return nil, fmt.Errorf("gpt: gpt2 tokenizer: byte %#x has two tokens", b)
			}
			seen[b], t.byteIDs[b] = true, int32(id)
		} else if strings.IndexByte(piece, delByte) >= 0 || strings.IndexByte(piece, delStandIn) >= 0 {
			return nil, fmt.Errorf("gpt: gpt2 tokenizer: token %d %q holds byte %#x or %#x", id, piece, delByte, delStandIn)
		}
	}
	for b, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("gpt: gpt2 tokenizer: byte %#x has no token", b)
		}
	}
	return t, nil
}

// Name returns "gpt2".
func (t *gpt2Tokenizer) Name() string { return "gpt2" }

// VocabSize returns 50257: 50256 BPE tokens and <|endoftext|>.
func (t *gpt2Tokenizer) VocabSize() int { return gpt2Vocab }

// EOT returns 50256, the id of <|endoftext|>.
func (t *gpt2Tokenizer) EOT() int { return gpt2EOT }

// Encode returns GPT-2's token ids for text; see GPT2Tokenizer for how
// "<|endoftext|>" and invalid UTF-8 are treated. It returns nil if the codec
// fails (see EncodeChecked).
func (t *gpt2Tokenizer) Encode(text string) []int {
	ids, err := t.EncodeChecked(text)
	if err != nil {
		return nil
	}
	return ids
}

// EncodeChecked is Encode with the codec's error. The codec's only errors
// are regexp2 match timeouts and backtracking stack overflows (and invalid
// UTF-8 in strict mode, which is not set). There is no timeout, and the
// generated matcher for GPT-2's pattern keeps no backtracking stack (every
// loop backtracks by position), so none is expected; were one to happen it
// is returned, not hidden behind a different encoding.
func (t *gpt2Tokenizer) EncodeChecked(text string) ([]int, error) {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, replacementChar)
	}
	ids := make([]int, 0, len(text)/4+1) // English averages about 4 bytes a token
	return splitEOTChecked(ids, text, gpt2EOT, t.encodeSegment)
}

// encodeSegment appends the BPE ids of s, which holds no "<|endoftext|>".
//
// tiktoken-go v0.10.0 drops every U+007F (DEL) from its input: the ASCII
// bitmap of its generated pre-tokenizer leaves DEL out of [^\s\p{L}\p{N}],
// so no alternative of GPT-2's pattern matches it and the character is
// skipped. GPT-2 encodes DEL as its byte token, and no longer token contains
// it. So DEL is swapped for a stand-in byte of the same pattern class (not
// space, letter or digit) that no longer token contains either: both always
// come out as one token each, in text order, and the stand-in tokens that
// were DELs are turned back.
func (t *gpt2Tokenizer) encodeSegment(ids []int, s string) ([]int, error) {
	if strings.IndexByte(s, delByte) < 0 {
		return t.encodeBPE(ids, s)
	}
	b := []byte(s)
	var wasDEL []bool // one entry per stand-in byte of b, in order
	for i, c := range b {
		switch c {
		case delStandIn:
			wasDEL = append(wasDEL, false)
		case delByte:
			b[i] = delStandIn
			wasDEL = append(wasDEL, true)
		}
	}
	start := len(ids)
	ids, err := t.encodeBPE(ids, string(b))
	if err != nil {
		return nil, err
	}
	k := 0
	for i := start; i < len(ids); i++ {
		if ids[i] == int(t.byteIDs[delStandIn]) && k < len(wasDEL) {
			if wasDEL[k] {
				ids[i] = int(t.byteIDs[delByte])
			}
			k++
		}
	}
	return ids, nil
}

// encodeBPE appends the ids the codec gives for s.
func (t *gpt2Tokenizer) encodeBPE(ids []int, s string) ([]int, error) {
	if s == "" {
		return ids, nil
	}
	got, _, err := t.codec.Encode(s)
	if err != nil {
		return nil, fmt.Errorf("gpt: gpt2 tokenizer: encode %d bytes: %w", len(s), err)
	}
	for _, id := range got {
		ids = append(ids, int(id))
	}
	return ids, nil
}

// piece returns the bytes of BPE token id, 0 <= id < 50256.
func (t *gpt2Tokenizer) piece(id int) string { return t.pieces[t.offsets[id]:t.offsets[id+1]] }

// Decode returns the bytes of the tokens ids, 50256 as "<|endoftext|>" and
// U+FFFD for any id outside [0, 50257).
func (t *gpt2Tokenizer) Decode(ids []int) string {
	var sb strings.Builder
	sb.Grow(4 * len(ids))
	for _, id := range ids {
		switch {
		case id >= 0 && id < gpt2EOT:
			sb.WriteString(t.piece(id))
		case id == gpt2EOT:
			sb.WriteString(endOfText)
		default:
			sb.WriteString(replacementChar)
		}
	}
	return sb.String()
}
