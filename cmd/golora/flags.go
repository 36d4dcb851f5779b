package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// hidden marks a flag that --help does not list (test-only switches).
const hidden = "hidden: "

// flags is a subcommand's flag set with its help text.
type flags struct {
	*flag.FlagSet
	c        *cli
	synopsis string
	about    string
	example  string
}

// newFlags starts the flag set of subcommand c; synopsis follows the
// command name in the help, about explains it and example shows a use.
func newFlags(c *cli, synopsis, about, example string) *flags {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by run, help by parse
	fs.Usage = func() {}
	return &flags{FlagSet: fs, c: c, synopsis: synopsis, about: about, example: example}
}

// parse parses args, allowing positional arguments between flags, and
// returns the positional ones. --help prints the help to stdout and returns
// flag.ErrHelp.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.help(f.c.stdout)
				return nil, err
			}
			return nil, usageError{err}
		}
		rest := f.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil // everything after "--" is positional
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseNone parses args for a subcommand that takes no positional
// arguments: parse, then noArgs.
func (f *flags) parseNone(args []string) error {
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	return f.noArgs(pos)
}

// noArgs rejects positional arguments.
func (f *flags) noArgs(pos []string) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

// help writes the usage, the explanation, the flags (with --name) and the
// example.
func (f *flags) help(w io.Writer) {
	fmt.Fprintf(w, "usage: %s %s\n\n%s\n", f.c.name, f.synopsis, f.about)
	var b strings.Builder
	f.VisitAll(func(fl *flag.Flag) {
		if strings.HasPrefix(fl.Usage, hidden) {
			return
		}
		name, usage := flag.UnquoteUsage(fl)
		usage = strings.TrimPrefix(usage, name+": ") // "`DIR`: what" names the value only
		fmt.Fprintf(&b, "  --%s", fl.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n      %s", strings.ReplaceAll(usage, "\n", "\n      "))
		if d := fl.DefValue; d != "" && d != "0" && d != "false" && d != "[]" {
			fmt.Fprintf(&b, " (default %s)", d)
		}
		b.WriteString("\n")
	})
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nflags:\n%s", b.String())
	}
	if f.example != "" {
		fmt.Fprintf(w, "\nexample:\n  %s\n", f.example)
	}
}

// flagGiven reports whether the flag called name was set on the command
// line.
func flagGiven(f *flags, name string) bool {
	given := false
	f.Visit(func(fl *flag.Flag) { given = given || fl.Name == name })
	return given
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// need reports a missing required flag.
func need(name, value string) error {
	if value == "" {
		return usagef("--%s is required", name)
	}
	return nil
}

// checkInputFile reports a path given to flag that does not exist, is a
// folder, or is empty.
func checkInputFile(flagName, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("--%s %s: %w", flagName, path, unwrapPath(err))
	}
	if st.IsDir() {
		return fmt.Errorf("--%s %s: is a folder, want a file", flagName, path)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("--%s %s: not a regular file (a device or a pipe), want a file", flagName, path)
	}
	if st.Size() == 0 {
		return fmt.Errorf("--%s %s: the file is empty", flagName, path)
	}
	return nil
}

// checkInputDir reports a folder given to flag that does not exist or lacks
// one of the files.
func checkInputDir(flagName, dir string, files ...string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("--%s %s: %w", flagName, dir, unwrapPath(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("--%s %s: not a folder", flagName, dir)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("--%s %s: no %s in the folder", flagName, dir, f)
		}
	}
	return nil
}

// checkOutputDir makes sure that dir can be replaced by a folder holding
// only the given files: it is absent, or an existing folder holding nothing
// else (so a previous output of the same kind is replaced, never a folder of
// other things).
func checkOutputDir(flagName, dir string, allowed func(name string, isDir bool) bool) error {
	if dir == "" {
		return usagef("--%s is required", flagName)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--%s %s: %w", flagName, dir, unwrapPath(err))
	}
	for _, e := range entries {
		if !allowed(e.Name(), e.IsDir()) {
			return fmt.Errorf("--%s %s: the folder holds %q; refusing to replace it (choose a new or empty folder)", flagName, dir, e.Name())
		}
	}
	return nil
}

// only returns an allowed function for checkOutputDir that accepts the
// named files.
func only(names ...string) func(string, bool) bool {
	return func(n string, isDir bool) bool {
		for _, m := range names {
			if n == m && !isDir {
				return true
			}
		}
		return false
	}
}

// makeParent creates the folder that will hold dir.
func makeParent(dir string) error {
	return os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755)
}

// unwrapPath drops the "stat PATH:" part of an os error, since the callers
// name the path themselves.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
