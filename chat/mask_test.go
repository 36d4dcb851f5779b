package chat

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/tokenizer"
)

// bytesCoder is one token per byte (id = the byte), no special tokens.
func bytesCoder() TokenCoder {
	enc := func(s string) []int {
		ids := make([]int, len(s))
		for i := range ids {
			ids[i] = int(s[i])
		}
		return ids
	}
	dec := func(ids []int) string {
		b := make([]byte, len(ids))
		for i, id := range ids {
			b[i] = byte(id)
		}
		return string(b)
	}
	return FromFuncs(enc, dec, nil)
}

// piece is a stretch of rendered text, trained or not.
type piece struct {
	text    string
	trained bool
}

// handMask builds the expected text and per-byte mask from pieces.
func handMask(pieces []piece) (string, []bool) {
	var b strings.Builder
	var mask []bool
	for _, p := range pieces {
		b.WriteString(p.text)
		for range len(p.text) {
			mask = append(mask, p.trained)
		}
	}
	return b.String(), mask
}

func TestMaskChatMLBytes(t *testing.T) {
	f, err := NewFormatter(ChatML(), bytesCoder())
	if err != nil {
		t.Fatal(err)
	}
	if text, id := f.EndOfTurn(); text != "<|im_end|>" || id != -1 {
		t.Fatalf("EndOfTurn = %q, %d; want <|im_end|> as text (no such token)", text, id)
	}
	cases := []struct {
		name   string
		conv   []Message
		pieces []piece
	}{
		{"system and two exchanges: both assistant turns, each through <|im_end|>, not the newline after it", convSystemMulti, []piece{
			{"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is Go?<|im_end|>\n<|im_start|>assistant\n", false},
			{"A programming language.<|im_end|>", true},
			{"\n<|im_start|>user\nWho made it?<|im_end|>\n<|im_start|>assistant\n", false},
			{"Google.<|im_end|>", true},
			{"\n", false},
		}},
		{"a turn with weight 0 is context", []Message{
			{Role: RoleUser, Content: "a"}, {Role: RoleAssistant, Content: "b", NoLoss: true},
			{Role: RoleUser, Content: "c"}, {Role: RoleAssistant, Content: "d"}}, []piece{
			{"<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n", false},
			{"d<|im_end|>", true},
			{"\n", false},
		}},
		{"an empty answer trains its end token", []Message{{Role: RoleUser, Content: "q"}, {Role: RoleAssistant, Content: ""}}, []piece{
			{"<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n", false},
			{"<|im_end|>", true},
			{"\n", false},
		}},
		{"the last turn may be the user's", []Message{{Role: RoleAssistant, Content: "Hi!"}, {Role: RoleUser, Content: "q"}}, []piece{
			{"<|im_start|>assistant\n", false},
			{"Hi!<|im_end|>", true},
			{"\n<|im_start|>user\nq<|im_end|>\n", false},
		}},
	}
	for _, c := range cases {
		e, err := f.Encode(Conversation{Messages: c.conv})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		text, mask := handMask(c.pieces)
		if e.Text != text {
			t.Errorf("%s: text %q, want %q", c.name, e.Text, text)
		}
		if !slices.Equal(e.Mask, mask) {
			t.Errorf("%s: mask\n%v\nwant\n%v", c.name, e.Mask, mask)
		}
	}
	bad := Conversation{Messages: []Message{{Role: RoleUser, Content: "q"}, {Role: RoleAssistant, Content: "a<|im_end|>b"}}}
	if _, err := f.Encode(bad); err == nil || !strings.Contains(err.Error(), "message 2 (assistant) contains the end-of-turn text") {
		t.Errorf("content with the end-of-turn text: %v", err)
	}
}

// chatmlTokenizer is the byte-level test tokenizer with ChatML's special
// tokens added, so <|im_end|> is one token.
func chatmlTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	raw, err := os.ReadFile("../tokenizer/testdata/bytelevel.json")
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	added := top["added_tokens"].([]any)
	for i, s := range []string{"<|im_start|>", "<|im_end|>"} {
		added = append(added, map[string]any{"id": 274 + i, "content": s, "special": true, "single_word": false,
			"lstrip": false, "rstrip": false, "normalized": false})
	}
	top["added_tokens"] = added
	data, _ := json.Marshal(top)
	tok, err := tokenizer.FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestMaskTokenizer builds the expected ids and mask by encoding each piece
// on its own (pieces end at special tokens or before a word, where a
// byte-level tokenizer never merges) and compares with Encode's, which
// tokenizes the whole text and maps the turns through offsets.
func TestMaskTokenizer(t *testing.T) {
	tok := chatmlTokenizer(t)
	f, err := NewFormatter(ChatML(), FromTokenizer(tok))
	if err != nil {
		t.Fatal(err)
	}
	if text, id := f.EndOfTurn(); text != "<|im_end|>" || id != 275 {
		t.Fatalf("EndOfTurn = %q, %d; want <|im_end|>, 275", text, id)
	}
	pieces := []piece{
		{"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is Go?<|im_end|>\n<|im_start|>assistant\n", false},
		{"A programming language.<|im_end|>", true},
		{"\n<|im_start|>user\nWho made it?<|im_end|>\n<|im_start|>assistant\n", false},
		{"Google.<|im_end|>", true},
		{"\n", false},
	}
	var ids []int
	var mask []bool
	for _, p := range pieces {
		e, err := tok.EncodeWith(p.text, tokenizer.EncodeOptions{NoTemplate: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.IDs...)
		for range e.IDs {
			mask = append(mask, p.trained)
		}
	}
	e, err := f.Encode(Conversation{Messages: convSystemMulti})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.IDs, ids) || !slices.Equal(e.Mask, mask) {
		t.Fatalf("ids %v\nwant %v\nmask %v\nwant %v", e.IDs, ids, e.Mask, mask)
	}
	n := 0
	for j, m := range e.Mask {
		if m && e.IDs[j] == 275 {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d trained <|im_end|> tokens, want 2", n)
	}
	prompt, err := f.Prompt(convSystemMulti[:4])
	if err != nil || !slices.Equal(prompt, ids[:len(ids)-len(mustEncode(t, tok, "Google.<|im_end|>\n"))]) {
		t.Errorf("Prompt: %v, %v; want the ids before the last answer", prompt, err)
	}
}

func mustEncode(t *testing.T, tok *tokenizer.Tokenizer, s string) []int {
	e, err := tok.EncodeWith(s, tokenizer.EncodeOptions{NoTemplate: true})
	if err != nil {
		t.Fatal(err)
	}
	return e.IDs
}

func TestMaskOf(t *testing.T) {
	offs := [][2]int{{0, 0}, {0, 2}, {2, 4}, {4, 4}, {4, 6}, {5, 6}, {6, 9}, {9, 10}}
	spans := []Span{{3, 5}, {9, 10}}
	want := []bool{false, false, true, false, true, false, false, true}
	if got := maskOf(offs, spans); !slices.Equal(got, want) {
		t.Errorf("maskOf = %v, want %v", got, want)
	}
}
