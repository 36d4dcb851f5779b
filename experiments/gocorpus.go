package experiments

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

// Text domains found in every Go distribution (a GOROOT), so that
// experiments run on real text without a download. Each is a set of files
// read in sorted order.
const (
	// DomainGo is Go source code: src/**/*.go without tests, testdata and
	// vendored code.
	DomainGo = "go"
	// DomainAsm is Go assembly: src/**/*.s without testdata.
	DomainAsm = "asm"
	// DomainDocs is the documentation prose of doc/ (*.html and *.md: the
	// language specification, the memory model, …), without asm.html, which
	// documents the assembler.
	DomainDocs = "docs"
	// DomainAPI is the API listings api/*.txt ("pkg fmt, func Println(...any)
	// (int, error)").
	DomainAPI = "api"
)

// GoDomains lists the domain names ReadGoDomain accepts.
func GoDomains() []string { return []string{DomainGo, DomainAsm, DomainDocs, DomainAPI} }

// DomainDescription says in a few words what a domain holds.
func DomainDescription(domain string) string {
	switch domain {
	case DomainGo:
		return "Go source code (src/**/*.go, no tests)"
	case DomainAsm:
		return "Go assembly (src/**/*.s)"
	case DomainDocs:
		return "documentation prose (doc/*.html, doc/*.md: the spec, the memory model)"
	case DomainAPI:
		return "API listings (api/*.txt)"
	}
	return domain
}

// GoText is a sample of one domain of a Go distribution.
type GoText struct {
	Domain string `json:"domain"`
	// Files are the files read, relative to the GOROOT, in reading order.
	Files []string `json:"files"`
	// Docs holds each file's text (truncated to the per-file cap).
	Docs []string `json:"-"`
	// Bytes is the total length of Docs; Available the total size of every
	// file of the domain.
	Bytes     int   `json:"bytes"`
	Available int64 `json:"available_bytes"`
}

// ReadGoDomain reads about maxBytes of domain from the Go distribution at
// goroot, the same text every time for the same distribution. The domain's
// files are listed in sorted order and k of them are taken at evenly spaced
// positions of that list, k = min(files, ⌈maxBytes/4 KiB⌉), so that the
// sample spreads over the whole tree. The budget is shared fairly among them
// (a file shorter than its share leaves the rest to the others) and each
// file contributes its beginning, cut at a line end, after the standard
// "// Copyright …" licence header that nearly every file repeats.
func ReadGoDomain(goroot, domain string, maxBytes int) (*GoText, error) {
	if maxBytes < 1 {
		return nil, fmt.Errorf("experiments: read %s: maxBytes %d, want ≥ 1", domain, maxBytes)
	}
	files, sizes, err := listDomain(goroot, domain)
	if err != nil {
		return nil, err
	}
	t := &GoText{Domain: domain}
	for _, s := range sizes {
		t.Available += s
	}
	const chunk = 4 << 10
	n := len(files)
	k := min(n, (maxBytes+chunk-1)/chunk)
	pick := make([]int, k) // evenly spaced indices into files
	for i := range pick {
		pick[i] = i * n / k
	}
	// Fair shares: visit the picked files from the smallest up; each takes
	// min(its size, what is left / files left).
	order := append([]int(nil), pick...)
	sort.SliceStable(order, func(a, b int) bool { return sizes[order[a]] < sizes[order[b]] })
	share := map[int]int{}
	left := maxBytes
	for j, i := range order {
		s := int(min(sizes[i], int64(left/(len(order)-j))))
		share[i] = s
		left -= s
	}
	for _, i := range pick {
		if share[i] == 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(goroot, files[i]))
		if err != nil {
			return nil, fmt.Errorf("experiments: %s: %w", domain, err)
		}
		b = dropLicence(b)
		if len(b) > share[i] {
			cut := bytes.LastIndexByte(b[:share[i]], '\n')
			if cut <= 0 {
				continue
			}
			b = b[:cut+1]
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		t.Files = append(t.Files, filepath.ToSlash(files[i]))
		t.Docs = append(t.Docs, string(b))
		t.Bytes += len(b)
	}
	if t.Bytes == 0 {
		return nil, fmt.Errorf("experiments: %s: no text in the %s files under %s", domain, DomainDescription(domain), goroot)
	}
	return t, nil
}

// dropLicence removes a leading "// Copyright" comment block and the blank
// lines after it.
func dropLicence(b []byte) []byte {
	if !bytes.HasPrefix(b, []byte("// Copyright")) {
		return b
	}
	for bytes.HasPrefix(b, []byte("//")) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		b = b[i+1:]
	}
	return bytes.TrimLeft(b, "\n")
}

// listDomain returns the domain's files relative to goroot, sorted, and
// their sizes.
func listDomain(goroot, domain string) ([]string, []int64, error) {
	var dir string
	var keep func(rel string, d fs.DirEntry) bool
	switch domain {
	case DomainGo:
		dir = "src"
		keep = func(rel string, d fs.DirEntry) bool {
			return strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go")
		}
	case DomainAsm:
		dir = "src"
		keep = func(rel string, d fs.DirEntry) bool { return strings.HasSuffix(rel, ".s") }
	case DomainDocs:
		dir = "doc"
		keep = func(rel string, d fs.DirEntry) bool {
			return (strings.HasSuffix(rel, ".html") || strings.HasSuffix(rel, ".md")) && rel != "doc/asm.html"
		}
	case DomainAPI:
		dir = "api"
		keep = func(rel string, d fs.DirEntry) bool { return strings.HasSuffix(rel, ".txt") }
	default:
		return nil, nil, fmt.Errorf("experiments: unknown domain %q (want one of %v)", domain, GoDomains())
	}
	root := filepath.Join(goroot, dir)
	if _, err := os.Stat(root); err != nil {
		return nil, nil, fmt.Errorf("experiments: %s: %w", domain, err)
	}
	var files []string
	var sizes []int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(goroot, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !keep(rel, d) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, rel)
		sizes = append(sizes, info.Size())
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("experiments: %s: %w", domain, err)
	}
	// WalkDir visits in lexical order already; sort to make it explicit.
	idx := make([]int, len(files))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return files[idx[a]] < files[idx[b]] })
	sf, ss := make([]string, len(files)), make([]int64, len(files))
	for i, j := range idx {
		sf[i], ss[i] = files[j], sizes[j]
	}
	if len(sf) == 0 {
		return nil, nil, fmt.Errorf("experiments: %s: no %s files under %s", domain, DomainDescription(domain), goroot)
	}
	return sf, ss, nil
}

// ReadGoFiles concatenates the files of the Go distribution at goroot
// ("" for runtime.GOROOT()) that match the glob patterns (filepath.Match
// syntax, relative to goroot, such as "src/strings/*.go"): pattern by
// pattern, each pattern's files in sorted order, tests (_test.go) left out.
// It returns the first maxBytes bytes of that text, the same every time for
// the same distribution. The notebooks read their training text with it. A
// malformed pattern, one that matches no file, or a file that cannot be read
// is an error naming it.
func ReadGoFiles(goroot string, maxBytes int, patterns ...string) (string, error) {
	if maxBytes < 1 {
		return "", fmt.Errorf("experiments: read Go files: maxBytes %d, want ≥ 1", maxBytes)
	}
	if goroot == "" {
		goroot = runtime.GOROOT()
	}
	var sb strings.Builder
	for _, pat := range patterns {
		files, err := filepath.Glob(filepath.Join(goroot, pat))
		if err != nil {
			return "", fmt.Errorf("experiments: read Go files: pattern %q: %w", pat, err)
		}
		files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, "_test.go") })
		if len(files) == 0 {
			return "", fmt.Errorf("experiments: read Go files: pattern %q matches no file under %s", pat, goroot)
		}
		sort.Strings(files)
		for _, f := range files {
			if sb.Len() >= maxBytes {
				break
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return "", fmt.Errorf("experiments: read Go files: %w", err)
			}
			sb.Write(b)
		}
	}
	s := sb.String()
	if len(s) > maxBytes {
		s = s[:maxBytes]
	}
	return s, nil
}
