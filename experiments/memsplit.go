package experiments

import (
	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/benchutil"
)

// PeakRSSBytes is the process's peak resident set size (0 where unknown).
func PeakRSSBytes() int64 { return int64(benchutil.PeakRSSMiB() * (1 << 20)) }

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
