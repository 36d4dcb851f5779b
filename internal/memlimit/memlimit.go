// Package memlimit estimates how much memory the process can still allocate,
// so that a command can refuse a request that would not fit (with an error
// naming what to lower) instead of dying in the Go runtime with "fatal error:
// out of memory", which no program can recover from.
//
// Available takes the smallest of the limits it finds: the memory the
// operating system reports as available (Linux: MemAvailable in
// /proc/meminfo), the room left under a cgroup memory limit (v1 or v2, as
// containers set), the address space left under RLIMIT_AS (ulimit -v), and
// the room left under the Go runtime's soft limit (GOMEMLIMIT or
// debug.SetMemoryLimit) when one is set. On systems where none of these can
// be read it reports that it does not know.
package memlimit

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
)

// Available returns the bytes the process can still allocate, and false when
// no limit could be found. It reads the limits afresh on each call.
func Available() (int64, bool) {
	avail, ok := system()
	if lim := debug.SetMemoryLimit(-1); lim < math.MaxInt64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		used := int64(ms.Sys - ms.HeapReleased)
		room := max(0, lim-used)
		if !ok || room < avail {
			avail, ok = room, true
		}
	}
	return avail, ok
}

// Check returns nil when need bytes fit the memory Available reports (or
// when nothing is known), and otherwise an error saying how much what needs
// and how much is available.
func Check(need int64, what string) error {
	avail, ok := Available()
	if !ok || need <= avail {
		return nil
	}
	return fmt.Errorf("%s needs about %s of memory, more than the %s available", what, Bytes(need), Bytes(avail))
}

// Bytes writes n in binary units with three significant digits: "512 B",
// "1.50 KiB", "3.25 GiB", "12.0 TiB".
func Bytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, units[i])
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%.2f %s", v, units[i])
}
