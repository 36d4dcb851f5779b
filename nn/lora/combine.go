package lora

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Combination types of AddWeightedAdapter (PEFT's combination_type).
const (
	// CombineLinear: A = Σ_k √(w_k·s_k)·A_k, B = Σ_k √(w_k·s_k)·B_k, rank r
	// (every adapter must have rank r on the layer), scale 1.
	CombineLinear = "linear"
	// CombineCat: A = [w_1·s_1·A_1 | … | w_n·s_n·A_n], B = [B_1; …; B_n],
	// rank Σ r_k, scale 1, so ΔW = Σ_k w_k·ΔW_k exactly.
	CombineCat = "cat"
)

// AddWeightedAdapter adds adapter name combining the given adapters with
// weights (PEFT's add_weighted_adapter). On every layer that at least one of
// them adapts, with s_k the scale and A_k [in, r_k], B_k [r_k, out] the
// weights of adapter k there (adapters absent from the layer are skipped):
//
//   - "linear": A = Σ_k √(w_k·s_k)·A_k and B = Σ_k √(w_k·s_k)·B_k, so
//     ΔW = A·B = (Σ_k √(w_k s_k) A_k)(Σ_k √(w_k s_k) B_k). This equals
//     Σ_k w_k·ΔW_k when one adapter has a non-zero weight, but in general
//     it has the cross terms √(w_k s_k w_l s_l)·A_k·B_l. The adapters must
//     have the same rank on the layer and every w_k·s_k must be ≥ 0.
//   - "cat": A = [w_1 s_1 A_1 | … | w_n s_n A_n] (columns side by side) and
//     B = [B_1; …; B_n] (rows stacked), rank Σ r_k, so
//     ΔW = Σ_k w_k·s_k·A_k·B_k = Σ_k w_k·ΔW_k exactly, for any weights.
//
// The new adapter has α = r on every layer (scale 1, no rsLoRA), the first
// adapter's dropout, and targets naming exactly the combined layers (and
// parts). It is not made active. Adapters that train biases or modules to
// save cannot be combined; on a fused layer all adapters must adapt the
// same parts.
func (m *Model) AddWeightedAdapter(name string, adapters []string, weights []float64, combination string) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := m.checkNewName(name); err != nil {
		return err
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("lora: weighted adapter %q: %s", name, fmt.Sprintf(format, args...))
	}
	switch {
	case m.merged:
		return fmt.Errorf("lora: weighted adapter %q: %w (unmerge first)", name, ErrAlreadyMerged)
	case combination != CombineLinear && combination != CombineCat:
		return fail("combination %q, want %q or %q", combination, CombineLinear, CombineCat)
	case len(adapters) == 0 || len(weights) != len(adapters):
		return fail("%d adapters and %d weights, want the same number ≥ 1", len(adapters), len(weights))
	}
	var states []*adapterState
	for i, a := range adapters {
		st, err := m.state(a)
		if err != nil {
			return fail("%v", err)
		}
		if len(st.extras) > 0 {
			return fail("adapter %q trains biases or saved modules, which cannot be combined", a)
		}
		if st.cfg.DoRA {
			return fail("adapter %q is a DoRA adapter, whose magnitudes do not combine linearly", a)
		}
		if math.IsNaN(weights[i]) || math.IsInf(weights[i], 0) {
			return fail("weight %v of %q is not finite", weights[i], a)
		}
		states = append(states, st)
	}
	// The combined layers, in host order, with their per-adapter weights.
	type layer struct {
		path string
		ads  []*Adapter
		ws   []float64
	}
	var layers []layer
	for _, w := range m.wrappers() {
		l := layer{path: w.state().path}
		for i, a := range adapters {
			if ad := w.state().Adapter(a); ad != nil {
				l.ads, l.ws = append(l.ads, ad), append(l.ws, weights[i])
			}
		}
		if len(l.ads) > 0 {
			layers = append(layers, l)
		}
	}
	cfg := Config{Dropout: states[0].cfg.Dropout, FusedParts: map[string][]string{}, RankPattern: map[string]int{}, AlphaPattern: map[string]float64{}}
	ranks := make([]int, len(layers))
	for li, l := range layers {
		first := l.ads[0]
		for k, ad := range l.ads {
			if !sameParts(ad, first) {
				return fail("on %s, %q adapts parts %v and %q parts %v", l.path, first.Name, partsOf(first), ad.Name, partsOf(ad))
			}
			switch combination {
			case CombineLinear:
				if ad.Rank != first.Rank {
					return fail("linear combination needs equal ranks; on %s %q has r=%d, %q r=%d (use cat)", l.path, first.Name, first.Rank, ad.Name, ad.Rank)
				}
				if l.ws[k]*ad.Scale < 0 {
					return fail("linear combination needs w·s ≥ 0; %q has weight %v and scale %v (use cat)", ad.Name, l.ws[k], ad.Scale)
				}
				ranks[li] = first.Rank
			case CombineCat:
				ranks[li] += ad.Rank
			}
		}
		target := l.path
		if parts := partsOf(first); parts != nil {
			target += "[" + strings.Join(parts, ",") + "]"
			cfg.FusedParts[lastSegment(l.path)] = m.byPath[l.path].(*Linear).Parts
		}
		cfg.Targets = append(cfg.Targets, target)
		if li == 0 {
			cfg.R, cfg.Alpha = ranks[0], float64(ranks[0])
		} else if ranks[li] != cfg.R {
			key := regexp.QuoteMeta(l.path)
			cfg.RankPattern[key], cfg.AlphaPattern[key] = ranks[li], float64(ranks[li])
		}
	}
	if err := cfg.Validate(); err != nil {
		return fail("%v", err)
	}
	cfg = cfg.withDefaults()
	plans, err := m.resolve(cfg)
	if err != nil {
		return fail("%v", err)
	}
	if len(plans) != len(layers) {
		return fail("internal: %d layers planned for %d combined", len(plans), len(layers))
	}
	ads := make([]*Adapter, len(plans))
	for li, p := range plans {
		if p.path != layers[li].path || p.rank != ranks[li] || p.scale != 1 {
			return fail("internal: plan for %s does not match the combination", p.path)
		}
		ads[li] = p.newAdapter(name, cfg)
		combine(ads[li], layers[li].ads, layers[li].ws, combination)
	}
	return m.commit(name, cfg, plans, ads, nil, nil, nil)
}

// combine fills dst's slices from srcs (see AddWeightedAdapter).
func combine(dst *Adapter, srcs []*Adapter, ws []float64, combination string) {
	for j, s := range dst.Slices {
		in, r, width := s.A.Shape()[0], dst.Rank, s.Width
		a := make([]float64, in*r)
		b := make([]float64, r*width)
		col := 0 // cat: first column of A (row of B) of the next source
		for k, src := range srcs {
			sa, sb, rk := src.Slices[j].A.Values(), src.Slices[j].B.Values(), src.Rank
			if combination == CombineLinear {
				f := math.Sqrt(ws[k] * src.Scale)
				for i, v := range sa {
					a[i] += f * v
				}
				for i, v := range sb {
					b[i] += f * v
				}
				continue
			}
			f := ws[k] * src.Scale
			for i := 0; i < in; i++ {
				for p := 0; p < rk; p++ {
					a[i*r+col+p] = f * sa[i*rk+p]
				}
			}
			copy(b[col*width:], sb)
			col += rk
		}
		_ = s.A.SetValues(a)
		_ = s.B.SetValues(b)
	}
}

func partsOf(ad *Adapter) []string {
	var out []string
	for _, s := range ad.Slices {
		if s.Part != "" {
			out = append(out, s.Part)
		}
	}
	return out
}

func sameParts(a, b *Adapter) bool { return slices.Equal(partsOf(a), partsOf(b)) }
