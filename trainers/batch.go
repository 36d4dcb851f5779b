package trainers

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
)

// Position is where a run is in its training data, enough to continue it
// exactly: the epoch's order is recomputed from the RNG state saved before
// it was shuffled.
type Position struct {
	Epoch  int    `json:"epoch"`  // epochs started; 0 before the first batch
	Cursor int    `json:"cursor"` // examples of the current epoch already drawn
	Len    int    `json:"len"`    // examples in the training set, checked on resume
	RNG    []byte `json:"rng"`    // data RNG state before the current epoch's shuffle
}

// sampler draws training examples epoch by epoch, each epoch in a fresh
// seeded random order.
type sampler struct {
	n    int
	rng  *rand.PCG
	perm []int
	pos  Position
}

func newSampler(n int, seed uint64) *sampler {
	s := &sampler{n: n, rng: rand.NewPCG(seed, dataStream)}
	s.pos = Position{Len: n, RNG: mustMarshal(s.rng)}
	return s
}

// mustMarshal returns a PCG's state; PCG.MarshalBinary cannot fail.
func mustMarshal(r *rand.PCG) []byte {
	b, _ := r.MarshalBinary()
	return b
}

// restore continues from p, which must be for a dataset of s.n examples.
func (s *sampler) restore(p Position) error {
	if p.Len != s.n {
		return fmt.Errorf("trainers: data position is for a training set of %d examples, this one has %d", p.Len, s.n)
	}
	if p.Epoch < 0 || p.Cursor < 0 || p.Cursor > s.n {
		return fmt.Errorf("trainers: data position epoch %d cursor %d is out of range for %d examples", p.Epoch, p.Cursor, s.n)
	}
	if err := s.rng.UnmarshalBinary(p.RNG); err != nil {
		return fmt.Errorf("trainers: data position RNG state: %w", err)
	}
	s.pos = Position{Epoch: p.Epoch, Cursor: p.Cursor, Len: p.Len, RNG: append([]byte(nil), p.RNG...)}
	s.perm = nil
	if p.Epoch > 0 {
		s.shuffle()
	}
	return nil
}

// shuffle draws the current epoch's order from the RNG.
func (s *sampler) shuffle() {
	if len(s.perm) != s.n {
		s.perm = make([]int, s.n)
	}
	permute(s.perm, s.rng)
}

// next returns the dataset index of the next training example.
func (s *sampler) next() int {
	if s.pos.Epoch == 0 || s.pos.Cursor == s.n {
		s.pos.RNG = mustMarshal(s.rng)
		s.shuffle()
		s.pos.Epoch++
		s.pos.Cursor = 0
	}
	i := s.perm[s.pos.Cursor]
	s.pos.Cursor++
	return i
}

// position returns a copy of the current position.
func (s *sampler) position() Position {
	p := s.pos
	p.RNG = append([]byte(nil), p.RNG...)
	return p
}

// epochs is the number of passes made so far, fractional.
func (s *sampler) epochs() float64 {
	if s.pos.Epoch == 0 {
		return 0
	}
	return float64(s.pos.Epoch-1) + float64(s.pos.Cursor)/float64(s.n)
}

// permute fills perm with a uniformly random permutation of 0…n−1 (Fisher–
// Yates). It uses only PCG's specified Uint64 stream, so a saved order
// stays valid whatever Go's own shuffling algorithms do.
func permute(perm []int, r *rand.PCG) {
	for i := range perm {
		perm[i] = i
	}
	for i := len(perm) - 1; i > 0; i-- {
		j := int(uniform(r, uint64(i+1)))
		perm[i], perm[j] = perm[j], perm[i]
	}
}

// uniform returns a uniform integer in [0, n) by Lemire's multiply-and-reject
// method.
func uniform(r *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// batch is one padded micro-batch: rows sequences of T positions, row-major.
type batch struct {
	rows, T int
	ids     []int     // [rows·T] inputs
	targets []int     // [rows·T] next tokens
	mask    []float64 // [rows·T] 1 where the loss counts
	weight  float64   // Σ mask: the loss tokens
	tokens  int       // input tokens that are not padding
}

// fit cuts ex to at most ctx+1 tokens: prompt tokens from the left first
// (keeping at least one), then tokens from the end. It returns the tokens and
// the prompt length within them. An example with a Mask keeps its first
// ctx+1 tokens (see fitMasked).
func fit(ex Example, ctx int) ([]int, int) {
	if ex.Mask != nil {
		toks, _ := fitMasked(ex, ctx)
		return toks, 0
	}
	toks := ex.Tokens
	p := min(max(ex.PromptLen, 0), len(toks))
	if cut := len(toks) - (ctx + 1); cut > 0 {
		drop := min(cut, max(p-1, 0))
		toks, p = toks[drop:], p-drop
		if len(toks) > ctx+1 {
			toks = toks[:ctx+1]
		}
	}
	return toks, p
}

// fill builds b from exs (at most rows of them; missing rows are padding)
// for a model of vocab tokens. bucket > 0 pads to the longest row rounded up
// to a multiple of bucket; 0 pads to ctx. what and idx name the examples in
// errors.
func (b *batch) fill(exs []Example, idx []int, what string, rows, ctx, bucket, vocab int) error {
	T := ctx
	if bucket > 0 {
		longest := 1
		for _, ex := range exs {
			toks, _ := fit(ex, ctx)
			longest = max(longest, len(toks)-1)
		}
		T = min(ctx, (longest+bucket-1)/bucket*bucket)
	}
	n := rows * T
	b.rows, b.T = rows, T
	b.ids = resize(b.ids, n)
	b.targets = resize(b.targets, n)
	b.mask = resize(b.mask, n)
	clear(b.ids)
	clear(b.targets)
	clear(b.mask)
	b.weight, b.tokens = 0, 0
	for r, ex := range exs {
		toks, p := fit(ex, ctx)
		var mask []bool
		if ex.Mask != nil {
			if len(ex.Mask) != len(ex.Tokens) {
				return fmt.Errorf("trainers: %s example %d: %d mask entries for %d tokens", what, idx[r], len(ex.Mask), len(ex.Tokens))
			}
			_, mask = fitMasked(ex, ctx)
		}
		for j, id := range toks {
			if id < 0 || id >= vocab {
				return fmt.Errorf("trainers: %s example %d: token %d at position %d is outside the vocabulary [0, %d)", what, idx[r], id, j, vocab)
			}
		}
		if len(toks) < 2 {
			continue
		}
		off := r * T
		copy(b.ids[off:], toks[:len(toks)-1])
		copy(b.targets[off:], toks[1:])
		for j := max(p, 1); j < len(toks); j++ {
			if mask != nil && !mask[j] {
				continue
			}
			b.mask[off+j-1] = 1 // target toks[j] sits at input position j−1
			b.weight++
		}
		b.tokens += len(toks) - 1
	}
	return nil
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
