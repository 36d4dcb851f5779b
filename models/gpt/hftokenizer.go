package gpt

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/golora/golora/tokenizer"
)

// TokenizerHF names the tokenizer a model folder ships as Hugging Face
// files: tokenizer.json, or GPT-2's vocab.json and merges.txt, read with
// package tokenizer. Load picks it for a folder that has such files and
// no "golora_tokenizer" key; Save writes the files back next to the
// weights, with "golora_tokenizer": "hf", so the folder reloads with them.
const TokenizerHF = "hf"

// hfTokenizer adapts a *tokenizer.Tokenizer to the Tokenizer interface.
type hfTokenizer struct {
	t   *tokenizer.Tokenizer
	eot int
}

// FileTokenizer wraps t as a Tokenizer named "hf" whose end-of-text id is
// eot (config.json's eos_token_id for a GPT-2 folder). Encode adds what the
// file's post-processor adds (nothing, for GPT-2's files) and finds added
// tokens such as "<|endoftext|>" in the text; Decode returns the bytes of
// the tokens (tokenizer.DecodeBytes), U+FFFD for an id with no token.
func FileTokenizer(t *tokenizer.Tokenizer, eot int) (Tokenizer, error) {
	if t == nil {
		return nil, errors.New("gpt: file tokenizer: nil")
	}
	if _, ok := t.Token(eot); !ok {
		return nil, fmt.Errorf("gpt: file tokenizer: end-of-text id %d is not a token of the tokenizer", eot)
	}
	return &hfTokenizer{t: t, eot: eot}, nil
}

func (h *hfTokenizer) Name() string   { return TokenizerHF }
func (h *hfTokenizer) VocabSize() int { return h.t.VocabSize() }
func (h *hfTokenizer) EOT() int       { return h.eot }

// Encode returns the ids of text, or nil if the file's codec fails (see
// EncodeChecked).
func (h *hfTokenizer) Encode(text string) []int {
	ids, err := h.EncodeChecked(text)
	if err != nil {
		return nil
	}
	return ids
}

// EncodeChecked is Encode with the codec's error. Package tokenizer refuses
// at load time every file whose encoding is known to be able to fail (its
// regexes run with no time or backtracking limit), so none is expected;
// were one to happen it is returned.
func (h *hfTokenizer) EncodeChecked(text string) ([]int, error) {
	ids, err := h.t.Encode(text)
	if err != nil {
		return nil, fmt.Errorf("gpt: file tokenizer: %w", err)
	}
	return ids, nil
}

func (h *hfTokenizer) Decode(ids []int) string {
	var out []byte
	run := make([]int, 0, len(ids))
	flush := func() {
		if len(run) > 0 {
			s, _ := h.t.DecodeBytes(run, tokenizer.DecodeOptions{}) // every id in run has a token
			out = append(out, s...)
			run = run[:0]
		}
	}
	for _, id := range ids {
		if _, ok := h.t.Token(id); ok {
			run = append(run, id)
			continue
		}
		flush()
		out = append(out, replacementChar...)
	}
	flush()
	return string(out)
}

// hfTokenizerOf returns the file tokenizer of a model folder, with eot
// from eos (config.json's eos_token_id) or else the tokenizer's own
// end-of-sequence token or "<|endoftext|>".
func hfTokenizerOf(dir string, eos *int) (*tokenizer.Tokenizer, Tokenizer, error) {
	t, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("gpt: %w", err)
	}
	eot := -1
	switch id, ok := t.TokenID(endOfText); {
	case eos != nil:
		eot = *eos
	case t.EOS() >= 0:
		eot = t.EOS()
	case ok:
		eot = id
	default:
		return nil, nil, fmt.Errorf("gpt: tokenizer in %s: no end-of-text token (config.json has no eos_token_id and the tokenizer has no %q)", dir, endOfText)
	}
	ft, err := FileTokenizer(t, eot)
	if err != nil {
		return nil, nil, fmt.Errorf("gpt: tokenizer in %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	return t, ft, nil
}

// LoadTokenizer returns the tokenizer of a model folder without reading
// its weights: the Hugging Face files when config.json says "hf" (or has no
// "golora_tokenizer" key and the folder has them), else the built-in
// tokenizer config.json names.
func LoadTokenizer(dir string) (Tokenizer, error) {
	cfg, h, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	if cfg.Tokenizer == TokenizerHF {
		_, ft, err := hfTokenizerOf(dir, h.EosTokenID)
		return ft, err
	}
	return NewTokenizer(cfg.Tokenizer)
}

// Tokenizer returns the model's tokenizer: the Hugging Face files Load read
// (or SetTokenizer gave), or the built-in one Config().Tokenizer names.
func (m *Model) Tokenizer() (Tokenizer, error) {
	if m.cfg.Tokenizer == TokenizerHF {
		if m.hfTok == nil {
			return nil, errors.New(`gpt: the model's tokenizer is "hf" but it has none: load it from its folder or call SetTokenizer`)
		}
		return m.hfTok, nil
	}
	return NewTokenizer(m.cfg.Tokenizer)
}

// SetTokenizer makes t (with end-of-text id eot) the model's tokenizer:
// Config().Tokenizer becomes "hf" and Save writes t's files next to the
// weights. t must have no more ids than the model's VocabSize.
func (m *Model) SetTokenizer(t *tokenizer.Tokenizer, eot int) error {
	ft, err := FileTokenizer(t, eot)
	if err != nil {
		return err
	}
	if t.VocabSize() > m.cfg.VocabSize {
		return fmt.Errorf("gpt: set tokenizer: it has %d ids but the model's VocabSize is %d", t.VocabSize(), m.cfg.VocabSize)
	}
	m.hfFiles, m.hfTok = t, ft
	m.cfg.Tokenizer = TokenizerHF
	return nil
}

// FileTokenizerOf returns the *tokenizer.Tokenizer behind a Tokenizer that
// FileTokenizer (or a model folder's tokenizer.json) made, and nil for the
// built-in tokenizers.
func FileTokenizerOf(t Tokenizer) *tokenizer.Tokenizer {
	if h, ok := t.(*hfTokenizer); ok {
		return h.t
	}
	return nil
}
