package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/golora/golora/internal/atomicfile"
)

// Names of the tokenizer files in a Hugging Face model folder.
const (
	JSONFile         = "tokenizer.json"
	VocabFile        = "vocab.json" // GPT-2's slow-tokenizer vocabulary
	MergesFile       = "merges.txt" // and its merges
	ConfigFile       = "tokenizer_config.json"
	ChatTemplateFile = "chat_template.jinja"
)

// ErrNoTokenizer is the error LoadDir returns (wrapped) for a folder with
// neither tokenizer.json nor vocab.json and merges.txt.
var ErrNoTokenizer = errors.New("no tokenizer.json, nor vocab.json and merges.txt")

// HasFiles reports whether dir holds tokenizer files LoadDir reads.
func HasFiles(dir string) bool {
	if fileExists(filepath.Join(dir, JSONFile)) {
		return true
	}
	return fileExists(filepath.Join(dir, VocabFile)) && fileExists(filepath.Join(dir, MergesFile))
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// LoadDir reads the tokenizer of a Hugging Face model folder:
// tokenizer.json, or else GPT-2's vocab.json and merges.txt (see
// FromVocabMerges). When the folder also has tokenizer_config.json, its
// bos_token, eos_token, pad_token, unk_token and chat_template are read
// (chat_template.jinja, if present, is the chat template instead); its
// other keys, which configure transformers rather than the tokenizer, are
// not. A folder with no tokenizer files gives an error wrapping
// ErrNoTokenizer.
func LoadDir(dir string) (*Tokenizer, error) {
	var t *Tokenizer
	var err error
	jsonPath := filepath.Join(dir, JSONFile)
	switch {
	case fileExists(jsonPath):
		if t, err = LoadFile(jsonPath); err != nil {
			return nil, err
		}
	case fileExists(filepath.Join(dir, VocabFile)) && fileExists(filepath.Join(dir, MergesFile)):
		vocab, err := readFile(filepath.Join(dir, VocabFile))
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		merges, err := readFile(filepath.Join(dir, MergesFile))
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		if t, err = fromVocabMerges(vocab, merges); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", dir, err)
		}
	default:
		return nil, fmt.Errorf("tokenizer: %s: %w", dir, ErrNoTokenizer)
	}
	cfgPath := filepath.Join(dir, ConfigFile)
	if data, err := readFile(cfgPath); err == nil {
		if err := t.readConfig(data); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", cfgPath, err)
		}
		t.files = append(t.files, File{Name: ConfigFile, Data: data})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	tplPath := filepath.Join(dir, ChatTemplateFile)
	if data, err := readFile(tplPath); err == nil {
		t.chatTemplate = string(data)
		t.files = append(t.files, File{Name: ChatTemplateFile, Data: data})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

// readConfig reads the keys of tokenizer_config.json that name special
// tokens and the chat template.
func (t *Tokenizer) readConfig(data []byte) error {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	for _, r := range []struct {
		key string
		id  *int
	}{{"bos_token", &t.roles.bos}, {"eos_token", &t.roles.eos}, {"pad_token", &t.roles.pad}, {"unk_token", &t.roles.unk}} {
		raw, ok := c[r.key]
		if !ok {
			continue
		}
		tok, err := tokenName(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", r.key, err)
		}
		if tok == "" {
			*r.id = -1
			continue
		}
		id, ok := t.TokenID(tok)
		if !ok {
			return fmt.Errorf("%s %q is not a token of the tokenizer", r.key, tok)
		}
		*r.id = id
	}
	if raw, ok := c["add_bos_token"]; ok && !isNull(raw) {
		var add bool
		if err := json.Unmarshal(raw, &add); err != nil {
			return fmt.Errorf("add_bos_token: %w", err)
		}
		has := len(t.post.prefix) > 0 && t.post.prefix[0] == t.roles.bos
		if add != has {
			return fmt.Errorf("add_bos_token is %v but tokenizer.json's post-processor %s: transformers would rebuild the template, which golora does not; make the two agree", add, map[bool]string{true: "adds it", false: "does not add it"}[has])
		}
	}
	if raw, ok := c["chat_template"]; ok && !isNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			t.chatTemplate = s
		} else {
			var named []struct {
				Name     string `json:"name"`
				Template string `json:"template"`
			}
			if err := json.Unmarshal(raw, &named); err != nil {
				return fmt.Errorf("chat_template: want a string or a list of {name, template}: %w", err)
			}
			for _, n := range named {
				if n.Name == "default" {
					t.chatTemplate = n.Template
				}
			}
		}
	}
	return nil
}

// tokenName reads a special-token entry: "text", null, or an AddedToken
// object {"content": "text", …}.
func tokenName(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var o struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &o); err != nil || o.Content == nil {
		return "", fmt.Errorf("want a string or an object with \"content\", got %s", raw)
	}
	return *o.Content, nil
}

// FromVocabMerges reads GPT-2's slow-tokenizer files, vocab.json (token →
// id) and merges.txt (a "#version" line, then one "a b" merge a line), as
// the tokenizer GPT-2 uses: byte-level BPE split by GPT-2's pattern, with
// "<|endoftext|>" as a special added token when the vocabulary has it.
func FromVocabMerges(vocab, merges []byte) (*Tokenizer, error) {
	t, err := fromVocabMerges(vocab, merges)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

func fromVocabMerges(vocabData, mergesData []byte) (*Tokenizer, error) {
	m := &bpe{unk: -1, cache: map[string][]piece{}}
	dec := json.NewDecoder(bytes.NewReader(vocabData))
	if err := dec.Decode(&m.vocab); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of token ids: %w", VocabFile, err)
	}
	if m.vocab == nil {
		return nil, fmt.Errorf("%s: null", VocabFile)
	}
	var pairs [][2]string
	sc := bufio.NewScanner(bytes.NewReader(mergesData))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.HasPrefix(text, "#version") {
			continue
		}
		a, b, ok := strings.Cut(text, " ")
		if !ok || strings.Contains(b, " ") {
			return nil, fmt.Errorf("%s line %d: %q is not two tokens separated by one space", MergesFile, line, text)
		}
		pairs = append(pairs, [2]string{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", MergesFile, err)
	}
	if err := m.build("", pairs); err != nil {
		return nil, fmt.Errorf("%s and %s: %w", VocabFile, MergesFile, err)
	}
	re, err := compileRegex(gpt2Pattern)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{
		model: m,
		pre:   byteLevelPre{re: re},
		post:  &postProcessor{},
		dec:   byteLevelDec{},
		roles: roles{-1, -1, -1, -1},
	}
	var added []*AddedToken
	const eot = "<|endoftext|>"
	if id, ok := m.vocab[eot]; ok {
		added = append(added, &AddedToken{ID: id, Content: eot, Special: true})
		t.roles.bos, t.roles.eos, t.roles.unk = id, id, id
	}
	if err := t.setAdded(added, "added tokens"); err != nil {
		return nil, err
	}
	if err := t.checkTotal(); err != nil {
		return nil, err
	}
	t.files = []File{{Name: VocabFile, Data: bytes.Clone(vocabData)}, {Name: MergesFile, Data: bytes.Clone(mergesData)}}
	return t, nil
}

// SaveFiles writes the files the tokenizer was read from (Files) into dir,
// each one atomically, so that LoadDir(dir) reads the same tokenizer.
func (t *Tokenizer) SaveFiles(dir string) error {
	for _, f := range t.files {
		path := filepath.Join(dir, f.Name)
		err := atomicfile.WriteFile(path, func(w io.Writer) error {
			_, err := w.Write(f.Data)
			return err
		})
		if err != nil {
			return fmt.Errorf("tokenizer: save %s: %w", path, err)
		}
	}
	return nil
}
