//go:build !mpi

package mpi

import (
	"os"
	"time"
)

// Enabled reports whether this build has MPI support (the "mpi" build tag).
const Enabled = false

// World is MPI_COMM_WORLD; in a build without the "mpi" tag there is none.
type World struct{}

// Init returns ErrNotBuilt: this build has no MPI.
func Init(ThreadLevel, time.Duration) (*World, error) { return nil, ErrNotBuilt }

// Current returns nil: this build has no MPI.
func Current() *World { return nil }

// Rank is 0.
func (*World) Rank() int { return 0 }

// Size is 1.
func (*World) Size() int { return 1 }

// ThreadLevel is ThreadSingle.
func (*World) ThreadLevel() ThreadLevel { return ThreadSingle }

// AllReduceSumFloat32 returns ErrNotBuilt.
func (*World) AllReduceSumFloat32([]float32) error { return ErrNotBuilt }

// AllReduceSumFloat64 returns ErrNotBuilt.
func (*World) AllReduceSumFloat64([]float64) error { return ErrNotBuilt }

// BroadcastFloat32 returns ErrNotBuilt.
func (*World) BroadcastFloat32([]float32, int) error { return ErrNotBuilt }

// BroadcastFloat64 returns ErrNotBuilt.
func (*World) BroadcastFloat64([]float64, int) error { return ErrNotBuilt }

// Barrier returns ErrNotBuilt.
func (*World) Barrier() error { return ErrNotBuilt }

// Finalize returns ErrNotBuilt.
func (*World) Finalize() error { return ErrNotBuilt }

// Abort exits the process with code (there are no other ranks to stop).
func (*World) Abort(code int) { os.Exit(code) }
