package gpt

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tiktoken-go/tokenizer"
)

// failingCodec is a tiktoken codec whose Encode always fails.
type failingCodec struct {
	tokenizer.Codec
	err error
}

func (c failingCodec) Encode(string) ([]uint, []string, error) { return nil, nil, c.err }

// TestCodecErrorIsAnError: a codec error reaches the caller of
// EncodeChecked and EncodeText as an error (errors.Is finds it), and Encode
// returns no ids, not a byte-token encoding of the text and not a panic.
func TestCodecErrorIsAnError(t *testing.T) {
	tok, err := GPT2Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	good := tok.(*gpt2Tokenizer)
	want := good.Encode("hello\x7f world<|endoftext|>x")
	if ids, err := EncodeText(tok, "hello\x7f world<|endoftext|>x"); err != nil || !slices.Equal(ids, want) {
		t.Fatalf("EncodeText of a working codec = %v, %v; want %v", ids, err, want)
	}
	boom := errors.New("regexp2: match timeout")
	bad := *good
	bad.codec = failingCodec{Codec: good.codec, err: boom}
	for _, text := range []string{"plain text", "with \x7f DEL", "a<|endoftext|>b"} {
		ids, err := EncodeText(&bad, text)
		if !errors.Is(err, boom) || ids != nil {
			t.Fatalf("EncodeText(%q) = %v, %v; want the codec's error", text, ids, err)
		}
		if !strings.Contains(err.Error(), "gpt2 tokenizer") {
			t.Fatalf("error %q does not name the tokenizer", err)
		}
		if ids := bad.Encode(text); ids != nil {
			t.Fatalf("Encode(%q) with a failing codec = %v, want nil", text, ids)
		}
	}
	if ids, err := EncodeText(ByteTokenizer(), "ab"); err != nil || !slices.Equal(ids, []int{'a', 'b'}) {
		t.Fatalf("EncodeText(bytes) = %v, %v", ids, err)
	}
	if _, err := EncodeText(nil, "x"); err == nil {
		t.Fatal("EncodeText(nil) returned no error")
	}
}
