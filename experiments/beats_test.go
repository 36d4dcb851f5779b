package experiments

import "testing"

// TestBeatsNeedsAMargin: a loss within 0.5% of another does not beat it.
func TestBeatsNeedsAMargin(t *testing.T) {
	for _, c := range []struct {
		own, other float64
		want       bool
	}{
		{2.995, 3.0, false}, // 0.17% lower: within the margin
		{2.99, 3.0, false},  // 0.33% lower
		{2.98, 3.0, true},   // 0.67% lower
		{2.7, 3.0, true},
		{3.0, 3.0, false},
		{3.1, 3.0, false},
	} {
		if got := beats(c.own, c.other); got != c.want {
			t.Errorf("beats(%v, %v) = %v, want %v", c.own, c.other, got, c.want)
		}
	}
}
