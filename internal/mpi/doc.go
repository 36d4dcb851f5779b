// Package mpi is golora's thin cgo binding to Open MPI: the few calls that
// data-parallel training needs, on MPI_COMM_WORLD.
//
//	Init(level, timeout)          MPI_Init_thread; rank and size from MPI_Comm_rank/size
//	AllReduceSumFloat32/Float64   MPI_Allreduce(MPI_IN_PLACE, …, MPI_SUM)
//	BroadcastFloat32/Float64      MPI_Bcast
//	Barrier, Finalize, Abort      MPI_Barrier, MPI_Finalize, MPI_Abort
//
// It is compiled only with the build tag "mpi" (go build -tags mpi) and
// needs Open MPI's headers and library (Debian: libopenmpi-dev, found through
// pkg-config "ompi"). Without the tag the package has the same API, Enabled is
// false and Init returns ErrNotBuilt, so the default build stays pure Go and
// single-process.
//
// # One OS thread
//
// Every MPI call, MPI_Init_thread included, runs on one goroutine that is
// locked to its OS thread for the life of the process: the thread that
// initialised MPI is the one that calls it, which is what
// MPI_THREAD_FUNNELED promises the library. Callers on any goroutine send
// their call to it and wait.
//
// # Never a hang
//
// World's collectives wait at most the timeout given to Init (0: forever).
// A call that does not complete in time (a peer stopped, hangs or was killed
// without the launcher noticing) returns an error wrapping ErrTimeout, and the
// World is broken from then on: every later call fails at once. The MPI
// thread may still be blocked inside the library, so the only way on is
// Abort, which runs MPI_Abort when the MPI thread is free and otherwise exits
// the process without finalising, which makes mpirun (or srun) stop the other
// ranks. The communicator's error handler is MPI_ERRORS_RETURN, so an MPI
// error is a Go error naming the call, not an abort inside the library.
//
// # Process state
//
// MPI may be initialised once per process and finalised once, so this
// package keeps the one World of the process (the exception to golora's rule
// against package-level state, like the OpenBLAS thread setting in package
// graph). Init returns it; a second Init returns the same World.
package mpi
