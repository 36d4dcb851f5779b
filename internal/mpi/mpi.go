//go:build mpi

package mpi

/*
#cgo pkg-config: ompi
#include <mpi.h>

static int golora_init(int required, int *provided) {
	int rc = MPI_Init_thread(NULL, NULL, required, provided);
	if (rc != MPI_SUCCESS) return rc;
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}
static int golora_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int golora_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int golora_allreduce_f32(float *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static int golora_allreduce_f64(double *buf, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static int golora_bcast_f32(float *buf, int n, int root) {
	return MPI_Bcast(buf, n, MPI_FLOAT, root, MPI_COMM_WORLD);
}
static int golora_bcast_f64(double *buf, int n, int root) {
	return MPI_Bcast(buf, n, MPI_DOUBLE, root, MPI_COMM_WORLD);
}
static int golora_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static int golora_finalize(void) { return MPI_Finalize(); }
static int golora_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static int golora_error_string(int code, char *buf, int cap) {
	int len = 0;
	if (cap < MPI_MAX_ERROR_STRING) return 0;
	if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return 0;
	return len;
}
static int golora_thread_level(int i) {
	switch (i) {
	case 0: return MPI_THREAD_SINGLE;
	case 1: return MPI_THREAD_FUNNELED;
	case 2: return MPI_THREAD_SERIALIZED;
	default: return MPI_THREAD_MULTIPLE;
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Enabled reports whether this build has MPI support (the "mpi" build tag).
const Enabled = true

// maxCount is the most elements one MPI call moves (MPI counts are C ints);
// longer buffers go in pieces.
const maxCount = 1 << 30

// World is MPI_COMM_WORLD of this process. Its methods may be called from any
// goroutine; they run one at a time on the MPI thread.
type World struct {
	rank, size int
	level      ThreadLevel
	timeout    time.Duration

	calls chan func()
	mu    sync.Mutex
	err   error // set once broken (timeout, finalised); every later call returns it
	busy  atomic.Bool
}

var (
	once    sync.Once
	world   *World
	initErr error
)

// Init initialises MPI on a new goroutine locked to its OS thread, asking for
// thread support level (golora needs ThreadFunneled: only that thread calls
// MPI), and returns the process's World. timeout bounds every later call (0:
// none). Rank and size come from MPI_Comm_rank and MPI_Comm_size. A second
// call returns the first one's World and error.
func Init(level ThreadLevel, timeout time.Duration) (*World, error) {
	once.Do(func() { world, initErr = start(level, timeout) })
	return world, initErr
}

// Current returns the World when Init succeeded, else nil.
func Current() *World {
	if initErr != nil {
		return nil
	}
	return world
}

func start(level ThreadLevel, timeout time.Duration) (*World, error) {
	if level < ThreadSingle || level > ThreadMultiple {
		return nil, fmt.Errorf("mpi: init: thread level %d out of range", int(level))
	}
	w := &World{timeout: timeout, calls: make(chan func())}
	type result struct {
		rc, provided, rank, size C.int
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread is MPI's for the life of the process
		var r result
		r.rc = C.golora_init(C.golora_thread_level(C.int(level)), &r.provided)
		if r.rc == C.MPI_SUCCESS {
			r.rc = C.golora_rank(&r.rank)
		}
		if r.rc == C.MPI_SUCCESS {
			r.rc = C.golora_size(&r.size)
		}
		res <- r
		if r.rc != C.MPI_SUCCESS {
			return
		}
		for f := range w.calls {
			f()
		}
	}()
	r := <-res
	if r.rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("mpi: MPI_Init_thread: %s", errorString(r.rc))
	}
	w.rank, w.size = int(r.rank), int(r.size)
	for l := ThreadSingle; l <= ThreadMultiple; l++ {
		if C.golora_thread_level(C.int(l)) == r.provided {
			w.level = l
		}
	}
	if w.level < level {
		return w, fmt.Errorf("mpi: asked for %v, the library grants only %v", level, w.level)
	}
	return w, nil
}

// errorString is MPI_Error_string of rc (only for codes MPI returned).
func errorString(rc C.int) string {
	buf := make([]byte, C.MPI_MAX_ERROR_STRING+1)
	n := C.golora_error_string(rc, (*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)))
	if n <= 0 {
		return fmt.Sprintf("MPI error %d", int(rc))
	}
	return fmt.Sprintf("%s (MPI error %d)", string(buf[:n]), int(rc))
}

// Rank is this process's rank in MPI_COMM_WORLD.
func (w *World) Rank() int { return w.rank }

// Size is the number of processes in MPI_COMM_WORLD.
func (w *World) Size() int { return w.size }

// ThreadLevel is the thread support MPI_Init_thread granted.
func (w *World) ThreadLevel() ThreadLevel { return w.level }

// do runs f on the MPI thread and waits for it, at most the timeout
// (counting the wait for an earlier call from another goroutine).
func (w *World) do(op string, f func() C.int) error {
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		return err
	}
	var expired <-chan time.Time
	if w.timeout > 0 {
		t := time.NewTimer(w.timeout)
		defer t.Stop()
		expired = t.C
	}
	done := make(chan C.int, 1)
	call := func() {
		w.busy.Store(true)
		done <- f()
		w.busy.Store(false)
	}
	select {
	case w.calls <- call:
	case <-expired:
		return w.broken(op)
	}
	select {
	case rc := <-done:
		if rc != C.MPI_SUCCESS {
			return fmt.Errorf("mpi: rank %d: %s: %s", w.rank, op, errorString(rc))
		}
		return nil
	case <-expired:
		return w.broken(op)
	}
}

// broken marks the World unusable after op timed out and returns the error.
func (w *World) broken(op string) error {
	err := fmt.Errorf("mpi: rank %d of %d: %s did not complete within %v (another rank stopped or hangs): %w", w.rank, w.size, op, w.timeout, ErrTimeout)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// pieces calls f on consecutive pieces of n elements of at most max each,
// stopping at the first MPI error code.
func pieces(n, max int, f func(lo, cnt int) int) int {
	for lo := 0; lo < n; lo += max {
		if rc := f(lo, min(max, n-lo)); rc != int(C.MPI_SUCCESS) {
			return rc
		}
	}
	return int(C.MPI_SUCCESS)
}

// AllReduceSumFloat32 replaces buf on every rank by the element-wise sum of
// every rank's buf (MPI_Allreduce in place, MPI_FLOAT, MPI_SUM). Every rank
// must call it with the same length.
func (w *World) AllReduceSumFloat32(buf []float32) error {
	if len(buf) == 0 {
		return nil
	}
	return w.do(fmt.Sprintf("MPI_Allreduce of %d float32", len(buf)), func() C.int {
		return C.int(pieces(len(buf), maxCount, func(lo, n int) int {
			return int(C.golora_allreduce_f32((*C.float)(unsafe.Pointer(&buf[lo])), C.int(n)))
		}))
	})
}

// AllReduceSumFloat64 is AllReduceSumFloat32 for float64 (MPI_DOUBLE).
func (w *World) AllReduceSumFloat64(buf []float64) error {
	if len(buf) == 0 {
		return nil
	}
	return w.do(fmt.Sprintf("MPI_Allreduce of %d float64", len(buf)), func() C.int {
		return C.int(pieces(len(buf), maxCount, func(lo, n int) int {
			return int(C.golora_allreduce_f64((*C.double)(unsafe.Pointer(&buf[lo])), C.int(n)))
		}))
	})
}

// BroadcastFloat32 copies root's buf into every other rank's buf (MPI_Bcast).
func (w *World) BroadcastFloat32(buf []float32, root int) error {
	if err := w.checkRoot(root); err != nil || len(buf) == 0 {
		return err
	}
	return w.do(fmt.Sprintf("MPI_Bcast of %d float32 from rank %d", len(buf), root), func() C.int {
		return C.int(pieces(len(buf), maxCount, func(lo, n int) int {
			return int(C.golora_bcast_f32((*C.float)(unsafe.Pointer(&buf[lo])), C.int(n), C.int(root)))
		}))
	})
}

// BroadcastFloat64 is BroadcastFloat32 for float64.
func (w *World) BroadcastFloat64(buf []float64, root int) error {
	if err := w.checkRoot(root); err != nil || len(buf) == 0 {
		return err
	}
	return w.do(fmt.Sprintf("MPI_Bcast of %d float64 from rank %d", len(buf), root), func() C.int {
		return C.int(pieces(len(buf), maxCount, func(lo, n int) int {
			return int(C.golora_bcast_f64((*C.double)(unsafe.Pointer(&buf[lo])), C.int(n), C.int(root)))
		}))
	})
}

func (w *World) checkRoot(root int) error {
	if root < 0 || root >= w.size {
		return fmt.Errorf("mpi: broadcast root %d out of range [0, %d)", root, w.size)
	}
	return nil
}

// Barrier waits until every rank has called it.
func (w *World) Barrier() error {
	return w.do("MPI_Barrier", func() C.int { return C.golora_barrier() })
}

// Finalize shuts MPI down (MPI_Finalize, collective: every rank calls it
// before exiting). Every later call returns an error.
func (w *World) Finalize() error {
	err := w.do("MPI_Finalize", func() C.int { return C.golora_finalize() })
	w.mu.Lock()
	if w.err == nil {
		w.err = errors.New("mpi: MPI was finalised")
	}
	w.mu.Unlock()
	return err
}

// abortWait is how long Abort waits for the MPI thread before exiting
// without it.
const abortWait = 3 * time.Second

// Abort stops every rank of the job with exit code code and never returns:
// MPI_Abort when the MPI thread is free, else (a call is stuck in the
// library) an exit without MPI_Finalize, which the launcher takes as a
// failed rank and answers by stopping the others.
func (w *World) Abort(code int) {
	if !w.busy.Load() {
		select {
		case w.calls <- func() { C.golora_abort(C.int(code)) }:
			time.Sleep(abortWait) // MPI_Abort ends the process
		case <-time.After(abortWait):
		}
	}
	os.Exit(code)
}
