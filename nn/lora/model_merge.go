package lora

import (
	"errors"
	"fmt"
)

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
