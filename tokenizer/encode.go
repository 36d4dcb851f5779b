package tokenizer

import "fmt"

// Encoding is a text's tokens with where they came from.
type Encoding struct {
	IDs    []int
	Tokens []string // each token's string: a vocabulary entry ("Ġworld", "▁the") or an added token's content
	// Offsets[i] is the byte range [start, end) of the input that token i
	// came from. Tokens that share a character (the byte tokens of one
	// emoji, say) share its range; a token the post-processor added has
	// [0, 0].
	Offsets [][2]int
	// Template[i] is true for a token the post-processor added (BOS and
	// the like), false for a token of the text.
	Template []bool
}

// EncodeOptions changes how EncodeWith works; the zero value encodes as
// Hugging Face's tokenizer.encode(text) does.
type EncodeOptions struct {
	// NoTemplate leaves out the special tokens the post-processor puts
	// around the text (Llama's BOS): Hugging Face's
	// add_special_tokens=False. Special tokens written in the text are
	// still matched.
	NoTemplate bool
	// SplitSpecialTokens encodes special tokens written in the text as
	// ordinary text, so that "<|im_end|>" in user input cannot pass for
	// the real token: Hugging Face's split_special_tokens=True. Added
	// tokens that are not special are still matched.
	SplitSpecialTokens bool
}

// Encode returns the token ids of text, as Hugging Face's
// tokenizer.encode(text).ids: added tokens found first and never split,
// then normalizer, pre-tokenizer and model on the text between them, then
// the post-processor's special tokens. Text that is not valid UTF-8 is read
// with U+FFFD for each ill-formed sequence.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	e, err := t.EncodeWith(text, EncodeOptions{})
	if err != nil {
		return nil, err
	}
	return e.IDs, nil
}

// EncodeWith encodes text as Encode does, with options, and returns each
// token's string and offsets too.
func (t *Tokenizer) EncodeWith(text string, o EncodeOptions) (*Encoding, error) {
	n := len(text)/3 + len(t.post.prefix) + len(t.post.suffix) + 1 // about 4 bytes a token
	e := &Encoding{IDs: make([]int, 0, n), Tokens: make([]string, 0, n), Offsets: make([][2]int, 0, n), Template: make([]bool, 0, n)}
	if !o.NoTemplate {
		e.addTemplate(t, t.post.prefix)
	}
	if err := t.encodeText(e, newNstr(text, 0), o.SplitSpecialTokens); err != nil {
		return nil, fmt.Errorf("tokenizer: encode: %w", err)
	}
	t.post.trim(e)
	if !o.NoTemplate {
		e.addTemplate(t, t.post.suffix)
	}
	return e, nil
}

func (e *Encoding) add(id int, tok string, lo, hi int, template bool) {
	e.IDs = append(e.IDs, id)
	e.Tokens = append(e.Tokens, tok)
	e.Offsets = append(e.Offsets, [2]int{lo, hi})
	e.Template = append(e.Template, template)
}

func (e *Encoding) addTemplate(t *Tokenizer, ids []int) {
	for _, id := range ids {
		tok, _ := t.Token(id)
		e.add(id, tok, 0, 0, true)
	}
}

// encodeText appends the tokens of n: added tokens matched in the input,
// then in each piece between them, normalized, the added tokens matched in
// normalized text, then pre-tokenizer and model on what is left.
func (t *Tokenizer) encodeText(e *Encoding, n nstr, splitSpecial bool) error {
	return eachPiece(n, t.raw.find(n.s, splitSpecial), e, t, func(p nstr) error {
		if t.normalizer != nil {
			var err error
			if p, err = t.normalizer.normalize(p); err != nil {
				return err
			}
		}
		return eachPiece(p, t.norm.find(p.s, splitSpecial), e, t, func(q nstr) error {
			return t.encodePiece(e, q)
		})
	})
}

// eachPiece adds the added tokens in matches and calls f on the non-empty
// pieces of n between them.
func eachPiece(n nstr, matches []addedMatch, e *Encoding, t *Tokenizer, f func(nstr) error) error {
	prev := 0
	for _, m := range matches {
		if m.lo > prev {
			if err := f(n.slice(prev, m.lo)); err != nil {
				return err
			}
		}
		lo, hi := n.span(m.lo, m.hi)
		// The match may be a normalized form; the token is the added one.
		a := t.addedByID[m.tok.ID]
		e.add(a.ID, a.Content, lo, hi, false)
		prev = m.hi
	}
	if prev < len(n.s) {
		return f(n.slice(prev, len(n.s)))
	}
	return nil
}

// encodePiece pre-tokenizes a normalized piece and encodes each word.
func (t *Tokenizer) encodePiece(e *Encoding, p nstr) error {
	words := []nstr{p}
	if t.pre != nil {
		var err error
		if words, err = t.pre.apply(p, nil); err != nil {
			return err
		}
	}
	var pieces []piece
	for _, w := range words {
		if w.s == "" {
			continue
		}
		pieces = t.model.encodeWord(w.s, pieces[:0])
		for _, pc := range pieces {
			lo, hi := w.span(int(pc.lo), int(pc.hi))
			e.add(int(pc.id), t.model.tokens[pc.id], lo, hi, false)
		}
	}
	return nil
}
