package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/golora/golora/internal/mpi"
	"github.com/golora/golora/trainers"
)

// Data-parallel runs: golora built with -tags mpi and started by an MPI
// launcher (mpirun -np N golora finetune …, srun --mpi=pmix, an MPIJob) joins
// MPI_COMM_WORLD and trains as one of N ranks; see docs/distributed.md.

// distFlags are the options of a data-parallel run.
type distFlags struct {
	timeout time.Duration
}

func (d *distFlags) register(f *flags) {
	f.DurationVar(&d.timeout, "dist-timeout", 5*time.Minute, "under MPI: the longest a rank waits for the others in one exchange before the job is\nstopped (covers a step, a validation and a checkpoint on rank 0)")
}

// joinWorld initialises MPI when golora was built with it and an MPI
// launcher started the process, and returns the world (nil for one
// process). A build without MPI started by a launcher is an error: N
// copies would each train alone and write the same files.
func joinWorld(c *cli, timeout time.Duration) (*mpi.World, error) {
	if !mpi.Launched() {
		return nil, nil
	}
	if !mpi.Enabled {
		return nil, errors.New("started by an MPI launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK is set) but this golora was built without MPI: rebuild it with go build -tags mpi (or set GOLORA_MPI=0 to run each process alone)")
	}
	if timeout <= 0 {
		return nil, usagef("--dist-timeout %v: want > 0", timeout)
	}
	w, err := mpi.Init(mpi.ThreadFunneled, timeout)
	if err != nil {
		return nil, err
	}
	if w.Size() > 1 {
		watchTermination(c, w)
	}
	return w, nil
}

// watchTermination reports, then exits on, the SIGTERM a launcher sends
// to the surviving ranks when one rank dies or the job is cancelled: the
// surviving ranks may be blocked inside MPI, so there is nothing to finish.
func watchTermination(c *cli, w *mpi.World) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		<-ch
		fmt.Fprintf(c.stderr, "%s: rank %d of %d: terminated by the MPI launcher (another rank failed or was killed, or the job was cancelled); the last checkpoint written is intact\n", c.name, w.Rank(), w.Size())
		os.Exit(143)
	}()
}

// errOtherRank is returned by a rank other than 0 when every rank stopped
// together (the run was asked to stop): rank 0 reports it.
var errOtherRank = errors.New("stopped with rank 0")

// failDist ends a data-parallel job after an error on this rank. A stop
// every rank agreed on (a context cancelled on some rank) returns normally,
// so that the ranks finalise MPI together, and only rank 0 reports it. Any
// other error is printed, naming the rank, and aborts every rank (the others
// may be waiting for this one). It returns only for a single process.
func failDist(c *cli, w *mpi.World, err error) error {
	if w == nil || w.Size() == 1 || err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		if w.Rank() != 0 {
			return errOtherRank
		}
		return err
	}
	code := 1
	var ue usageError
	if errors.As(err, &ue) {
		code = 2
	}
	signal.Reset(syscall.SIGTERM) // the launcher's SIGTERM now only ends this rank
	fmt.Fprintf(c.stderr, "%s: rank %d of %d: %s\n", c.name, w.Rank(), w.Size(), oneLine(err))
	w.Abort(code)
	return err
}

// finishDist finalises MPI when this process joined a world, at exit.
func finishDist(code int, stderr *os.File) int {
	w := mpi.Current()
	if w == nil {
		return code
	}
	if err := w.Finalize(); err != nil {
		fmt.Fprintf(stderr, "golora: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// setCollective makes tr one rank of w's run and says so on the progress
// output (rank 0).
func setCollective(tr *trainers.Trainer, w *mpi.World, bar *progress, label string, batch int) error {
	if w == nil || w.Size() == 1 {
		return nil
	}
	if err := tr.SetCollective(w); err != nil {
		return usageError{fmt.Errorf("--batch %d: %w", batch, err)}
	}
	n := 0
	for _, p := range tr.Trainable() {
		n += p.Len()
	}
	bar.setDist(w.Size(), tr.GradientBytes())
	bar.message("%s: %d ranks over MPI (%v), global batch %d = %d per rank; %s trainable parameters: %s all-reduced per step",
		label, w.Size(), w.ThreadLevel(), batch, batch/w.Size(), commas(n), byteSize(tr.GradientBytes()))
	return nil
}

// byteSize writes n bytes with a binary unit.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
