package tokenizer

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/golora/golora/internal/memlimit"
)

// readFile reads a tokenizer file: only a regular file (a device such as
// /dev/zero or a pipe would be read without end or block), and only when
// the memory available can hold it and what is parsed from it (about 8
// times its size). A missing file gives an error wrapping fs.ErrNotExist.
func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("not a regular file")}
	}
	if err := memlimit.Check(8*st.Size(), fmt.Sprintf("reading the %s of %s", memlimit.Bytes(st.Size()), path)); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}
