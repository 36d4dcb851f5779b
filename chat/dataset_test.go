package chat

import (
	"slices"
	"strings"
	"testing"
)

func TestDataset(t *testing.T) {
	f, err := NewFormatter(ChatML(), bytesCoder())
	if err != nil {
		t.Fatal(err)
	}
	data := `{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
{"messages": [{"role": "system", "content": "` + strings.Repeat("s", 100) + `"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "late"}]}
{"prompt": "2+2=", "completion": "4"}
`
	// The third line is prompt-completion: read the two formats apart.
	lines := strings.SplitAfter(data, "\n")
	chatData, err := ReadJSONL(strings.NewReader(lines[0]+lines[1]), "c.jsonl", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// ChatML of the first: 51 bytes before "a<|im_end|>" (11 bytes) and "\n", 63 in all.
	set, st, err := f.Dataset(chatData, DatasetOptions{Context: 70, EOS: -1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 2 || st.Examples != 1 || st.Truncated != 1 || st.Dropped != 1 || st.Trained != 11+14 {
		t.Errorf("stats %+v: want 2 records, 1 example, 1 truncated and dropped, 25 trained", st)
	}
	if len(set.Examples) != 1 || len(set.Examples[0].Tokens) != 63 {
		t.Errorf("examples %+v", set.Examples)
	}
	set, st, err = f.Dataset(chatData, DatasetOptions{Context: 60, Pack: true, EOS: -1})
	if err != nil {
		t.Fatal(err)
	}
	trained := 0
	for _, ex := range set.Examples {
		for j := range ex.Tokens {
			if ex.Target(j) {
				trained++
			}
		}
	}
	if trained != 25 || st.Examples != len(set.Examples) || st.Dropped != 0 {
		t.Errorf("packed: %d trained targets in %d windows (stats %+v), want all 25", trained, len(set.Examples), st)
	}

	pc, err := ReadJSONL(strings.NewReader(lines[2]), "pc.jsonl", ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set, _, err = f.Dataset(pc, DatasetOptions{Context: 60, Prefix: []int{1}, EOS: 0})
	if err != nil {
		t.Fatal(err)
	}
	ex := set.Examples[0]
	want := append([]int{1}, append([]int{'2', '+', '2', '=', '4'}, 0)...)
	if !slices.Equal(ex.Tokens, want) || ex.PromptLen != 5 || ex.Mask != nil {
		t.Errorf("plain prompt-completion: %+v, want tokens %v with PromptLen 5", ex, want)
	}

	bad, _ := ReadJSONL(strings.NewReader("\n"+`{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x<|im_end|>"}]}`), "b.jsonl", ReadOptions{})
	if _, _, err := f.Dataset(bad, DatasetOptions{Context: 60}); err == nil || !strings.Contains(err.Error(), "b.jsonl line 2: message 2 (assistant) contains the end-of-turn text") {
		t.Errorf("bad conversation: %v", err)
	}
	if _, _, err := f.Dataset(chatData, DatasetOptions{Context: 10}); err == nil || !strings.Contains(err.Error(), "no record has a trained token within the first 11 tokens") {
		t.Errorf("context too short: %v", err)
	}
}

func TestNewDataCutAnswer(t *testing.T) {
	f, _ := NewFormatter(ChatML(), bytesCoder())
	d := NewData("made", []Conversation{{Messages: []Message{{Role: RoleUser, Content: "q"}, {Role: RoleAssistant, Content: "a"}}}})
	set, _, err := f.Dataset(d, DatasetOptions{Context: 100, EOS: -1})
	if err != nil || len(set.Examples) != 1 || d.Records[0].Line != 1 {
		t.Errorf("NewData: %v, %v", set, err)
	}
	if got := f.CutAnswer("Hi!<|im_end|>\n<|im_start|>"); got != "Hi!" {
		t.Errorf("CutAnswer = %q", got)
	}
	if got := f.CutAnswer("no end"); got != "no end" {
		t.Errorf("CutAnswer = %q", got)
	}
}
