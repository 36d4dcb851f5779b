package trainers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/safetensors"
)

// TestCheckpointChecksums: a checkpoint stores a checksum per tensor, and
// Resume refuses one whose data was damaged, naming the tensor, without
// changing the trainer.
func TestCheckpointChecksums(t *testing.T) {
	tr, _ := textData(t, 2000, 12, 8)
	m := newTinyLM(graph.Float32, 12, 6, 0, 0, 1)
	cfg := testConfig()
	cfg.Steps = 2
	cfg.CheckpointPath = filepath.Join(t.TempDir(), "c.safetensors")
	if _, err := newTrainer(t, m, cfg).Train(tr, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.ReadFile(cfg.CheckpointPath)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata[safetensors.ChecksumKey] == "" {
		t.Fatalf("checkpoint metadata %v has no %s", f.Metadata, safetensors.ChecksumKey)
	}
	b, err := os.ReadFile(cfg.CheckpointPath)
	if err != nil {
		t.Fatal(err)
	}
	// Flip every byte of the last 40 bytes of data: the end of the file
	// holds param/head.weight (tensors are laid out by name).
	for i := len(b) - 40; i < len(b); i++ {
		b[i] ^= 0xff
	}
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := newTinyLM(graph.Float32, 12, 6, 0, 0, 1)
	before := snapshot(fresh.Params())
	trn := newTrainer(t, fresh, cfg)
	err = trn.Resume(bad)
	if err == nil || !errors.Is(err, safetensors.ErrChecksum) || !strings.Contains(err.Error(), `tensor "param/head.weight"`) {
		t.Fatalf("Resume of a damaged checkpoint: %v", err)
	}
	if trn.Step() != 0 || !sameSnapshot(before, snapshot(fresh.Params())) {
		t.Error("a refused checkpoint changed the trainer")
	}
	if _, err := ReadCheckpointMeta(bad); err == nil {
		t.Error("ReadCheckpointMeta accepted a damaged checkpoint")
	}
	if err := LoadParams(bad, fresh.Params()); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("LoadParams of a damaged checkpoint: %v", err)
	}
}

func sameSnapshot(a, b map[string][]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !equalBits(v, b[k]) {
			return false
		}
	}
	return true
}
