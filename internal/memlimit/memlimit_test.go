package memlimit

import (
	"math"
	"runtime"
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

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1000": 1000, "1MiB": 1 << 20, "1.5 GiB": 3 << 29, "2GB": 2e9, "7B": 7, " 3KiB ": 3072} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1MiB", "NaN", "1e30GiB", "MiB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
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
	// GOLORA_MEMORY_LIMIT caps the figure.
	t.Setenv(EnvLimit, "1MiB")
	if got, ok := Available(); !ok || got != 1<<20 {
		t.Errorf("under GOLORA_MEMORY_LIMIT=1MiB: %d bytes, %v", got, ok)
	}
	err := Check(1<<30, "the test")
	if err == nil || !strings.Contains(err.Error(), "the test needs about 1.00 GiB of memory, more than the 1.00 MiB available") {
		t.Errorf("Check: %v", err)
	}
	if err := Check(1<<20, "exactly the limit"); err != nil {
		t.Errorf("Check at the limit: %v", err)
	}
	// A limit above the machine's changes nothing; a bad one is ignored.
	for _, v := range []string{"1000TiB", "lots"} {
		t.Setenv(EnvLimit, v)
		if got, ok2 := Available(); ok2 != ok || (ok && got > avail*2) {
			t.Errorf("GOLORA_MEMORY_LIMIT=%s: %d, %v (without it %d, %v)", v, got, ok2, avail, ok)
		}
	}
	t.Setenv(EnvLimit, "")
	if ok {
		if err := Check(avail/2, "half"); err != nil {
			t.Errorf("Check of half the memory: %v", err)
		}
		if err := Check(math.MaxInt64, "everything"); err == nil {
			t.Error("Check of 8 EiB passed")
		}
	}
}
