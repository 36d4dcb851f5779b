// Package atomicfile writes files and folders so that a reader, or the next
// run after a crash, finds either the previous complete version or the new
// complete one, never a partly written mix.
//
// # Files
//
// WriteFile writes into a temporary file in the destination's folder
// (".<name>.tmp-<random>"), flushes it to stable storage, and renames it over
// the destination. rename(2) within one folder is atomic on POSIX file
// systems, so the path always names a complete file. On any error the
// temporary file is removed and an existing file at the path is untouched. A
// process killed before the rename leaves the old file intact plus a stray
// ".<name>.tmp-*" file, which is safe to delete.
//
// # Folders
//
// ReplaceDir builds a whole folder (for example an adapter: a config file and
// a weight file that must match) in a sibling temporary folder and then swaps
// it in with two renames. See ReplaceDir for the exact guarantee.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile atomically replaces the file at path with what write produces.
//
// write receives the open temporary file; it must not keep the writer after
// it returns. When write returns an error or panics, or when syncing, closing
// or renaming fails, the temporary file is removed and any existing file at
// path is left exactly as it was (a panic is re-raised after the clean-up).
//
// The new file takes the permission bits of the file it replaces, or 0644
// when there was none.
func WriteFile(path string, write func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("atomicfile: write %q: no file name", path)
	}
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("atomicfile: write %s: not a regular file", path)
		}
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		// Runs on errors and during a panic in write.
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	if err := write(f); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: write %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: write %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	done = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: write %s: file replaced but folder not synced: %w", path, err)
	}
	return nil
}

// ReplaceDir replaces the folder dir by one that fill builds.
//
// fill receives the path of an empty temporary folder next to dir
// (".<name>.tmp-<random>") and writes the new contents there. Then every file
// in it is flushed to stable storage, the old dir (if any) is renamed aside
// into a sibling ".<name>.old-<random>" folder, the new folder is renamed to
// dir, and the old one is deleted.
//
// The guarantee, for a reader that opens files by their path under dir:
//
//   - it never sees a partly built folder, nor files of the old folder mixed
//     with files of the new one (each rename moves a whole folder at once);
//   - while ReplaceDir runs it sees the old complete folder, then, for the
//     instant between the two renames, no folder at all, then the new complete
//     folder (POSIX has no portable atomic swap of two folders);
//   - a reader that already opened a file of the old folder keeps reading the
//     old file.
//
// On any error (fill failing, a rename failing) the temporary folder is
// removed and the old folder is put back at dir, so dir is as it was. After a
// crash, dir holds the old or the new complete folder, except for a crash in
// the instant between the two renames, after which dir is missing and the
// old complete folder is at ".<name>.old-*/old". Stray ".<name>.tmp-*" and
// ".<name>.old-*" folders left by a crash are safe to delete.
//
// dir must not be a regular file; its parent folder must exist.
func ReplaceDir(dir string, fill func(tmp string) error) error {
	dir = filepath.Clean(dir)
	parent, base := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	if base == "" || base == "." || base == ".." || base == string(filepath.Separator) {
		return fmt.Errorf("atomicfile: replace folder %q: no folder name", dir)
	}
	exists := false
	mode := fs.FileMode(0o755) // a new folder is readable by all, like os.Mkdir's usual result
	if st, err := os.Lstat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("atomicfile: replace folder %s: not a folder", dir)
		}
		exists = true
		mode = st.Mode().Perm()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("atomicfile: replace folder %s: %w", dir, err)
	}

	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: replace folder %s: %w", dir, err)
	}
	tmpInPlace := false // true once tmp has been renamed to dir
	defer func() {
		if !tmpInPlace {
			_ = os.RemoveAll(tmp)
		}
	}()
	// MkdirTemp makes a private (0700) folder; give it the mode the folder
	// it replaces had.
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("atomicfile: replace folder %s: %w", dir, err)
	}
	if err := fill(tmp); err != nil {
		return fmt.Errorf("atomicfile: replace folder %s: %w", dir, err)
	}
	if err := syncTree(tmp); err != nil {
		return fmt.Errorf("atomicfile: replace folder %s: sync: %w", dir, err)
	}

	if !exists {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("atomicfile: replace folder %s: %w", dir, err)
		}
		tmpInPlace = true
		if err := syncDir(parent); err != nil {
			return fmt.Errorf("atomicfile: replace folder %s: folder replaced but parent not synced: %w", dir, err)
		}
		return nil
	}

	// The old folder goes inside a fresh, uniquely named sibling, so the
	// rename never collides with a leftover from an earlier crash.
	aside, err := os.MkdirTemp(parent, "."+base+".old-*")
	if err != nil {
		return fmt.Errorf("atomicfile: replace folder %s: %w", dir, err)
	}
	old := filepath.Join(aside, "old")
	if err := os.Rename(dir, old); err != nil {
		_ = os.Remove(aside)
		return fmt.Errorf("atomicfile: replace folder %s: move old folder aside: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("atomicfile: replace folder %s: %w (old folder kept at %s: %v)", dir, err, old, rerr)
		}
		_ = os.Remove(aside)
		return fmt.Errorf("atomicfile: replace folder %s: %w", dir, err)
	}
	tmpInPlace = true
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("atomicfile: replace folder %s: folder replaced but parent not synced: %w", dir, err)
	}
	if err := os.RemoveAll(aside); err != nil {
		return fmt.Errorf("atomicfile: replace folder %s: folder replaced but old copy not removed: %w", dir, err)
	}
	return nil
}

// syncTree flushes every regular file and folder under root to stable
// storage, deepest first, so that the folder is complete on disk before it is
// renamed into place.
func syncTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			return syncFile(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := syncDir(dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename or a new entry in dir durable. Windows cannot sync
// a folder; there the rename alone is what the file system offers.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}
