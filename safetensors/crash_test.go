package safetensors

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golora/golora/internal/testutil"
)

// Environment variables that turn TestHelperWriter into a child process that
// rewrites a file until its parent kills it.
const (
	envWriterPath = "GOLORA_SAFETENSORS_HELPER_PATH"
	crashElems    = 1 << 20 // 4 MiB of F32 per version
)

// TestHelperWriter is not a test: it is the child process of
// TestWriteFileKilled, run only when envWriterPath is set. It writes
// versions 1, 2, 3, ... of a large file, each tensor filled with its version
// number, and never stops on its own.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(envWriterPath)
	if path == "" {
		t.Skip("child process of TestWriteFileKilled")
	}
	v := make([]float32, crashElems)
	for version := 1; ; version++ {
		for i := range v {
			v[i] = float32(version)
		}
		if version == 1 {
			fmt.Println("writing")
		}
		if err := WriteFile(path, []Tensor{FromFloat32s("w", []int{crashElems}, v)}, map[string]string{"version": strconv.Itoa(version)}); err != nil {
			t.Fatal(err)
		}
	}
}

// A process killed (SIGKILL) at some point while writing leaves a file that
// reads back whole: the previous version or a complete new one.
func TestWriteFileKilled(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := WriteFile(path, []Tensor{FromFloat32s("w", []int{3}, []float32{0, 0, 0})}, map[string]string{"version": "0"}); err != nil {
		t.Fatal(err)
	}
	for round, delay := range []time.Duration{0, 30 * time.Millisecond, 150 * time.Millisecond, time.Second} {
		testutil.KillChild(t, "TestHelperWriter", []string{envWriterPath + "=" + path}, "writing", delay)

		f, err := ReadFile(path)
		if err != nil {
			t.Fatalf("round %d: after the kill the file does not load: %v", round, err)
		}
		version, err := strconv.Atoi(f.Metadata["version"])
		if err != nil {
			t.Fatalf("round %d: metadata %v", round, f.Metadata)
		}
		v, _, err := f.Float32s("w")
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range v {
			if x != float32(version) {
				t.Fatalf("round %d: element %d of version %d is %v: a mix of two versions", round, i, version, x)
			}
		}
		t.Logf("round %d (kill after %v): file holds version %d", round, delay, version)
	}
}
