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
//
// Which handle to train: the host. Inject changes host in place, so host
// (a *gpt.Model, say) is what you build graphs from and hand to
// trainers.New; its trainable parameters are now exactly the adapter's
// (Model.TrainableParams lists the same ones). The returned *Model is the
// handle for the adapters themselves: Report, Save, Merge, SetActive,
// DeltaW and Analyze.
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
