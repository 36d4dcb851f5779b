package gpt

import (
	"fmt"
	"math"
	"slices"
)

// candidate is a possible next beam: the parent's slot, the token and the
// new log-probability.
type candidate struct {
	parent, token int
	logp          float64
}

// advanceBeams takes one beam search step, as the LoRA paper's script does:
// the Beams best (parent, token) continuations over all live beams become
// the next beams; those ending in a stop token are finished hypotheses,
// scored logP/n^α, and stop taking part. After MaxNewTokens steps the live
// beams are finished too. The best finished hypothesis wins. The group
// stops early once no live beam can still beat it.
func (r *genRun) advanceBeams(gr *genGroup, logits func(k int) logitsRow) error {
	g := r.g
	nb := g.beams
	x := g.row
	var cands []candidate
	for k := range gr.beams {
		b := &gr.beams[k]
		if !b.alive {
			continue
		}
		logits(k).copyTo(x)
		g.ban(x, b.tokens)
		lse, err := logSumExp(x)
		if err != nil {
			return fmt.Errorf("gpt: generate: prompt %d step %d beam %d: %w", gr.prompt, gr.steps, k, err)
		}
		if math.IsInf(lse, -1) {
			continue
		}
		cands = append(cands, topTokens(x, nb, k, b.logp-lse)...)
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		switch {
		case a.logp > b.logp:
			return -1
		case a.logp < b.logp:
			return 1
		case a.parent != b.parent:
			return a.parent - b.parent
		}
		return a.token - b.token
	})
	cands = cands[:min(nb, len(cands))]
	gr.steps++
	alpha := g.opts.LengthPenalty
	offer := func(parent []int, tok int, logp float64, n int) {
		score := logp / math.Pow(float64(n), alpha)
		if gr.best == nil || score > gr.bestSc {
			gr.best = &genBeam{tokens: slices.Clone(parent), logp: logp}
			gr.bestSc, gr.stop = score, tok
		}
	}
	// The next beams: a continuation stays in its parent's row when it is
	// the parent's first; the others take free rows, copied from the parent.
	next := make([]genBeam, nb)
	taken := make([]bool, nb)
	var moved []candidate
	for _, c := range cands {
		parent := gr.beams[c.parent].tokens
		if slices.Contains(g.stops, c.token) {
			offer(parent, c.token, c.logp, gr.steps)
			continue
		}
		if !taken[c.parent] {
			taken[c.parent] = true
			next[c.parent] = genBeam{alive: true, tokens: append(slices.Clone(parent), c.token), logp: c.logp}
			continue
		}
		moved = append(moved, c)
	}
	free := 0
	for _, c := range moved {
		for taken[free] {
			free++
		}
		taken[free] = true
		next[free] = genBeam{alive: true, tokens: append(slices.Clone(gr.beams[c.parent].tokens), c.token), logp: c.logp}
		r.src[gr.first+free] = gr.first + c.parent
	}
	gr.beams = next
	if gr.steps == g.opts.MaxNewTokens {
		for _, b := range gr.beams {
			if b.alive {
				offer(b.tokens, -1, b.logp, gr.steps)
			}
		}
		return r.finishBeams(gr)
	}
	// Stop when no live beam can beat the best: a live beam's log-probability
	// s ≤ 0 only falls, so over the lengths n it may still finish at,
	// s/n^α is at most max(s/(steps+1)^α, s/MaxNewTokens^α).
	done := true
	for _, b := range gr.beams {
		if !b.alive {
			continue
		}
		bound := max(b.logp/math.Pow(float64(gr.steps+1), alpha), b.logp/math.Pow(float64(g.opts.MaxNewTokens), alpha))
		if gr.best == nil || bound > gr.bestSc {
			done = false
			break
		}
	}
	if done {
		return r.finishBeams(gr)
	}
	return nil
}

// finishBeams records the best hypothesis and undoes the group's pending
// row copies, which no longer matter.
func (r *genRun) finishBeams(gr *genGroup) error {
	for k := range gr.beams {
		r.src[gr.first+k] = gr.first + k
	}
	if gr.best == nil {
		return r.finish(gr, nil, math.Inf(-1), -1)
	}
	return r.finish(gr, gr.best.tokens, gr.best.logp, gr.stop)
}

// topTokens returns the n candidates with the largest x from parent slot k,
// with log-probability base + x (lowest id first on ties).
func topTokens(x []float64, n, k int, base float64) []candidate {
	top := make([]candidate, 0, n+1)
	for i, v := range x {
		if math.IsInf(v, -1) || (len(top) == n && v <= top[n-1].logp) {
			continue
		}
		j := len(top)
		for j > 0 && top[j-1].logp < v {
			j--
		}
		top = slices.Insert(top, j, candidate{parent: k, token: i, logp: v})
		if len(top) > n {
			top = top[:n]
		}
	}
	for i := range top {
		top[i].logp += base
	}
	return top
}
