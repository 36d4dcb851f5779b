package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, isDir bool) {
		p := filepath.Join(dir, name)
		if isDir {
			if err := os.MkdirAll(filepath.Join(p, "old"), 0o755); err != nil {
				t.Fatal(err)
			}
			return
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("run.safetensors", false)
	mk(".run.safetensors.tmp-123456", false) // a killed WriteFile
	mk(".run.safetensors.tmp-99", true)      // a killed ReplaceDir
	mk(".run.safetensors.old-42", true)      // ReplaceDir's old copy, path exists
	keep := []string{
		".run.safetensors.tmp-", ".run.safetensors.tmp-12a", ".other.tmp-1", "run.safetensors.tmp-1",
		".run.safetensors.tmp-1.bak", ".run.safetensorsx.tmp-1",
	}
	for _, k := range keep {
		mk(k, false)
	}
	removed, err := RemoveStale(filepath.Join(dir, "run.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range removed {
		names = append(names, filepath.Base(p))
	}
	want := []string{".run.safetensors.old-42", ".run.safetensors.tmp-123456", ".run.safetensors.tmp-99"}
	if !slices.Equal(names, want) {
		t.Errorf("removed %v, want %v", names, want)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != len(keep)+1 {
		t.Errorf("%d entries left, want %d", len(left), len(keep)+1)
	}
	// While the path is missing, an .old folder is the only copy: kept.
	mk(".adapter.old-7", true)
	if removed, err := RemoveStale(filepath.Join(dir, "adapter")); err != nil || len(removed) != 0 {
		t.Errorf("removed %v (%v) while the folder is missing", removed, err)
	}
	if removed, err := RemoveStale(filepath.Join(dir, "nowhere", "x")); err != nil || removed != nil {
		t.Errorf("missing folder: %v, %v", removed, err)
	}
}

// TestRemoveStaleAfterFailedWrite: the temporary file a writer killed before
// its rename leaves is what RemoveStale removes.
func TestRemoveStaleAfterFailedWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.bin")
	// Simulate the kill: create the temporary the way WriteFile does and
	// never rename it.
	f, err := os.CreateTemp(dir, ".c.bin.tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	removed, err := RemoveStale(path)
	if err != nil || len(removed) != 1 || removed[0] != f.Name() {
		t.Errorf("removed %v (%v), want %s", removed, err, f.Name())
	}
}
