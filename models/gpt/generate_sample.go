package gpt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// ban sets to −Inf the logit of every token that would repeat an n-gram of
// the generated tokens hist: each token that followed an earlier occurrence
// of hist's last n−1 tokens.
func (g *Generator) ban(x []float64, hist []int) {
	n := g.opts.NoRepeatNGram
	if n == 0 || len(hist)+1 < n {
		return
	}
	tail := hist[len(hist)-(n-1):]
	for i := 0; i+n-1 < len(hist); i++ {
		if slices.Equal(hist[i:i+n-1], tail) {
			x[hist[i+n-1]] = math.Inf(-1)
		}
	}
}

// logSumExp returns log Σ exp(x), with the max taken out; −Inf when every
// entry is −Inf, and an error for a NaN or +Inf logit.
func logSumExp(x []float64) (float64, error) {
	m := math.Inf(-1)
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 1) {
			return 0, fmt.Errorf("logit %d is %v", i, v)
		}
		m = max(m, v)
	}
	if math.IsInf(m, -1) {
		return m, nil
	}
	var s float64
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s), nil
}

// argmax is the index of the largest entry, the lowest on ties.
func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// sample draws a token from softmax(x/Temperature) restricted to the TopK
// most likely tokens and then to the smallest most likely set whose
// probability reaches TopP. Candidates are ordered by logit (lowest id
// first on ties), so TopK = 1 or a tiny TopP pick the greedy token.
func (g *Generator) sample(x []float64, rng *rand.Rand) int {
	o := g.opts
	g.idx = g.idx[:0]
	for i, v := range x {
		if !math.IsInf(v, -1) {
			g.idx = append(g.idx, i)
		}
	}
	cands := g.idx
	if (o.TopK > 0 && o.TopK < len(cands)) || (o.TopP > 0 && o.TopP < 1) {
		slices.SortFunc(cands, func(a, b int) int {
			switch {
			case x[a] > x[b]:
				return -1
			case x[a] < x[b]:
				return 1
			}
			return a - b
		})
		if o.TopK > 0 && o.TopK < len(cands) {
			cands = cands[:o.TopK]
		}
	}
	m := math.Inf(-1)
	for _, i := range cands {
		m = max(m, x[i])
	}
	g.prob = grow(g.prob, len(cands))[:len(cands)]
	var total float64
	for j, i := range cands {
		g.prob[j] = math.Exp((x[i] - m) / o.Temperature)
		total += g.prob[j]
	}
	if o.TopP > 0 && o.TopP < 1 {
		var acc float64
		for j := range cands {
			acc += g.prob[j]
			if acc >= o.TopP*total {
				cands, total = cands[:j+1], acc
				break
			}
		}
	}
	u := rng.Float64() * total
	for j, i := range cands {
		u -= g.prob[j]
		if u < 0 {
			return i
		}
	}
	return cands[len(cands)-1] // rounding left u ≥ 0 after the last one
}
