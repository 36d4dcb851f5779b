package lora

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
)

// layerPlan is one layer an adapter will adapt, resolved and checked.
type layerPlan struct {
	path   string
	layer  nn.Layer      // what the host has at path now
	w      wrapper       // the model's wrapper at path, nil if not wrapped yet
	lin    *nn.Linear    // the base layer: a Linear …
	emb    *nn.Embedding // … or an Embedding
	layout []string      // fused layout of a Linear's output, nil for none
	parts  []string      // adapted parts in layout order, nil for the whole output
	rank   int
	alpha  float64
	scale  float64
}

func (p *layerPlan) weight() *graph.Param {
	if p.lin != nil {
		return p.lin.Weight
	}
	return p.emb.Weight
}

// dims returns the base weight's [in, out] ([V, d] for an embedding).
func (p *layerPlan) dims() (int, int) {
	s := p.weight().Shape()
	return s[0], s[1]
}

// newAdapter makes the zero-valued A and B of the adapter on this layer:
// one slice for the whole output, or one per adapted part.
func (p *layerPlan) newAdapter(name string, cfg Config) *Adapter {
	ad := &Adapter{Name: name, Rank: p.rank, Alpha: p.alpha, Scale: p.scale}
	in, out := p.dims()
	dt := p.weight().DType()
	aName, bName := "lora_A", "lora_B"
	if p.emb != nil {
		aName, bName = "lora_embedding_A", "lora_embedding_B"
	} else {
		ad.Dropout = cfg.Dropout
	}
	if cfg.DoRA {
		ad.Magnitude = graph.NewParam(fmt.Sprintf("%s.lora_magnitude_vector.%s.weight", p.path, name), dt, out)
	}
	if p.parts == nil {
		ad.Slices = []Slice{{Width: out,
			A: graph.NewParam(fmt.Sprintf("%s.%s.%s.weight", p.path, aName, name), dt, in, p.rank),
			B: graph.NewParam(fmt.Sprintf("%s.%s.%s.weight", p.path, bName, name), dt, p.rank, out)}}
		return ad
	}
	width := out / len(p.layout)
	for _, part := range p.parts {
		off := indexOf(p.layout, part) * width
		ad.Slices = append(ad.Slices, Slice{Part: part, Offset: off, Width: width,
			A: graph.NewParam(fmt.Sprintf("%s.%s.%s.%s.weight", p.path, aName, name, part), dt, in, p.rank),
			B: graph.NewParam(fmt.Sprintf("%s.%s.%s.%s.weight", p.path, bName, name, part), dt, p.rank, width)})
	}
	return ad
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func lastSegment(path string) string { return path[strings.LastIndexByte(path, '.')+1:] }

// selection is what the targets ask of one layer.
type selection struct {
	whole bool
	parts map[string]bool
	by    string // the first target that selected the layer, for errors
}

// resolve turns cfg's targets into checked layer plans, in host order.
func (m *Model) resolve(cfg Config) ([]*layerPlan, error) {
	layers := m.host.Layers()
	var cands []nn.NamedLayer // layers that Layers and LayersPattern allow
	for _, nl := range layers {
		if len(cfg.Layers) > 0 {
			i, ok := layerIndex(nl.Path, cfg.LayersPattern)
			if !ok || !slices.Contains(cfg.Layers, i) {
				continue
			}
		}
		cands = append(cands, nl)
	}
	where := ""
	if len(cfg.Layers) > 0 {
		where = fmt.Sprintf(" in layers %v (pattern %q)", cfg.Layers, cfg.LayersPattern)
		if cfg.LayersPattern == "" {
			where = fmt.Sprintf(" in layers %v", cfg.Layers)
		}
	}
	sel := map[string]*selection{}
	pick := func(path, by string, parts []string) error {
		s := sel[path]
		if s == nil {
			s = &selection{parts: map[string]bool{}, by: by}
			sel[path] = s
		}
		if (parts == nil && len(s.parts) > 0) || (parts != nil && s.whole) {
			return fmt.Errorf("targets %q and %q ask for %s both whole and in parts", s.by, by, path)
		}
		s.whole = s.whole || parts == nil
		for _, p := range parts {
			s.parts[p] = true
		}
		return nil
	}
	if cfg.TargetRegex != "" {
		re, err := regexp.Compile(`^(?:` + cfg.TargetRegex + `)$`)
		if err != nil {
			return nil, fmt.Errorf("target regex %q: %w", cfg.TargetRegex, err)
		}
		found := false
		for _, nl := range cands {
			if re.MatchString(nl.Path) || re.MatchString(m.KeyPrefix+nl.Path) {
				found = true
				if err := pick(nl.Path, cfg.TargetRegex, nil); err != nil {
					return nil, err
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("target regex %q matches no layer%s%s", cfg.TargetRegex, where, layerHint(layers))
		}
	}
	for _, t := range cfg.Targets {
		found := false
		if t == AllLinear {
			for _, nl := range cands {
				if _, ok := baseOf(nl.Layer).(*nn.Linear); ok && lastSegment(nl.Path) != "lm_head" {
					found = true
					if err := pick(nl.Path, t, nil); err != nil {
						return nil, err
					}
				}
			}
			if !found {
				return nil, fmt.Errorf("target %q matches no linear layer%s%s", t, where, layerHint(layers))
			}
			continue
		}
		name, parts, err := parseTarget(t)
		if err != nil {
			return nil, err
		}
		for _, nl := range cands {
			if nameMatches(name, nl.Path, m.KeyPrefix) {
				found = true
				if err := pick(nl.Path, t, parts); err != nil {
					return nil, err
				}
			}
		}
		if !found && parts == nil { // a part name: "q" is c_attn[q]
			for _, nl := range cands {
				if indexOf(cfg.FusedParts[lastSegment(nl.Path)], name) >= 0 {
					found = true
					if err := pick(nl.Path, t, []string{name}); err != nil {
						return nil, err
					}
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("target %q matches no layer%s and no part of a fused layer%s", t, where, layerHint(layers))
		}
	}
	var plans []*layerPlan
	for _, nl := range layers {
		s, ok := sel[nl.Path]
		if !ok {
			continue
		}
		p, err := m.plan(cfg, nl, s)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// layerHint lists a few layer paths for an error message.
func layerHint(layers []nn.NamedLayer) string {
	var names []string
	for i, nl := range layers {
		if i == 6 {
			names = append(names, "…")
			break
		}
		names = append(names, nl.Path)
	}
	return fmt.Sprintf(" (the host's layers: %s)", strings.Join(names, ", "))
}

// baseOf unwraps a LoRA wrapper.
func baseOf(l nn.Layer) nn.Layer {
	switch w := l.(type) {
	case *Linear:
		return w.Base
	case *Embedding:
		return w.Base
	}
	return l
}

// plan checks one selected layer and fills in its plan.
func (m *Model) plan(cfg Config, nl nn.NamedLayer, s *selection) (*layerPlan, error) {
	p := &layerPlan{path: nl.Path, layer: nl.Layer}
	switch l := nl.Layer.(type) {
	case *Linear, *Embedding:
		w := l.(wrapper)
		if m.byPath[nl.Path] != w {
			return nil, fmt.Errorf("layer %s is wrapped by another lora.Model", nl.Path)
		}
		p.w = w
	}
	switch b := baseOf(nl.Layer).(type) {
	case *nn.Linear:
		if b == nil || b.Weight == nil {
			return nil, fmt.Errorf("layer %s has no weight", nl.Path)
		}
		p.lin = b
	case *nn.Embedding:
		if b == nil || b.Weight == nil {
			return nil, fmt.Errorf("layer %s has no weight", nl.Path)
		}
		p.emb = b
	default:
		return nil, fmt.Errorf("layer %s is a %T: LoRA wraps *nn.Linear and *nn.Embedding layers (target %q)", nl.Path, nl.Layer, s.by)
	}
	if shape := p.weight().Shape(); len(shape) != 2 {
		return nil, fmt.Errorf("layer %s: weight shape %v, want 2-D", nl.Path, shape)
	}
	in, out := p.dims()
	if p.lin != nil {
		p.layout = cfg.FusedParts[lastSegment(nl.Path)]
		if w, ok := p.w.(*Linear); ok && w.Parts != nil {
			// a wrapped layer keeps the layout it was wrapped with
			if p.layout != nil && !slices.Equal(p.layout, w.Parts) {
				return nil, fmt.Errorf("layer %s is wrapped with fused parts %v, the config says %v", nl.Path, w.Parts, p.layout)
			}
			p.layout = w.Parts
		}
	}
	if len(s.parts) > 0 {
		if p.emb != nil {
			return nil, fmt.Errorf("target %q: layer %s is an embedding, which has no fused parts", s.by, nl.Path)
		}
		if p.layout == nil {
			return nil, fmt.Errorf("target %q: layer %s has no fused layout (Config.FusedParts has no %q)", s.by, nl.Path, lastSegment(nl.Path))
		}
		if out%len(p.layout) != 0 {
			return nil, fmt.Errorf("layer %s: %d output columns do not split into %d equal parts %v", nl.Path, out, len(p.layout), p.layout)
		}
		for part := range s.parts {
			if indexOf(p.layout, part) < 0 {
				return nil, fmt.Errorf("target %q: layer %s has parts %v, not %q", s.by, nl.Path, p.layout, part)
			}
		}
		for _, part := range p.layout {
			if s.parts[part] {
				p.parts = append(p.parts, part)
			}
		}
	}
	p.rank, p.alpha = cfg.rankAlpha(nl.Path, m.KeyPrefix)
	p.scale = cfg.Scale(p.rank, p.alpha)
	if p.emb != nil && cfg.Init == InitPiSSA {
		return nil, fmt.Errorf("layer %s: PiSSA initialisation applies to linear layers, not the embedding", nl.Path)
	}
	if cfg.Init == InitPiSSA {
		width := out
		if p.parts != nil {
			width = out / len(p.layout)
		}
		if p.rank > min(in, width) {
			return nil, fmt.Errorf("layer %s: PiSSA rank %d exceeds the weight's %d×%d", nl.Path, p.rank, in, width)
		}
	}
	return p, nil
}

// resolveExtras lists the parameters the adapter trains fully: biases by
// cfg.Bias and the parameters of cfg.ModulesToSave, in Params order.
func (m *Model) resolveExtras(cfg Config, plans []*layerPlan) ([]*graph.Param, error) {
	frozen := map[*graph.Param]string{} // base weights of adapted layers
	for path, w := range m.byPath {
		frozen[w.weight()] = path
	}
	for _, p := range plans {
		frozen[p.weight()] = p.path
	}
	want := map[*graph.Param]bool{}
	all := m.Params()
	switch cfg.Bias {
	case BiasAll:
		for _, p := range all {
			if p.Name == "bias" || strings.HasSuffix(p.Name, ".bias") {
				want[p] = true
			}
		}
	case BiasLoRAOnly:
		for _, p := range plans {
			if p.lin != nil && p.lin.Bias != nil {
				want[p.lin.Bias] = true
			}
		}
	}
	for _, mod := range cfg.ModulesToSave {
		found := false
		for _, p := range all {
			i := strings.LastIndexByte(p.Name, '.')
			if i < 0 || !nameMatches(mod, p.Name[:i], m.KeyPrefix) {
				continue
			}
			if path, ok := frozen[p]; ok {
				return nil, fmt.Errorf("modules to save %q: %s is the frozen weight of adapted layer %s", mod, p.Name, path)
			}
			if isLoRAParam(p.Name) {
				continue
			}
			found = true
			want[p] = true
		}
		if !found {
			return nil, fmt.Errorf("modules to save %q matches no parameter", mod)
		}
	}
	var out []*graph.Param
	for _, p := range all {
		if want[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

func isLoRAParam(name string) bool {
	return strings.Contains(name, ".lora_A.") || strings.Contains(name, ".lora_B.") || strings.Contains(name, ".lora_magnitude_vector.") ||
		strings.Contains(name, ".lora_embedding_A.") || strings.Contains(name, ".lora_embedding_B.")
}
