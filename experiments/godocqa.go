package experiments

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/printer"
	"go/token"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/golora/golora/chat"
)

// GoDocPackages are the standard-library packages GoDocQA reads by default:
// ones every Go programmer meets, with short, self-contained doc comments.
func GoDocPackages() []string {
	return []string{"bufio", "bytes", "container/list", "context", "errors", "fmt", "io", "maps", "math",
		"net/url", "os", "path", "path/filepath", "slices", "sort", "strconv", "strings", "sync", "time",
		"unicode", "unicode/utf8"}
}

// GoDocOptions says what GoDocQA makes.
type GoDocOptions struct {
	// Packages are import paths under GOROOT/src (nil: GoDocPackages).
	Packages []string
	// Max caps the number of conversations (0: all), kept in order after
	// the seeded shuffle.
	Max int
	// Seed chooses each question's wording, the pairs joined into
	// two-turn conversations, the ones given a system message, and the
	// order.
	Seed uint64
}

// GoDocSystem is the system message some GoDocQA conversations carry.
const GoDocSystem = "You are a Go expert. Answer in one sentence."

// GoDocQA is an instruction data set golora makes itself from the doc
// comments of Go's standard library in the distribution at goroot (see
// FindGoRoot), so that chat tuning needs no download. For each package it
// asks what the package provides (answer: its doc comment's first
// sentence), and for each exported, documented, non-deprecated function,
// method and type what it does (the first sentence of its doc comment,
// with the name qualified: "strings.Contains reports whether substr is
// within s.") and for functions their signature ("func Contains(s, substr
// string) bool"). Questions take one of a few wordings. About a third of
// the conversations hold two exchanges about one package, and a quarter
// start with GoDocSystem. The result is the same for the same Go version,
// options and seed. It also returns the doc comments read, as plain text
// (for pretraining a model from scratch on the same words).
func GoDocQA(goroot string, o GoDocOptions) ([]chat.Conversation, string, error) {
	pkgs := o.Packages
	if pkgs == nil {
		pkgs = GoDocPackages()
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x676f646f63)) // "godoc"
	var convs []chat.Conversation
	var text strings.Builder
	for _, path := range pkgs {
		p, fset, err := readPackageDoc(goroot, path)
		if err != nil {
			return nil, "", err
		}
		text.WriteString(p.Doc)
		text.WriteString("\n")
		pairs := packagePairs(p, fset, r)
		for _, q := range pairs {
			text.WriteString(q[1])
			text.WriteString("\n")
		}
		for i := 0; i < len(pairs); {
			var msgs []chat.Message
			if r.IntN(4) == 0 {
				msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: GoDocSystem})
			}
			n := 1
			if i+1 < len(pairs) && r.IntN(3) == 0 {
				n = 2
			}
			for _, q := range pairs[i : i+n] {
				msgs = append(msgs, chat.Message{Role: chat.RoleUser, Content: q[0]}, chat.Message{Role: chat.RoleAssistant, Content: q[1]})
			}
			convs = append(convs, chat.Conversation{Messages: msgs})
			i += n
		}
	}
	if len(convs) == 0 {
		return nil, "", fmt.Errorf("experiments: godoc: no documented declarations in %s", strings.Join(pkgs, ", "))
	}
	r.Shuffle(len(convs), func(i, j int) { convs[i], convs[j] = convs[j], convs[i] })
	if o.Max > 0 && len(convs) > o.Max {
		convs = convs[:o.Max]
	}
	return convs, text.String(), nil
}

// readPackageDoc parses the non-test files of one package.
func readPackageDoc(goroot, path string) (*doc.Package, *token.FileSet, error) {
	dir := filepath.Join(goroot, "src", filepath.FromSlash(path))
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("experiments: godoc: package %s: %w", path, err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	pkgName := ""
	for _, n := range names {
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return nil, nil, fmt.Errorf("experiments: godoc: %w", err)
		}
		if ignoredBuild(f) || f.Name.Name == "main" || f.Name.Name == "documentation" {
			continue // generators and other programs beside the package
		}
		if pkgName == "" {
			pkgName = f.Name.Name
		}
		if f.Name.Name == pkgName {
			files[n] = f
		}
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("experiments: godoc: package %s: no Go files in %s", path, dir)
	}
	fileList := make([]*ast.File, 0, len(files))
	for _, n := range names {
		if f, ok := files[n]; ok {
			fileList = append(fileList, f)
		}
	}
	p, err := doc.NewFromFiles(fset, fileList, path)
	if err != nil {
		return nil, nil, fmt.Errorf("experiments: godoc: package %s: %w", path, err)
	}
	return p, fset, nil
}

// ignoredBuild reports files for other systems than most (a "//go:build
// ignore" file, or one for a single non-Unix OS), whose duplicate
// declarations would clutter the set.
func ignoredBuild(f *ast.File) bool {
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if strings.HasPrefix(c.Text, "//go:build ") {
				expr := strings.TrimPrefix(c.Text, "//go:build ")
				return expr == "ignore" || strings.Contains(expr, "windows") && !strings.Contains(expr, "!windows") ||
					strings.Contains(expr, "plan9") && !strings.Contains(expr, "!plan9") || expr == "js" || expr == "wasip1"
			}
		}
		if cg.Pos() > f.Package {
			break
		}
	}
	return false
}

// questions are the wordings of "what does X do?".
var questions = []string{
	"What does %s do in Go?",
	"In Go, what is %s for?",
	"Explain %s in one sentence.",
	"What does the Go function %s do?",
}

// packagePairs returns the question → answer pairs of one package.
func packagePairs(p *doc.Package, fset *token.FileSet, r *rand.Rand) [][2]string {
	base := p.Name
	var pairs [][2]string
	if s := p.Synopsis(p.Doc); s != "" {
		q := []string{"What does the Go package %s provide?", "What is Go's %s package for?"}[r.IntN(2)]
		pairs = append(pairs, [2]string{fmt.Sprintf(q, p.ImportPath), s})
	}
	add := func(name, qualified, docText string, kind string) {
		s := p.Synopsis(docText)
		if s == "" || strings.Contains(docText, "Deprecated:") || len(s) > 300 {
			return
		}
		// "Contains reports…" → "strings.Contains reports…"
		if rest, ok := strings.CutPrefix(s, name+" "); ok {
			s = qualified + " " + rest
		} else if rest, ok := strings.CutPrefix(s, "A "+name+" "); ok {
			s = "A " + qualified + " " + rest
		} else if rest, ok := strings.CutPrefix(s, "An "+name+" "); ok {
			s = "An " + qualified + " " + rest
		}
		var q string
		switch kind {
		case "type":
			q = fmt.Sprintf([]string{"What is %s in Go?", "What is the Go type %s?"}[r.IntN(2)], qualified)
		case "method":
			q = fmt.Sprintf([]string{"What does the method %s do?", "In Go, what does %s do?"}[r.IntN(2)], qualified)
		default:
			q = fmt.Sprintf(questions[r.IntN(len(questions))], qualified)
		}
		pairs = append(pairs, [2]string{q, s})
	}
	funcPair := func(f *doc.Func, qualified string) {
		add(f.Name, qualified, f.Doc, "func")
		if f.Doc == "" || strings.Contains(f.Doc, "Deprecated:") || r.IntN(3) != 0 {
			return
		}
		decl := *f.Decl
		decl.Doc, decl.Body = nil, nil
		var b bytes.Buffer
		if err := printer.Fprint(&b, fset, &decl); err == nil && !strings.Contains(b.String(), "\n") {
			pairs = append(pairs, [2]string{fmt.Sprintf("What is the signature of %s?", qualified), b.String()})
		}
	}
	for _, f := range p.Funcs {
		if ast.IsExported(f.Name) {
			funcPair(f, base+"."+f.Name)
		}
	}
	for _, t := range p.Types {
		if !ast.IsExported(t.Name) {
			continue
		}
		add(t.Name, base+"."+t.Name, t.Doc, "type")
		for _, f := range t.Funcs {
			if ast.IsExported(f.Name) {
				funcPair(f, base+"."+f.Name)
			}
		}
		for _, m := range t.Methods {
			if ast.IsExported(m.Name) {
				add(m.Name, base+"."+t.Name+"."+m.Name, m.Doc, "method")
			}
		}
	}
	return pairs
}
