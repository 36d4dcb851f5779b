package chat

import (
	"fmt"
	"strings"
	"unicode"
)

// Span is a byte range [Start, End) of rendered text.
type Span struct{ Start, End int }

// Encoded is a conversation as training sees it.
type Encoded struct {
	Text    string   // the rendered conversation
	Spans   []Span   // the trained assistant turns in Text, each through its end-of-turn token
	IDs     []int    // the tokens of Text
	Offsets [][2]int // each token's byte range in Text
	Mask    []bool   // Mask[j]: token j lies in a span (is a training target)
}

// Formatter renders conversations with a template and tokenizes them with
// their loss mask. It is safe for concurrent use.
type Formatter struct {
	tmpl    *Template
	coder   TokenCoder
	endText string // the end-of-turn text ("" when the template has none)
	endID   int    // its token id, or −1 when it is not one token
}

// probe is assistant content that no template changes.
const probe = "golora-probe-7f3a"

// NewFormatter returns a Formatter of t and c, finding the template's
// end-of-turn text by rendering a short conversation: what follows the
// assistant's content in its turn starts with a special token of c
// (ChatML's "<|im_end|>", Llama 3's "<|eot_id|>"), or, for the built-in
// ChatML with a tokenizer that lacks its tokens (GPT-2), is "<|im_end|>"
// as text, or else is the rest of the turn without trailing white space
// ("" when the template ends the turn with nothing).
func NewFormatter(t *Template, c TokenCoder) (*Formatter, error) {
	if t == nil || c == nil {
		return nil, fmt.Errorf("chat: new formatter: nil template or tokenizer")
	}
	f := &Formatter{tmpl: t, coder: c, endID: -1}
	var rest string
	var err error
	for _, head := range [][]Message{{{Role: RoleUser, Content: "Hi"}},
		{{Role: RoleSystem, Content: "S"}, {Role: RoleUser, Content: "Hi"}}} {
		if rest, err = f.afterContent(head); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	for _, s := range specialsLongestFirst(c) {
		if strings.HasPrefix(rest, s) {
			f.endText = s
			f.endID = c.SpecialTokens()[s]
			return f, nil
		}
	}
	if t.IsChatML() && strings.HasPrefix(rest, chatMLEnd) {
		f.endText = chatMLEnd
		return f, nil
	}
	f.endText = strings.TrimRightFunc(rest, unicode.IsSpace)
	return f, nil
}

// afterContent renders head and then head with an assistant turn, and
// returns what the template writes after the assistant's content.
func (f *Formatter) afterContent(head []Message) (string, error) {
	p, err := f.tmpl.Render(head, true)
	if err != nil {
		return "", err
	}
	full, err := f.tmpl.Render(append(head[:len(head):len(head)], Message{Role: RoleAssistant, Content: probe}), false)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(full, p) {
		return "", fmt.Errorf("chat: template %s: the generation prompt %q is not how it starts an assistant turn (the conversation renders as %q)", f.tmpl.Name(), p, full)
	}
	i := strings.Index(full[len(p):], probe)
	if i < 0 {
		return "", fmt.Errorf("chat: template %s drops the assistant's content", f.tmpl.Name())
	}
	return full[len(p)+i+len(probe):], nil
}

// Template is the formatter's template.
func (f *Formatter) Template() *Template { return f.tmpl }

// Coder is the formatter's tokenizer.
func (f *Formatter) Coder() TokenCoder { return f.coder }

// EndOfTurn returns the text that ends an assistant turn and its token id
// (−1 when the text is not a single token, or is "").
func (f *Formatter) EndOfTurn() (string, int) { return f.endText, f.endID }

// Render renders msgs and finds the trained assistant turns by rendering
// incrementally: turn k starts where the rendering of messages 1…k−1 with
// the generation prompt ends (which must be a prefix of the whole
// conversation's rendering: templates render earlier turns the same
// whatever follows) and ends after the first end-of-turn text from there
// on. Without an end-of-turn text, the turn ends where the rendering of
// messages 1…k ends, less trailing white space.
func (f *Formatter) Render(c Conversation) (string, []Span, error) {
	msgs := c.Messages
	full, err := f.tmpl.Render(msgs, false)
	if err != nil {
		return "", nil, err
	}
	var spans []Span
	for k := range msgs {
		if !c.Trained(k) {
			continue
		}
		if f.endText != "" && strings.Contains(msgs[k].Content, f.endText) {
			return "", nil, fmt.Errorf("message %d (assistant) contains the end-of-turn text %q", k+1, f.endText)
		}
		p, err := f.tmpl.Render(msgs[:k], true)
		if err != nil {
			return "", nil, fmt.Errorf("message %d: rendering the messages before it: %w", k+1, err)
		}
		if !strings.HasPrefix(full, p) {
			return "", nil, fmt.Errorf("message %d: template %s renders the turns before it differently when more follow, so the turn cannot be found by incremental rendering", k+1, f.tmpl.Name())
		}
		sp := Span{Start: len(p)}
		if len(spans) > 0 && sp.Start < spans[len(spans)-1].End {
			return "", nil, fmt.Errorf("message %d: template %s starts this turn inside the previous one", k+1, f.tmpl.Name())
		}
		if f.endText != "" {
			i := strings.Index(full[sp.Start:], f.endText)
			if i < 0 {
				return "", nil, fmt.Errorf("message %d: no end-of-turn %q after the assistant's turn", k+1, f.endText)
			}
			sp.End = sp.Start + i + len(f.endText)
		} else {
			upto, err := f.tmpl.Render(msgs[:k+1], false)
			if err != nil {
				return "", nil, fmt.Errorf("message %d: %w", k+1, err)
			}
			if !strings.HasPrefix(full, upto) {
				return "", nil, fmt.Errorf("message %d: template %s renders this turn differently when more follow", k+1, f.tmpl.Name())
			}
			sp.End = len(strings.TrimRightFunc(upto, unicode.IsSpace))
			sp.End = max(sp.End, sp.Start)
		}
		spans = append(spans, sp)
	}
	return full, spans, nil
}

// Encode renders c (Render) and tokenizes the text: Mask[j] is set for
// every token whose byte range overlaps a trained turn, so each turn's
// tokens, its end-of-turn token included, are targets and nothing else is.
// Token boundaries come from the tokenizer's offsets, never from encoding
// pieces separately.
func (f *Formatter) Encode(c Conversation) (*Encoded, error) {
	text, spans, err := f.Render(c)
	if err != nil {
		return nil, err
	}
	ids, offs, err := f.coder.EncodeOffsets(text)
	if err != nil {
		return nil, err
	}
	return &Encoded{Text: text, Spans: spans, IDs: ids, Offsets: offs, Mask: maskOf(offs, spans)}, nil
}

// maskOf marks each range of offs that overlaps one of spans (sorted,
// disjoint); empty ranges (tokens a post-processor added) are never marked.
func maskOf(offs [][2]int, spans []Span) []bool {
	mask := make([]bool, len(offs))
	s := 0
	for j, o := range offs {
		if o[1] <= o[0] {
			continue
		}
		for s < len(spans) && spans[s].End <= o[0] {
			s++
		}
		mask[j] = s < len(spans) && spans[s].Start < o[1] && o[0] < spans[s].End
	}
	return mask
}

// Prompt returns the token ids that make the model answer msgs: their
// rendering with the generation prompt.
func (f *Formatter) Prompt(msgs []Message) ([]int, error) {
	text, err := f.tmpl.Render(msgs, true)
	if err != nil {
		return nil, err
	}
	ids, _, err := f.coder.EncodeOffsets(text)
	return ids, err
}

// CutAnswer returns generated text up to the end-of-turn text (all of it
// when the text is not there): the answer, when the end-of-turn is not a
// single token that generation stops at.
func (f *Formatter) CutAnswer(generated string) string {
	if f.endText == "" {
		return generated
	}
	answer, _, _ := strings.Cut(generated, f.endText)
	return answer
}
