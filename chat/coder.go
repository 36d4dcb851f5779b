package chat

import (
	"errors"
	"fmt"
	"sort"

	"github.com/golora/golora/tokenizer"
)

// TokenCoder is what package chat needs of a tokenizer: ids with byte
// offsets, so that a span of rendered text (an assistant turn) maps to the
// tokens that hold it, and the texts of the special tokens.
type TokenCoder interface {
	// EncodeOffsets returns the ids of text, with special tokens written
	// in it read as those tokens and nothing added around it (Hugging
	// Face's add_special_tokens=False, as apply_chat_template tokenizes),
	// and each id's byte range [start, end) in text.
	EncodeOffsets(text string) (ids []int, offsets [][2]int, err error)
	// Decode returns the text of ids, special tokens written out.
	Decode(ids []int) (string, error)
	// SpecialTokens maps the text of each special token to its id.
	SpecialTokens() map[string]int
}

// FromTokenizer returns t as a TokenCoder (offsets from
// tokenizer.EncodeWith).
func FromTokenizer(t *tokenizer.Tokenizer) TokenCoder { return hfCoder{t} }

type hfCoder struct{ t *tokenizer.Tokenizer }

func (h hfCoder) EncodeOffsets(text string) ([]int, [][2]int, error) {
	e, err := h.t.EncodeWith(text, tokenizer.EncodeOptions{NoTemplate: true})
	if err != nil {
		return nil, nil, err
	}
	return e.IDs, e.Offsets, nil
}

func (h hfCoder) Decode(ids []int) (string, error) {
	return h.t.DecodeBytes(ids, tokenizer.DecodeOptions{})
}

func (h hfCoder) SpecialTokens() map[string]int {
	m := map[string]int{}
	for _, a := range h.t.AddedTokens() {
		if a.Special {
			m[a.Content] = a.ID
		}
	}
	return m
}

// FromFuncs makes a TokenCoder of a tokenizer that has no offsets (golora's
// built-in GPT-2 and byte tokenizers): each id's range is found by decoding
// the ids one at a time, which is exact for tokenizers whose decoded tokens
// join up to the text (byte-level BPE); EncodeOffsets checks that they do
// and fails otherwise. specials maps special-token texts to their ids.
func FromFuncs(encode func(string) []int, decode func([]int) string, specials map[string]int) TokenCoder {
	m := make(map[string]int, len(specials))
	for k, v := range specials {
		m[k] = v
	}
	return funcCoder{encode, decode, m}
}

type funcCoder struct {
	encode   func(string) []int
	decode   func([]int) string
	specials map[string]int
}

func (f funcCoder) EncodeOffsets(text string) ([]int, [][2]int, error) {
	if f.encode == nil || f.decode == nil {
		return nil, nil, errors.New("chat: nil encode or decode function")
	}
	ids := f.encode(text)
	offs := make([][2]int, len(ids))
	pos := 0
	for i, id := range ids {
		piece := f.decode([]int{id})
		if text[pos:min(len(text), pos+len(piece))] != piece {
			return nil, nil, fmt.Errorf("chat: token %d (id %d) decodes to %q, which is not the text at byte %d: the tokenizer does not map tokens back to the text", i, id, piece, pos)
		}
		offs[i] = [2]int{pos, pos + len(piece)}
		pos += len(piece)
	}
	if pos != len(text) {
		return nil, nil, fmt.Errorf("chat: the tokens cover %d of %d bytes of the text", pos, len(text))
	}
	return ids, offs, nil
}

func (f funcCoder) Decode(ids []int) (string, error) { return f.decode(ids), nil }

func (f funcCoder) SpecialTokens() map[string]int {
	m := make(map[string]int, len(f.specials))
	for k, v := range f.specials {
		m[k] = v
	}
	return m
}

// specialsLongestFirst lists the special-token texts of c, longest first
// (then in byte order), so a prefix match finds the longest token.
func specialsLongestFirst(c TokenCoder) []string {
	m := c.SpecialTokens()
	out := make([]string, 0, len(m))
	for s := range m {
		if s != "" {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) > len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}
