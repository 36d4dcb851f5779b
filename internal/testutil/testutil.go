// Package testutil holds helpers that golora's tests share: the
// crash-test harness that kills a child test process mid-write, and the
// check that a package stays a leaf of the module.
package testutil

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// KillChild runs the test named test of the current test binary as a child
// process, with env added to the environment, waits until the child prints
// the line ready on its stdout, waits delay more, and kills it with SIGKILL,
// so that no deferred clean-up runs. It fails t if the child exits before
// printing ready, does not print it within two minutes, or exits cleanly;
// it skips t where a process cannot be killed by a signal.
//
// The child is the same test function, run with the variables set: it
// skips itself when they are unset, and otherwise writes until killed.
func KillChild(t testing.TB, test string, env []string, ready string, delay time.Duration) {
	t.Helper()
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs a child process killed by a signal")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == ready {
				started <- nil
				return
			}
		}
		started <- fmt.Errorf("child %s exited before printing %q: %v", test, ready, sc.Err())
	}()
	select {
	case err := <-started:
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child %s did not print %q", test, ready)
	}
	time.Sleep(delay)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("child %s exited cleanly, want killed", test)
	}
}

// CheckLeaf fails t if the package in dir (a path as the go command takes
// it, such as ".") depends, directly or not, on a package of its own module
// other than itself and those under internal/. It runs `go list -deps`, and
// skips t when the go command is not on PATH.
func CheckLeaf(t testing.TB, dir string) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	self, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.Module.Path}}", dir).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", dir, err)
	}
	f := strings.Fields(string(self))
	if len(f) != 2 {
		t.Fatalf("go list %s printed %q", dir, self)
	}
	pkg, mod := f[0], f[1]
	deps, err := exec.Command("go", "list", "-deps", dir).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", dir, err)
	}
	for _, d := range strings.Fields(string(deps)) {
		if d == pkg || (d != mod && !strings.HasPrefix(d, mod+"/")) {
			continue
		}
		if rest := strings.TrimPrefix(d, mod+"/"); rest == "internal" || strings.HasPrefix(rest, "internal/") {
			continue
		}
		t.Errorf("%s depends on %s: a format package may depend only on the standard library, other modules and %s/internal/...", pkg, d, mod)
	}
}
