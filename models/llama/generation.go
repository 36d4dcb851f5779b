package llama

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/golora/golora/models/gpt"
)

// GenerationConfig is a Hugging Face generation_config.json: the ids and
// decoding defaults a checkpoint ships for generation. Fields are the
// file's keys; absent keys keep transformers' defaults (greedy decoding,
// temperature 1, top_k 50, top_p 1, one beam). Keys golora does not read
// are kept, so that Save writes the file back as it was read.
type GenerationConfig struct {
	BOS               int     // bos_token_id, −1 for none
	EOS               []int   // eos_token_id: one id or a list; generation stops at any of them
	Pad               int     // pad_token_id, −1 for none
	DoSample          bool    // do_sample
	Temperature       float64 // temperature (default 1)
	TopK              int     // top_k (default 50; 0 turns it off)
	TopP              float64 // top_p (default 1)
	NumBeams          int     // num_beams (default 1)
	LengthPenalty     float64 // length_penalty (default 1, beam search only)
	NoRepeatNGram     int     // no_repeat_ngram_size (default 0)
	MaxNewTokens      int     // max_new_tokens, 0 when absent
	RepetitionPenalty float64 // repetition_penalty (default 1; golora does not apply another value)

	raw map[string]json.RawMessage // every key as read
}

// NewGenerationConfig returns transformers' defaults with the given
// end-of-sequence ids.
func NewGenerationConfig(eos ...int) GenerationConfig {
	return GenerationConfig{BOS: -1, EOS: slices.Clone(eos), Pad: -1, Temperature: 1, TopK: 50, TopP: 1,
		NumBeams: 1, LengthPenalty: 1, RepetitionPenalty: 1}
}

func (g GenerationConfig) clone() GenerationConfig {
	g.EOS = slices.Clone(g.EOS)
	g.raw = maps.Clone(g.raw)
	return g
}

// ReadGenerationConfig reads dir's generation_config.json.
func ReadGenerationConfig(dir string) (GenerationConfig, error) {
	path := filepath.Join(dir, GenerationConfigFile)
	raw, err := readSmall(path)
	if err != nil {
		return GenerationConfig{}, fmt.Errorf("llama: read generation config: %w", err)
	}
	g, err := parseGeneration(raw)
	if err != nil {
		return GenerationConfig{}, fmt.Errorf("llama: read generation config %s: %w", path, err)
	}
	return g, nil
}

// readGenerationIfAny reads dir's generation_config.json, nil when the
// folder has none.
func readGenerationIfAny(dir string) (*GenerationConfig, error) {
	if _, err := os.Stat(filepath.Join(dir, GenerationConfigFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	g, err := ReadGenerationConfig(dir)
	if err != nil {
		return nil, err
	}
	return &g, nil
}

func parseGeneration(raw []byte) (GenerationConfig, error) {
	g := NewGenerationConfig()
	if err := json.Unmarshal(raw, &g.raw); err != nil {
		return g, fmt.Errorf("not a generation config: %w", err)
	}
	var err error
	if g.BOS, err = parseID(g.raw["bos_token_id"], "bos_token_id"); err != nil {
		return g, err
	}
	if g.Pad, err = parseID(g.raw["pad_token_id"], "pad_token_id"); err != nil {
		return g, err
	}
	if g.EOS, err = parseIDs(g.raw["eos_token_id"], "eos_token_id"); err != nil {
		return g, err
	}
	for _, f := range []struct {
		key string
		dst any
	}{{"do_sample", &g.DoSample}, {"temperature", &g.Temperature}, {"top_k", &g.TopK}, {"top_p", &g.TopP},
		{"num_beams", &g.NumBeams}, {"length_penalty", &g.LengthPenalty}, {"no_repeat_ngram_size", &g.NoRepeatNGram},
		{"max_new_tokens", &g.MaxNewTokens}, {"repetition_penalty", &g.RepetitionPenalty}} {
		v, ok := g.raw[f.key]
		if !ok || isNull(v) {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return g, fmt.Errorf("%s %s: %v", f.key, v, err)
		}
	}
	return g, g.validate(0)
}

// validate checks the values (and the ids against vocab when vocab > 0).
func (g GenerationConfig) validate(vocab int) error {
	switch {
	case !finite(g.Temperature) || g.Temperature < 0:
		return fmt.Errorf("temperature %v, want a finite value ≥ 0", g.Temperature)
	case g.TopK < 0:
		return fmt.Errorf("top_k %d, want ≥ 0", g.TopK)
	case !(g.TopP >= 0 && g.TopP <= 1):
		return fmt.Errorf("top_p %v, want 0 … 1", g.TopP)
	case g.NumBeams < 0:
		return fmt.Errorf("num_beams %d, want ≥ 1", g.NumBeams)
	case !finite(g.LengthPenalty):
		return fmt.Errorf("length_penalty %v, want a finite value", g.LengthPenalty)
	case g.NoRepeatNGram < 0 || g.MaxNewTokens < 0:
		return fmt.Errorf("no_repeat_ngram_size %d and max_new_tokens %d, want ≥ 0", g.NoRepeatNGram, g.MaxNewTokens)
	}
	if vocab > 0 {
		ids := append([]int{g.BOS, g.Pad}, g.EOS...)
		for _, id := range ids {
			if id >= vocab {
				return fmt.Errorf("token id %d outside the vocabulary [0, %d)", id, vocab)
			}
		}
	}
	return nil
}

// marshal writes the config: the keys read, with golora's fields on top.
func (g GenerationConfig) marshal() ([]byte, error) {
	out := map[string]any{}
	for k, v := range g.raw {
		out[k] = v
	}
	set := func(key string, v any, absent bool) {
		if absent {
			delete(out, key)
		} else {
			out[key] = v
		}
	}
	set("bos_token_id", g.BOS, g.BOS < 0)
	set("pad_token_id", g.Pad, g.Pad < 0)
	switch len(g.EOS) {
	case 0:
		delete(out, "eos_token_id")
	case 1:
		out["eos_token_id"] = g.EOS[0]
	default:
		out["eos_token_id"] = g.EOS
	}
	_, had := g.raw["do_sample"]
	set("do_sample", g.DoSample, !g.DoSample && !had)
	for _, f := range []struct {
		key      string
		v, deflt float64
	}{{"temperature", g.Temperature, 1}, {"top_p", g.TopP, 1}, {"length_penalty", g.LengthPenalty, 1}, {"repetition_penalty", g.RepetitionPenalty, 1}} {
		_, had := g.raw[f.key]
		set(f.key, f.v, f.v == f.deflt && !had)
	}
	for _, f := range []struct {
		key      string
		v, deflt int
	}{{"top_k", g.TopK, 50}, {"num_beams", g.NumBeams, 1}, {"no_repeat_ngram_size", g.NoRepeatNGram, 0}, {"max_new_tokens", g.MaxNewTokens, 0}} {
		_, had := g.raw[f.key]
		set(f.key, f.v, f.v == f.deflt && !had)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// unapplied are generation_config.json keys that change transformers'
// decoding and that golora's generator does not implement, with the value
// that means "off".
var unapplied = map[string]float64{
	"repetition_penalty": 1, "encoder_repetition_penalty": 1, "min_length": 0, "min_new_tokens": 0,
	"typical_p": 1, "min_p": 0, "epsilon_cutoff": 0, "eta_cutoff": 0, "diversity_penalty": 0,
	"num_beam_groups": 1, "penalty_alpha": 0, "exponential_decay_length_penalty": 0,
}

// unappliedLists are keys whose presence (a non-empty value) changes
// decoding in transformers and that golora does not implement.
var unappliedLists = []string{"bad_words_ids", "suppress_tokens", "begin_suppress_tokens", "forced_bos_token_id",
	"forced_eos_token_id", "sequence_bias", "force_words_ids", "forced_decoder_ids"}

// Options returns decoding options following the file as transformers'
// generate would: greedy decoding, or sampling with do_sample
// (Temperature, TopK, TopP), or beam search with num_beams > 1
// (LengthPenalty, transformers' default 1); NoRepeatNGram; MaxNewTokens
// from max_new_tokens (0 when absent: the caller must set it); StopTokens
// the eos ids (nil when there are none, meaning the model's). The second
// result lists the file's settings golora's generator does not implement
// (repetition_penalty ≠ 1, min_new_tokens, …), sorted, for the caller to
// report; they are not applied.
func (g GenerationConfig) Options() (gpt.GenerateOptions, []string) {
	o := gpt.GenerateOptions{MaxNewTokens: g.MaxNewTokens, NoRepeatNGram: g.NoRepeatNGram, StopTokens: slices.Clone(g.EOS)}
	switch {
	case g.NumBeams > 1:
		o.Beams, o.LengthPenalty = g.NumBeams, g.LengthPenalty
	case g.DoSample:
		o.Temperature, o.TopK = g.Temperature, g.TopK
		if g.TopP < 1 {
			o.TopP = g.TopP
		}
		if o.Temperature == 0 { // transformers treats a zero temperature with sampling as greedy
			o.TopK = 0
		}
	}
	var ignored []string
	for key, off := range unapplied {
		v, ok := g.raw[key]
		var x float64
		if ok && !isNull(v) && json.Unmarshal(v, &x) == nil && x != off {
			ignored = append(ignored, fmt.Sprintf("%s = %v", key, x))
		}
	}
	for _, key := range unappliedLists {
		if v, ok := g.raw[key]; ok && !isNull(v) && string(v) != "[]" {
			ignored = append(ignored, key)
		}
	}
	sort.Strings(ignored)
	return o, ignored
}
