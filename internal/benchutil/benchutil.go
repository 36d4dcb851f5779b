// Package benchutil holds the measuring helpers that golora's benchmarks
// (package benchmarks, `go test -bench`) and `golora bench`
// (experiments.Bench) share, so that both measure peak memory and draw
// their inputs the same way.
package benchutil

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golora/golora/graph"
)

// heapMetric is the Go runtime's count of bytes in live and not yet swept
// heap objects: what a computation holds, garbage included until the
// collector frees it.
const heapMetric = "/memory/classes/heap/objects:bytes"

// Peak records the largest heap size seen while it runs, sampling the
// runtime's metrics every period (reading them does not stop the world).
type Peak struct {
	stop chan struct{}
	done sync.WaitGroup
	peak atomic.Uint64
}

// StartPeak collects garbage (so the peak starts from live data only) and
// starts sampling every period.
func StartPeak(period time.Duration) *Peak {
	runtime.GC()
	s := &Peak{stop: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		sample := []metrics.Sample{{Name: heapMetric}}
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				if v := sample[0].Value.Uint64(); v > s.peak.Load() {
					s.peak.Store(v)
				}
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak heap size in MiB; 0 for a nil
// Peak (one never started).
func (s *Peak) Stop() float64 {
	if s == nil {
		return 0
	}
	close(s.stop)
	s.done.Wait()
	return float64(s.peak.Load()) / (1 << 20)
}

// PeakBytes is the largest heap seen so far (while sampling goes on).
func (s *Peak) PeakBytes() int64 { return int64(s.peak.Load()) }

// PeakRSSMiB returns the process's peak resident set size in MiB (VmHWM of
// /proc/self/status), or 0 where that file does not exist (not Linux).
func PeakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // "123456 kB"
		if len(fields) == 2 && fields[1] == "kB" {
			if kb, err := strconv.ParseFloat(fields[0], 64); err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// ResetPeakRSS returns the memory of earlier runs to the OS and restarts
// the kernel's peak-RSS count (Linux ≥ 4.0; elsewhere nothing happens), so
// that PeakRSSMiB measures one run: testing runs a benchmark function once
// with b.N = 1 before the timed run, in the same process.
func ResetPeakRSS() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// RandomTokens returns n ids drawn uniformly from [0, vocab) with the
// generator graph.NewRand(seed).
func RandomTokens(n, vocab int, seed uint64) []int {
	rng := graph.NewRand(seed)
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
}

// Median returns the median of xs (the mean of the middle two for an even
// count), 0 for none. xs is left as it was.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
