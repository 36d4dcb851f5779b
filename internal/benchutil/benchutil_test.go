package benchutil

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	xs := []float64{3, 1, 2, 10}
	if m := Median(xs); m != 2.5 {
		t.Errorf("Median(3 1 2 10) = %v, want 2.5", m)
	}
	if !slices.Equal(xs, []float64{3, 1, 2, 10}) {
		t.Errorf("Median reordered its input: %v", xs)
	}
	if m := Median([]float64{5, -1, 4}); m != 4 {
		t.Errorf("Median(5 -1 4) = %v, want 4", m)
	}
	if m := Median(nil); m != 0 {
		t.Errorf("Median(nil) = %v", m)
	}
}

// RandomTokens is in range, repeatable for a seed, different across seeds
// and uses the whole vocabulary.
func TestRandomTokens(t *testing.T) {
	a, b, c := RandomTokens(2000, 7, 3), RandomTokens(2000, 7, 3), RandomTokens(2000, 7, 4)
	if !slices.Equal(a, b) {
		t.Error("same seed, different tokens")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same tokens")
	}
	seen := map[int]bool{}
	for _, x := range a {
		if x < 0 || x >= 7 {
			t.Fatalf("token %d out of [0, 7)", x)
		}
		seen[x] = true
	}
	if len(seen) != 7 {
		t.Errorf("%d of 7 ids drawn in 2000 tokens", len(seen))
	}
}

// A 64 MiB allocation held while the sampler runs shows in its peak.
func TestPeakSeesAllocation(t *testing.T) {
	p := StartPeak(time.Millisecond)
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	time.Sleep(20 * time.Millisecond)
	peak := p.Stop()
	runtime.KeepAlive(buf)
	if peak < 64 {
		t.Errorf("peak %.1f MiB while 64 MiB were live", peak)
	}
	var none *Peak
	if none.Stop() != 0 {
		t.Error("nil Peak")
	}
	if runtime.GOOS == "linux" && PeakRSSMiB() < 64 {
		t.Errorf("peak RSS %.1f MiB after touching 64 MiB", PeakRSSMiB())
	}
}
