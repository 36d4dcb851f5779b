package chat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ardanlabs/jinja"
)

// ChatMLSource is the built-in template, ChatML: every message as
// "<|im_start|>ROLE\nCONTENT<|im_end|>\n", and "<|im_start|>assistant\n"
// as the generation prompt. Models without a chat template (GPT-2) get it.
const ChatMLSource = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// ChatMLName is the Name of the built-in template.
const ChatMLName = "chatml"

// chatMLEnd is ChatML's end-of-turn text.
const chatMLEnd = "<|im_end|>"

// SpecialTokens are the texts of a tokenizer's special tokens, passed to a
// template as bos_token, eos_token, pad_token and unk_token ("" leaves a
// variable undefined, as transformers does for a token the tokenizer lacks).
type SpecialTokens struct {
	BOS, EOS, PAD, UNK string
}

// Template is a compiled Jinja chat template (tokenizer_config.json's
// chat_template), rendered as transformers' apply_chat_template renders it:
// with messages, add_generation_prompt, tools (none), the special tokens,
// raise_exception and strftime_now, and trim_blocks and lstrip_blocks on.
// A Template is safe for concurrent use.
type Template struct {
	name, source string
	t            *jinja.Template
	tokens       SpecialTokens
	now          func() time.Time
	vars         map[string]jinja.Value
}

// NewTemplate compiles source; name (a file, or "tokenizer_config.json")
// is used in errors.
func NewTemplate(name, source string) (*Template, error) {
	if strings.TrimSpace(source) == "" {
		return nil, fmt.Errorf("chat: template %s is empty", name)
	}
	t, err := jinja.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("chat: template %s: %w", name, err)
	}
	return &Template{name: name, source: source, t: t, now: time.Now}, nil
}

// LoadTemplate reads a template file: a Jinja file, or a JSON file with a
// "chat_template" string (tokenizer_config.json).
func LoadTemplate(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chat: template: %w", err)
	}
	src := string(b)
	if strings.HasSuffix(strings.ToLower(path), ".json") {
		src, err = templateFromJSON(b)
		if err != nil {
			return nil, fmt.Errorf("chat: template %s: %w", path, err)
		}
	}
	return NewTemplate(path, src)
}

// ChatML returns the built-in ChatML template (ChatMLSource).
func ChatML() *Template {
	t, err := NewTemplate(ChatMLName, ChatMLSource)
	if err != nil {
		panic("chat: the built-in ChatML template does not compile: " + err.Error())
	}
	return t
}

// Name says where the template came from.
func (t *Template) Name() string { return t.name }

// Source is the template's Jinja text.
func (t *Template) Source() string { return t.source }

// IsChatML reports whether t is the built-in ChatML template.
func (t *Template) IsChatML() bool { return t.source == ChatMLSource }

// WithTokens returns a copy of t that passes s to the template.
func (t *Template) WithTokens(s SpecialTokens) *Template {
	c := *t
	c.tokens = s
	return &c
}

// Tokens returns the special tokens t passes to the template.
func (t *Template) Tokens() SpecialTokens { return t.tokens }

// WithClock returns a copy of t whose strftime_now reads now instead of
// the system clock (Llama 3.1 and later print today's date).
func (t *Template) WithClock(now func() time.Time) *Template {
	c := *t
	c.now = now
	return &c
}

// WithVar returns a copy of t that also passes the variable name (a
// string, bool, int or float64) to the template, as transformers passes
// apply_chat_template's extra keyword arguments: Qwen3's enable_thinking,
// Llama 3.1's date_string.
func (t *Template) WithVar(name string, value any) (*Template, error) {
	var v jinja.Value
	switch x := value.(type) {
	case string:
		v = jinja.NewString(x)
	case bool:
		v = jinja.NewBool(x)
	case int:
		v = jinja.NewInt(int64(x))
	case float64:
		v = jinja.NewFloat(x)
	default:
		return nil, fmt.Errorf("chat: template variable %s: a %T, want a string, bool, int or float64", name, value)
	}
	switch name {
	case "messages", "add_generation_prompt":
		return nil, fmt.Errorf("chat: template variable %s is set by Render", name)
	}
	c := *t
	c.vars = make(map[string]jinja.Value, len(t.vars)+1)
	for k, x := range t.vars {
		c.vars[k] = x
	}
	c.vars[name] = v
	return &c, nil
}

// Render returns the text of msgs under the template, ending with the
// generation prompt (the start of an assistant turn) when
// addGenerationPrompt is set. Errors (raise_exception, a template that
// fails on the messages) name the template.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		list[i] = d
	}
	vars := map[string]jinja.Value{}
	for k, v := range t.vars {
		vars[k] = v
	}
	for k, v := range map[string]jinja.Value{
		"messages":              jinja.NewList(list),
		"add_generation_prompt": jinja.NewBool(addGenerationPrompt),
		"tools":                 jinja.None(),
		"documents":             jinja.None(),
		"strftime_now":          jinja.NewCallable("strftime_now", t.strftimeNow),
	} {
		if _, set := t.vars[k]; !set || k == "messages" || k == "add_generation_prompt" {
			vars[k] = v
		}
	}
	for _, v := range []struct{ key, text string }{{"bos_token", t.tokens.BOS}, {"eos_token", t.tokens.EOS},
		{"pad_token", t.tokens.PAD}, {"unk_token", t.tokens.UNK}} {
		if v.text != "" {
			vars[v.key] = jinja.NewString(v.text)
		}
	}
	out, err := t.t.RenderValues(vars)
	if err != nil {
		return "", fmt.Errorf("chat: template %s: %w", t.name, err)
	}
	return out, nil
}

// strftimeNow is the template's strftime_now(format).
func (t *Template) strftimeNow(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	if len(args) != 1 || !args[0].IsString() {
		return jinja.Undefined(), errors.New("strftime_now: want one format string")
	}
	return jinja.NewString(strftime(t.now(), args[0].AsString())), nil
}

// strftime formats tm with Python's strftime directives (the C locale):
// %Y %m %d %H %M %S %I %p %B %b %A %a %j %y %e %%. Others are kept as
// written.
func strftime(tm time.Time, format string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b.WriteByte(format[i])
			continue
		}
		i++
		two := func(n int) { b.WriteString(fmt.Sprintf("%02d", n)) }
		switch format[i] {
		case 'Y':
			b.WriteString(strconv.Itoa(tm.Year()))
		case 'y':
			two(tm.Year() % 100)
		case 'm':
			two(int(tm.Month()))
		case 'd':
			two(tm.Day())
		case 'e':
			b.WriteString(fmt.Sprintf("%2d", tm.Day()))
		case 'H':
			two(tm.Hour())
		case 'I':
			two((tm.Hour()+11)%12 + 1)
		case 'M':
			two(tm.Minute())
		case 'S':
			two(tm.Second())
		case 'p':
			b.WriteString(tm.Format("PM"))
		case 'B':
			b.WriteString(tm.Month().String())
		case 'b':
			b.WriteString(tm.Month().String()[:3])
		case 'A':
			b.WriteString(tm.Weekday().String())
		case 'a':
			b.WriteString(tm.Weekday().String()[:3])
		case 'j':
			b.WriteString(fmt.Sprintf("%03d", tm.YearDay()))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
