package trainers

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// LocalGroup is a Collective engine whose ranks are goroutines of one
// process: each rank runs its own model and Trainer, and the group sums and
// copies their buffers in memory. It makes a data-parallel run testable
// without MPI and shows what an engine must do; it brings no speed-up that
// threads within one Trainer would not.
//
// Every collective waits until all ranks have called it, then computes the
// result once, summing in rank order (so every rank gets the same bits), and
// releases them all. Abort releases every waiting and later call with an
// error, so one failed rank cannot leave the others waiting; Timeout, when
// set before the first call, bounds each wait.
type LocalGroup struct {
	// Timeout bounds how long a rank waits for the others in one call (0:
	// no bound). After a timeout the group is aborted.
	Timeout time.Duration

	n     int
	mu    sync.Mutex
	cur   *round
	err   error // set by Abort: every later call returns it
	ranks []*LocalRank
}

// round is one collective call in progress.
type round struct {
	op      string // "sum" or "broadcast from rank N"
	dtype   string
	root    int // of a broadcast
	length  int
	joined  []bool
	f32     [][]float32
	f64     [][]float64
	arrived int
	done    chan struct{}
	err     error
}

// LocalRank is one rank's handle on a LocalGroup; it implements Collective.
type LocalRank struct {
	g    *LocalGroup
	rank int
}

var _ Collective = (*LocalRank)(nil)

// NewLocalGroup returns a group of n ≥ 1 ranks.
func NewLocalGroup(n int) (*LocalGroup, error) {
	if n < 1 {
		return nil, fmt.Errorf("trainers: local group of %d ranks, want ≥ 1", n)
	}
	g := &LocalGroup{n: n}
	for r := 0; r < n; r++ {
		g.ranks = append(g.ranks, &LocalRank{g: g, rank: r})
	}
	return g, nil
}

// Rank returns rank r's handle, 0 ≤ r < Size (nil outside).
func (g *LocalGroup) Rank(r int) *LocalRank {
	if r < 0 || r >= g.n {
		return nil
	}
	return g.ranks[r]
}

// Size is the number of ranks.
func (g *LocalGroup) Size() int { return g.n }

// Abort fails every call in progress and every later one with an error
// wrapping err (the first Abort wins).
func (g *LocalGroup) Abort(err error) {
	if err == nil {
		err = errors.New("aborted")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return
	}
	g.err = fmt.Errorf("trainers: local group aborted: %w", err)
	if c := g.cur; c != nil {
		c.err = g.err
		close(c.done)
		g.cur = nil
	}
}

// Rank is this rank's index.
func (r *LocalRank) Rank() int { return r.rank }

// Size is the number of ranks of the group.
func (r *LocalRank) Size() int { return r.g.n }

// AllReduceSumFloat32 sums buf over the ranks in rank order, in float32.
func (r *LocalRank) AllReduceSumFloat32(buf []float32) error {
	return r.g.call(r.rank, "sum", -1, len(buf), true, buf, nil)
}

// AllReduceSumFloat64 sums buf over the ranks in rank order.
func (r *LocalRank) AllReduceSumFloat64(buf []float64) error {
	return r.g.call(r.rank, "sum", -1, len(buf), false, nil, buf)
}

// BroadcastFloat32 copies rank root's buf into every rank's.
func (r *LocalRank) BroadcastFloat32(buf []float32, root int) error {
	if root < 0 || root >= r.g.n {
		return fmt.Errorf("trainers: local group: broadcast root %d out of range [0, %d)", root, r.g.n)
	}
	return r.g.call(r.rank, fmt.Sprintf("broadcast from rank %d", root), root, len(buf), true, buf, nil)
}

// BroadcastFloat64 copies rank root's buf into every rank's.
func (r *LocalRank) BroadcastFloat64(buf []float64, root int) error {
	if root < 0 || root >= r.g.n {
		return fmt.Errorf("trainers: local group: broadcast root %d out of range [0, %d)", root, r.g.n)
	}
	return r.g.call(r.rank, fmt.Sprintf("broadcast from rank %d", root), root, len(buf), false, nil, buf)
}

// call joins the current round (starting one if none), and the last rank to
// arrive computes it. A rank whose call differs from the round's (another
// operation, length or dtype) aborts the group: the ranks are out of step.
func (g *LocalGroup) call(rank int, op string, root, length int, op32 bool, f32 []float32, f64 []float64) error {
	dtype := "float64"
	if op32 {
		dtype = "float32"
	}
	g.mu.Lock()
	if g.err != nil {
		g.mu.Unlock()
		return g.err
	}
	c := g.cur
	if c == nil {
		c = &round{op: op, dtype: dtype, root: root, length: length, joined: make([]bool, g.n),
			f32: make([][]float32, g.n), f64: make([][]float64, g.n), done: make(chan struct{})}
		g.cur = c
	}
	var bad error
	switch {
	case c.op != op || c.length != length || c.dtype != dtype:
		bad = fmt.Errorf("rank %d called %s of %d %s while another rank is in %s of %d %s: the ranks are out of step", rank, op, length, dtype, c.op, c.length, c.dtype)
	case c.joined[rank]:
		bad = fmt.Errorf("rank %d joined one collective twice", rank)
	}
	if bad != nil {
		g.mu.Unlock()
		g.Abort(bad)
		return g.err
	}
	c.joined[rank], c.f32[rank], c.f64[rank] = true, f32, f64
	c.arrived++
	if c.arrived == g.n {
		c.compute()
		close(c.done)
		g.cur = nil
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	var expired <-chan time.Time
	if g.Timeout > 0 {
		t := time.NewTimer(g.Timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-c.done:
		return c.err
	case <-expired:
		g.Abort(fmt.Errorf("rank %d waited %v in %s of %d values: another rank stopped or hangs", rank, g.Timeout, op, length))
		<-c.done
		return c.err
	}
}

// compute performs the round on every rank's buffer.
func (c *round) compute() {
	if c.length == 0 {
		return
	}
	if c.op == "sum" {
		if c.dtype == "float32" {
			sumInto(c.f32)
		} else {
			sumInto(c.f64)
		}
		return
	}
	root := c.root
	for r := range c.f32 {
		if r != root {
			if c.dtype == "float32" {
				copy(c.f32[r], c.f32[root])
			} else {
				copy(c.f64[r], c.f64[root])
			}
		}
	}
}

// sumInto sets every bufs[r] to Σ_r bufs[r], added in rank order.
func sumInto[T float32 | float64](bufs [][]T) {
	for i := range bufs[0] {
		s := bufs[0][i]
		for r := 1; r < len(bufs); r++ {
			s += bufs[r][i]
		}
		for r := range bufs {
			bufs[r][i] = s
		}
	}
}
