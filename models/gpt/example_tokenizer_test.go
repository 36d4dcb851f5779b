package gpt_test

import (
	"fmt"

	"github.com/golora/golora/models/gpt"
)

// A model folder records its tokenizer's name; NewTokenizer turns it back
// into the tokenizer. "<|endoftext|>" in the text is the end-of-text token.
func ExampleNewTokenizer() {
	for _, name := range []string{"gpt2", "bytes"} {
		tok, err := gpt.NewTokenizer(name)
		if err != nil {
			fmt.Println(err)
			return
		}
		ids := tok.Encode("Hello world<|endoftext|>")
		fmt.Println(tok.Name(), tok.VocabSize(), tok.EOT(), ids, tok.Decode(ids))
	}
	_, err := gpt.NewTokenizer("gpt-3")
	fmt.Println(err)
	// Output:
	// gpt2 50257 50256 [15496 995 50256] Hello world<|endoftext|>
	// bytes 257 256 [72 101 108 108 111 32 119 111 114 108 100 256] Hello world<|endoftext|>
	// gpt: unknown tokenizer "gpt-3" (want "bytes" or "gpt2")
}
