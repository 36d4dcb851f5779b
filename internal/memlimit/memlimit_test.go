package memlimit

import (
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1536: "1.50 KiB", 10 << 20: "10.0 MiB",
		300 << 30: "300 GiB", 5 << 40: "5.00 TiB", math.MaxInt64: "8.00 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestAvailable(t *testing.T) {
	avail, ok := Available()
	if runtime.GOOS == "linux" && !ok {
		t.Fatal("no memory figure on Linux")
	}
	if ok && avail <= 0 {
		t.Fatalf("available %d bytes: a running test has some room", avail)
	}
	// A soft limit below what the runtime holds leaves no room; the
	// figure follows the limit.
	old := debug.SetMemoryLimit(1 << 20)
	defer debug.SetMemoryLimit(old)
	if got, ok := Available(); !ok || got != 0 {
		t.Errorf("under a 1 MiB GOMEMLIMIT: %d bytes, %v; want 0, true", got, ok)
	}
	err := Check(1<<30, "the test")
	if err == nil || !strings.Contains(err.Error(), "the test needs about 1.00 GiB of memory, more than the 0 B available") {
		t.Errorf("Check: %v", err)
	}
	if err := Check(0, "nothing"); err != nil {
		t.Errorf("Check(0): %v", err)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if ok {
		if err := Check(avail/2, "half"); err != nil {
			t.Errorf("Check of half the memory: %v", err)
		}
		if err := Check(math.MaxInt64, "everything"); err == nil {
			t.Error("Check of 8 EiB passed")
		}
	}
}
