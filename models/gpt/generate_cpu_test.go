//go:build unix

package gpt

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) the test process has used, so
// that benchmarks can report work done apart from waiting for a CPU on a
// shared machine.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
