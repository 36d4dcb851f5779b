package tokenizer

import (
	"fmt"
	"strings"
)

// DecodeOptions changes how DecodeWith works; the zero value decodes as
// Hugging Face's tokenizer.decode(ids) does.
type DecodeOptions struct {
	// SkipSpecialTokens leaves special tokens out of the text: Hugging
	// Face's skip_special_tokens=True.
	SkipSpecialTokens bool
}

// Decode returns the text of ids, as Hugging Face's tokenizer.decode(ids)
// (the tokenizer.json decoder; transformers' optional
// clean_up_tokenization_spaces is not applied). An id with no token is an
// error that names it.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	return t.DecodeWith(ids, DecodeOptions{})
}

// DecodeWith decodes ids as Decode does, with options.
func (t *Tokenizer) DecodeWith(ids []int, o DecodeOptions) (string, error) {
	s, err := t.decode(ids, o.SkipSpecialTokens, false)
	if err != nil {
		return "", fmt.Errorf("tokenizer: decode: %w", err)
	}
	return s, nil
}

// DecodeBytes returns the bytes ids stand for: the text Decode returns,
// except that bytes which are not valid UTF-8 (the first half of a
// character split over two tokens, say) are kept as they are rather than
// written as U+FFFD. For byte-level tokenizers, decoding ids in parts and
// joining the parts gives the same bytes as decoding them at once.
func (t *Tokenizer) DecodeBytes(ids []int, o DecodeOptions) (string, error) {
	s, err := t.decode(ids, o.SkipSpecialTokens, true)
	if err != nil {
		return "", fmt.Errorf("tokenizer: decode: %w", err)
	}
	return s, nil
}

func (t *Tokenizer) decode(ids []int, skipSpecial, raw bool) (string, error) {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.addedByID[id]; ok {
			if skipSpecial && a.Special {
				continue
			}
			if f, ok := t.decodeForm[id]; ok {
				tokens = append(tokens, f)
			} else {
				tokens = append(tokens, a.Content)
			}
			continue
		}
		tok, ok := t.Token(id)
		if !ok {
			return "", fmt.Errorf("id %d has no token (vocabulary size %d)", id, t.vocabSize)
		}
		if skipSpecial {
			if a, ok := t.addedByStr[tok]; ok && a.Special {
				continue
			}
		}
		tokens = append(tokens, tok)
	}
	if t.dec == nil {
		return strings.Join(tokens, " "), nil
	}
	out, err := t.dec.decode(tokens, raw)
	if err != nil {
		return "", err
	}
	return strings.Join(out, ""), nil
}

// DecodeStream decodes ids one at a time, as a model generates them, and
// returns the text each one completes. The pieces it returns join up to
// what Decode gives for all the ids (whatever the decoder does with the
// first token or with characters split over several tokens).
type DecodeStream struct {
	t       *Tokenizer
	o       DecodeOptions
	context []int  // the ids of the last piece returned
	prefix  string // their text
	pending []int  // ids whose text is not out yet
}

// NewDecodeStream starts a DecodeStream.
func (t *Tokenizer) NewDecodeStream(o DecodeOptions) *DecodeStream {
	return &DecodeStream{t: t, o: o}
}

// Next adds id and returns the text it completes: "" while a character
// is still incomplete (its bytes split over tokens still to come).
//
// Each call decodes the last returned ids together with the new ones, so
// that a decoder that treats the first token of a text differently
// (Metaspace, Strip) sees the same context as Decode would.
func (s *DecodeStream) Next(id int) (string, error) {
	s.pending = append(s.pending, id)
	ids := append(append([]int(nil), s.context...), s.pending...)
	text, err := s.t.decode(ids, s.o.SkipSpecialTokens, false)
	if err != nil {
		return "", fmt.Errorf("tokenizer: decode stream: %w", err)
	}
	if len(text) <= len(s.prefix) || strings.HasSuffix(text, "\uFFFD") {
		return "", nil
	}
	if !strings.HasPrefix(text, s.prefix) {
		return "", fmt.Errorf("tokenizer: decode stream: the text of ids %v does not extend that of %v", ids, s.context)
	}
	out := text[len(s.prefix):]
	s.context, s.pending = s.pending, nil
	if s.prefix, err = s.t.decode(s.context, s.o.SkipSpecialTokens, false); err != nil {
		return "", fmt.Errorf("tokenizer: decode stream: %w", err)
	}
	return out, nil
}
