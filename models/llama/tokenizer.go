package llama

import (
	"errors"
	"fmt"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/tokenizer"
)

// TokenizerHF names the tokenizer a model folder ships as Hugging Face files
// (tokenizer.json, read with package tokenizer), as in package gpt. ReadConfig
// picks it for a folder that has such files and no golora_tokenizer key;
// Load reads them and Save writes them back next to the weights.
const TokenizerHF = gpt.TokenizerHF

// eosOf is the end-of-text id of a tokenizer for a model: the first eos id
// of generation_config.json or config.json, else the tokenizer's own
// end-of-sequence token.
func eosOf(cfg Config, gen *GenerationConfig, t *tokenizer.Tokenizer) (int, error) {
	switch {
	case gen != nil && len(gen.EOS) > 0:
		return gen.EOS[0], nil
	case len(cfg.EOS) > 0:
		return cfg.EOS[0], nil
	case t.EOS() >= 0:
		return t.EOS(), nil
	}
	return 0, errors.New("no end-of-text id: neither config.json nor generation_config.json has an eos_token_id, and the tokenizer names no eos_token")
}

// loadFileTokenizer reads dir's tokenizer files for a model of cfg.
func loadFileTokenizer(dir string, cfg Config, gen *GenerationConfig) (*tokenizer.Tokenizer, gpt.Tokenizer, error) {
	t, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("llama: tokenizer of %s: %w", dir, err)
	}
	if v := t.VocabSize(); v > cfg.VocabSize {
		return nil, nil, fmt.Errorf("llama: tokenizer of %s has %d ids but %s has vocab_size %d", dir, v, ConfigFile, cfg.VocabSize)
	}
	eot, err := eosOf(cfg, gen, t)
	if err != nil {
		return nil, nil, fmt.Errorf("llama: tokenizer of %s: %w", dir, err)
	}
	ft, err := gpt.FileTokenizer(t, eot)
	if err != nil {
		return nil, nil, fmt.Errorf("llama: tokenizer of %s: %w", dir, err)
	}
	return t, ft, nil
}

// LoadTokenizer returns the tokenizer of a model folder without reading its
// weights: its Hugging Face files when the config says "hf" (the default
// for a folder that has them), or the byte tokenizer for "bytes". The
// end-of-text id (EOT) is the first eos id of generation_config.json or
// config.json. Encode adds what the file's post-processor adds (Llama 3's
// <|begin_of_text|>, for example).
func LoadTokenizer(dir string) (gpt.Tokenizer, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	if cfg.Tokenizer != TokenizerHF {
		return builtinTokenizer(cfg.Tokenizer)
	}
	gen, err := readGenerationIfAny(dir)
	if err != nil {
		return nil, err
	}
	_, ft, err := loadFileTokenizer(dir, cfg, gen)
	return ft, err
}

// builtinTokenizer is the tokenizer of a model that ships no files.
func builtinTokenizer(name string) (gpt.Tokenizer, error) {
	if name == TokenizerNone {
		return nil, errors.New(`llama: the model reads token ids only (tokenizer "none")`)
	}
	return gpt.NewTokenizer(name)
}

// Tokenizer returns the model's tokenizer: the Hugging Face files Load read
// (or SetTokenizer gave), or golora's byte tokenizer for "bytes"; a model
// with tokenizer "none" has none (an error).
func (m *Model) Tokenizer() (gpt.Tokenizer, error) {
	if m.cfg.Tokenizer == TokenizerHF {
		if m.hfTok == nil {
			return nil, errors.New(`llama: the model's tokenizer is "hf" but it has none: load it from its folder or call SetTokenizer`)
		}
		return m.hfTok, nil
	}
	return builtinTokenizer(m.cfg.Tokenizer)
}

// SetTokenizer makes t, with end-of-text id eot, the model's tokenizer:
// Config().Tokenizer becomes "hf" and Save writes t's files next to the
// weights. t must have no more ids than the model's VocabSize.
func (m *Model) SetTokenizer(t *tokenizer.Tokenizer, eot int) error {
	if t == nil {
		return errors.New("llama: set tokenizer: nil")
	}
	if t.VocabSize() > m.cfg.VocabSize {
		return fmt.Errorf("llama: set tokenizer: it has %d ids but the model's VocabSize is %d", t.VocabSize(), m.cfg.VocabSize)
	}
	ft, err := gpt.FileTokenizer(t, eot)
	if err != nil {
		return fmt.Errorf("llama: set tokenizer: %w", err)
	}
	m.hfFiles, m.hfTok = t, ft
	m.cfg.Tokenizer = TokenizerHF
	return nil
}
