package gpt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/golora/golora/graph"
)

// genRun is one Generate call in progress.
type genRun struct {
	g       *Generator
	prompts [][]int
	keep    int
	out     []Generation
	groups  []*genGroup
	next    int   // next prompt to start
	src     []int // pending cache reorder, row ← row
	ids     [][]int
	one     [][1]int
}

// genGroup is the rows [first, first+beams) of the step decoder and the
// prompt they decode.
type genGroup struct {
	first  int
	prompt int // −1 when free
	steps  int // tokens generated so far
	beams  []genBeam
	best   *genBeam // best finished hypothesis (beam search)
	bestSc float64  // its score
	stop   int      // its stop token, −1 for none
	rng    *rand.Rand
}

// genBeam is one live sequence (or a finished hypothesis).
type genBeam struct {
	alive  bool
	tokens []int
	logp   float64
}

func (r *genRun) loop() error {
	g := r.g
	rows := g.step.rows
	r.src = make([]int, rows)
	for i := range r.src {
		r.src[i] = i
	}
	r.ids = make([][]int, rows)
	r.one = make([][1]int, rows)
	g.stepCache.Reset()
	for {
		for _, gr := range r.groups {
			for gr.prompt < 0 && r.next < len(r.prompts) {
				if err := r.start(gr, r.next); err != nil {
					return err
				}
				r.next++
			}
		}
		active := false
		for i := range r.ids {
			r.ids[i] = nil
		}
		for _, gr := range r.groups {
			if gr.prompt < 0 {
				continue
			}
			active = true
			for k, b := range gr.beams {
				if b.alive {
					row := gr.first + k
					r.one[row][0] = b.tokens[len(b.tokens)-1]
					r.ids[row] = r.one[row][:]
				}
			}
		}
		if !active {
			return nil
		}
		if err := r.flushReorder(); err != nil {
			return err
		}
		logits, _, err := g.step.Decode(g.stepCache, r.ids)
		if err != nil {
			return fmt.Errorf("gpt: generate: %w", err)
		}
		v := g.m.VocabSize()
		for _, gr := range r.groups {
			if gr.prompt < 0 {
				continue
			}
			if err := r.advance(gr, func(k int) logitsRow { return rowOf(logits, (gr.first+k)*v, v) }); err != nil {
				return err
			}
		}
	}
}

// flushReorder applies the pending row copies of the last advance.
func (r *genRun) flushReorder() error {
	moved := false
	for i, s := range r.src {
		moved = moved || s != i
	}
	if !moved {
		return nil
	}
	if err := r.g.stepCache.Reorder(r.src); err != nil {
		return fmt.Errorf("gpt: generate: %w", err)
	}
	for i := range r.src {
		r.src[i] = i
	}
	return nil
}

// logitsRow is one row of a logits Array.
type logitsRow struct {
	f32 []float32
	f64 []float64
}

func rowOf(a graph.Array, off, n int) logitsRow {
	if a.F64 != nil {
		return logitsRow{f64: a.F64[off : off+n]}
	}
	return logitsRow{f32: a.F32[off : off+n]}
}

// copyTo writes the row into dst as float64s.
func (l logitsRow) copyTo(dst []float64) {
	if l.f64 != nil {
		copy(dst, l.f64)
		return
	}
	for i, x := range l.f32 {
		dst[i] = float64(x)
	}
}

// start feeds prompt p through the prefill decoder into the group's first
// row and takes the first generation step from its logits.
func (r *genRun) start(gr *genGroup, p int) error {
	g := r.g
	prompt := r.prompts[p]
	cropped := max(0, len(prompt)-r.keep)
	prompt = prompt[cropped:]
	g.preCache.Reset()
	var logits graph.Array
	for at := 0; at < len(prompt); at += g.pre.tokens {
		var err error
		chunk := prompt[at:min(at+g.pre.tokens, len(prompt))]
		if logits, _, err = g.pre.Decode(g.preCache, [][]int{chunk}); err != nil {
			return fmt.Errorf("gpt: generate: prompt %d: %w", p, err)
		}
	}
	from := make([]int, g.stepCache.rows)
	for i := range from {
		from[i] = -1
	}
	from[gr.first] = 0
	if err := g.stepCache.CopyRows(g.preCache, from); err != nil {
		return fmt.Errorf("gpt: generate: prompt %d: %w", p, err)
	}
	*gr = genGroup{first: gr.first, prompt: p, beams: make([]genBeam, g.beams), stop: -1}
	gr.beams[0].alive = true
	if g.opts.Temperature > 0 {
		gr.rng = rand.New(rand.NewPCG(g.opts.Seed, uint64(p)))
	}
	r.out[p].Cropped = cropped
	return r.advance(gr, func(int) logitsRow { return rowOf(logits, 0, g.m.VocabSize()) })
}

// advance takes one generation step for the group from the logits of its
// live rows, and finishes the group when it is done.
func (r *genRun) advance(gr *genGroup, logits func(k int) logitsRow) error {
	if r.g.opts.Beams > 0 {
		return r.advanceBeams(gr, logits)
	}
	g := r.g
	b := &gr.beams[0]
	x := g.row
	logits(0).copyTo(x)
	g.ban(x, b.tokens)
	lse, err := logSumExp(x)
	if err != nil {
		return fmt.Errorf("gpt: generate: prompt %d step %d: %w", gr.prompt, gr.steps, err)
	}
	if math.IsInf(lse, -1) { // every token banned
		return r.finish(gr, b.tokens, b.logp, -1)
	}
	var tok int
	if g.opts.Temperature > 0 {
		tok = g.sample(x, gr.rng)
	} else {
		tok = argmax(x)
	}
	b.logp += x[tok] - lse
	gr.steps++
	if slices.Contains(g.stops, tok) {
		return r.finish(gr, b.tokens, b.logp, tok)
	}
	b.tokens = append(b.tokens, tok)
	halt := g.opts.OnToken != nil && !g.opts.OnToken(gr.prompt, tok)
	if halt || gr.steps == g.opts.MaxNewTokens {
		return r.finish(gr, b.tokens, b.logp, -1)
	}
	return nil
}

// finish records the group's result and frees its rows.
func (r *genRun) finish(gr *genGroup, tokens []int, logp float64, stop int) error {
	n := len(tokens)
	if stop >= 0 {
		n++
	}
	out := &r.out[gr.prompt]
	out.Tokens = slices.Clone(tokens)
	if out.Tokens == nil {
		out.Tokens = []int{}
	}
	out.Stop = stop
	out.LogProb = logp
	out.Score = logp
	if r.g.opts.Beams > 0 && n > 0 {
		out.Score = logp / math.Pow(float64(n), r.g.opts.LengthPenalty)
	}
	gr.prompt = -1
	return nil
}
