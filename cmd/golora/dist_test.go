//go:build !mpi

package main

import (
	"strings"
	"testing"
)

// TestLauncherWithoutMPI: a build without MPI started by mpirun refuses to
// train (N copies would each write the same files), unless GOLORA_MPI=0.
func TestLauncherWithoutMPI(t *testing.T) {
	f := getFixture(t)
	args := []string{"finetune", "--base", f.base, "--data", f.prose, "--out", t.TempDir() + "/a", "--steps", "1", "--context", "16", "--quiet"}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	t.Setenv("GOLORA_MPI", "")
	r := golora(args...)
	if r.code != 1 || !strings.Contains(r.stderr, "built without MPI") || !strings.Contains(r.stderr, "-tags mpi") {
		t.Fatalf("exit %d, stderr %q; want 1 and a message about -tags mpi", r.code, r.stderr)
	}
	t.Setenv("GOLORA_MPI", "0")
	mustRun(t, args...)
}
