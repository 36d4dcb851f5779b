package tokenizer

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
)

// Tokenizer is a Hugging Face tokenizer read from tokenizer.json (or from
// GPT-2's vocab.json and merges.txt). It holds no state that changes after
// loading except a cache of encoded words, which is safe for concurrent
// use: one Tokenizer may serve several goroutines.
type Tokenizer struct {
	model      *bpe
	normalizer normalizer   // nil: none
	pre        preTokenizer // nil: none
	post       *postProcessor
	dec        decoder // nil: tokens joined with spaces, as Hugging Face does

	added      []*AddedToken // in file order
	addedByID  map[int]*AddedToken
	addedByStr map[string]*AddedToken
	decodeForm map[int]string // added tokens decoded through their normalized form
	raw        *matcher       // added tokens matched in the input
	norm       *matcher       // added tokens matched in normalized text
	vocabSize  int

	roles        roles
	chatTemplate string
	files        []File // what the tokenizer was read from, for SaveFiles
}

// File is one file a tokenizer was read from: its name in a model folder
// and its bytes as read.
type File struct {
	Name string
	Data []byte
}

// roles are the ids of the tokens transformers calls bos, eos, pad and unk
// (−1: none).
type roles struct{ bos, eos, pad, unk int }

// LoadFile reads a tokenizer.json file.
func LoadFile(path string) (*Tokenizer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := fromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// FromJSON reads the contents of a tokenizer.json file. Everything in it
// that changes token ids or decoded text must be something golora
// implements (see the package documentation); anything else is an error
// that names it, never silently ignored.
func FromJSON(data []byte) (*Tokenizer, error) {
	t, err := fromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

func fromJSON(data []byte) (*Tokenizer, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json object: %w", err)
	}
	if top == nil {
		return nil, fmt.Errorf("not a tokenizer.json object: null")
	}
	t, err := build(&object{path: "tokenizer.json", m: top, used: map[string]bool{}})
	if err != nil {
		return nil, err
	}
	t.files = []File{{Name: "tokenizer.json", Data: slices.Clone(data)}}
	return t, nil
}

func build(o *object) (*Tokenizer, error) {
	if v, err := o.str("version", "1.0"); err != nil {
		return nil, err
	} else if v != "1.0" {
		return nil, o.errorf("version %q: only \"1.0\" is known", v)
	}
	for _, k := range []string{"truncation", "padding"} {
		if o.has(k) {
			return nil, o.errorf("%q is set: golora encodes whole texts and does not implement it; set it to null", k)
		}
	}
	t := &Tokenizer{roles: roles{-1, -1, -1, -1}}
	var err error
	if t.model, err = objectField(o, "model", parseBPE); err != nil {
		return nil, err
	}
	if t.normalizer, err = objectField(o, "normalizer", parseNormalizer); err != nil {
		return nil, err
	}
	if t.pre, err = objectField(o, "pre_tokenizer", parsePreTokenizer); err != nil {
		return nil, err
	}
	if t.dec, err = objectField(o, "decoder", parseDecoder); err != nil {
		return nil, err
	}
	list, err := o.objects("added_tokens")
	if err != nil {
		return nil, err
	}
	var added []*AddedToken
	for _, ao := range list {
		a, err := parseAddedToken(ao)
		if err != nil {
			return nil, err
		}
		added = append(added, a)
	}
	if err := t.setAdded(added, o.path+".added_tokens"); err != nil {
		return nil, err
	}
	ppo, err := o.object("post_processor")
	if err != nil {
		return nil, err
	}
	if t.post, err = parsePostProcessor(ppo, t.TokenID); err != nil {
		return nil, err
	}
	if err := t.checkTotal(); err != nil {
		return nil, err
	}
	if len(t.post.prefix) > 0 {
		t.roles.bos = t.post.prefix[0]
	}
	if len(t.post.suffix) > 0 {
		t.roles.eos = t.post.suffix[len(t.post.suffix)-1]
	}
	if t.model.unk >= 0 {
		t.roles.unk = t.model.unk
	}
	// Other top-level keys are ignored, as Hugging Face ignores them.
	return t, nil
}

func parseAddedToken(o *object) (*AddedToken, error) {
	a := &AddedToken{}
	var err error
	if !o.has("id") {
		return nil, o.errorf("no \"id\"")
	}
	if a.ID, err = o.integer("id", 0); err != nil {
		return nil, err
	}
	if a.Content, err = o.str("content", ""); err != nil {
		return nil, err
	}
	if a.Special, err = o.boolean("special", false); err != nil {
		return nil, err
	}
	if a.SingleWord, err = o.boolean("single_word", false); err != nil {
		return nil, err
	}
	if a.LStrip, err = o.boolean("lstrip", false); err != nil {
		return nil, err
	}
	if a.RStrip, err = o.boolean("rstrip", false); err != nil {
		return nil, err
	}
	if a.Normalized, err = o.boolean("normalized", !a.Special); err != nil {
		return nil, err
	}
	if a.ID < 0 {
		return nil, o.errorf("id %d: want ≥ 0", a.ID)
	}
	return a, o.done()
}

// setAdded registers the added tokens. Hugging Face gives an added token
// the id its content has in the model's vocabulary, or else the next id
// after the vocabulary, in file order; a file whose ids say otherwise is
// refused rather than guessed at.
func (t *Tokenizer) setAdded(list []*AddedToken, path string) error {
	t.addedByID = map[int]*AddedToken{}
	t.addedByStr = map[string]*AddedToken{}
	t.decodeForm = map[int]string{}
	next := len(t.model.vocab)
	var rawToks, normToks []*AddedToken
	for _, a := range list {
		if a.Content == "" {
			continue // Hugging Face skips empty tokens
		}
		want, ok := t.model.vocab[a.Content]
		if prev, dup := t.addedByStr[a.Content]; dup {
			want, ok = prev.ID, true
		}
		if !ok {
			want = next
			next++
		}
		if a.ID != want {
			return fmt.Errorf("%s: token %q has id %d, but Hugging Face would give it id %d (its id in the vocabulary, or the next free id after it, in order)", path, a.Content, a.ID, want)
		}
		if prev, dup := t.addedByStr[a.Content]; dup {
			*prev = *a // the later entry's flags win
			continue
		}
		t.added = append(t.added, a)
		t.addedByID[a.ID] = a
		t.addedByStr[a.Content] = a
	}
	for _, a := range t.added {
		if !a.Normalized || t.normalizer == nil {
			rawToks = append(rawToks, a)
			continue
		}
		n, err := t.normalizer.normalize(newNstr(a.Content, 0))
		if err != nil {
			return fmt.Errorf("%s: normalizing %q: %w", path, a.Content, err)
		}
		c := *a
		c.Content = n.s
		if c.Content == "" {
			continue
		}
		if c.Content != a.Content {
			t.decodeForm[a.ID] = c.Content
		}
		normToks = append(normToks, &c)
	}
	t.raw, t.norm = newMatcher(rawToks), newMatcher(normToks)
	t.vocabSize = len(t.model.tokens)
	for _, a := range t.added {
		t.vocabSize = max(t.vocabSize, a.ID+1)
	}
	return nil
}

// checkTotal makes sure every input can be encoded without losing text:
// Hugging Face drops characters that are neither in the vocabulary nor
// covered by byte_fallback or unk_token, and golora will not.
func (t *Tokenizer) checkTotal() error {
	m := t.model
	if m.byteFallback || m.unk >= 0 {
		return nil
	}
	if !hasByteLevel(t.pre) {
		return fmt.Errorf("model: no unk_token, no byte_fallback and no ByteLevel pre-tokenizer: a character outside the vocabulary would be dropped silently, which golora refuses")
	}
	for b := range 256 {
		c := byteChars[b]
		forms := []string{c} // the character alone, first in a word
		if m.prefix != "" {
			forms = append(forms, m.prefix+c)
		}
		if m.suffix != "" {
			forms = append(forms, c+m.suffix)
			if m.prefix != "" {
				forms = append(forms, m.prefix+c+m.suffix)
			}
		}
		for _, f := range forms {
			if _, ok := m.vocab[f]; !ok {
				return fmt.Errorf("model: the vocabulary lacks the byte-level token %q (byte %#02x), so some text could not be encoded", f, b)
			}
		}
	}
	return nil
}

func hasByteLevel(p preTokenizer) bool {
	switch p := p.(type) {
	case byteLevelPre:
		return true
	case seqPre:
		return slices.ContainsFunc(p, hasByteLevel)
	}
	return false
}

// VocabSize is one more than the largest token id (model vocabulary and
// added tokens): the number of rows a model's embedding needs at least.
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// TokenID returns the id of a token given by its string (an added token's
// content, or a vocabulary entry such as "Ġworld").
func (t *Tokenizer) TokenID(token string) (int, bool) {
	if a, ok := t.addedByStr[token]; ok {
		return a.ID, true
	}
	id, ok := t.model.vocab[token]
	return id, ok
}

// Token returns the string of token id, and false for an id that has none.
func (t *Tokenizer) Token(id int) (string, bool) {
	if a, ok := t.addedByID[id]; ok {
		return a.Content, true
	}
	if id >= 0 && id < len(t.model.tokens) {
		tok := t.model.tokens[id]
		if v, ok := t.model.vocab[tok]; ok && v == id {
			return tok, true
		}
	}
	return "", false
}

// AddedTokens lists the added tokens (tokenizer.json's "added_tokens"),
// in id order.
func (t *Tokenizer) AddedTokens() []AddedToken {
	out := make([]AddedToken, len(t.added))
	for i, a := range t.added {
		out[i] = *a
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IsSpecial reports whether id is a special added token (such as
// "<|begin_of_text|>" or "<|im_end|>").
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.addedByID[id]
	return ok && a.Special
}

// TemplateIDs returns the ids Encode puts before and after the text (the
// post-processor's single template): [1] and [] for Llama 2, nothing for
// GPT-2 or Qwen.
func (t *Tokenizer) TemplateIDs() (prefix, suffix []int) {
	return slices.Clone(t.post.prefix), slices.Clone(t.post.suffix)
}

// BOS returns the id of the beginning-of-sequence token, or −1 if there is
// none: tokenizer_config.json's bos_token when LoadDir read one, else the
// first token the post-processor puts before the text.
func (t *Tokenizer) BOS() int { return t.roles.bos }

// EOS returns the id of the end-of-sequence token, or −1 if it is not
// known: tokenizer_config.json's eos_token when LoadDir read one, else the
// last token the post-processor puts after the text. (A model's
// generation_config.json may list more ids that end a turn.)
func (t *Tokenizer) EOS() int { return t.roles.eos }

// PAD returns the id of tokenizer_config.json's pad_token, or −1.
func (t *Tokenizer) PAD() int { return t.roles.pad }

// UNK returns the id of the model's unk_token (or tokenizer_config.json's),
// or −1.
func (t *Tokenizer) UNK() int { return t.roles.unk }

// ChatTemplate returns the Jinja chat template LoadDir found
// (chat_template.jinja, or tokenizer_config.json's chat_template), or "".
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// Files returns the files the tokenizer was read from, as read, so a model
// saved with it can carry them (see SaveFiles).
func (t *Tokenizer) Files() []File {
	out := make([]File, len(t.files))
	for i, f := range t.files {
		out[i] = File{Name: f.Name, Data: slices.Clone(f.Data)}
	}
	return out
}
