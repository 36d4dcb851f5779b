package experiments

import (
	"os"
	"runtime"
	"runtime/metrics"
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

// peakSampler records the largest heap size seen while it runs, sampling the
// runtime's metrics every period (reading them does not stop the world).
type peakSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak atomic.Uint64
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

// Stop ends sampling and returns the peak heap size in MiB.
func (s *peakSampler) Stop() float64 {
	close(s.stop)
	s.done.Wait()
	return float64(s.peak.Load()) / (1 << 20)
}

// PeakSampler records the largest Go heap seen since it started.
type PeakSampler struct{ s *peakSampler }

// StartPeakSampler collects garbage and starts sampling the heap every
// period; Stop it when done.
func StartPeakSampler(period time.Duration) *PeakSampler {
	return &PeakSampler{s: startPeak(period)}
}

// PeakBytes is the largest heap seen so far.
func (p *PeakSampler) PeakBytes() int64 { return int64(p.s.peak.Load()) }

// Stop ends sampling.
func (p *PeakSampler) Stop() { p.s.Stop() }

// PeakRSSBytes is the process's peak resident set size (0 where unknown).
func PeakRSSBytes() int64 { return int64(peakRSSMiB() * (1 << 20)) }

// MemorySplit divides a training run's peak Go heap: the frozen base
// weights as stored (at their precision), the trainable parameters with
// their gradients and AdamW's two moments, and the rest, which is the
// activations and the executor's other buffers.
type MemorySplit struct {
	BaseBytes       int64  `json:"base_bytes"`
	TrainableBytes  int64  `json:"adapter_optimizer_bytes"`
	ActivationBytes int64  `json:"activation_bytes"`
	PeakHeapBytes   int64  `json:"peak_heap_bytes"`
	PeakRSSBytes    int64  `json:"peak_rss_bytes"`
	BasePrecision   string `json:"base_precision"`
}

// SplitMemory accounts ps (a model's parameters, each counted once)
// against a measured peak heap and peak RSS.
func SplitMemory(ps []*graph.Param, peakHeap, peakRSS int64) MemorySplit {
	m := MemorySplit{PeakHeapBytes: peakHeap, PeakRSSBytes: peakRSS, BasePrecision: graph.F32.String()}
	seen := map[*graph.Param]bool{}
	for _, p := range ps {
		if seen[p] {
			continue
		}
		seen[p] = true
		if p.Trainable {
			m.TrainableBytes += 4 * p.StorageBytes() // value, gradient, two moments
			continue
		}
		m.BaseBytes += p.StorageBytes()
		if p.Precision() != graph.F32 {
			m.BasePrecision = p.Precision().String()
		}
	}
	m.ActivationBytes = max(0, peakHeap-m.BaseBytes-m.TrainableBytes)
	return m
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
