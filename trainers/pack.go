package trainers

import (
	"errors"
	"fmt"
)

// fitMasked cuts an example with a Mask to its first ctx+1 tokens and
// their mask. A conversation longer than the context keeps its start (the
// system prompt and first turns), as Hugging Face TRL truncates.
// A mask of the wrong length (which fill reports) is cut to fit.
func fitMasked(ex Example, ctx int) ([]int, []bool) {
	n := min(len(ex.Tokens), ctx+1)
	return ex.Tokens[:n], ex.Mask[:min(n, len(ex.Mask))]
}

// TargetsWithin counts the scored tokens of ex that a context of ctx
// tokens keeps (ctx ≤ 0: all of them), after the cut the batches make.
func TargetsWithin(ex Example, ctx int) int {
	n := len(ex.Tokens)
	if ctx > 0 {
		if ex.Mask != nil {
			n = min(n, ctx+1)
		} else {
			toks, p := fit(ex, ctx)
			return max(0, len(toks)-max(p, 1))
		}
	}
	c := 0
	for j := 1; j < n; j++ {
		if ex.Target(j) {
			c++
		}
	}
	return c
}

// Pack joins the examples into one token stream and cuts it into windows
// of ctx+1 tokens that overlap by one token, as TextDataset does, each
// token keeping whether it is scored: a window's mask is the slice of the
// examples' masks it covers (an example without a Mask scores its tokens
// from PromptLen on). Every scored token is a target in exactly one window,
// except the very first token of the stream, which no window can predict.
// The tail shorter than a window becomes a shorter last window. Windows
// with no scored token are left out. Attention is not reset between the
// examples a window joins (as in simple packing elsewhere): a token sees
// the end of the example before it.
func Pack(exs []Example, ctx int, name string) (*ExampleSet, error) {
	if ctx < 1 {
		return nil, fmt.Errorf("trainers: pack %s: context %d, want ≥ 1", name, ctx)
	}
	var toks []int
	var mask []bool
	for i, ex := range exs {
		if ex.Mask != nil && len(ex.Mask) != len(ex.Tokens) {
			return nil, fmt.Errorf("trainers: pack %s: example %d has %d mask entries for %d tokens", name, i, len(ex.Mask), len(ex.Tokens))
		}
		for j := range ex.Tokens {
			// The first token of an example is scored in the stream when
			// its mask says so: it now has the previous example before it.
			scored := ex.Target(j) || (j == 0 && ex.Mask != nil && ex.Mask[0])
			toks = append(toks, ex.Tokens[j])
			mask = append(mask, scored)
		}
	}
	if len(toks) < 2 {
		return nil, errors.New("trainers: pack " + name + ": fewer than two tokens")
	}
	set := &ExampleSet{Name: name}
	for lo := 0; lo+1 < len(toks); lo += ctx {
		hi := min(lo+ctx+1, len(toks))
		w := Example{Tokens: toks[lo:hi], Mask: append([]bool(nil), mask[lo:hi]...)}
		w.Mask[0] = false // the window's first token is input only
		if TargetsWithin(w, 0) > 0 {
			set.Examples = append(set.Examples, w)
		}
	}
	if len(set.Examples) == 0 {
		return nil, fmt.Errorf("trainers: pack %s: no window has a scored token", name)
	}
	return set, nil
}
