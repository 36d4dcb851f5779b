package graph

import (
	"math"
	"math/rand/v2"
)

// InitNormal fills p with draws from N(0, std²) taken from rng.
func InitNormal(p *Param, rng *rand.Rand, std float64) {
	v := make([]float64, p.Len())
	for i := range v {
		v[i] = rng.NormFloat64() * std
	}
	_ = p.SetValues(v)
}

// InitUniform fills p with draws from U(lo, hi) taken from rng.
func InitUniform(p *Param, rng *rand.Rand, lo, hi float64) {
	v := make([]float64, p.Len())
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float64()
	}
	_ = p.SetValues(v)
}

// InitKaimingUniform fills p with U(−bound, bound), bound = √(6 / ((1+a²)·fanIn)),
// PyTorch's kaiming_uniform_ with leaky-ReLU slope a. loralib initialises A with
// a = √5, which gives bound = 1/√fanIn.
func InitKaimingUniform(p *Param, rng *rand.Rand, a float64, fanIn int) {
	bound := math.Sqrt(6 / ((1 + a*a) * float64(fanIn)))
	InitUniform(p, rng, -bound, bound)
}

// InitConstant sets every element of p to c.
func InitConstant(p *Param, c float64) {
	v := make([]float64, p.Len())
	for i := range v {
		v[i] = c
	}
	_ = p.SetValues(v)
}

// NewRand returns a math/rand/v2 generator seeded with seed (PCG), the source
// every golora initialiser and sampler expects.
func NewRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
}
