package memlimit

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// system returns the smallest of MemAvailable, the room under the cgroup
// limit and the address space left under RLIMIT_AS.
func system() (int64, bool) {
	best, ok := int64(0), false
	take := func(v int64) {
		if !ok || v < best {
			best, ok = max(0, v), true
		}
	}
	if v, found := meminfo("MemAvailable"); found {
		take(v)
	}
	if v, found := cgroupRoom(); found {
		take(v)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err == nil && rl.Cur != ^uint64(0) && rl.Cur < 1<<62 {
		if vm, found := status("VmSize"); found {
			take(int64(rl.Cur) - vm)
		}
	}
	return best, ok
}

// meminfo reads a "Key: N kB" line of /proc/meminfo, in bytes.
func meminfo(key string) (int64, bool) { return kbLine("/proc/meminfo", key) }

// status reads a "Key: N kB" line of /proc/self/status, in bytes.
func status(key string) (int64, bool) { return kbLine("/proc/self/status", key) }

func kbLine(path, key string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 || n > 1<<52 {
			return 0, false
		}
		return n * 1024, true
	}
	return 0, false
}

// cgroupRoom is the limit minus the usage of the process's memory cgroup
// (v2, else v1), when a limit is set.
func cgroupRoom() (int64, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	var v1, v2 string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case strings.Contains(","+parts[1]+",", ",memory,"):
			v1 = parts[2]
		}
	}
	// The process may see its own cgroup at the root of the mount (a
	// container's namespace) or at its path: try both.
	if v2 != "" {
		for _, dir := range []string{filepath.Join("/sys/fs/cgroup", v2), "/sys/fs/cgroup"} {
			if room, ok := room(filepath.Join(dir, "memory.max"), filepath.Join(dir, "memory.current")); ok {
				return room, true
			}
		}
	}
	if v1 != "" {
		for _, dir := range []string{filepath.Join("/sys/fs/cgroup/memory", v1), "/sys/fs/cgroup/memory"} {
			if room, ok := room(filepath.Join(dir, "memory.limit_in_bytes"), filepath.Join(dir, "memory.usage_in_bytes")); ok {
				return room, true
			}
		}
	}
	return 0, false
}

// room reads a limit file and a usage file; "max" or a value ≥ 2⁶² is no
// limit.
func room(limitFile, usageFile string) (int64, bool) {
	lb, err := os.ReadFile(limitFile)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(lb))
	if s == "max" {
		return 0, false
	}
	limit, err := strconv.ParseInt(s, 10, 64)
	if err != nil || limit >= 1<<62 {
		return 0, false
	}
	ub, err := os.ReadFile(usageFile)
	if err != nil {
		return 0, false
	}
	used, err := strconv.ParseInt(strings.TrimSpace(string(ub)), 10, 64)
	if err != nil {
		return 0, false
	}
	return limit - used, true
}
