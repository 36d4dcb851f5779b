package gpt

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/memlimit"
)

func TestMemoryEstimates(t *testing.T) {
	cfg := tinyConfig()
	m := newModel(t, cfg, graph.Float32, 1, 0.02)
	if got, want := cfg.ModelBytes(4), int64(4*cfg.NumParams()); got != want {
		t.Errorf("ModelBytes(4) = %d, want 4·NumParams = %d", got, want)
	}
	// A decoder's estimate covers its cache, which it allocates exactly.
	d, cache, err := m.NewDecoder(3, 1, cfg.BlockSize)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if est := m.DecoderBytes(3, 1, cfg.BlockSize); est < int64(cache.Bytes()) {
		t.Errorf("DecoderBytes %d < the cache's %d bytes", est, cache.Bytes())
	}
	// More rows, longer contexts, more beams: never less memory.
	for _, c := range []struct{ a, b int64 }{
		{cfg.TrainBytes(4, 8, 0, 4, false), cfg.TrainBytes(8, 8, 0, 4, false)},
		{cfg.TrainBytes(4, 8, 0, 4, false), cfg.TrainBytes(4, 16, 0, 4, false)},
		{cfg.TrainBytes(4, 8, 0, 4, false), cfg.TrainBytes(4, 8, 0, 4, true)},
		{cfg.TrainBytes(4, 8, 0, 4, true), cfg.TrainBytes(4, 8, 1000, 4, true)},
		{m.GenerateBytes(1, 4, GenerateOptions{MaxNewTokens: 4}), m.GenerateBytes(1, 4, GenerateOptions{MaxNewTokens: 4, Beams: 8})},
		{m.GenerateBytes(1, 4, GenerateOptions{MaxNewTokens: 4}), m.GenerateBytes(1, 4, GenerateOptions{MaxNewTokens: 8})},
	} {
		if !(0 < c.a && c.a < c.b) {
			t.Errorf("estimates %d, %d: want 0 < first < second", c.a, c.b)
		}
	}
	// Absurd sizes saturate instead of overflowing.
	huge := cfg
	huge.NLayer, huge.NEmbd, huge.BlockSize = math.MaxInt, math.MaxInt, math.MaxInt
	for name, v := range map[string]int64{
		"ModelBytes":    huge.ModelBytes(8),
		"TrainBytes":    cfg.TrainBytes(math.MaxInt, math.MaxInt, math.MaxInt, 8, true),
		"GenerateBytes": m.GenerateBytes(math.MaxInt, math.MaxInt, GenerateOptions{MaxNewTokens: math.MaxInt, Beams: math.MaxInt, BatchSize: math.MaxInt}),
	} {
		if v != math.MaxInt64 {
			t.Errorf("%s of absurd sizes = %d, want MaxInt64", name, v)
		}
	}
}

// TestGenerateRefusesWhatDoesNotFit: a request beyond the memory available
// is an error wrapping ErrTooLarge before anything is allocated, and beams
// beyond the vocabulary are refused outright.
func TestGenerateRefusesWhatDoesNotFit(t *testing.T) {
	cfg := tinyConfig()
	m := newModel(t, cfg, graph.Float32, 1, 0.02)
	_, err := m.Generate([][]int{{1, 2}}, GenerateOptions{MaxNewTokens: 2, Beams: cfg.VocabSize + 1})
	if err == nil || !strings.Contains(err.Error(), "at most VocabSize") {
		t.Errorf("beams beyond the vocabulary: %v", err)
	}
	t.Setenv(memlimit.EnvLimit, "1KiB") // far below what a decoder takes
	_, err = m.Generate([][]int{{1, 2}}, GenerateOptions{MaxNewTokens: 2, Beams: 4})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "needs about") {
		t.Errorf("under a 1 KiB memory limit: %v, want ErrTooLarge", err)
	}
	t.Setenv(memlimit.EnvLimit, "")
	if _, err := m.Generate([][]int{{1, 2}}, GenerateOptions{MaxNewTokens: 2, Beams: 4}); err != nil {
		t.Errorf("with the limit lifted: %v", err)
	}
}
