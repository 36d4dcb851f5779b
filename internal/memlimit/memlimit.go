// Package memlimit estimates how much memory the process can still allocate,
// so that a command can refuse a request that would not fit (with an error
// naming what to lower) instead of dying in the Go runtime with "fatal error:
// out of memory", which no program can recover from.
//
// Available takes the smallest of the limits it finds: the memory the
// operating system reports as available (Linux: MemAvailable in
// /proc/meminfo), the room left under a cgroup memory limit (v1 or v2, as
// containers set), the address space left under RLIMIT_AS (ulimit -v), and
// the environment variable GOLORA_MEMORY_LIMIT when it is set (a size such
// as "512MiB", "2GiB" or "1000000": the most memory a request may count on,
// to leave room for other programs, or to try the limits in tests). Go's own
// GOMEMLIMIT is a soft limit (the runtime collects garbage harder near it
// but does not fail) and is not counted. On systems where none of these can
// be read it reports that it does not know.
package memlimit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// EnvLimit is the environment variable that caps Available.
const EnvLimit = "GOLORA_MEMORY_LIMIT"

// Available returns the bytes the process can still allocate, and false when
// no limit could be found. It reads the limits afresh on each call.
func Available() (int64, bool) {
	avail, ok := system()
	if v := os.Getenv(EnvLimit); v != "" {
		if lim, err := ParseBytes(v); err == nil && (!ok || lim < avail) {
			avail, ok = lim, true
		}
	}
	return avail, ok
}

// ParseBytes reads a size: a number of bytes, optionally with a unit B,
// KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v >= 0) || v*mult >= 1<<63 {
		return 0, fmt.Errorf("memlimit: %q is not a size (want e.g. 512MiB or 2GiB)", s)
	}
	return int64(v * mult), nil
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
