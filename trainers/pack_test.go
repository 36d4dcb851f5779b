package trainers

import (
	"slices"
	"strings"
	"testing"
)

func TestFillMask(t *testing.T) {
	// Tokens 10…15; targets 12, 13 and 15 (two separate turns).
	ex := Example{Tokens: []int{10, 11, 12, 13, 14, 15}, Mask: []bool{true, false, true, true, false, true}}
	cases := []struct {
		ctx     int
		ids     []int
		targets []int
		mask    []float64
	}{
		{8, []int{10, 11, 12, 13, 14, 0, 0, 0}, []int{11, 12, 13, 14, 15, 0, 0, 0}, []float64{0, 1, 1, 0, 1, 0, 0, 0}},
		// A context of 3 keeps the first 4 tokens: the second turn is cut.
		{3, []int{10, 11, 12}, []int{11, 12, 13}, []float64{0, 1, 1}},
	}
	for _, c := range cases {
		var b batch
		if err := b.fill([]Example{ex}, []int{0}, "x", 1, c.ctx, 0, 20); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.ids, c.ids) || !slices.Equal(b.targets, c.targets) || !slices.Equal(b.mask, c.mask) {
			t.Errorf("ctx %d: ids %v targets %v mask %v, want %v %v %v", c.ctx, b.ids, b.targets, b.mask, c.ids, c.targets, c.mask)
		}
		var want float64
		for _, m := range c.mask {
			want += m
		}
		if b.weight != want {
			t.Errorf("ctx %d: weight %v, want %v", c.ctx, b.weight, want)
		}
	}
	var b batch
	bad := Example{Tokens: []int{1, 2}, Mask: []bool{true}}
	if err := b.fill([]Example{bad}, []int{4}, "training", 1, 4, 0, 20); err == nil || !strings.Contains(err.Error(), "training example 4: 1 mask entries for 2 tokens") {
		t.Errorf("a short mask: %v", err)
	}
	if got := TargetsWithin(ex, 3); got != 2 {
		t.Errorf("TargetsWithin(ctx 3) = %d, want 2", got)
	}
	if got := TargetsWithin(ex, 0); got != 3 {
		t.Errorf("TargetsWithin(all) = %d, want 3", got)
	}
	if got := TargetsWithin(Example{Tokens: []int{1, 2, 3, 4}, PromptLen: 2}, 0); got != 2 {
		t.Errorf("TargetsWithin(prompt) = %d, want 2", got)
	}
}

func TestPack(t *testing.T) {
	exs := []Example{
		{Tokens: []int{1, 2, 3}, Mask: []bool{false, false, true}},
		{Tokens: []int{4, 5, 6, 7}, Mask: []bool{true, false, true, true}}, // its first token is scored once it follows example 0
		{Tokens: []int{8, 9}, PromptLen: 1},                                // no mask: 9 is scored
	}
	set, err := Pack(exs, 3, "p")
	if err != nil {
		t.Fatal(err)
	}
	// Stream 1 2 3 4 5 6 7 8 9, scored 3 4 6 7 9; windows of 4 overlapping by 1.
	want := []Example{
		{Tokens: []int{1, 2, 3, 4}, Mask: []bool{false, false, true, true}},
		{Tokens: []int{4, 5, 6, 7}, Mask: []bool{false, false, true, true}},
		{Tokens: []int{7, 8, 9}, Mask: []bool{false, false, true}},
	}
	if len(set.Examples) != len(want) {
		t.Fatalf("%d windows, want %d: %+v", len(set.Examples), len(want), set.Examples)
	}
	scored := 0
	for i, w := range want {
		got := set.Examples[i]
		if !slices.Equal(got.Tokens, w.Tokens) || !slices.Equal(got.Mask, w.Mask) {
			t.Errorf("window %d: %+v, want %+v", i, got, w)
		}
		scored += TargetsWithin(got, 3)
	}
	if scored != 5 {
		t.Errorf("%d targets over the windows, want 5 (each scored token once)", scored)
	}
	// A window with nothing scored is left out.
	set, err = Pack([]Example{{Tokens: []int{1, 2, 3, 4, 5, 6, 7}, Mask: []bool{false, false, false, false, false, true, true}}}, 3, "p")
	if err != nil || len(set.Examples) != 1 || !slices.Equal(set.Examples[0].Tokens, []int{4, 5, 6, 7}) {
		t.Errorf("unscored windows: %+v, %v", set, err)
	}
	if _, err := Pack([]Example{{Tokens: []int{1, 2}, Mask: []bool{false, false}}}, 3, "p"); err == nil {
		t.Error("nothing scored: no error")
	}
	if _, err := Pack(exs, 0, "p"); err == nil {
		t.Error("context 0: no error")
	}
}
