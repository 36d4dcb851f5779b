package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// AddedToken is an entry of tokenizer.json's "added_tokens": a token the
// tokenizer finds in the text before anything else and never splits, such
// as "<|begin_of_text|>" or "<|im_start|>".
type AddedToken struct {
	ID      int
	Content string
	// Special tokens are skipped by Decode when DecodeOptions.SkipSpecialTokens
	// is set, and are not matched when EncodeOptions.SplitSpecialTokens is.
	Special bool
	// SingleWord: match only where no word character (Unicode letters,
	// marks, decimal digits, connector punctuation) touches either end.
	SingleWord bool
	// LStrip and RStrip: the token also takes the white space on its left
	// (right), which is then not encoded separately.
	LStrip, RStrip bool
	// Normalized: match in the normalized text rather than in the input.
	Normalized bool
}

// trieNode is a node of a byte trie over added-token contents.
type trieNode struct {
	next map[byte]int32
	tok  int32 // index into matcher.tokens of the token ending here, or −1
}

// matcher finds added tokens in text: leftmost match first and, among the
// matches starting there, the longest (Hugging Face's Aho-Corasick with
// MatchKind::LeftmostLongest).
type matcher struct {
	tokens []*AddedToken
	nodes  []trieNode
	first  [256]bool // bytes a token can start with
}

func newMatcher(tokens []*AddedToken) *matcher {
	m := &matcher{tokens: tokens, nodes: []trieNode{{tok: -1}}}
	for i, t := range tokens {
		n := int32(0)
		for k := 0; k < len(t.Content); k++ {
			c := t.Content[k]
			nx, ok := m.nodes[n].next[c]
			if !ok {
				if m.nodes[n].next == nil {
					m.nodes[n].next = map[byte]int32{}
				}
				nx = int32(len(m.nodes))
				m.nodes = append(m.nodes, trieNode{tok: -1})
				m.nodes[n].next[c] = nx
			}
			n = nx
		}
		m.nodes[n].tok = int32(i)
		m.first[t.Content[0]] = true
	}
	return m
}

// longestAt returns the index of the longest token starting at s[i:] and
// its length, or −1.
func (m *matcher) longestAt(s string, i int) (int, int) {
	best, bestLen := -1, 0
	n := int32(0)
	for k := i; k < len(s); k++ {
		nx, ok := m.nodes[n].next[s[k]]
		if !ok {
			break
		}
		n = nx
		if t := m.nodes[n].tok; t >= 0 {
			best, bestLen = int(t), k+1-i
		}
	}
	return best, bestLen
}

// addedMatch is an added token found at s[lo:hi] (the range includes any
// white space the token strips).
type addedMatch struct {
	tok    *AddedToken
	lo, hi int
}

// find returns the added tokens in s, in order, honouring SingleWord,
// LStrip and RStrip; special tokens are passed over when skipSpecial.
func (m *matcher) find(s string, skipSpecial bool) []addedMatch {
	if m == nil || len(m.tokens) == 0 {
		return nil
	}
	var out []addedMatch
	done := 0 // end of the last match
	for i := 0; i < len(s); {
		if !m.first[s[i]] {
			i++
			continue
		}
		t, n := m.longestAt(s, i)
		if t < 0 {
			i++
			continue
		}
		tok := m.tokens[t]
		start, stop := i, i+n
		i = stop
		if skipSpecial && tok.Special {
			continue
		}
		if tok.SingleWord {
			if start > 0 && endsWithWordChar(s[:start]) || stop < len(s) && startsWithWordChar(s[stop:]) {
				continue
			}
		}
		if tok.LStrip {
			start = max(trimRightSpace(s[:start]), done)
		}
		if tok.RStrip {
			stop += len(s[stop:]) - len(trimLeftSpace(s[stop:]))
			i = stop
		}
		out = append(out, addedMatch{tok, start, stop})
		done = stop
	}
	return out
}

// isWordChar is Rust regex's Unicode \w: Alphabetic, marks, decimal digits,
// connector punctuation and the joiners.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Nl, r) ||
		unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Other_Alphabetic, r) || unicode.Is(unicode.Join_Control, r)
}

func endsWithWordChar(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordChar(r)
}

func startsWithWordChar(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordChar(r)
}

func isSpace(r rune) bool { return unicode.Is(unicode.White_Space, r) }

// trimRightSpace returns the length of s without its trailing white space.
func trimRightSpace(s string) int {
	j := len(s)
	for j > 0 {
		r, w := utf8.DecodeLastRuneInString(s[:j])
		if !isSpace(r) {
			break
		}
		j -= w
	}
	return j
}

// trimLeftSpace returns s without its leading white space.
func trimLeftSpace(s string) string {
	for s != "" {
		r, w := utf8.DecodeRuneInString(s)
		if !isSpace(r) {
			break
		}
		s = s[w:]
	}
	return s
}
