package trainers

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/golora/golora/graph"
)

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter, 2019) and
// bias correction, in PyTorch's formulation. For step t, learning rate η,
// gradient g and weight decay λ, each element of a parameter θ is updated as
//
//	m ← β₁·m + (1−β₁)·g
//	v ← β₂·v + (1−β₂)·g²
//	θ ← θ·(1 − η·λ)                                  (only when Decay(θ))
//	θ ← θ − (η/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε)
//
// The moments m and v are kept per parameter NAME, only for the parameters
// passed to Step, in the parameter's dtype: a float32 parameter is updated in
// float32 arithmetic. Changing the order of the parameters between steps
// therefore cannot mix up their state.
//
// Parameters may be split into groups with their own learning rate and
// weight decay (PyTorch's param_groups; LoRA+ is one use): see Group.
type AdamW struct {
	Beta1, Beta2, Eps float64
	// WeightDecay is λ.
	WeightDecay float64
	// Decay reports whether a parameter is weight-decayed; nil means the
	// parameters with two or more dimensions (matrices, not biases).
	Decay func(p *graph.Param) bool
	// Group, when set, gives each parameter's group, which replaces
	// WeightDecay and Decay for it: η of the parameter is the group's
	// LRScale times the step's η, λ is the group's WeightDecay. nil: every
	// parameter in one group of LRScale 1.
	Group func(p *graph.Param) ParamGroup

	t     int
	state map[string]*moments
}

// ParamGroup is the learning rate and weight decay of a group of
// parameters (see AdamW.Group).
type ParamGroup struct {
	// Name identifies the group ("lora_B"), for reports.
	Name string
	// LRScale multiplies the step's learning rate, which follows the
	// schedule: a group's learning rate is LRScale·η_t.
	LRScale float64
	// WeightDecay is the group's λ (0: no decay).
	WeightDecay float64
}

// moments is the state of one parameter, in its dtype and shape.
type moments struct{ m, v *graph.Param }

// NewAdamW returns an optimizer with no state.
func NewAdamW(beta1, beta2, eps, weightDecay float64) *AdamW {
	return &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay, state: map[string]*moments{}}
}

// DecayMatrices is the default Decay rule: parameters with ≥ 2 dimensions.
func DecayMatrices(p *graph.Param) bool { return len(p.Shape()) >= 2 }

// StepCount is the number of steps taken (t of the last step).
func (o *AdamW) StepCount() int { return o.t }

// StateNames lists, sorted, the parameters the optimizer holds state for.
func (o *AdamW) StateNames() []string {
	names := make([]string, 0, len(o.state))
	for n := range o.state {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Moments returns float64 copies of the first and second moments of the
// named parameter; ok is false when there is no state for it.
func (o *AdamW) Moments(name string) (m, v []float64, ok bool) {
	s, ok := o.state[name]
	if !ok {
		return nil, nil, false
	}
	return s.m.Values(), s.v.Values(), true
}

// Step applies one update with learning rate lr to each params[i] from its
// gradient grads[i] (same dtype and number of elements). It checks every
// pair before changing anything.
func (o *AdamW) Step(params []*graph.Param, grads []graph.Array, lr float64) error {
	if len(params) != len(grads) {
		return fmt.Errorf("trainers: AdamW step: %d parameters and %d gradients", len(params), len(grads))
	}
	seen := make(map[string]bool, len(params))
	for i, p := range params {
		if p == nil {
			return fmt.Errorf("trainers: AdamW step: parameter %d is nil", i)
		}
		g := grads[i]
		if g.DType() != p.DType() || g.Len() != p.Len() {
			return fmt.Errorf("trainers: AdamW step: gradient of %s is %d %v values, want %d %v", p.Name, g.Len(), g.DType(), p.Len(), p.DType())
		}
		if seen[p.Name] {
			return fmt.Errorf("trainers: AdamW step: parameter name %s appears twice", p.Name)
		}
		seen[p.Name] = true
		if s, ok := o.state[p.Name]; ok && (s.m.DType() != p.DType() || !slices.Equal(s.m.Shape(), p.Shape())) {
			return fmt.Errorf("trainers: AdamW step: state of %s is %v %v, parameter is %v %v", p.Name, s.m.Shape(), s.m.DType(), p.Shape(), p.DType())
		}
	}
	if o.state == nil {
		o.state = map[string]*moments{}
	}
	o.t++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.t))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.t))
	decay := o.Decay
	if decay == nil {
		decay = DecayMatrices
	}
	for i, p := range params {
		s := o.state[p.Name]
		if s == nil {
			s = &moments{
				m: graph.NewParam("adam.m/"+p.Name, p.DType(), p.Shape()...),
				v: graph.NewParam("adam.v/"+p.Name, p.DType(), p.Shape()...),
			}
			o.state[p.Name] = s
		}
		plr, wd := lr, 0.0 // this parameter's η and λ
		if o.Group != nil {
			g := o.Group(p)
			plr, wd = lr*g.LRScale, g.WeightDecay
		} else if decay(p) {
			wd = o.WeightDecay
		}
		c := adamConsts{
			b1: o.Beta1, b2: o.Beta2, eps: o.Eps,
			step:     plr / bc1,
			sqrtBc2:  math.Sqrt(bc2),
			decayMul: 1,
		}
		if wd != 0 {
			c.decayMul = 1 - plr*wd
		}
		if p.DType() == graph.Float64 {
			adamUpdate(p.Float64s(), grads[i].F64, s.m.Float64s(), s.v.Float64s(), c)
		} else {
			adamUpdate(p.Float32s(), grads[i].F32, s.m.Float32s(), s.v.Float32s(), c)
		}
	}
	return nil
}

// adamConsts are the step's scalars, computed once in float64.
type adamConsts struct {
	b1, b2, eps float64
	step        float64 // η/(1−β₁ᵗ)
	sqrtBc2     float64 // √(1−β₂ᵗ)
	decayMul    float64 // 1 − η·λ, or 1
}

// adamChunk is the fewest elements worth a goroutine of their own in
// adamUpdate (about 0.2 ms of work).
const adamChunk = 1 << 16

// adamUpdate applies one AdamW update elementwise in T arithmetic. The
// elements are independent, so a large parameter is split into contiguous
// ranges updated on up to GOMAXPROCS goroutines, with the same result.
func adamUpdate[T float32 | float64](w, g, m, v []T, c adamConsts) {
	n := len(g)
	workers := min(runtime.GOMAXPROCS(0), n/adamChunk)
	if workers <= 1 {
		adamRange(w, g, m, v, c)
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < workers; i++ {
		lo, hi := n*i/workers, n*(i+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			adamRange(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], c)
		}()
	}
	hi := n / workers
	adamRange(w[:hi], g[:hi], m[:hi], v[:hi], c)
	wg.Wait()
}

// adamRange is adamUpdate on one goroutine.
func adamRange[T float32 | float64](w, g, m, v []T, c adamConsts) {
	b1, b2, eps := T(c.b1), T(c.b2), T(c.eps)
	step, sqrtBc2, decayMul := T(c.step), T(c.sqrtBc2), T(c.decayMul)
	w, m, v = w[:len(g)], m[:len(g)], v[:len(g)]
	for i, gi := range g {
		mi := b1*m[i] + (1-b1)*gi
		vi := b2*v[i] + (1-b2)*gi*gi
		m[i], v[i] = mi, vi
		wi := w[i]
		if decayMul != 1 {
			wi *= decayMul
		}
		w[i] = wi - step*mi/(T(math.Sqrt(float64(vi)))/sqrtBc2+eps)
	}
}

// setState installs checkpointed state (used by Resume).
func (o *AdamW) setState(t int, state map[string]*moments) {
	o.t = t
	o.state = state
}
