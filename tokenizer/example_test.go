package tokenizer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/golora/golora/tokenizer"
)

// A byte-level BPE tokenizer.json (GPT-2's family): spaces are 'Ġ',
// added tokens such as <|endoftext|> are found first and never split.
func ExampleLoadFile() {
	tok, err := tokenizer.LoadFile("testdata/bytelevel.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids, err := tok.Encode("Hello the world<|endoftext|>")
	fmt.Println(ids, err)
	text, err := tok.Decode(ids)
	fmt.Printf("%q %v\n", text, err)
	// Output:
	// [271 258 263 273] <nil>
	// "Hello the world<|endoftext|>" <nil>
}

// A Llama-2-style SentencePiece BPE: ▁ for spaces, <s> put in front by the
// post-processor, <0xNN> byte tokens for characters outside the
// vocabulary.
func ExampleFromJSON() {
	data, err := os.ReadFile("testdata/sentencepiece.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, err := tokenizer.FromJSON(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := tok.EncodeWith("the world!", tokenizer.EncodeOptions{})
	fmt.Println(e.Tokens, err)
	fmt.Println(e.IDs)
	fmt.Println(tok.BOS(), tok.EOS())
	// Output:
	// [<s> ▁the ▁world <0x21>] <nil>
	// [1 274 279 36]
	// 1 -1
}

// EncodeWith gives each token's byte range in the input, and NoTemplate
// leaves out the BOS the post-processor would add.
func ExampleTokenizer_EncodeWith() {
	tok, _ := tokenizer.LoadFile("testdata/sentencepiece.json")
	text := "the 世界"
	e, _ := tok.EncodeWith(text, tokenizer.EncodeOptions{NoTemplate: true})
	for i, id := range e.IDs {
		off := e.Offsets[i]
		fmt.Printf("%d %q %q\n", id, e.Tokens[i], text[off[0]:off[1]])
	}
	// Output:
	// 274 "▁the" "the"
	// 259 "▁" " "
	// 281 "世界" "世界"
}

// SplitSpecialTokens reads special tokens written in the text as plain
// text, so user input cannot forge them.
func ExampleEncodeOptions() {
	tok, _ := tokenizer.LoadFile("testdata/bytelevel.json")
	a, _ := tok.EncodeWith("<|endoftext|>", tokenizer.EncodeOptions{})
	b, _ := tok.EncodeWith("<|endoftext|>", tokenizer.EncodeOptions{SplitSpecialTokens: true})
	fmt.Println(len(a.IDs), len(b.IDs))
	// Output:
	// 1 13
}

// Decode undoes the decoder chain; SkipSpecialTokens drops <s> and the
// like.
func ExampleTokenizer_DecodeWith() {
	tok, _ := tokenizer.LoadFile("testdata/sentencepiece.json")
	ids, _ := tok.Encode("the world")
	all, _ := tok.Decode(ids)
	text, _ := tok.DecodeWith(ids, tokenizer.DecodeOptions{SkipSpecialTokens: true})
	fmt.Printf("%q %q\n", all, text)
	_, err := tok.Decode([]int{99999})
	fmt.Println(err)
	// Output:
	// "<s> the world" "the world"
	// tokenizer: decode: id 99999 has no token (vocabulary size 282)
}

// A DecodeStream returns text as ids arrive, holding back the bytes of a
// character until it is whole.
func ExampleDecodeStream() {
	tok, _ := tokenizer.LoadFile("testdata/bytelevel.json")
	ids, _ := tok.Encode("in 😀")
	s := tok.NewDecodeStream(tokenizer.DecodeOptions{})
	var pieces []string
	for _, id := range ids {
		piece, _ := s.Next(id)
		pieces = append(pieces, fmt.Sprintf("%q", piece))
	}
	fmt.Println(strings.Join(pieces, " "))
	// Output:
	// "in" " " "" "" "" "😀"
}

// LoadDir reads a model folder: tokenizer.json and, if present,
// tokenizer_config.json's special tokens and chat template.
func ExampleLoadDir() {
	dir, _ := os.MkdirTemp("", "model")
	defer os.RemoveAll(dir)
	data, _ := os.ReadFile("testdata/sentencepiece.json")
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"),
		[]byte(`{"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{{ bos_token }}…"}`), 0o644)
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	eos, _ := tok.Token(tok.EOS())
	fmt.Println(tok.BOS(), tok.EOS(), eos, tok.ChatTemplate())
	fmt.Println(tok.IsSpecial(tok.EOS()), len(tok.AddedTokens()), tok.VocabSize())
	// Output:
	// 1 2 </s> {{ bos_token }}…
	// true 3 282
}

// GPT-2's slow-tokenizer files (vocab.json, merges.txt) read as GPT-2's
// byte-level BPE; a vocabulary without the 256 byte characters is refused,
// since some text could not be encoded with it.
func ExampleFromVocabMerges() {
	vocab := `{"a": 0, "b": 1, "ab": 2, "Ġ": 3}`
	merges := "#version: 0.2\na b\n"
	_, err := tokenizer.FromVocabMerges([]byte(vocab), []byte(merges))
	fmt.Println(err)
	// Output:
	// tokenizer: model: the vocabulary lacks the byte-level token "Ā" (byte 0x00), so some text could not be encoded
}
