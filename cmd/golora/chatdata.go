package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/golora/golora/chat"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/trainers"
)

// endOfText is the special token of GPT-2's built-in tokenizers.
const endOfText = "<|endoftext|>"

// chatOptions are the flags of the chat data formats, with the model they
// apply to (set by use before data is loaded).
type chatOptions struct {
	template string // --chat-template FILE
	pack     bool   // --pack
	skipBad  bool   // --skip-bad-lines

	tok    gpt.Tokenizer
	stderr io.Writer
	quiet  bool
	f      *chat.Formatter // built on first use
}

// register adds the chat data flags.
func (o *chatOptions) register(f *flags) {
	f.StringVar(&o.template, "chat-template", "", "Jinja chat template `FILE` (or a tokenizer_config.json) to use instead of the model's\n(default: the model's tokenizer_config.json chat_template, else ChatML)")
	f.BoolVar(&o.pack, "pack", false, "chat and prompt-completion data: join the examples and cut them into windows of\n--context tokens, instead of one truncated example each")
	f.BoolVar(&o.skipBad, "skip-bad-lines", false, "leave out malformed JSONL lines (and say how many) instead of stopping at the first")
}

// use sets the model's tokenizer and where messages go.
func (o *chatOptions) use(tok gpt.Tokenizer, stderr io.Writer, quiet bool) {
	o.tok, o.stderr, o.quiet, o.f = tok, stderr, quiet, nil
}

// formatter returns the chat formatter of the model's tokenizer: its chat
// template, or --chat-template, or ChatML.
func (o *chatOptions) formatter() (*chat.Formatter, error) {
	if o.f != nil {
		return o.f, nil
	}
	f, err := newFormatter(o.tok, o.template)
	if err != nil {
		return nil, err
	}
	o.f = f
	return f, nil
}

// newFormatter builds the formatter of tok with the template file path
// (or the tokenizer's own template, or ChatML).
func newFormatter(tok gpt.Tokenizer, path string) (*chat.Formatter, error) {
	if tok == nil {
		return nil, fmt.Errorf("chat data needs a model's tokenizer")
	}
	var tmpl *chat.Template
	var err error
	if path != "" {
		if err := checkInputFile("chat-template", path); err != nil {
			return nil, err
		}
		if tmpl, err = chat.LoadTemplate(path); err != nil {
			return nil, fmt.Errorf("--chat-template: %w", err)
		}
	}
	var coder chat.TokenCoder
	var specials chat.SpecialTokens
	if ht := gpt.FileTokenizerOf(tok); ht != nil {
		coder = chat.FromTokenizer(ht)
		name := func(id int) string { s, _ := ht.Token(id); return s }
		specials = chat.SpecialTokens{BOS: name(ht.BOS()), EOS: name(ht.EOS()), PAD: name(ht.PAD()), UNK: name(ht.UNK())}
		if specials.EOS == "" {
			specials.EOS = name(tok.EOT())
		}
		if tmpl == nil && ht.ChatTemplate() != "" {
			if tmpl, err = chat.NewTemplate("the model's chat_template", ht.ChatTemplate()); err != nil {
				return nil, err
			}
		}
	} else {
		// GPT-2's tokenizer_config.json names <|endoftext|> for all three.
		coder = chat.FromFuncs(tok.Encode, tok.Decode, map[string]int{endOfText: tok.EOT()})
		specials = chat.SpecialTokens{BOS: endOfText, EOS: endOfText, UNK: endOfText}
	}
	if tmpl == nil {
		tmpl = chat.ChatML()
	}
	return chat.NewFormatter(tmpl.WithTokens(specials), coder)
}

// plainEnds are the ids around a plain prompt-completion record: the
// tokenizer's post-processor prefix (Llama's BOS) and its end of text.
func plainEnds(tok gpt.Tokenizer) ([]int, int) {
	if ht := gpt.FileTokenizerOf(tok); ht != nil {
		prefix, _ := ht.TemplateIDs()
		eos := ht.EOS()
		if eos < 0 {
			eos = tok.EOT()
		}
		return prefix, eos
	}
	return nil, tok.EOT()
}

// load reads path as chat or prompt-completion data when format says so
// (or, for auto, its first line does); ok is false for the other formats.
func (o *chatOptions) load(flagName, path, format string, ctx int) (ds trainers.Dataset, used string, ok bool, err error) {
	switch format {
	case chat.FormatChat, chat.FormatPromptCompletion:
	case "", "auto":
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, "", true, fmt.Errorf("--%s %s: %w", flagName, path, unwrapPath(err))
		}
		if format = chat.DetectFormat(b); format == "" {
			return nil, "", false, nil
		}
	default:
		return nil, "", false, nil
	}
	f, err := o.formatter()
	if err != nil {
		return nil, "", true, err
	}
	d, err := chat.LoadJSONL(path, chat.ReadOptions{Format: format, SkipBadLines: o.skipBad})
	if err != nil {
		return nil, "", true, fmt.Errorf("--%s: %w", flagName, err)
	}
	prefix, eos := plainEnds(o.tok)
	set, st, err := f.Dataset(d, chat.DatasetOptions{Context: ctx, Pack: o.pack, Prefix: prefix, EOS: eos})
	if err != nil {
		return nil, "", true, fmt.Errorf("--%s: %w", flagName, err)
	}
	if !o.quiet && o.stderr != nil {
		o.report(flagName, d, st, f)
	}
	return set, format, true, nil
}

// report says what was read, on stderr.
func (o *chatOptions) report(flagName string, d *chat.Data, st chat.DatasetStats, f *chat.Formatter) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "--%s %s: %d %s records, template %s, %d tokens (%d trained) → %d examples", flagName, d.Name, st.Records, d.Format,
		f.Template().Name(), st.Tokens, st.Trained, st.Examples)
	if o.pack {
		b.WriteString(" (packed)")
	}
	if st.Truncated > 0 {
		fmt.Fprintf(&b, "; %d longer than the context, cut to their start", st.Truncated)
	}
	if st.Dropped > 0 {
		fmt.Fprintf(&b, "; %d left out with nothing trained within the context", st.Dropped)
	}
	b.WriteString("\n")
	if d.Skipped > 0 {
		fmt.Fprintf(&b, "--%s %s: skipped %d malformed lines (--skip-bad-lines); the first: %v\n", flagName, d.Name, d.Skipped, d.SkipErrors[0])
	}
	o.stderr.Write(b.Bytes())
}

// unused reports chat flags given for data that is not chat or
// prompt-completion (an option never silently does nothing).
func (o *chatOptions) unused(flagName, path string) error {
	for _, f := range []struct {
		name string
		set  bool
	}{{"chat-template", o.template != ""}, {"pack", o.pack}, {"skip-bad-lines", o.skipBad}} {
		if f.set {
			return usagef("--%s applies to chat and prompt-completion data, and --%s %s is not JSONL of either (see --format)", f.name, flagName, path)
		}
	}
	return nil
}
