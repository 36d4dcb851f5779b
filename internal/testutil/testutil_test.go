package testutil

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestHelperSleeper is not a test: it is the child of TestKillChild, run
// only when GOLORA_TESTUTIL_CHILD is set.
func TestHelperSleeper(t *testing.T) {
	if os.Getenv("GOLORA_TESTUTIL_CHILD") == "" {
		t.Skip("child process of TestKillChild")
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
}

// KillChild returns once the child printed its line and was killed.
func TestKillChild(t *testing.T) {
	start := time.Now()
	KillChild(t, "TestHelperSleeper", []string{"GOLORA_TESTUTIL_CHILD=1"}, "ready", 10*time.Millisecond)
	if d := time.Since(start); d > time.Minute {
		t.Errorf("KillChild took %v", d)
	}
}

// A package of the module that depends on no other is a leaf; CheckLeaf
// runs on this package itself, which imports only the standard library.
func TestCheckLeafSelf(t *testing.T) {
	CheckLeaf(t, ".")
}

// CheckLeaf reports a dependency on a package of the module outside
// internal/.
func TestCheckLeafFails(t *testing.T) {
	ft := &recorder{TB: t}
	CheckLeaf(ft, "../../nn") // nn imports graph
	if !ft.failed {
		t.Error("CheckLeaf(nn) did not fail: nn imports graph")
	}
}

// recorder records Errorf instead of failing the test that holds it.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(format string, args ...any) { r.failed = true }
