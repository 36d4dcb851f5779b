package chat_test

import (
	"fmt"
	"strings"

	"github.com/golora/golora/chat"
)

// bytes is a one-token-per-byte tokenizer for the examples.
func bytesCoder() chat.TokenCoder {
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
	return chat.FromFuncs(enc, dec, nil)
}

func ExampleTemplate_Render() {
	msgs := []chat.Message{
		{Role: chat.RoleSystem, Content: "Be brief."},
		{Role: chat.RoleUser, Content: "What is Go?"},
	}
	text, err := chat.ChatML().Render(msgs, true)
	if err != nil {
		panic(err)
	}
	fmt.Print(text)
	// Output:
	// <|im_start|>system
	// Be brief.<|im_end|>
	// <|im_start|>user
	// What is Go?<|im_end|>
	// <|im_start|>assistant
}

func ExampleFormatter_Encode() {
	f, err := chat.NewFormatter(chat.ChatML(), bytesCoder())
	if err != nil {
		panic(err)
	}
	e, err := f.Encode(chat.Conversation{Messages: []chat.Message{
		{Role: chat.RoleUser, Content: "2+2?"},
		{Role: chat.RoleAssistant, Content: "4"},
		{Role: chat.RoleUser, Content: "3+3?"},
		{Role: chat.RoleAssistant, Content: "6"},
	}})
	if err != nil {
		panic(err)
	}
	// The trained bytes: each answer through its end-of-turn.
	var trained []string
	for _, s := range e.Spans {
		trained = append(trained, e.Text[s.Start:s.End])
	}
	fmt.Println(strings.Join(trained, " | "))
	n := 0
	for _, m := range e.Mask {
		if m {
			n++
		}
	}
	fmt.Printf("%d of %d tokens trained\n", n, len(e.IDs))
	// Output:
	// 4<|im_end|> | 6<|im_end|>
	// 22 of 132 tokens trained
}

func ExampleReadJSONL() {
	data := `{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
{"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "beep"}]}
`
	_, err := chat.ReadJSONL(strings.NewReader(data), "train.jsonl", chat.ReadOptions{})
	fmt.Println(err)
	d, _ := chat.ReadJSONL(strings.NewReader(data), "train.jsonl", chat.ReadOptions{SkipBadLines: true})
	fmt.Println(d.Format, len(d.Records), "records,", d.Skipped, "skipped")
	// Output:
	// train.jsonl line 2: messages message 2: unknown role "robot", want system, user or assistant
	// chat 1 records, 1 skipped
}
