package graph

import (
	"math"
	"math/rand/v2"
)

// InitNormal fills p with draws from N(0, std²) taken from rng.
func InitNormal(p *Param, rng *rand.Rand, std float64) {
	fillFrom(p, func() float64 { return rng.NormFloat64() * std })
}

// InitUniform fills p with draws from U(lo, hi) taken from rng.
func InitUniform(p *Param, rng *rand.Rand, lo, hi float64) {
	fillFrom(p, func() float64 { return lo + (hi-lo)*rng.Float64() })
}

// InitKaimingUniform fills p with U(−bound, bound), bound = √(6 / ((1+a²)·fanIn)),
// PyTorch's kaiming_uniform_ with leaky-ReLU slope a; a = √5 (nn.Linear's
// default) gives bound = 1/√fanIn.
func InitKaimingUniform(p *Param, rng *rand.Rand, a float64, fanIn int) {
	bound := math.Sqrt(6 / ((1 + a*a) * float64(fanIn)))
	InitUniform(p, rng, -bound, bound)
}

// InitConstant sets every element of p to c.
func InitConstant(p *Param, c float64) {
	fillFrom(p, func() float64 { return c })
}

// fillFrom sets the elements of p, in order, to next() rounded to p's dtype,
// in place (no float64 copy of a large parameter).
func fillFrom(p *Param, next func() float64) {
	if d := p.Float64s(); d != nil {
		for i := range d {
			d[i] = next()
		}
		return
	}
	d := p.Float32s()
	for i := range d {
		d[i] = float32(next())
	}
}

// NewRand returns a math/rand/v2 generator seeded with seed (PCG), the source
// every golora initialiser and sampler expects.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
}
