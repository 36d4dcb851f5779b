package lora

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
)

// DefaultKeyPrefix is the path of GPT-2's layers inside Hugging Face's
// GPT2LMHeadModel ("transformer."), which PEFT writes between
// "base_model.model." and a layer path in adapter files.
const DefaultKeyPrefix = "transformer."

// peftPrefixer is a host that names the path of its layers inside the
// Hugging Face model class PEFT wraps (see Model.KeyPrefix).
type peftPrefixer interface{ PEFTKeyPrefix() string }

// DefaultAdapter is the name Inject and Load give their adapter (PEFT's).
const DefaultAdapter = "default"

// Errors that callers may branch on (with errors.Is).
var (
	// ErrAlreadyMerged: Merge while an adapter is merged, or an operation
	// that needs unmerged weights.
	ErrAlreadyMerged = errors.New("lora: merge: an adapter is already merged into the base weights")
	// ErrNotMerged: Unmerge while nothing is merged.
	ErrNotMerged = errors.New("lora: unmerge: no adapter is merged")
	// ErrUnknownAdapter: a name that is not one of the model's adapters.
	ErrUnknownAdapter = errors.New("lora: no such adapter")
	// ErrUnloaded: the model was unloaded (Unload, MergeAndUnload).
	ErrUnloaded = errors.New("lora: the model was unloaded")
)

// Model is a host model with LoRA adapters injected into some of its
// layers: the object to add, switch, merge, combine, save and load adapters
// with. Make one with Inject, Load or NewModel. Its methods keep every wrapped layer and every parameter's
// Trainable flag in step:
//
//   - every base parameter is frozen (Trainable = false), except the biases
//     and modules the active adapter trains (Config.Bias,
//     Config.ModulesToSave);
//   - only the active adapter's A and B are trainable (all routed adapters'
//     while SetRowAdapters is in force; none while disabled or merged).
//
// Trainable flags are read when a graph is compiled, the state (active
// adapter, merged, disabled, routing) when it is built, and parameter
// values when it runs. Every change of the state makes programs built
// before stale: their next Run or Forward returns an error wrapping
// graph.ErrStale instead of computing with the old state (the Trainer and
// gpt's Generator then compile again by themselves).
type Model struct {
	// KeyPrefix is put between "base_model.model." and a layer path in
	// adapter file keys, and tried in front of paths when matching names
	// (Config.Targets). NewModel sets it to what the host's PEFTKeyPrefix
	// method returns when it has one ("" for a Llama-family model, whose
	// layer paths are already Hugging Face's full module paths), else to
	// DefaultKeyPrefix.
	KeyPrefix string
	// MergeEmbeddings lets Merge merge an adapter on an Embedding. It is
	// off by default because GPT-2's LM head is tied to its token
	// embedding: merging ΔW into the shared table changes the head too, so
	// merged outputs would differ from unmerged ones (where the head sees
	// the base table). Set it for embeddings that no other layer shares.
	MergeEmbeddings bool

	host     nn.Host
	byPath   map[string]wrapper
	adapters map[string]*adapterState
	order    []string // adapter names in the order added
	active   string
	merged   bool
	disabled bool
	route    *routing
	closed   bool
	// gen numbers the versions of the state wrappers read when they build
	// a graph; every change advances it, so programs built before fail
	// with graph.ErrStale instead of computing the old structure.
	gen *graph.Generation

	// Parameters that adapters train fully (biases, modules to save): the
	// live parameter holds the values of owner[p] ("" for the base), the
	// others are kept in base[p] and each adapter's saved[p].
	base  map[*graph.Param]*graph.Param
	owner map[*graph.Param]string
	// The host's Trainable flags before NewModel, restored by unloading.
	before map[*graph.Param]bool
}

type adapterState struct {
	cfg    Config   // with defaults
	paths  []string // layers it adapts, host order
	extras []*graph.Param
	saved  map[*graph.Param]*graph.Param
}

// NewModel prepares host for adapters without adding one: every parameter
// is frozen. Use AddAdapter or LoadAdapter next.
func NewModel(host nn.Host) (*Model, error) {
	if host == nil {
		return nil, errors.New("lora: nil host model")
	}
	m := &Model{
		KeyPrefix: DefaultKeyPrefix,
		host:      host,
		byPath:    map[string]wrapper{},
		adapters:  map[string]*adapterState{},
		base:      map[*graph.Param]*graph.Param{},
		owner:     map[*graph.Param]string{},
		before:    map[*graph.Param]bool{},
		gen:       graph.NewGeneration("lora model"),
	}
	if h, ok := host.(peftPrefixer); ok {
		m.KeyPrefix = h.PEFTKeyPrefix()
	}
	for _, p := range host.Params() {
		m.before[p] = p.Trainable
	}
	m.applyTrainable()
	return m, nil
}

// Inject adds the adapter "default" described by cfg to host and makes it
// active: each target layer is replaced (through host.SetLayer) by a
// Linear or Embedding wrapper. With the default initialisation B = 0 (A = 0
// for embeddings), so the model computes exactly what the base model
// computes until A and B are trained. On error the host is left exactly as
// it was.
func Inject(host nn.Host, cfg Config) (*Model, error) {
	m, err := NewModel(host)
	if err != nil {
		return nil, err
	}
	if err := m.AddAdapter(DefaultAdapter, cfg); err != nil {
		m.restoreTrainable()
		return nil, err
	}
	return m, nil
}

// Host returns the model the adapters are injected into.
func (m *Model) Host() nn.Host { return m.host }

func (m *Model) usable() error {
	if m == nil || m.host == nil {
		return errors.New("lora: nil model")
	}
	if m.closed {
		return ErrUnloaded
	}
	return nil
}

func (m *Model) state(name string) (*adapterState, error) {
	st, ok := m.adapters[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (have %s)", ErrUnknownAdapter, name, m.names())
	}
	return st, nil
}

func (m *Model) names() string {
	if len(m.order) == 0 {
		return "none"
	}
	return strings.Join(m.order, ", ")
}

// wrappers returns the model's wrapped layers in host order.
func (m *Model) wrappers() []wrapper {
	var out []wrapper
	for _, nl := range m.host.Layers() {
		if w, ok := m.byPath[nl.Path]; ok && nn.Layer(w) == nl.Layer {
			out = append(out, w)
		}
	}
	return out
}

// Adapters lists the adapter names in the order they were added.
func (m *Model) Adapters() []string { return append([]string(nil), m.order...) }

// Active names the active adapter, "" for none.
func (m *Model) Active() string { return m.active }

// Config returns the named adapter's configuration (defaults filled in).
func (m *Model) Config(name string) (Config, error) {
	st, err := m.state(name)
	if err != nil {
		return Config{}, err
	}
	return st.cfg.clone(), nil
}

// Paths lists the layers the named adapter adapts, in host order.
func (m *Model) Paths(name string) ([]string, error) {
	st, err := m.state(name)
	if err != nil {
		return nil, err
	}
	return append([]string(nil), st.paths...), nil
}

// Layer returns the LoRA wrapper (*Linear or *Embedding) at path, or nil
// when no adapter has wrapped that layer.
func (m *Model) Layer(path string) nn.Layer {
	if w, ok := m.byPath[path]; ok {
		return w
	}
	return nil
}

// Adapter returns the named adapter's weights on the layer at path.
func (m *Model) Adapter(path, name string) (*Adapter, error) {
	if _, err := m.state(name); err != nil {
		return nil, err
	}
	w, ok := m.byPath[path]
	if !ok {
		return nil, fmt.Errorf("lora: no adapted layer at %q", path)
	}
	ad := w.state().Adapter(name)
	if ad == nil {
		return nil, fmt.Errorf("lora: adapter %q does not adapt %s", name, path)
	}
	return ad, nil
}

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

// Merge adds the active adapter's update into the frozen base weights,
// W ← W + s·A·B (per slice, in the slice's columns; computed in float64
// and rounded once to W's dtype), so that Forward runs the base layer alone
// at the base layer's cost. A DoRA adapter merges as W ← g ⊙ (W + s·A·B)
// with g = m / ‖W + s·A·B‖ per output column (PEFT's merge). A second Merge is an error (ErrAlreadyMerged);
// so is Merge with no active adapter, while disabled, while rows are
// routed, or of an adapter on an embedding unless MergeEmbeddings is set.
func (m *Model) Merge() error {
	if err := m.usable(); err != nil {
		return err
	}
	switch {
	case m.merged:
		return ErrAlreadyMerged
	case m.active == "":
		return errors.New("lora: merge: no active adapter")
	case m.disabled:
		return errors.New("lora: merge: adapters are disabled (Enable first)")
	case m.route != nil:
		return errors.New("lora: merge: rows are routed to several adapters (ClearRowAdapters first)")
	}
	if !m.MergeEmbeddings {
		for path, w := range m.byPath {
			if _, ok := w.(*Embedding); ok && w.state().Adapter(m.active) != nil {
				return fmt.Errorf("lora: merge: adapter %q adapts embedding %s, whose table a tied LM head may share (set MergeEmbeddings if it is not tied)", m.active, path)
			}
		}
	}
	for path, w := range m.byPath {
		if p := w.weight(); p.Quantized() != nil && w.state().Adapter(m.active) != nil {
			return fmt.Errorf("lora: merge: %s's base weight is held at %v; merge on a float base: load the base in f32, load the adapter file on it, then merge (or Dequantize the weight first)", path, p.Precision())
		}
	}
	for _, w := range m.byPath {
		s := w.state()
		if ad := s.Adapter(m.active); ad != nil {
			if ad.Magnitude != nil {
				s.doraG = mergeDoRA(w.weight(), ad) // W ← g ⊙ (W + ΔW)
			} else {
				addDelta(w.weight(), ad, 1)
			}
			s.merged = m.active
		}
	}
	m.merged = true
	m.applyTrainable()
	m.gen.Advance("Merge")
	return nil
}

// Unmerge subtracts the merged adapter's update again, W ← W − s·A·B (for
// DoRA W ← W/g − s·A·B with the merge's g), which restores W up to float
// rounding (one rounding step of W's dtype).
// Unmerge when nothing is merged is an error (ErrNotMerged).
func (m *Model) Unmerge() error {
	if err := m.usable(); err != nil {
		return err
	}
	if !m.merged {
		return ErrNotMerged
	}
	for _, w := range m.byPath {
		s := w.state()
		if s.merged == "" {
			continue
		}
		if ad := s.Adapter(s.merged); s.doraG != nil {
			unmergeDoRA(w.weight(), ad, s.doraG) // W ← W'/g − ΔW
			s.doraG = nil
		} else {
			addDelta(w.weight(), ad, -1)
		}
		s.merged = ""
	}
	m.merged = false
	m.applyTrainable()
	m.gen.Advance("Unmerge")
	return nil
}

// Merged reports whether an adapter (the active one) is merged.
func (m *Model) Merged() bool { return m.merged }

// Disable makes every wrapped layer compute its base layer alone and puts
// the base values back into parameters the active adapter trains fully
// (biases, modules to save), so the model computes what the base model
// computes; nothing is trainable while disabled. It is an error while an
// adapter is merged. Disabling twice is harmless.
func (m *Model) Disable() error {
	if err := m.usable(); err != nil {
		return err
	}
	if m.merged {
		return fmt.Errorf("lora: disable: %w (unmerge first)", ErrAlreadyMerged)
	}
	m.setDisabled(true)
	m.gen.Advance("Disable")
	return nil
}

// Enable undoes Disable. Enabling twice is harmless.
func (m *Model) Enable() error {
	if err := m.usable(); err != nil {
		return err
	}
	m.setDisabled(false)
	m.gen.Advance("Enable")
	return nil
}

func (m *Model) setDisabled(on bool) {
	m.disabled = on
	for _, w := range m.byPath {
		w.state().disabled = on
	}
	m.sync()
}

// Disabled reports whether adapters are disabled.
func (m *Model) Disabled() bool { return m.disabled }

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

// sync puts the right values into the parameters adapters train fully and
// sets every Trainable flag (see Model).
func (m *Model) sync() {
	for p := range m.base {
		cur, next := m.owner[p], ""
		if st, ok := m.adapters[m.active]; ok && !m.disabled && m.route == nil && st.saved[p] != nil {
			next = m.active
		}
		if cur == next {
			continue
		}
		if st, ok := m.adapters[cur]; ok && cur != "" {
			_ = st.saved[p].CopyFrom(p)
		}
		src := m.base[p]
		if next != "" {
			src = m.adapters[next].saved[p]
		}
		_ = p.CopyFrom(src)
		m.owner[p] = next
	}
	m.applyTrainable()
}

func (m *Model) applyTrainable() {
	nn.SetTrainable(m.Params(), false)
	if m.closed || m.disabled {
		return
	}
	var on []string
	if m.route != nil {
		on = m.route.names
	} else if m.active != "" {
		on = []string{m.active}
	}
	for _, name := range on {
		st := m.adapters[name]
		for _, path := range st.paths {
			if !m.merged { // merged: A and B are not in the graph, only W
				nn.SetTrainable(m.byPath[path].state().Adapter(name).params(), true)
			}
		}
		if m.route == nil {
			nn.SetTrainable(st.extras, true)
		}
	}
}

// Params lists every parameter once: the host's, then the adapters' A and
// B of each wrapped layer (host order) that the host's list lacks.
func (m *Model) Params() []*graph.Param {
	if m == nil || m.host == nil {
		return nil
	}
	seen := map[*graph.Param]bool{}
	var out []*graph.Param
	add := func(ps []*graph.Param) {
		for _, p := range ps {
			if p != nil && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	add(m.host.Params())
	for _, w := range m.wrappers() {
		add(w.Params())
	}
	return out
}

// TrainableParams lists the parameters whose Trainable flag is set, in
// Params order.
func (m *Model) TrainableParams() []*graph.Param {
	var out []*graph.Param
	for _, p := range m.Params() {
		if p.Trainable {
			out = append(out, p)
		}
	}
	return out
}

// Unload removes every adapter: it unmerges if needed, puts the base values
// back into fully trained parameters, and puts the base layers back into
// the host, with the Trainable flags the host had before NewModel. The
// Model cannot be used afterwards.
func (m *Model) Unload() error {
	if err := m.usable(); err != nil {
		return err
	}
	if m.merged {
		if err := m.Unmerge(); err != nil {
			return err
		}
	}
	for p := range m.base {
		_ = p.CopyFrom(m.base[p])
		m.owner[p] = ""
	}
	return m.unwrap()
}

// MergeAndUnload merges the active adapter (unless merged already) and puts
// the base layers, now holding W + s·A·B, back into the host, keeping the
// active adapter's values of fully trained parameters (PEFT's
// merge_and_unload). The host is then a plain model with the adapter baked
// in; the Model cannot be used afterwards.
func (m *Model) MergeAndUnload() error {
	if err := m.usable(); err != nil {
		return err
	}
	if !m.merged {
		if err := m.Merge(); err != nil {
			return err
		}
	}
	return m.unwrap()
}

func (m *Model) unwrap() error {
	for _, w := range m.wrappers() {
		if err := m.host.SetLayer(w.state().path, w.base()); err != nil {
			return fmt.Errorf("lora: unload %s: %w", w.state().path, err)
		}
	}
	m.closed = true
	for p, on := range m.before {
		p.Trainable = on
	}
	m.gen.Advance("unloaded")
	return nil
}
