package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// flagPath is a path given to a flag.
type flagPath struct {
	flag, path string
}

// guardOutputs refuses outputs that would modify an input: an output that is
// an input, lies inside an input folder, or is a folder that holds an input
// (replacing it would delete the input). Two outputs may not be one path
// either. Paths are compared after making them absolute and resolving
// symbolic links (for a path that does not exist yet, its deepest existing
// parent is resolved), and existing files are also compared by identity, so
// "base", "./base/", a symbolic link to it and a hard link to a file are all
// recognised. Empty paths are skipped.
func guardOutputs(outs, ins []flagPath) error {
	for i, o := range outs {
		if o.path == "" {
			continue
		}
		ro := resolvePath(o.path)
		for _, in := range ins {
			if in.path == "" {
				continue
			}
			ri := resolvePath(in.path)
			switch {
			case ro == ri || sameFile(o.path, in.path):
				return usagef("--%s %s is the --%s %s %s: writing there would modify an input, which a command never does (choose a new path)", o.flag, o.path, in.flag, kindOf(in.path), in.path)
			case inside(ro, ri):
				return usagef("--%s %s lies inside the --%s folder %s: writing there would modify an input, which a command never does (choose a path outside it)", o.flag, o.path, in.flag, in.path)
			case inside(ri, ro):
				return usagef("--%s %s holds the --%s %s %s: replacing it would delete an input (choose another folder)", o.flag, o.path, in.flag, kindOf(in.path), in.path)
			}
		}
		for _, p := range outs[i+1:] {
			if p.path != "" && (resolvePath(p.path) == ro || sameFile(o.path, p.path)) {
				return usagef("--%s and --%s are the same path %s: give each its own", o.flag, p.flag, o.path)
			}
		}
	}
	return nil
}

// resolvePath returns path made absolute with its symbolic links resolved.
// The part that does not exist yet is appended to its deepest existing
// parent, resolved. It never fails: what cannot be resolved is kept as
// filepath.Abs gives it.
func resolvePath(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	rest := ""
	for p := abs; ; {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return abs
		}
		parent := filepath.Dir(p)
		if parent == p {
			return abs
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// inside reports whether the resolved path a lies strictly inside the
// resolved folder b.
func inside(a, b string) bool {
	rel, err := filepath.Rel(b, a)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// sameFile reports whether a and b both exist and are the same file or
// folder (hard links, bind mounts).
func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// kindOf says "folder" for a folder and "file" for anything else.
func kindOf(path string) string {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return "folder"
	}
	return "file"
}

// checkOutputFiles refuses output file paths that are folders or devices,
// or that two flags share (the second write would replace the first),
// before any work is done. Empty paths are skipped.
func checkOutputFiles(outs ...flagPath) error {
	for _, o := range outs {
		if o.path == "" {
			continue
		}
		if st, err := os.Stat(o.path); err == nil && !st.Mode().IsRegular() {
			return usagef("--%s %s: is a folder or a device, want a file path", o.flag, o.path)
		}
	}
	return guardOutputs(outs, nil)
}
