package lora_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
)

// compiled is an inference and a training program of the fixed batch.
type compiledPair struct {
	fwd, train   *graph.Program
	logits, loss *graph.Node
}

func compileBoth(t testing.TB, h *tinyGPT) compiledPair {
	t.Helper()
	var c compiledPair
	b := graph.NewBuilder(h.dt, 7)
	c.loss, c.logits = h.lossGraph(b)
	var err error
	if c.fwd, err = b.Compile(nil, c.logits); err != nil {
		t.Fatal(err)
	}
	b2 := graph.NewBuilder(h.dt, 7)
	loss, _ := h.lossGraph(b2)
	if c.train, err = b2.Compile(loss); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNoStalePrograms compiles programs, changes the model's adapter state
// in every way a Model can, and runs the old programs again: each run is
// either correct (equal to a program built afterwards) or an error
// wrapping graph.ErrStale that names the change, never silently wrong. A
// program built after the change runs.
func TestNoStalePrograms(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		before func(m *lora.Model) error // state the programs are built in
		change func(m *lora.Model) error
		why    string
	}{
		{"Merge", nil, (*lora.Model).Merge, "Merge"},
		{"Unmerge", (*lora.Model).Merge, (*lora.Model).Unmerge, "Unmerge"},
		{"MergeAndUnload", nil, (*lora.Model).MergeAndUnload, "unloaded"},
		{"Unload", nil, (*lora.Model).Unload, "unloaded"},
		{"SetActive", nil, func(m *lora.Model) error { return m.SetActive("b") }, `SetActive("b")`},
		{"Disable", nil, (*lora.Model).Disable, "Disable"},
		{"Enable", (*lora.Model).Disable, (*lora.Model).Enable, "Enable"},
		{"AddAdapter pissa", nil, func(m *lora.Model) error {
			return m.AddAdapter("p", lora.Config{R: 2, Targets: []string{"c_fc"}, Init: lora.InitPiSSA})
		}, `adapter "p" added`},
		{"DeleteAdapter", func(m *lora.Model) error { return m.SetActive("b") }, func(m *lora.Model) error { return m.DeleteAdapter("b") }, `DeleteAdapter("b")`},
		{"LoadAdapter", func(m *lora.Model) error { return m.DeleteAdapter(lora.DefaultAdapter) }, func(m *lora.Model) error {
			return m.LoadAdapter(filepath.Join(dir, "default"), "loaded")
		}, `adapter "loaded" added`},
		{"AddWeightedAdapter", nil, func(m *lora.Model) error {
			return m.AddWeightedAdapter("w", []string{"b"}, []float64{0.5}, lora.CombineCat)
		}, `adapter "w" added`},
		{"SetRowAdapters", nil, func(m *lora.Model) error {
			b := graph.NewBuilder(graph.Float64, 1)
			return m.SetRowAdapters(b.IntConstant("rows", routedRows, len(routedRows)), []string{"b"})
		}, "SetRowAdapters"},
		{"ClearRowAdapters", nil, func(m *lora.Model) error { m.ClearRowAdapters(); return nil }, "ClearRowAdapters"},
	}
	saved := false
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Targets: []string{"q", "v", "wte"}, Seed: 1})
			train(t, h, 2, 0.5)
			if err := m.AddAdapter("b", lora.Config{R: 2, Alpha: 3, Targets: []string{"c_fc", "c_attn"}, Seed: 2}); err != nil {
				t.Fatal(err)
			}
			if err := m.SetActive("b"); err != nil {
				t.Fatal(err)
			}
			train(t, h, 2, 0.5)
			if err := m.SetActive(lora.DefaultAdapter); err != nil {
				t.Fatal(err)
			}
			if !saved {
				if err := m.Save(filepath.Join(dir, "default"), lora.DefaultAdapter); err != nil {
					t.Fatal(err)
				}
				saved = true
			}
			if c.before != nil {
				if err := c.before(m); err != nil {
					t.Fatal(err)
				}
			}
			old := compileBoth(t, h)
			if err := old.fwd.Forward(); err != nil {
				t.Fatal(err)
			}
			if err := c.change(m); err != nil {
				t.Fatal(err)
			}
			for name, run := range map[string]func() error{"Forward": old.fwd.Forward, "Run": old.train.Run} {
				err := run()
				if err == nil {
					if name == "Forward" {
						got, _ := old.fwd.Output(old.logits)
						if e := maxRel(got.Values(), forward(t, h, false)); e > 1e-12 {
							t.Errorf("old program ran silently wrong after %s: differs by %.3g", c.name, e)
						}
					}
					continue
				}
				if !errors.Is(err, graph.ErrStale) {
					t.Errorf("%s after %s: err %v, want graph.ErrStale", name, c.name, err)
				}
				if !strings.Contains(err.Error(), "lora model changed ("+c.why+")") {
					t.Errorf("%s after %s: error %q does not name the change", name, c.name, err)
				}
			}
			if c.name != "SetRowAdapters" { // (a routed graph is built in the rows' builder)
				forward(t, h, false) // a program built now runs
			}
		})
	}
}
