package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/golora/golora/chat"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/tokenizer"
)

// tokenizeChat is `golora tokenize --chat`.
type tokenizeChat struct {
	file, template, format, color string
	context                       int
	pack, skipBad                 bool
}

func (t *tokenizeChat) register(f *flags) {
	f.StringVar(&t.file, "chat", "", "chat or prompt-completion JSONL `FILE` to show as training sees it")
	f.StringVar(&t.format, "format", "auto", "with --chat: chat, prompt-completion or auto")
	f.StringVar(&t.template, "chat-template", "", "with --chat: Jinja chat template `FILE` instead of the model's")
	f.IntVar(&t.context, "context", 0, "with --chat: tokens per training sequence, to mark what is cut (0: finetune's default;\nno cut is shown with --tokenizer)")
	f.BoolVar(&t.pack, "pack", false, "with --chat: the data will be packed, so nothing is cut")
	f.BoolVar(&t.skipBad, "skip-bad-lines", false, "with --chat: leave out malformed lines instead of stopping")
	f.StringVar(&t.color, "color", "auto", "with --chat: highlight with terminal colours: auto (when stdout is a terminal),\nalways or never (then trained text is marked «like this»)")
}

// Terminal colours of the display: trained tokens alternate between two
// green backgrounds so that token boundaries show; cut tokens are red.
const (
	ansiTrainedA = "\x1b[30;42m"
	ansiTrainedB = "\x1b[30;102m"
	ansiPrompt   = "\x1b[2m"
	ansiCut      = "\x1b[9;31m"
	ansiReset    = "\x1b[0m"
)

func (t *tokenizeChat) run(c *cli, base, tokName string, asJSON bool) error {
	switch t.color {
	case "auto", "always", "never":
	default:
		return usagef("--color %q: want auto, always or never", t.color)
	}
	if t.context < 0 {
		return usagef("--context %d: want ≥ 0", t.context)
	}
	if err := checkInputFile("chat", t.file); err != nil {
		return err
	}
	tok, ctx, err := t.tokenizer(base, tokName)
	if err != nil {
		return err
	}
	if t.context > 0 {
		ctx = t.context
	}
	if t.pack {
		ctx = 0
	}
	f, err := newFormatter(tok, t.template)
	if err != nil {
		return err
	}
	format := t.format
	if format == "auto" {
		format = ""
	}
	d, err := chat.LoadJSONL(t.file, chat.ReadOptions{Format: format, SkipBadLines: t.skipBad})
	if err != nil {
		return fmt.Errorf("--chat: %w", err)
	}
	if d.Skipped > 0 {
		fmt.Fprintf(c.stderr, "--chat %s: skipped %d malformed lines; the first: %v\n", t.file, d.Skipped, d.SkipErrors[0])
	}
	prefix, eos := plainEnds(tok)
	color := t.color == "always" || (t.color == "auto" && isTerminal(c.stdout))
	var out bytes.Buffer
	if !asJSON {
		fmt.Fprintf(&out, "%s: %d %s records, template %s", t.file, len(d.Records), d.Format, f.Template().Name())
		if eot, id := f.EndOfTurn(); eot != "" {
			fmt.Fprintf(&out, ", end of turn %q", eot)
			if id < 0 {
				out.WriteString(" (text, not one token)")
			}
		}
		if color {
			fmt.Fprintf(&out, "\n%strained tokens%s, %suntrained%s", ansiTrainedA, ansiReset, ansiPrompt, ansiReset)
			if ctx > 0 {
				fmt.Fprintf(&out, ", %scut beyond --context %d%s", ansiCut, ctx, ansiReset)
			}
		} else {
			out.WriteString("\ntrained text is shown «like this»")
			if ctx > 0 {
				fmt.Fprintf(&out, "; tokens beyond --context %d are cut at ✂", ctx)
			}
		}
		out.WriteString("\n")
	}
	for _, r := range d.Records {
		ex, err := f.Example(r, prefix, eos)
		if err != nil {
			return fmt.Errorf("--chat: %w", &chat.LineError{File: t.file, Line: r.Line, Err: err})
		}
		mask := make([]int, len(ex.Tokens))
		trained := 0
		for j := range ex.Tokens {
			if ex.Target(j) {
				mask[j] = 1
				trained++
			}
		}
		if asJSON {
			b, _ := json.Marshal(struct {
				Line int   `json:"line"`
				IDs  []int `json:"ids"`
				Mask []int `json:"mask"`
			}{r.Line, ex.Tokens, mask})
			out.Write(append(b, '\n'))
			continue
		}
		fmt.Fprintf(&out, "\n── line %d: %d tokens, %d trained", r.Line, len(ex.Tokens), trained)
		if ctx > 0 && len(ex.Tokens) > ctx+1 {
			fmt.Fprintf(&out, ", %d beyond the context", len(ex.Tokens)-(ctx+1))
		}
		out.WriteString(" ──\n")
		pieces, err := tokenPieces(f, r, ex.Tokens)
		if err != nil {
			return fmt.Errorf("--chat: %s line %d: %w", t.file, r.Line, err)
		}
		writeHighlighted(&out, pieces, mask, ctx, color)
		out.WriteString("\n")
	}
	_, err = c.stdout.Write(out.Bytes())
	return err
}

// tokenizer returns the tokenizer of --base or --tokenizer and the default
// context (finetune's for a model; 0 for a bare tokenizer).
func (t *tokenizeChat) tokenizer(base, tokName string) (gpt.Tokenizer, int, error) {
	switch {
	case base != "" && tokName != "":
		return nil, 0, usagef("give --base or --tokenizer, not both")
	case base != "":
		tok, shape, err := loadFolderTokenizer("base", base)
		if err != nil {
			return nil, 0, err
		}
		return tok, min(shape.context(), 128), nil
	case tokName == "bytes" || tokName == "gpt2":
		tok, err := gpt.NewTokenizer(tokName)
		return tok, 0, err
	case tokName != "":
		st, err := os.Stat(tokName)
		if err != nil {
			return nil, 0, usagef("--tokenizer %q: want bytes, gpt2, or a tokenizer.json file or folder (%v)", tokName, err)
		}
		var ht *tokenizer.Tokenizer
		if st.IsDir() {
			ht, err = tokenizer.LoadDir(tokName)
		} else {
			ht, err = tokenizer.LoadFile(tokName)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("--tokenizer %s: %w", tokName, err)
		}
		eos := ht.EOS()
		if id, ok := ht.TokenID(endOfText); eos < 0 && ok {
			eos = id
		}
		if eos < 0 {
			return nil, 0, fmt.Errorf("--tokenizer %s: no end-of-sequence token", tokName)
		}
		tok, err := gpt.FileTokenizer(ht, eos)
		return tok, 0, err
	}
	return nil, 0, usagef("--base is required (or --tokenizer)")
}

// tokenPieces returns the text each token adds: a conversation's rendered
// text cut at its tokens' offsets (a character shared by several tokens
// goes with the first), or for a plain record the decoded ids.
func tokenPieces(f *chat.Formatter, r chat.Record, ids []int) ([]string, error) {
	pieces := make([]string, len(ids))
	if r.Plain {
		for j, id := range ids {
			s, err := f.Coder().Decode([]int{id})
			if err != nil {
				return nil, err
			}
			pieces[j] = s
		}
		return pieces, nil
	}
	e, err := f.Encode(r.Conversation)
	if err != nil {
		return nil, err
	}
	pos := 0
	for j, o := range e.Offsets {
		if o[1] > pos {
			pieces[j] = e.Text[max(pos, o[0]):o[1]]
			pos = o[1]
		}
	}
	return pieces, nil
}

// writeHighlighted writes the pieces, trained ones highlighted (colour, or
// «» without), and the tokens after ctx+1 (ctx > 0) marked as cut.
func writeHighlighted(w io.Writer, pieces []string, mask []int, ctx int, color bool) {
	var b strings.Builder
	open := false
	cur := "" // the colour in force
	for j, p := range pieces {
		cut := ctx > 0 && j > ctx
		if !color {
			if ctx > 0 && j == ctx+1 {
				if open {
					b.WriteString("»")
					open = false
				}
				b.WriteString("✂")
			}
			switch {
			case mask[j] == 1 && !open && !cut:
				b.WriteString("«")
				open = true
			case (mask[j] == 0 || cut) && open:
				b.WriteString("»")
				open = false
			}
			b.WriteString(p)
			continue
		}
		style := ansiPrompt
		switch {
		case cut:
			style = ansiCut
		case mask[j] == 1 && j%2 == 0:
			style = ansiTrainedA
		case mask[j] == 1:
			style = ansiTrainedB
		}
		// A run of one style is written once; newlines end the colour so
		// that the background does not fill the rest of the line.
		for i, line := range strings.Split(p, "\n") {
			if i > 0 {
				if cur != "" {
					b.WriteString(ansiReset)
					cur = ""
				}
				b.WriteString("\n")
			}
			if line == "" {
				continue
			}
			if style != cur {
				if cur != "" {
					b.WriteString(ansiReset)
				}
				b.WriteString(style)
				cur = style
			}
			b.WriteString(line)
		}
	}
	if cur != "" {
		b.WriteString(ansiReset)
	}
	if open {
		b.WriteString("»")
	}
	io.WriteString(w, b.String())
}
