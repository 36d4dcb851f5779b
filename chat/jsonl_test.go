package chat

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestReadJSONL(t *testing.T) {
	data := `{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}

{"messages": [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1", "weight": 0}, {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"}], "id": "extra keys at the top are ignored"}
`
	d, err := ReadJSONL(strings.NewReader(data), "train.jsonl", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != FormatChat || len(d.Records) != 2 || d.Records[0].Line != 1 || d.Records[1].Line != 3 {
		t.Fatalf("got format %q, %d records, lines %d %d", d.Format, len(d.Records), d.Records[0].Line, d.Records[1].Line)
	}
	c := d.Records[1].Conversation
	if c.Line != 3 || len(c.Messages) != 4 || c.Trained(1) || !c.Trained(3) || c.Trained(2) {
		t.Fatalf("record 2: %+v", c)
	}

	pc := `{"prompt": "2+2=", "completion": " 4"}
{"prompt": [{"role": "user", "content": "2+2?"}], "completion": [{"role": "assistant", "content": "4"}]}
`
	d, err = ReadJSONL(strings.NewReader(pc), "pc.jsonl", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != FormatPromptCompletion || !d.Records[0].Plain || d.Records[0].Prompt != "2+2=" || d.Records[0].Completion != " 4" {
		t.Fatalf("plain record: %+v", d.Records[0])
	}
	if r := d.Records[1]; r.Plain || len(r.Conversation.Messages) != 2 || !r.Conversation.Trained(1) {
		t.Fatalf("conversational record: %+v", r)
	}
}

func TestReadJSONLErrors(t *testing.T) {
	good := `{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}`
	cases := []struct {
		name, line, format, want string
	}{
		{"bad JSON", `{"messages": [`, FormatChat, "line 2: invalid JSON"},
		{"not JSON at all", `hello`, FormatChat, "line 2: invalid JSON"},
		{"two values", good + ` {}`, FormatChat, "line 2: invalid JSON: more than one value"},
		{"unknown role", `{"messages": [{"role": "user", "content": "Q"}, {"role": "bot", "content": "A"}]}`, FormatChat, `line 2: messages message 2: unknown role "bot", want system, user or assistant`},
		{"empty conversation", `{"messages": []}`, FormatChat, `line 2: "messages" is empty: the conversation has no messages`},
		{"no messages key", `{"conversation": []}`, FormatChat, `line 2: no "messages" key`},
		{"messages not a list", `{"messages": "hi"}`, FormatChat, `line 2: "messages": want a list of messages`},
		{"content not a string", `{"messages": [{"role": "user", "content": 3}]}`, FormatChat, `line 2: messages message 1 (user): want a string "content"`},
		{"missing role", `{"messages": [{"content": "x"}]}`, FormatChat, `line 2: messages message 1: want a string "role"`},
		{"unsupported key", `{"messages": [{"role": "assistant", "content": "", "tool_calls": []}]}`, FormatChat, `key "tool_calls" is not supported`},
		{"no assistant", `{"messages": [{"role": "user", "content": "Q"}]}`, FormatChat, "line 2: no assistant message to train on"},
		{"every assistant weight 0", `{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "weight": 0}]}`, FormatChat, "line 2: no assistant message to train on"},
		{"bad weight", `{"messages": [{"role": "assistant", "content": "A", "weight": 0.5}]}`, FormatChat, `"weight" 0.5, want 0 or 1`},
		{"weight on user", `{"messages": [{"role": "user", "content": "A", "weight": 1}]}`, FormatChat, `"weight" applies to assistant messages only`},
		{"null line", `null`, FormatChat, "want a JSON object, got null"},
		{"prompt without completion", `{"prompt": "x"}`, FormatPromptCompletion, `line 2: want both "prompt" and "completion" keys`},
		{"empty completion", `{"prompt": "x", "completion": " "}`, FormatPromptCompletion, "line 2: empty completion"},
		{"mixed prompt-completion", `{"prompt": "x", "completion": [{"role": "assistant", "content": "y"}]}`, FormatPromptCompletion, "want two strings or two lists of messages"},
		{"completion without assistant", `{"prompt": [{"role": "user", "content": "x"}], "completion": [{"role": "user", "content": "y"}]}`, FormatPromptCompletion, "no assistant message to train on"},
	}
	for _, c := range cases {
		first := good
		if c.format == FormatPromptCompletion {
			first = `{"prompt": "a", "completion": "b"}`
		}
		_, err := ReadJSONL(strings.NewReader(first+"\n"+c.line+"\n"+first+"\n"), "data.jsonl", ReadOptions{})
		var le *LineError
		if err == nil || !errors.As(err, &le) || le.Line != 2 || le.File != "data.jsonl" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a line-2 error containing %q", c.name, err, c.want)
		}
		d, err := ReadJSONL(strings.NewReader(first+"\n"+c.line+"\n"+first+"\n"), "data.jsonl", ReadOptions{SkipBadLines: true})
		if err != nil || d.Skipped != 1 || len(d.Records) != 2 || len(d.SkipErrors) != 1 || d.Records[1].Line != 3 {
			t.Errorf("%s with SkipBadLines: got %+v, %v; want 2 records and 1 skipped", c.name, d, err)
		}
	}
}

func TestReadJSONLFormat(t *testing.T) {
	cases := []struct {
		data, format, want string
	}{
		{"\n\n" + `{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}`, "", FormatChat},
		{`{"prompt": "a", "completion": "b"}`, "", FormatPromptCompletion},
		{`{"text": "plain"}`, "", `not a JSON object with "messages" or with "prompt" and "completion"`},
		{`{"prompt": "a", "completion": "b"}`, FormatChat, `no "messages" key`},
		{"", "", "has no records"},
		{"\n  \n", FormatChat, "has no records"},
		{`{"messages": []}`, "", "is empty"},
		{`x`, "yaml", `format "yaml"`},
	}
	for _, c := range cases {
		d, err := ReadJSONL(strings.NewReader(c.data), "f.jsonl", ReadOptions{Format: c.format})
		switch {
		case strings.HasPrefix(c.want, FormatChat) || strings.HasPrefix(c.want, FormatPromptCompletion):
			if err != nil || d.Format != c.want {
				t.Errorf("%q: got %v %v, want format %s", c.data, d, err, c.want)
			}
		case err == nil || !strings.Contains(err.Error(), c.want):
			t.Errorf("%q (format %q): got %v, want an error containing %q", c.data, c.format, err, c.want)
		}
	}
	if got := DetectFormat([]byte("plain text\nmore")); got != "" {
		t.Errorf("DetectFormat(plain text) = %q, want \"\"", got)
	}
	_, err := ReadJSONL(strings.NewReader("{bad\n{bad\n"), "f.jsonl", ReadOptions{Format: FormatChat, SkipBadLines: true})
	if err == nil || !strings.Contains(err.Error(), "no usable lines (2 skipped; first: f.jsonl line 1: invalid JSON") {
		t.Errorf("all lines bad with SkipBadLines: got %v", err)
	}
}

func TestWriteJSONL(t *testing.T) {
	convs := []Conversation{
		{Messages: []Message{{Role: RoleSystem, Content: "S <b>"}, {Role: RoleUser, Content: "Q\n\"x\""}, {Role: RoleAssistant, Content: "A", NoLoss: true}, {Role: RoleUser, Content: "Q2"}, {Role: RoleAssistant, Content: "A2 ✓"}}},
		{Messages: []Message{{Role: RoleUser, Content: "q"}, {Role: RoleAssistant, Content: ""}}},
	}
	var b strings.Builder
	if err := WriteJSONL(&b, convs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"weight":0`) || !strings.Contains(b.String(), "<b>") {
		t.Errorf("written: %s", b.String())
	}
	d, err := ReadJSONL(strings.NewReader(b.String()), "w.jsonl", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range d.Records {
		r.Conversation.Line = 0
		if fmt.Sprint(r.Conversation) != fmt.Sprint(convs[i]) {
			t.Errorf("conversation %d: read back %+v, wrote %+v", i, r.Conversation, convs[i])
		}
	}
}
