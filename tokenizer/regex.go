package tokenizer

import (
	"fmt"
	"strings"

	"github.com/dlclark/regexp2/v2"
)

// pattern is a Split or Replace pattern: a literal string or a regex.
// Hugging Face compiles both with Oniguruma (Ruby syntax); golora compiles
// them with regexp2 (.NET syntax), which agrees with it on the constructs
// tokenizer files use: \p{L} and other Unicode classes, \s (both are
// Unicode White_Space), (?i:…), lookahead such as \s+(?!\S), counted
// repeats. As in Ruby, ^ and $ match at line breaks (Multiline).
type pattern struct {
	literal string // when re is nil
	re      *regexp2.Regexp
	src     string // for messages
}

// compilePattern reads {"String": s} or {"Regex": r}.
func compilePattern(o *object, key string) (*pattern, error) {
	po, err := o.object(key)
	if err != nil {
		return nil, err
	}
	if po == nil {
		return nil, o.errorf("%s: missing", key)
	}
	_, hasStr := po.m["String"]
	_, hasRx := po.m["Regex"]
	switch {
	case hasStr && !hasRx && len(po.m) == 1:
		s, err := po.str("String", "")
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, po.errorf("String: empty pattern")
		}
		return &pattern{literal: s, src: fmt.Sprintf("%q", s)}, nil
	case hasRx && !hasStr && len(po.m) == 1:
		s, err := po.str("Regex", "")
		if err != nil {
			return nil, err
		}
		re, err := compileRegex(s)
		if err != nil {
			return nil, po.errorf("Regex %q: %v", s, err)
		}
		return &pattern{re: re, src: fmt.Sprintf("regex %q", s)}, nil
	}
	return nil, po.errorf("want exactly one of \"String\" or \"Regex\"")
}

// compileRegex compiles an Oniguruma pattern from a tokenizer file. The
// backtracking stack is unbounded (a long run of spaces under \s+(?!\S)
// needs a deep one), so matching cannot fail on long input; no match
// timeout is set.
func compileRegex(src string) (*regexp2.Regexp, error) {
	return regexp2.Compile(src, regexp2.Multiline, regexp2.OptionMaxBacktrackingStackSize(-1))
}

// find returns the byte ranges of the successive non-overlapping matches of
// p in s. An empty match is reported and the search moves one character on.
func (p *pattern) find(s string) ([][2]int, error) {
	if p.re == nil {
		var out [][2]int
		for i := 0; i+len(p.literal) <= len(s); {
			j := indexFrom(s, p.literal, i)
			if j < 0 {
				break
			}
			out = append(out, [2]int{j, j + len(p.literal)})
			i = j + len(p.literal)
		}
		return out, nil
	}
	return findRegex(p.re, s)
}

func findRegex(re *regexp2.Regexp, s string) ([][2]int, error) {
	if s == "" {
		return nil, nil
	}
	idx, err := re.FindAllStringIndex(s, -1)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", re.String(), err)
	}
	out := make([][2]int, len(idx))
	for i, m := range idx {
		out[i] = [2]int{m[0], m[1]}
	}
	return out, nil
}

func indexFrom(s, sub string, from int) int {
	if j := strings.Index(s[from:], sub); j >= 0 {
		return from + j
	}
	return -1
}

// splitRange is one piece of a string cut by a pattern's matches.
type splitRange struct {
	lo, hi int
	match  bool
}

// cover turns matches into ranges covering all of s (length n), in order,
// each flagged as a match or not (Hugging Face's Pattern.find_matches).
// Empty matches are kept (the caller drops empty pieces).
func cover(matches [][2]int, n int) []splitRange {
	out := make([]splitRange, 0, 2*len(matches)+1)
	prev := 0
	for _, m := range matches {
		if prev != m[0] {
			out = append(out, splitRange{prev, m[0], false})
		}
		out = append(out, splitRange{m[0], m[1], true})
		prev = m[1]
	}
	if prev != n {
		out = append(out, splitRange{prev, n, false})
	}
	return out
}

// parseReplace reads a Replace step's "pattern" and "content" (both
// required), as normalizers and decoders spell them.
func parseReplace(o *object) (*pattern, string, error) {
	p, err := compilePattern(o, "pattern")
	if err != nil {
		return nil, "", err
	}
	if !o.has("content") {
		return nil, "", o.errorf("Replace: no \"content\"")
	}
	c, err := o.str("content", "")
	if err != nil {
		return nil, "", err
	}
	return p, c, nil
}
