package graph

import (
	"fmt"
	"math"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// RoPEConfig is a rotary position embedding: the base θ and an optional
// scaling rule of the frequencies, with transformers' names in brackets. The
// zero Type (or "default") is plain RoPE.
type RoPEConfig struct {
	// Theta is the base θ > 0 [rope_theta]: frequency i of a head of width
	// hd is θ^(−2i/hd).
	Theta float64
	// Type is the scaling rule [rope_type]: "" or "default" (none),
	// "linear" (every frequency divided by Factor) or "llama3" (Llama 3.1's
	// rule, see InvFreq). Other rules (dynamic, yarn, longrope, …) are
	// refused with an error naming them.
	Type string
	// Factor is the scaling factor of "linear" and "llama3", > 0 [factor].
	Factor float64
	// LowFreqFactor and HighFreqFactor bound the band of frequencies that
	// "llama3" interpolates; 0 < low < high [low_freq_factor,
	// high_freq_factor].
	LowFreqFactor, HighFreqFactor float64
	// OriginalMaxPositions is the context the model was pre-trained with,
	// for "llama3" [original_max_position_embeddings].
	OriginalMaxPositions int
}

// Validate reports the first problem with c, naming the field.
func (c RoPEConfig) Validate() error {
	pos := func(x float64) bool { return x > 0 && !math.IsInf(x, 0) }
	if !pos(c.Theta) {
		return fmt.Errorf("graph: rope: theta %v, want a finite value > 0", c.Theta)
	}
	switch c.Type {
	case "", "default":
	case "linear":
		if !pos(c.Factor) {
			return fmt.Errorf("graph: rope: linear scaling factor %v, want a finite value > 0", c.Factor)
		}
	case "llama3":
		switch {
		case !pos(c.Factor):
			return fmt.Errorf("graph: rope: llama3 scaling factor %v, want a finite value > 0", c.Factor)
		case !pos(c.LowFreqFactor) || !pos(c.HighFreqFactor) || c.HighFreqFactor <= c.LowFreqFactor:
			return fmt.Errorf("graph: rope: llama3 low_freq_factor %v and high_freq_factor %v, want 0 < low < high", c.LowFreqFactor, c.HighFreqFactor)
		case c.OriginalMaxPositions <= 0:
			return fmt.Errorf("graph: rope: llama3 original_max_position_embeddings %d, want > 0", c.OriginalMaxPositions)
		}
	default:
		return fmt.Errorf("graph: rope: scaling rule %q is not supported (golora implements default, linear and llama3)", c.Type)
	}
	return nil
}

// InvFreq returns the hd/2 inverse frequencies of a head of even width hd,
// as transformers computes them (in float64 here):
//
//	f_i = θ^(−2i/hd)                              i = 0 … hd/2 − 1
//	linear:  f_i / factor
//	llama3:  with λ_i = 2π/f_i, L = original_max_position_embeddings,
//	         f_i             where λ_i < L/high_freq_factor
//	         f_i / factor    where λ_i > L/low_freq_factor
//	         (1 − s)·f_i/factor + s·f_i otherwise,
//	         s = (L/λ_i − low_freq_factor)/(high_freq_factor − low_freq_factor)
func (c RoPEConfig) InvFreq(hd int) ([]float64, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if hd <= 0 || hd%2 != 0 {
		return nil, fmt.Errorf("graph: rope: head width %d, want an even number > 0", hd)
	}
	f := make([]float64, hd/2)
	for i := range f {
		f[i] = 1 / math.Pow(c.Theta, float64(2*i)/float64(hd))
	}
	switch c.Type {
	case "linear":
		for i := range f {
			f[i] /= c.Factor
		}
	case "llama3":
		L := float64(c.OriginalMaxPositions)
		lowWave, highWave := L/c.LowFreqFactor, L/c.HighFreqFactor
		for i, v := range f {
			wave := 2 * math.Pi / v
			switch {
			case wave < highWave:
			case wave > lowWave:
				f[i] = v / c.Factor
			default:
				s := (L/wave - c.LowFreqFactor) / (c.HighFreqFactor - c.LowFreqFactor)
				f[i] = (1-s)*v/c.Factor + s*v
			}
		}
	}
	return f, nil
}

// RoPE rotates the heads of x by their tokens' positions, in the
// rotate-half layout of transformers' Llama (GPT-NeoX style): x is
// [N, H·hd] (H heads of even width hd side by side, as a q_proj or k_proj
// output), pos an integer node [N] with each row's position p ≥ 0, and for
// every row and head, with f from cfg.InvFreq(hd) and h = hd/2,
//
//	y_i     = x_i·cos(p·f_i) − x_{i+h}·sin(p·f_i)
//	y_{i+h} = x_{i+h}·cos(p·f_i) + x_i·sin(p·f_i)      i = 0 … h − 1
//
// The result has x's shape. In float32 graphs the angle p·f_i is formed in
// float32, as transformers does (f rounded to float32, then one float32
// product), and its cosine and sine are rounded from float64; float64 graphs
// do everything in float64. The backward pass is the inverse rotation of dy
// (pos has no gradient). A position below 0 is a run error naming pos.
func RoPE(x, pos *Node, hd int, cfg RoPEConfig) *Node {
	const name = "RoPE"
	b, bad := check(name, x, pos)
	if bad != nil {
		return bad
	}
	fail := func(format string, args ...interface{}) *Node {
		return b.fail(fmt.Errorf("graph: %s: %s", name, fmt.Sprintf(format, args...)))
	}
	freq, err := cfg.InvFreq(hd)
	if err != nil {
		return fail("%s", strings.TrimPrefix(err.Error(), "graph: rope: "))
	}
	xs, ps := x.n.Shape(), pos.n.Shape()
	switch {
	case x.isInt:
		return fail("x %s is an integer input", x.Name())
	case xs.Dims() != 2 || xs[1]%hd != 0:
		return fail("x %s has shape %v, want [N, heads·%d]", x.Name(), []int(xs), hd)
	case !pos.isInt:
		return fail("pos %s is not an integer input", pos.Name())
	case ps.Dims() != 1 || ps[0] != xs[0]:
		return fail("pos %s has shape %v, want [%d] (one position per row of x)", pos.Name(), []int(ps), xs[0])
	}
	k := &ropeKernel{hd: hd, freq: freq, pos: pos.Name()}
	grads := func(in []*G.Node, out, dy *G.Node) ([]*G.Node, error) {
		// out orders the gradient after the forward pass, whose cosines
		// and sines it reads.
		dx, _, err := b.gradNode(&ropeGradKernel{fwd: k}, dy, out)
		return []*G.Node{dx, nil}, err
	}
	gn, _, err := b.apply(k, []bool{true, false}, grads, x.n, pos.n)
	return b.wrap(gn, err, name, x, pos)
}

// ropeKernel: (x [N, H·hd], pos [N]) → [N, H·hd]. It keeps the cosines and
// sines of the last run for the backward pass.
type ropeKernel struct {
	hd   int
	freq []float64
	pos  string // the pos input's name, for errors

	// rows[i] indexes the row of cos/sin that row i of x uses: a table of
	// positions 0 … max when that is smaller than one entry per row.
	rows       []int
	c32, s32   []float32
	c64, s64   []float64
	rowsOfLast int // N of the last run
}

func (k *ropeKernel) String() string { return fmt.Sprintf("RoPE(hd=%d)", k.hd) }

func (k *ropeKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	x, p := in[0], in[1]
	if x.Dims() != 2 || x[1]%k.hd != 0 {
		return nil, fmt.Errorf("x shape %v, want [N, heads·%d]", x, k.hd)
	}
	if p.Dims() != 1 || p[0] != x[0] {
		return nil, fmt.Errorf("pos shape %v, want [%d]", p, x[0])
	}
	return x.Clone(), nil
}

func (k *ropeKernel) forward(out tval, in []tval) error {
	pos := in[1].ints
	maxPos := -1
	for i, p := range pos {
		if p < 0 {
			return fmt.Errorf("%s[%d] = %d: positions must be ≥ 0", k.pos, i, p)
		}
		maxPos = max(maxPos, p)
	}
	n := len(pos)
	k.rows = sizedBuf(k.rows, n)
	k.rowsOfLast = n
	// Positions repeat across the sequences of a batch: compute one table
	// of positions 0 … max when it is no larger than one entry per row.
	entries := n
	if maxPos+1 <= n {
		entries = maxPos + 1
		copy(k.rows, pos)
	} else {
		for i := range k.rows {
			k.rows[i] = i
		}
	}
	h := k.hd / 2
	if out.f32 != nil {
		k.c32, k.s32 = sizedBuf(k.c32, entries*h), sizedBuf(k.s32, entries*h)
		ropeTable32(k.c32, k.s32, k.freq, pos, entries < n, entries)
		forRows(n, in[0].shape[1], func(lo, hi int) {
			ropeApply(out.f32, in[0].f32, k.c32, k.s32, k.rows, k.hd, false, lo, hi)
		})
	} else {
		k.c64, k.s64 = sizedBuf(k.c64, entries*h), sizedBuf(k.s64, entries*h)
		ropeTable64(k.c64, k.s64, k.freq, pos, entries < n, entries)
		forRows(n, in[0].shape[1], func(lo, hi int) {
			ropeApply(out.f64, in[0].f64, k.c64, k.s64, k.rows, k.hd, false, lo, hi)
		})
	}
	return nil
}

// ropeTable32 fills cos and sin [entries, h]: entry e is position e when
// byPos, else row e's position. The angle is a float32 product.
func ropeTable32(c, s []float32, freq []float64, pos []int, byPos bool, entries int) {
	h := len(freq)
	for e := range entries {
		p := e
		if !byPos {
			p = pos[e]
		}
		pf := float32(p)
		for i, f := range freq {
			sn, cs := math.Sincos(float64(pf * float32(f)))
			c[e*h+i], s[e*h+i] = float32(cs), float32(sn)
		}
	}
}

// ropeTable64 is ropeTable32 in float64.
func ropeTable64(c, s []float64, freq []float64, pos []int, byPos bool, entries int) {
	h := len(freq)
	for e := range entries {
		p := e
		if !byPos {
			p = pos[e]
		}
		for i, f := range freq {
			s[e*h+i], c[e*h+i] = math.Sincos(float64(p) * f)
		}
	}
}

// ropeApply rotates every head of rows [lo, hi) of x into y by the angles
// of table row rows[i]; inverse rotates by the opposite angles (the
// gradient).
func ropeApply[T floatT](y, x, c, s []T, rows []int, hd int, inverse bool, lo, hi int) {
	h := hd / 2
	width := len(x) / len(rows)
	for i := lo; i < hi; i++ {
		e := rows[i]
		cs, sn := c[e*h:(e+1)*h], s[e*h:(e+1)*h]
		xr, yr := x[i*width:(i+1)*width], y[i*width:(i+1)*width]
		for o := 0; o < width; o += hd {
			x1, x2 := xr[o:o+h], xr[o+h:o+hd]
			y1, y2 := yr[o:o+h], yr[o+h:o+hd]
			x2, y1, y2 = x2[:len(x1)], y1[:len(x1)], y2[:len(x1)]
			if inverse {
				for j, a := range x1 {
					b := x2[j]
					y1[j] = a*cs[j] + b*sn[j]
					y2[j] = b*cs[j] - a*sn[j]
				}
				continue
			}
			for j, a := range x1 {
				b := x2[j]
				y1[j] = a*cs[j] - b*sn[j]
				y2[j] = b*cs[j] + a*sn[j]
			}
		}
	}
}

// ropeGradKernel: (dy, y) → dx, the inverse rotation of dy with the angles
// of the forward pass of the same run. y is not read.
type ropeGradKernel struct{ fwd *ropeKernel }

func (k *ropeGradKernel) String() string { return k.fwd.String() + ".dx" }

func (k *ropeGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	if !in[0].Eq(in[1]) {
		return nil, fmt.Errorf("gradient shape %v and output shape %v differ", in[0], in[1])
	}
	return in[0].Clone(), nil
}

func (k *ropeGradKernel) forward(out tval, in []tval) error {
	f := k.fwd
	if n := in[0].shape[0]; n != f.rowsOfLast {
		return fmt.Errorf("forward pass rotated %d rows, gradient has %d", f.rowsOfLast, n)
	}
	forRows(f.rowsOfLast, in[0].shape[1], func(lo, hi int) {
		if out.f32 != nil {
			ropeApply(out.f32, in[0].f32, f.c32, f.s32, f.rows, f.hd, true, lo, hi)
		} else {
			ropeApply(out.f64, in[0].f64, f.c64, f.s64, f.rows, f.hd, true, lo, hi)
		}
	})
	return nil
}
