package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// RemoveStale deletes what an interrupted WriteFile or ReplaceDir of path
// left behind: temporary ".<name>.tmp-<digits>" files and folders next to
// path, and ".<name>.old-<digits>" folders when path itself exists (while
// path is missing, such a folder holds the only complete copy, so it is
// kept). It returns the paths it removed. Call it when a run starts on a
// path that no other process is writing.
func RemoveStale(path string) ([]string, error) {
	dir, base := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	if base == "" || base == "." || base == ".." {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("atomicfile: clean up after %s: %w", path, err)
	}
	_, statErr := os.Lstat(path)
	exists := statErr == nil
	var removed []string
	for _, e := range entries {
		name := e.Name()
		stale := tempSuffix(name, "."+base+".tmp-") || (exists && e.IsDir() && tempSuffix(name, "."+base+".old-"))
		if !stale {
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.RemoveAll(p); err != nil {
			return removed, fmt.Errorf("atomicfile: clean up after %s: %w", path, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// tempSuffix reports whether name is prefix followed by one or more digits
// (the random part os.CreateTemp and os.MkdirTemp add).
func tempSuffix(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
