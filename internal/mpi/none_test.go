//go:build !mpi

package mpi

import (
	"errors"
	"testing"
)

func TestInitWithoutTag(t *testing.T) {
	w, err := Init(ThreadFunneled, 0)
	if w != nil || !errors.Is(err, ErrNotBuilt) || Enabled || Current() != nil {
		t.Fatalf("Init = %v, %v (Enabled %v); want nil, ErrNotBuilt", w, err, Enabled)
	}
}
