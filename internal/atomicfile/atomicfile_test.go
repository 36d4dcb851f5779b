package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golora/golora/internal/testutil"
)

// Environment variables that turn TestHelperProcess into a child process
// which is killed (SIGKILL) by its parent in the middle of a write.
const (
	envHelperMode = "GOLORA_ATOMICFILE_HELPER"
	envHelperPath = "GOLORA_ATOMICFILE_HELPER_PATH"
	helperReady   = "writing"
	chunkSize     = 1 << 20
)

var errHalfway = errors.New("disk on fire")

// names lists the entries of dir, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}

func TestWriteFileCreates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.bin")
	if err := WriteFile(path, writeBytes([]byte("hello"))); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); string(got) != "hello" {
		t.Fatalf("content %q, want %q", got, "hello")
	}
	if got := names(t, dir); len(got) != 1 || got[0] != "a.bin" {
		t.Fatalf("folder holds %v, want [a.bin]", got)
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Fatalf("mode %v, want 0644", st.Mode().Perm())
		}
	}
}

func TestWriteFileRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := WriteFile("rel.bin", writeBytes([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, filepath.Join(dir, "rel.bin")); string(got) != "x" {
		t.Fatalf("content %q", got)
	}
}

func TestWriteFileReplacesAndKeepsMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.bin")
	if err := os.WriteFile(path, []byte("old contents, longer than the new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, writeBytes([]byte("new"))); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); string(got) != "new" {
		t.Fatalf("content %q, want %q", got, "new")
	}
	if runtime.GOOS != "windows" {
		st, _ := os.Stat(path)
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want the old file's 0600", st.Mode().Perm())
		}
	}
	if got := names(t, dir); len(got) != 1 {
		t.Fatalf("folder holds %v, want only a.bin", got)
	}
}

// A write that fails halfway leaves the old file and no temporary file.
func TestWriteFileErrorKeepsOld(t *testing.T) {
	for _, existed := range []bool{true, false} {
		t.Run(fmt.Sprintf("existed=%v", existed), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "w.bin")
			old := bytes.Repeat([]byte{1, 2, 3}, 1000)
			if existed {
				if err := os.WriteFile(path, old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := WriteFile(path, func(w io.Writer) error {
				if _, err := w.Write(bytes.Repeat([]byte{9}, 5000)); err != nil {
					return err
				}
				return errHalfway
			})
			if !errors.Is(err, errHalfway) {
				t.Fatalf("error %v, want one wrapping %v", err, errHalfway)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the path", err)
			}
			want := []string{}
			if existed {
				want = []string{"w.bin"}
				if got := mustRead(t, path); !bytes.Equal(got, old) {
					t.Fatal("old file changed")
				}
			}
			if got := names(t, dir); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("folder holds %v, want %v", got, want)
			}
		})
	}
}

// A panic inside write is re-raised after the temporary file is removed.
func TestWriteFilePanicKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.bin")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the panic to propagate", r)
			}
		}()
		_ = WriteFile(path, func(w io.Writer) error {
			_, _ = w.Write([]byte("partial"))
			panic("boom")
		})
	}()
	if got := mustRead(t, path); string(got) != "old" {
		t.Fatalf("content %q, want old", got)
	}
	if got := names(t, dir); len(got) != 1 {
		t.Fatalf("folder holds %v, want only p.bin", got)
	}
}

func TestWriteFileBadPaths(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	called := false
	write := func(io.Writer) error { called = true; return nil }
	for _, path := range []string{
		filepath.Join(dir, "missing", "f.bin"), // parent folder missing
		sub,                                    // a folder, not a file
		dir + string(filepath.Separator),       // no file name
	} {
		if err := WriteFile(path, write); err == nil {
			t.Errorf("WriteFile(%q) succeeded", path)
		}
	}
	if called {
		t.Error("write was called for a path that cannot be written")
	}
	if got := names(t, dir); strings.Join(got, ",") != "sub" {
		t.Fatalf("folder holds %v, want [sub]", got)
	}
}

// TestHelperProcess is not a test: it is the child process of the crash
// tests, run only when envHelperMode is set. It starts a write, reports on
// stdout once data is on its way, and then waits to be killed.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envHelperMode)
	if mode == "" {
		t.Skip("child process of the crash tests")
	}
	path := os.Getenv(envHelperPath)
	hang := func() {
		fmt.Println(helperReady)
		time.Sleep(time.Hour) // the parent kills us here
	}
	var err error
	switch mode {
	case "file":
		err = WriteFile(path, func(w io.Writer) error {
			chunk := bytes.Repeat([]byte{0xAB}, chunkSize)
			for i := 0; i < 32; i++ { // a large file, 32 MiB
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			hang()
			return nil
		})
	case "dir":
		err = ReplaceDir(path, func(tmp string) error {
			if err := os.WriteFile(filepath.Join(tmp, "a.json"), []byte(`{"new":true}`), 0o644); err != nil {
				return err
			}
			hang()
			return nil
		})
	}
	t.Fatalf("helper returned (mode %q): %v", mode, err)
}

// killMidWrite runs TestHelperProcess in mode on path and kills it with
// SIGKILL once it reports that it is writing.
func killMidWrite(t *testing.T, mode, path string) {
	t.Helper()
	testutil.KillChild(t, "TestHelperProcess", []string{envHelperMode + "=" + mode, envHelperPath + "=" + path}, helperReady, 0)
}

// A process killed while writing a large file leaves the previous file intact.
func TestWriteFileKilledKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.bin")
	old := bytes.Repeat([]byte("previous version\n"), 4096)
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	killMidWrite(t, "file", path)

	if got := mustRead(t, path); !bytes.Equal(got, old) {
		t.Fatalf("after the crash the file holds %d bytes, want the previous %d", len(got), len(old))
	}
	// The killed writer's temporary file stays behind (nothing can remove it)
	// and proves the kill came mid-write: it holds the 32 MiB written so far.
	var tmps []string
	for _, n := range names(t, dir) {
		if strings.HasPrefix(n, ".big.bin.tmp-") {
			tmps = append(tmps, n)
		} else if n != "big.bin" {
			t.Errorf("unexpected entry %q", n)
		}
	}
	if len(tmps) != 1 {
		t.Fatalf("temporary files %v, want one", tmps)
	}
	st, err := os.Stat(filepath.Join(dir, tmps[0]))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 32*chunkSize {
		t.Fatalf("temporary file holds %d bytes, want %d", st.Size(), 32*chunkSize)
	}
	// The next write succeeds despite the stray file.
	if err := WriteFile(path, writeBytes([]byte("next"))); err != nil {
		t.Fatal(err)
	}
	if got := mustRead(t, path); string(got) != "next" {
		t.Fatalf("content %q", got)
	}
}

// makeFolder creates dir with the given files.
func makeFolder(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// folder returns the files of dir and their contents.
func folder(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names(t, dir) {
		out[n] = string(mustRead(t, filepath.Join(dir, n)))
	}
	return out
}

func sameFolder(t *testing.T, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("folder holds %v, want %v", got, want)
	}
}

func fillWith(files map[string]string) func(string) error {
	return func(tmp string) error {
		for n, c := range files {
			if err := os.WriteFile(filepath.Join(tmp, n), []byte(c), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestReplaceDirCreates(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "adapter")
	want := map[string]string{"a.json": "{}", "w.bin": "weights"}
	if err := ReplaceDir(dir, fillWith(want)); err != nil {
		t.Fatal(err)
	}
	sameFolder(t, folder(t, dir), want)
	if got := names(t, parent); strings.Join(got, ",") != "adapter" {
		t.Fatalf("parent holds %v, want [adapter]", got)
	}
}

func TestReplaceDirReplaces(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "adapter")
	makeFolder(t, dir, map[string]string{"a.json": "old", "stale.bin": "only in the old folder"})
	want := map[string]string{"a.json": "new", "w.bin": "new weights"}
	if err := ReplaceDir(dir, fillWith(want)); err != nil {
		t.Fatal(err)
	}
	sameFolder(t, folder(t, dir), want) // stale.bin is gone: a swap, not a merge
	if got := names(t, parent); strings.Join(got, ",") != "adapter" {
		t.Fatalf("parent holds %v, want [adapter]", got)
	}
}

// A fill that fails halfway leaves the old folder and no temporary folder.
func TestReplaceDirErrorKeepsOld(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "adapter")
	old := map[string]string{"a.json": "old", "w.bin": "old weights"}
	makeFolder(t, dir, old)
	err := ReplaceDir(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, "a.json"), []byte("new"), 0o644); err != nil {
			return err
		}
		return errHalfway
	})
	if !errors.Is(err, errHalfway) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v, want one naming %s and wrapping %v", err, dir, errHalfway)
	}
	sameFolder(t, folder(t, dir), old)
	if got := names(t, parent); strings.Join(got, ",") != "adapter" {
		t.Fatalf("parent holds %v, want [adapter]", got)
	}
}

func TestReplaceDirBadPaths(t *testing.T) {
	parent := t.TempDir()
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	called := false
	fill := func(string) error { called = true; return nil }
	for _, dir := range []string{file, filepath.Join(parent, "missing", "adapter")} {
		if err := ReplaceDir(dir, fill); err == nil {
			t.Errorf("ReplaceDir(%q) succeeded", dir)
		}
	}
	if called {
		t.Error("fill was called for a path that cannot be replaced")
	}
	if got := mustRead(t, file); string(got) != "keep" {
		t.Fatalf("file changed to %q", got)
	}
	if got := names(t, parent); strings.Join(got, ",") != "file" {
		t.Fatalf("parent holds %v, want [file]", got)
	}
}

// A process killed while building the new folder leaves the old folder.
func TestReplaceDirKilledKeepsOld(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "adapter")
	old := map[string]string{"a.json": `{"old":true}`, "w.bin": "old weights"}
	makeFolder(t, dir, old)
	killMidWrite(t, "dir", dir)
	sameFolder(t, folder(t, dir), old)
	// The next replacement works despite the killed one's leftover.
	want := map[string]string{"a.json": "next"}
	if err := ReplaceDir(dir, fillWith(want)); err != nil {
		t.Fatal(err)
	}
	sameFolder(t, folder(t, dir), want)
}

func TestReplaceDirMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	fill := func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "f"), []byte("x"), 0o644) }
	if err := ReplaceDir(dir, fill); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o755 {
		t.Fatalf("new folder mode %v, want 0755", got)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceDir(dir, fill); err != nil {
		t.Fatal(err)
	}
	if st, _ = os.Stat(dir); st.Mode().Perm() != 0o750 {
		t.Fatalf("replaced folder mode %v, want the old 0750", st.Mode().Perm())
	}
}
