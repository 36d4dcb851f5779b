package chat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// convSystemMulti is a system prompt and two exchanges.
var convSystemMulti = []Message{
	{Role: RoleSystem, Content: "You are terse."},
	{Role: RoleUser, Content: "What is Go?"},
	{Role: RoleAssistant, Content: "A programming language."},
	{Role: RoleUser, Content: "Who made it?"},
	{Role: RoleAssistant, Content: "Google."},
}

func TestChatML(t *testing.T) {
	tm := ChatML()
	cases := []struct {
		name string
		msgs []Message
		gen  bool
		want string
	}{
		{"one user turn with the generation prompt", convSystemMulti[1:2], true,
			"<|im_start|>user\nWhat is Go?<|im_end|>\n<|im_start|>assistant\n"},
		{"system and two exchanges", convSystemMulti, false,
			"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is Go?<|im_end|>\n<|im_start|>assistant\nA programming language.<|im_end|>\n" +
				"<|im_start|>user\nWho made it?<|im_end|>\n<|im_start|>assistant\nGoogle.<|im_end|>\n"},
		{"content is not a template", []Message{{Role: RoleUser, Content: "{{ 1 + 1 }} {% if %}"}}, false,
			"<|im_start|>user\n{{ 1 + 1 }} {% if %}<|im_end|>\n"},
		{"nothing", nil, true, "<|im_start|>assistant\n"},
	}
	for _, c := range cases {
		got, err := tm.Render(c.msgs, c.gen)
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v\nwant %q", c.name, got, err, c.want)
		}
	}
	if !tm.IsChatML() || tm.Name() != ChatMLName {
		t.Errorf("ChatML(): IsChatML %v, Name %q", tm.IsChatML(), tm.Name())
	}
}

func TestTemplateVariables(t *testing.T) {
	src := "{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|{{ tools is none }}|{{ strftime_now('%d %b %Y %H:%M %%') }}|{{ add_generation_prompt }}|{% for m in messages %}{{ m.role }}={{ m['content'] }};{% endfor %}"
	tm, err := NewTemplate("vars", src)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Date(2024, 7, 5, 9, 3, 0, 0, time.UTC) }
	tm = tm.WithTokens(SpecialTokens{BOS: "<s>", EOS: "</s>"}).WithClock(clock)
	got, err := tm.Render([]Message{{Role: RoleUser, Content: "hi"}}, true)
	want := "<s>|</s>|False|True|05 Jul 2024 09:03 %|True|user=hi;" // Python's spelling, as transformers renders
	if err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := NewTemplate("bad", "{% for x in %}"); err == nil || !strings.Contains(err.Error(), "template bad") {
		t.Errorf("a bad template: got %v, want an error naming it", err)
	}
	if _, err := NewTemplate("empty", " \n"); err == nil {
		t.Error("an empty template: no error")
	}
	raising, _ := NewTemplate("raising", "{{ raise_exception('only user and assistant roles are supported') }}")
	if _, err := raising.Render(nil, false); err == nil || !strings.Contains(err.Error(), "only user and assistant roles are supported") || !strings.Contains(err.Error(), "raising") {
		t.Errorf("raise_exception: got %v", err)
	}
}

func TestLoadTemplate(t *testing.T) {
	dir := t.TempDir()
	jinjaFile := filepath.Join(dir, "t.jinja")
	os.WriteFile(jinjaFile, []byte(ChatMLSource), 0o644)
	cfg := filepath.Join(dir, "tokenizer_config.json")
	os.WriteFile(cfg, []byte(`{"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "{{ 'D' }}"}]}`), 0o644)
	noTmpl := filepath.Join(dir, "other.json")
	os.WriteFile(noTmpl, []byte(`{"bos_token": "<s>"}`), 0o644)
	if tm, err := LoadTemplate(jinjaFile); err != nil || !tm.IsChatML() || tm.Name() != jinjaFile {
		t.Errorf("jinja file: %v", err)
	}
	if tm, err := LoadTemplate(cfg); err != nil {
		t.Error(err)
	} else if s, _ := tm.Render(nil, false); s != "D" {
		t.Errorf("tokenizer_config.json default template rendered %q", s)
	}
	if _, err := LoadTemplate(noTmpl); err == nil || !strings.Contains(err.Error(), `no "chat_template" key`) {
		t.Errorf("JSON without a template: %v", err)
	}
	if _, err := LoadTemplate(filepath.Join(dir, "missing.jinja")); err == nil {
		t.Error("missing file: no error")
	}
}
