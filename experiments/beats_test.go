package experiments

import "testing"

// TestBeatsNeedsAMargin: a loss within 2% of another does not beat it.
func TestBeatsNeedsAMargin(t *testing.T) {
	for _, c := range []struct {
		own, other float64
		want       bool
	}{
		{2.97, 3.0, false}, // 1% lower: noise
		{2.93, 3.0, true},  // 2.3% lower
		{2.7, 3.0, true},
		{3.0, 3.0, false},
		{3.1, 3.0, false},
	} {
		if got := beats(c.own, c.other); got != c.want {
			t.Errorf("beats(%v, %v) = %v, want %v", c.own, c.other, got, c.want)
		}
	}
}
