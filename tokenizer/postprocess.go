package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// postProcessor is what Encode does after the model: the special tokens a
// TemplateProcessing puts around the text, and the ByteLevel offset trim.
// Sequences of post-processors flatten into one.
type postProcessor struct {
	prefix, suffix []int // ids around the text (single-sequence template)
	trimOffsets    bool  // ByteLevel trim_offsets
	addPrefixSpace bool  // ByteLevel add_prefix_space, which the trim consults
}

func parsePostProcessor(o *object, lookup func(string) (int, bool)) (*postProcessor, error) {
	p := &postProcessor{}
	if o == nil {
		return p, nil
	}
	return p, p.add(o, lookup, map[string]bool{})
}

func (p *postProcessor) add(o *object, lookup func(string) (int, bool), seen map[string]bool) error {
	t, err := o.typ()
	if err != nil {
		return err
	}
	switch t {
	case "ByteLevel":
		trim, err := o.boolean("trim_offsets", true)
		if err != nil {
			return err
		}
		aps, err := o.boolean("add_prefix_space", true)
		if err != nil {
			return err
		}
		if trim {
			p.trimOffsets, p.addPrefixSpace = true, aps
		}
		o.ignore("use_regex")
	case "TemplateProcessing":
		if seen[t] {
			return o.errorf("a second TemplateProcessing is not supported")
		}
		seen[t] = true
		if err := p.template(o, lookup); err != nil {
			return err
		}
	case "Sequence":
		list, err := o.objects("processors")
		if err != nil {
			return err
		}
		for _, c := range list {
			if err := p.add(c, lookup, seen); err != nil {
				return err
			}
		}
	default:
		return unsupported(o, "post-processor", t, "TemplateProcessing", "ByteLevel", "Sequence")
	}
	return o.done()
}

// template reads a TemplateProcessing: its "single" template must be
// special tokens, then the text ($A) once, then special tokens. "pair" is
// checked for form but not used (golora encodes single texts).
func (p *postProcessor) template(o *object, lookup func(string) (int, bool)) error {
	specials, err := o.object("special_tokens")
	if err != nil {
		return err
	}
	ids := map[string][]int{}
	if specials != nil {
		for name := range specials.m {
			so, err := specials.object(name)
			if err != nil {
				return err
			}
			if so == nil {
				return specials.errorf("%q: null", name)
			}
			var st struct {
				ID     string   `json:"id"`
				IDs    []int    `json:"ids"`
				Tokens []string `json:"tokens"`
			}
			for _, k := range []struct {
				key string
				v   any
			}{{"id", &st.ID}, {"ids", &st.IDs}, {"tokens", &st.Tokens}} {
				if err := so.decode(k.key, k.v); err != nil {
					return err
				}
			}
			if err := so.done(); err != nil {
				return err
			}
			if len(st.IDs) != len(st.Tokens) || len(st.IDs) == 0 {
				return so.errorf("want as many ids as tokens, at least one")
			}
			for i, tok := range st.Tokens {
				if id, ok := lookup(tok); !ok || id != st.IDs[i] {
					return so.errorf("token %q has id %d here but %s in the vocabulary", tok, st.IDs[i], idText(id, ok))
				}
			}
			ids[name] = st.IDs
		}
	}
	single, err := o.objects("single")
	if err != nil {
		return err
	}
	if single == nil {
		return o.errorf("TemplateProcessing: no \"single\" template")
	}
	seenA := false
	for _, item := range single {
		kind, id, err := templateItem(item)
		if err != nil {
			return err
		}
		switch {
		case kind == "Sequence" && id == "A" && !seenA:
			seenA = true
		case kind == "Sequence":
			return item.errorf("sequence %q: the single template must hold $A once", id)
		default:
			tok, ok := ids[id]
			if !ok {
				return item.errorf("special token %q is not in special_tokens", id)
			}
			if seenA {
				p.suffix = append(p.suffix, tok...)
			} else {
				p.prefix = append(p.prefix, tok...)
			}
		}
	}
	if !seenA {
		return o.errorf("single template has no $A")
	}
	pair, err := o.objects("pair")
	if err != nil {
		return err
	}
	for _, item := range pair {
		kind, id, err := templateItem(item)
		if err != nil {
			return err
		}
		if _, ok := ids[id]; kind == "SpecialToken" && !ok {
			return item.errorf("special token %q is not in special_tokens", id)
		}
	}
	return nil
}

// templateItem reads {"SpecialToken": {"id": …, "type_id": …}} or
// {"Sequence": {"id": "A"|"B", "type_id": …}}.
func templateItem(item *object) (kind, id string, err error) {
	if len(item.m) != 1 {
		return "", "", item.errorf("want one of SpecialToken or Sequence")
	}
	for k := range item.m {
		kind = k
	}
	if kind != "SpecialToken" && kind != "Sequence" {
		return "", "", item.errorf("template item %q: want SpecialToken or Sequence", kind)
	}
	io, err := item.object(kind)
	if err != nil {
		return "", "", err
	}
	if io == nil {
		return "", "", item.errorf("%s: null", kind)
	}
	if id, err = io.str("id", ""); err != nil {
		return "", "", err
	}
	io.ignore("type_id") // type ids are not part of what golora returns
	if kind == "Sequence" && id != "A" && id != "B" {
		return "", "", io.errorf("sequence id %q: want A or B", id)
	}
	return kind, id, io.done()
}

func idText(id int, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprint(id)
}

// trim moves each token's offsets past the spaces ('Ġ' or white space) at
// either end of its string, as the ByteLevel post-processor does with
// trim_offsets: the first token keeps a single leading space that
// add_prefix_space put there.
func (p *postProcessor) trim(e *Encoding) {
	if !p.trimOffsets {
		return
	}
	isSp := func(r rune) bool { return r == 'Ġ' || isSpace(r) }
	for i, tok := range e.Tokens {
		lead, trail := 0, 0
		for s := tok; s != ""; {
			r, w := utf8.DecodeRuneInString(s)
			if !isSp(r) {
				break
			}
			lead++
			s = s[w:]
		}
		for s := tok; s != ""; {
			r, w := utf8.DecodeLastRuneInString(s)
			if !isSp(r) {
				break
			}
			trail++
			s = s[:len(s)-w]
		}
		off := &e.Offsets[i]
		if lead > 0 {
			if (i == 0 || off[0] == 0) && p.addPrefixSpace && lead == 1 {
				lead = 0
			}
			off[0] = min(off[0]+lead, off[1])
		}
		if trail > 0 && off[1] >= trail {
			off[1] = max(off[1]-trail, off[0])
		}
	}
}
