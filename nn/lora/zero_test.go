package lora_test

import (
	"slices"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
)

// TestZeroConfig: the zero Config is usable and means what Config's
// documentation says: r = 8, α = 8 on every linear layer (AllLinear).
func TestZeroConfig(t *testing.T) {
	h := newTiny(graph.Float64, 2, 1).untie()
	var linear []string
	for _, l := range h.Layers() {
		if _, ok := l.Layer.(*nn.Linear); ok {
			linear = append(linear, l.Path)
		}
	}
	m, err := lora.Inject(h, lora.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Config(lora.DefaultAdapter)
	if err != nil {
		t.Fatal(err)
	}
	if c.R != 8 || c.Alpha != 8 || !slices.Equal(c.Targets, []string{lora.AllLinear}) || c.Bias != lora.BiasNone || c.Init != lora.InitDefault {
		t.Fatalf("zero Config became %+v", c)
	}
	paths, err := m.Paths(lora.DefaultAdapter)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range linear {
		if p != "lm_head" {
			want = append(want, p)
		}
	}
	if len(want) == 0 || !slices.Equal(paths, want) {
		t.Fatalf("zero Config adapted %v, want every linear layer but lm_head: %v", paths, want)
	}
}
