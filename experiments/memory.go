package experiments

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// heapMetric is the Go runtime's count of bytes in live and not yet swept
// heap objects: what a computation holds, garbage included until the
// collector frees it.
const heapMetric = "/memory/classes/heap/objects:bytes"

// peakSampler records the largest heap size seen while it runs, sampling the
// runtime's metrics every period (reading them does not stop the world).
type peakSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

// startPeak collects garbage (so the peak starts from live data only) and
// starts sampling.
func startPeak(period time.Duration) *peakSampler {
	runtime.GC()
	s := &peakSampler{stop: make(chan struct{})}
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		sample := []metrics.Sample{{Name: heapMetric}}
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				s.peak = max(s.peak, sample[0].Value.Uint64())
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

// Stop ends sampling and returns the peak heap size in MiB.
func (s *peakSampler) Stop() float64 {
	close(s.stop)
	s.done.Wait()
	return float64(s.peak) / (1 << 20)
}

// peakRSSMiB returns the process's peak resident set size in MiB (VmHWM of
// /proc/self/status), or 0 where that file does not exist (not Linux).
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "123456 kB"
		if len(f) == 2 && f[1] == "kB" {
			if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
