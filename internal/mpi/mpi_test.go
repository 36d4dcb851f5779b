//go:build mpi

package mpi

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// These tests run in a single process (MPI's singleton mode) and under
// mpirun -np N; .ci/run does both.

var testWorld *World

func TestMain(m *testing.M) {
	w, err := Init(ThreadFunneled, time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testWorld = w
	code := m.Run()
	if code != 0 && w.Size() > 1 {
		w.Abort(code) // a failed rank must not leave the others waiting
	}
	if err := w.Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func TestWorld(t *testing.T) {
	w := testWorld
	if again, err := Init(ThreadMultiple, 0); again != w || err != nil {
		t.Fatalf("second Init = %p, %v; want the same World %p", again, err, w)
	}
	if Current() != w {
		t.Fatal("Current is not the World Init returned")
	}
	if w.Size() < 1 || w.Rank() < 0 || w.Rank() >= w.Size() {
		t.Fatalf("rank %d of %d", w.Rank(), w.Size())
	}
	if w.ThreadLevel() < ThreadFunneled {
		t.Fatalf("thread level %v, asked for MPI_THREAD_FUNNELED", w.ThreadLevel())
	}
	t.Logf("rank %d of %d, %v", w.Rank(), w.Size(), w.ThreadLevel())
}

func TestAllReduceSum(t *testing.T) {
	w := testWorld
	n, r := w.Size(), w.Rank()
	// Rank r contributes (r+1)·(i+1) to element i: the sum is N(N+1)/2·(i+1).
	tri := float64(n*(n+1)) / 2
	f64 := make([]float64, 1000)
	f32 := make([]float32, 1000)
	for i := range f64 {
		f64[i] = float64((r + 1) * (i + 1))
		f32[i] = float32((r + 1) * (i + 1))
	}
	if err := w.AllReduceSumFloat64(f64); err != nil {
		t.Fatal(err)
	}
	if err := w.AllReduceSumFloat32(f32); err != nil {
		t.Fatal(err)
	}
	for i := range f64 {
		want := tri * float64(i+1)
		if f64[i] != want || f32[i] != float32(want) {
			t.Fatalf("element %d: %v (float64), %v (float32); want %v", i, f64[i], f32[i], want)
		}
	}
	if err := w.AllReduceSumFloat32(nil); err != nil {
		t.Fatalf("empty buffer: %v", err)
	}
}

func TestBroadcast(t *testing.T) {
	w := testWorld
	for root := 0; root < w.Size(); root++ {
		f64 := []float64{float64(w.Rank()), -1, 2.5}
		f32 := []float32{float32(w.Rank()), 3}
		if err := w.BroadcastFloat64(f64, root); err != nil {
			t.Fatal(err)
		}
		if err := w.BroadcastFloat32(f32, root); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f64, []float64{float64(root), -1, 2.5}) || !slices.Equal(f32, []float32{float32(root), 3}) {
			t.Fatalf("root %d: got %v and %v", root, f64, f32)
		}
	}
	if err := w.BroadcastFloat64([]float64{1}, w.Size()); err == nil {
		t.Fatal("a root outside the world was accepted")
	}
	if err := w.Barrier(); err != nil {
		t.Fatal(err)
	}
}

func TestPieces(t *testing.T) {
	var got [][2]int
	rc := pieces(10, 4, func(lo, n int) int { got = append(got, [2]int{lo, n}); return 0 })
	if rc != 0 || !slices.Equal(got, [][2]int{{0, 4}, {4, 4}, {8, 2}}) {
		t.Fatalf("pieces of 10 by 4: %v (rc %d)", got, rc)
	}
	calls := 0
	if rc := pieces(10, 4, func(int, int) int { calls++; return 5 }); rc != 5 || calls != 1 {
		t.Fatalf("an error stops at once: rc %d after %d calls", rc, calls)
	}
}

// TestTimeout: a World whose MPI thread is stuck reports ErrTimeout and stays
// broken. It is built by hand (a second MPI_Init is not allowed), around a
// goroutine that serves nothing.
func TestTimeout(t *testing.T) {
	stuck := &World{rank: 0, size: 2, timeout: 50 * time.Millisecond, calls: make(chan func())}
	err := stuck.AllReduceSumFloat64([]float64{1})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	start := time.Now()
	if err2 := stuck.Barrier(); !errors.Is(err2, ErrTimeout) || time.Since(start) > time.Second {
		t.Fatalf("after a timeout: %v (after %v), want the same error at once", err2, time.Since(start))
	}
}
