package mpi

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ThreadLevel is the thread support requested from and granted by
// MPI_Init_thread (MPI_THREAD_SINGLE … MPI_THREAD_MULTIPLE).
type ThreadLevel int

// The MPI thread levels, in increasing order of support.
const (
	ThreadSingle ThreadLevel = iota
	ThreadFunneled
	ThreadSerialized
	ThreadMultiple
)

func (l ThreadLevel) String() string {
	switch l {
	case ThreadSingle:
		return "MPI_THREAD_SINGLE"
	case ThreadFunneled:
		return "MPI_THREAD_FUNNELED"
	case ThreadSerialized:
		return "MPI_THREAD_SERIALIZED"
	case ThreadMultiple:
		return "MPI_THREAD_MULTIPLE"
	}
	return fmt.Sprintf("ThreadLevel(%d)", int(l))
}

// ErrNotBuilt is returned by Init in a build without the "mpi" tag.
var ErrNotBuilt = errors.New("mpi: golora was built without MPI support (rebuild with: go build -tags mpi)")

// ErrTimeout is wrapped by the error of a call that did not complete within
// the World's timeout, and of every call after it.
var ErrTimeout = errors.New("mpi: timed out")

// launcherVars are environment variables that a launcher sets in every rank
// it starts: Open MPI's mpirun (and so Kubeflow's MPIJob), PMIx launchers
// (srun --mpi=pmix, prterun), PMI-1/2 launchers (Hydra, srun --mpi=pmi2).
var launcherVars = []string{"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"}

// Launched reports whether the process looks started by an MPI launcher, from
// its environment: GOLORA_MPI=1 forces yes and GOLORA_MPI=0 no; otherwise any
// of OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK or PMI_SIZE being set means
// yes. It only decides whether to initialise MPI; the rank and size always
// come from MPI_Comm_rank and MPI_Comm_size.
func Launched() bool {
	switch strings.TrimSpace(os.Getenv("GOLORA_MPI")) {
	case "1", "true", "yes", "on":
		return true
	case "0", "false", "no", "off":
		return false
	}
	for _, v := range launcherVars {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}
