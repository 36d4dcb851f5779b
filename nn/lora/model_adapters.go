package lora

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
)

// AddAdapter adds a named adapter described by cfg (see Config; the targets
// are resolved against the host's layers). It becomes active when no
// adapter is; otherwise the active adapter stays. Nothing changes when it
// returns an error. Adding while an adapter is merged is an error.
func (m *Model) AddAdapter(name string, cfg Config) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := m.checkNewName(name); err != nil {
		return err
	}
	if m.merged {
		return fmt.Errorf("lora: add adapter %q: %w (unmerge first)", name, ErrAlreadyMerged)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("lora: add adapter %q: %w", name, err)
	}
	cfg = cfg.withDefaults().clone()
	plans, err := m.resolve(cfg)
	if err != nil {
		return fmt.Errorf("lora: add adapter %q: %w", name, err)
	}
	extras, err := m.resolveExtras(cfg, plans)
	if err != nil {
		return fmt.Errorf("lora: add adapter %q: %w", name, err)
	}
	rng := graph.NewRand(cfg.Seed)
	ads := make([]*Adapter, len(plans))
	residual := map[*graph.Param][]float64{}
	for i, p := range plans {
		ads[i] = p.newAdapter(name, cfg)
		res, err := initAdapter(ads[i], p, cfg.Init, rng)
		if err != nil {
			return fmt.Errorf("lora: add adapter %q: %s: %w", name, p.path, err)
		}
		base := res
		if res != nil {
			residual[p.weight()] = res
		} else if ads[i].Magnitude != nil {
			base = p.weight().Values()
		}
		in, out := p.dims()
		if err := initMagnitude(ads[i], base, in, out); err != nil { // DoRA: m = ‖W + s·A·B‖
			return fmt.Errorf("lora: add adapter %q: %s: %w", name, p.path, err)
		}
	}
	return m.commit(name, cfg, plans, ads, residual, extras, nil)
}

func (m *Model) checkNewName(name string) error {
	if name == "" || strings.ContainsAny(name, ". \t\n[]") {
		return fmt.Errorf("lora: adapter name %q: want a non-empty name without dots, spaces or brackets", name)
	}
	if _, dup := m.adapters[name]; dup {
		return fmt.Errorf("lora: adapter %q already exists", name)
	}
	return nil
}

// commit installs a checked adapter: it wraps the layers not yet wrapped
// (undoing that if the host refuses one), writes PiSSA residuals into base
// weights, and records the adapter. extraVals gives loaded values of the
// adapter's fully trained parameters (nil: start from the base values).
func (m *Model) commit(name string, cfg Config, plans []*layerPlan, ads []*Adapter, residual map[*graph.Param][]float64, extras []*graph.Param, extraVals map[*graph.Param][]float64) error {
	type swap struct {
		path string
		old  nn.Layer
	}
	var done []swap
	wrappers := make([]wrapper, len(plans))
	for i, p := range plans {
		if p.w != nil {
			wrappers[i] = p.w
			continue
		}
		st := adapted{path: p.path, active: m.active, disabled: m.disabled, route: m.route, gen: m.gen}
		var w wrapper
		if p.lin != nil {
			w = &Linear{Base: p.lin, Parts: append([]string(nil), p.layout...), adapted: st}
		} else {
			w = &Embedding{Base: p.emb, adapted: st}
		}
		if err := m.host.SetLayer(p.path, w); err != nil {
			for j := len(done) - 1; j >= 0; j-- {
				_ = m.host.SetLayer(done[j].path, done[j].old)
			}
			return fmt.Errorf("lora: adapter %q: wrap %s: %w", name, p.path, err)
		}
		done = append(done, swap{p.path, p.layer})
		wrappers[i] = w
	}
	// Nothing below can fail.
	st := &adapterState{cfg: cfg, extras: extras, saved: map[*graph.Param]*graph.Param{}}
	for i, p := range plans {
		if l, ok := wrappers[i].(*Linear); ok && l.Parts == nil {
			l.Parts = append([]string(nil), p.layout...)
		}
		m.byPath[p.path] = wrappers[i]
		s := wrappers[i].state()
		s.adapters = append(s.adapters, ads[i])
		st.paths = append(st.paths, p.path)
	}
	for w, v := range residual {
		_ = w.SetValues(v)
	}
	for _, p := range extras {
		if _, ok := m.base[p]; !ok {
			m.base[p] = p.Clone() // live values are the base's: no adapter owns p yet
		}
		c := m.base[p].Clone()
		if v, ok := extraVals[p]; ok {
			_ = c.SetValues(v)
		}
		st.saved[p] = c
	}
	m.adapters[name] = st
	m.order = append(m.order, name)
	if m.active == "" {
		m.setActive(name)
	}
	m.sync()
	m.gen.Advance(fmt.Sprintf("adapter %q added", name))
	return nil
}

// SetActive makes the named adapter the one Forward uses (PEFT's
// set_adapter); its A, B and extras become the trainable parameters.
// Switching while an adapter is merged is an error.
func (m *Model) SetActive(name string) error {
	if err := m.usable(); err != nil {
		return err
	}
	if _, err := m.state(name); err != nil {
		return err
	}
	if m.merged && name != m.active {
		return fmt.Errorf("lora: set active %q: %w (unmerge first)", name, ErrAlreadyMerged)
	}
	m.setActive(name)
	m.sync()
	m.gen.Advance(fmt.Sprintf("SetActive(%q)", name))
	return nil
}

func (m *Model) setActive(name string) {
	m.active = name
	for _, w := range m.byPath {
		w.state().active = name
	}
}

// DeleteAdapter removes the named adapter's weights from every layer (PEFT's
// delete_adapter). Deleting the active adapter leaves none active (base
// outputs). A merged or routed adapter cannot be deleted. Wrapped layers
// stay wrapped.
func (m *Model) DeleteAdapter(name string) error {
	if err := m.usable(); err != nil {
		return err
	}
	st, err := m.state(name)
	if err != nil {
		return err
	}
	if m.merged && m.active == name {
		return fmt.Errorf("lora: delete adapter %q: %w (unmerge first)", name, ErrAlreadyMerged)
	}
	if m.route != nil {
		for _, r := range m.route.names {
			if r == name {
				return fmt.Errorf("lora: delete adapter %q: rows are routed to it (ClearRowAdapters first)", name)
			}
		}
	}
	for _, path := range st.paths {
		m.byPath[path].state().remove(name)
	}
	delete(m.adapters, name)
	for i, n := range m.order {
		if n == name {
			m.order = append(m.order[:i:i], m.order[i+1:]...)
			break
		}
	}
	for p, o := range m.owner {
		if o == name { // the live values are the deleted adapter's: put the base's back
			_ = p.CopyFrom(m.base[p])
			m.owner[p] = ""
		}
	}
	if m.active == name {
		m.setActive("")
	}
	m.sync()
	m.gen.Advance(fmt.Sprintf("DeleteAdapter(%q)", name))
	return nil
}

// SetRowAdapters routes each row of the graphs built from now on to one
// adapter: row i uses adapters[k] where rows (an integer node [N] of the
// graph's builder, fed with Program.SetInts) holds k at i, or the base
// layers alone where it holds −1. N is the number of rows every wrapped
// layer sees: batch·T for a GPT whose batch of sequences is laid out row
// by row (RowIndices builds the values). Each row is computed exactly as if
// it ran alone with its adapter.
//
// Adapters that train biases or modules to save cannot be routed (those
// parameters are shared by all rows). It is an error while merged.
func (m *Model) SetRowAdapters(rows *graph.Node, adapters []string) error {
	if err := m.usable(); err != nil {
		return err
	}
	if rows == nil || rows.Err() != nil {
		return fmt.Errorf("lora: route rows: bad rows node: %v", rows.Err())
	}
	if len(adapters) == 0 {
		return errors.New("lora: route rows: no adapters")
	}
	if m.merged {
		return fmt.Errorf("lora: route rows: %w (unmerge first)", ErrAlreadyMerged)
	}
	for _, name := range adapters {
		st, err := m.state(name)
		if err != nil {
			return fmt.Errorf("lora: route rows: %w", err)
		}
		if len(st.extras) > 0 {
			return fmt.Errorf("lora: route rows: adapter %q trains %d biases or saved modules, which rows cannot have separately", name, len(st.extras))
		}
	}
	m.setRoute(&routing{rows: rows, names: append([]string(nil), adapters...)})
	m.gen.Advance("SetRowAdapters")
	return nil
}

// ClearRowAdapters ends row routing: graphs built afterwards use the active
// adapter on every row.
func (m *Model) ClearRowAdapters() {
	m.setRoute(nil)
	m.gen.Advance("ClearRowAdapters")
}

func (m *Model) setRoute(r *routing) {
	m.route = r
	for _, w := range m.byPath {
		w.state().route = r
	}
	m.sync()
}

// RowIndices expands one adapter name per batch item ("" for the base
// model) into the per-row values of a SetRowAdapters rows node: item b
// covers rows [b·rowsPerItem, (b+1)·rowsPerItem), and a name's value is its
// index in adapters.
func RowIndices(adapters, items []string, rowsPerItem int) ([]int, error) {
	if rowsPerItem < 1 {
		return nil, fmt.Errorf("lora: row indices: %d rows per item, want ≥ 1", rowsPerItem)
	}
	index := map[string]int{"": -1}
	for i, a := range adapters {
		if _, dup := index[a]; !dup {
			index[a] = i
		}
	}
	out := make([]int, 0, len(items)*rowsPerItem)
	for b, name := range items {
		k, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("lora: row indices: item %d names adapter %q, not among %v", b, name, adapters)
		}
		for t := 0; t < rowsPerItem; t++ {
			out = append(out, k)
		}
	}
	return out, nil
}
