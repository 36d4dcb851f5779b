package experiments

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/benchutil"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
)

func TestDetectFormat(t *testing.T) {
	cases := []struct {
		name, data, want string
	}{
		{"every line has bars", "a||b\nc||d\n", FormatCompletions},
		{"blank lines are skipped", "\na||b\n  \nc||d", FormatCompletions},
		{"one line without", "a||b\nplain\n", FormatText},
		{"plain text", "hello world\n", FormatText},
		{"nothing", "\n\n", FormatText},
		{"CRLF", "a||b\r\nc||d\r\n", FormatCompletions},
	}
	for _, c := range cases {
		if got := DetectFormat([]byte(c.data)); got != c.want {
			t.Errorf("%s: DetectFormat(%q) = %s, want %s", c.name, c.data, got, c.want)
		}
	}
}

func writeFile(t *testing.T, dir, name, s string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadData(t *testing.T) {
	dir := t.TempDir()
	tok := gpt.ByteTokenizer()
	text := writeFile(t, dir, "text.txt", strings.Repeat("abcdefgh", 10)) // 80 bytes
	compl := writeFile(t, dir, "compl.txt", "ab||cde\nx||yz\n")
	ds, f, err := LoadData(text, tok, 8, FormatAuto)
	if err != nil || f != FormatText || ds.Len() != (80-1)/8 {
		t.Fatalf("text: %v windows, format %s, err %v", ds, f, err)
	}
	if ex := ds.Example(1); !slices.Equal(ex.Tokens, tok.Encode("abcdefgha")) || ex.PromptLen != 0 {
		t.Errorf("window 1 is %v", ex)
	}
	ds, f, err = LoadData(compl, tok, 8, "")
	if err != nil || f != FormatCompletions || ds.Len() != 2 {
		t.Fatalf("completions: format %s, err %v", f, err)
	}
	// The line as written, then EOT; the loss starts after "ab||".
	want := append(tok.Encode("ab||cde"), tok.EOT())
	if ex := ds.Example(0); !slices.Equal(ex.Tokens, want) || ex.PromptLen != 4 {
		t.Errorf("example 0 = %v (prompt %d), want %v (prompt 4)", ex.Tokens, ex.PromptLen, want)
	}
	// Forced text reads the bars as text.
	if _, f, err = LoadData(compl, tok, 4, FormatText); err != nil || f != FormatText {
		t.Errorf("forced text: %s, %v", f, err)
	}
	empty := writeFile(t, dir, "empty.txt", " \n\n")
	bad := writeFile(t, dir, "bad.txt", "a||b\nc||\n")
	for _, c := range []struct {
		name, path, format string
		ctx                int
		want               string
	}{
		{"missing", filepath.Join(dir, "nope.txt"), "", 8, "nope.txt"},
		{"empty", empty, "", 8, "empty.txt is empty"},
		{"too short", text, "", 200, "text.txt"},
		{"bad line", bad, "", 8, "line 2"},
		{"bad format", text, "csv", 8, `"csv"`},
	} {
		_, _, err := LoadData(c.path, tok, c.ctx, c.format)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}

// fakeGoRoot writes a small Go distribution: n Go files and n assembly
// files under src (plus tests, testdata and vendor that must be skipped),
// and api listings; doc/ only when withDoc.
func fakeGoRoot(t *testing.T, n int, withDoc bool) string {
	root := t.TempDir()
	licence := "// Copyright 2009 The Go Authors. All rights reserved.\n// Use of this source code is governed by a BSD-style\n// license that can be found in the LICENSE file.\n\n"
	for i := 0; i < n; i++ {
		var g, s strings.Builder
		fmt.Fprintf(&g, "%spackage p%d\n\n", licence, i)
		fmt.Fprintf(&s, "%s#include \"textflag.h\"\n\n", licence)
		for j := 0; j < 40; j++ {
			fmt.Fprintf(&g, "func F%d_%d(x int) int { return x + %d }\n", i, j, j)
			fmt.Fprintf(&s, "TEXT ·f%d_%d(SB),NOSPLIT,$0-8\n\tMOVQ x+0(FP), AX\n\tADDQ $%d, AX\n\tRET\n\n", i, j, j)
		}
		writeFile(t, root, fmt.Sprintf("src/pkg%02d/a.go", i), g.String())
		writeFile(t, root, fmt.Sprintf("src/pkg%02d/a_amd64.s", i), s.String())
		writeFile(t, root, fmt.Sprintf("src/pkg%02d/a_test.go", i), "package p\n// TEST FILE\n")
		writeFile(t, root, fmt.Sprintf("src/pkg%02d/testdata/x.go", i), "package p\n// TESTDATA\n")
		var api strings.Builder
		for j := 0; j < 60; j++ {
			fmt.Fprintf(&api, "pkg p%d, func F%d_%d(int) int\n", i, i, j)
		}
		writeFile(t, root, fmt.Sprintf("api/go1.%d.txt", i), api.String())
	}
	writeFile(t, root, "src/vendor/v/v.go", "package v\n// VENDORED\n")
	if withDoc {
		var spec strings.Builder
		for j := 0; j < 300; j++ {
			fmt.Fprintf(&spec, "<p>The value %d of a constant is the value of its expression.</p>\n", j)
		}
		writeFile(t, root, "doc/go_spec.html", spec.String())
		writeFile(t, root, "doc/asm.html", "<p>ASSEMBLER DOC</p>\n")
	}
	return root
}

func TestReadGoDomain(t *testing.T) {
	root := fakeGoRoot(t, 12, true)
	for _, d := range GoDomains() {
		a, err := ReadGoDomain(root, d, 20_000)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		b, err := ReadGoDomain(root, d, 20_000)
		if err != nil || !slices.Equal(a.Files, b.Files) || !slices.Equal(a.Docs, b.Docs) {
			t.Errorf("%s: two reads differ", d)
		}
		if a.Bytes > 20_000 || a.Bytes == 0 || !slices.IsSorted(a.Files) {
			t.Errorf("%s: %d bytes from %v", d, a.Bytes, a.Files)
		}
		total := 0
		for i, doc := range a.Docs {
			total += len(doc)
			for _, bad := range []string{"TEST FILE", "TESTDATA", "VENDORED", "ASSEMBLER DOC", "Copyright"} {
				if strings.Contains(doc, bad) {
					t.Errorf("%s: %s holds %q", d, a.Files[i], bad)
				}
			}
			if !strings.HasSuffix(doc, "\n") {
				t.Errorf("%s: %s is not cut at a line end", d, a.Files[i])
			}
		}
		if total != a.Bytes {
			t.Errorf("%s: Bytes %d, docs hold %d", d, a.Bytes, total)
		}
	}
	// A small budget spreads over the whole sorted list: 8 KiB is 2 files,
	// the first and the middle one.
	s, err := ReadGoDomain(root, DomainGo, 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"src/pkg00/a.go", "src/pkg06/a.go"}; !slices.Equal(s.Files, want) {
		t.Errorf("files %v, want %v", s.Files, want)
	}
	// Fair shares: the budget not used by a short file goes to the others.
	one, err := ReadGoDomain(root, DomainDocs, 100_000)
	if err != nil || len(one.Files) != 1 || one.Files[0] != "doc/go_spec.html" {
		t.Errorf("docs: %v, %v", one.Files, err)
	}
	if _, err := ReadGoDomain(fakeGoRoot(t, 1, false), DomainDocs, 1000); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no doc folder: %v, want an error wrapping ErrNotExist", err)
	}
	if _, err := ReadGoDomain(root, "cobol", 1000); err == nil || !strings.Contains(err.Error(), "cobol") {
		t.Errorf("unknown domain: %v", err)
	}
}

func TestFindGoRoot(t *testing.T) {
	root := fakeGoRoot(t, 1, false)
	t.Setenv("GOROOT", root)
	if got, err := FindGoRoot(); err != nil || got != root {
		t.Errorf("FindGoRoot with $GOROOT set = %q, %v", got, err)
	}
}

func TestMaxAbsDiff(t *testing.T) {
	d, s, err := MaxAbsDiff([]float64{1, -3, 2}, []float64{1.5, -3, 1})
	if err != nil || d != 1 || s != 3 {
		t.Errorf("MaxAbsDiff = %v, %v, %v", d, s, err)
	}
	if _, _, err := MaxAbsDiff([]float64{1}, nil); err == nil {
		t.Error("lengths differ: no error")
	}
}

// TestForwardMatchesUnmergedAndMerged checks NewForward against the LoRA
// maths: with every B set, merged logits equal unmerged ones and both
// differ from the base's.
func TestForwardMatchesUnmergedAndMerged(t *testing.T) {
	cfg := gpt.Config{NLayer: 2, NHead: 2, NEmbd: 16, BlockSize: 8, VocabSize: 257, LayerNormEps: 1e-5, Tokenizer: "bytes"}
	m, err := gpt.New(cfg, graph.Float64)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(graph.NewRand(1)); err != nil {
		t.Fatal(err)
	}
	ids := benchutil.RandomTokens(2*8, 257, 3)
	run := func() []float64 {
		f, err := NewForward(m, 2, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out, err := f.Logits(ids)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Run(ids[:3]); err == nil {
			t.Error("Run with 3 ids for 2 × 8: no error")
		}
		return out
	}
	base := run()
	lm, err := lora.Inject(m, benchLoRA(BenchConfig{}, 5))
	if err != nil {
		t.Fatal(err)
	}
	if err := randomizeB(lm, 6); err != nil {
		t.Fatal(err)
	}
	unmerged := run()
	if err := lm.Merge(); err != nil {
		t.Fatal(err)
	}
	merged := run()
	moved, _, _ := MaxAbsDiff(base, unmerged)
	diff, scale, _ := MaxAbsDiff(unmerged, merged)
	// float64: merging is exact up to a few ulps of the logits.
	if moved < 1e-4 || diff > 1e-12*math.Max(1, scale) {
		t.Errorf("adapter moves logits by %g; merged vs unmerged differ by %g", moved, diff)
	}
	if _, err := NewForward(m, 1, 9); err == nil {
		t.Error("a context beyond BlockSize: no error")
	}
	// One Forward kept across Unmerge and Disable compiles itself again.
	f, err := NewForward(m, 2, 8)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		change func() error
		want   []float64
	}{{lm.Unmerge, unmerged}, {lm.Disable, base}, {lm.Enable, unmerged}} {
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		got, err := f.Logits(ids)
		if err != nil {
			t.Fatal(err)
		}
		if d, _, _ := MaxAbsDiff(got, c.want); d > 1e-12 {
			t.Errorf("reused Forward differs by %g after a change of the adapter state", d)
		}
	}
}

func TestStandardBenchConfig(t *testing.T) {
	for _, n := range BenchConfigNames() {
		c, err := StandardBenchConfig(n)
		if err != nil || c.Name != n || c.Steps < 1 || c.LatencyRuns < 1 {
			t.Errorf("%s: %+v, %v", n, c, err)
		}
	}
	if _, err := StandardBenchConfig("huge"); err == nil {
		t.Error("unknown config: no error")
	}
	if _, err := Bench(BenchOptions{}); err == nil {
		t.Error("no configs: no error")
	}
}

// TestDemoFallsBackAndChecks runs the quick demo on a fake Go distribution
// without doc/: the docs task falls back to the API listings, and every
// check of the report is computed and passes.
func TestDemoFallsBackAndChecks(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three small models")
	}
	cfg := QuickDemoConfig()
	cfg.GoRoot = fakeGoRoot(t, 24, false)
	cfg.SampleTokens = 8
	var stages []string
	cfg.Progress = func(e DemoEvent) {
		if len(stages) == 0 || stages[len(stages)-1] != e.Stage {
			stages = append(stages, e.Stage)
		}
	}
	dir := t.TempDir()
	res, err := RunDemo(context.Background(), cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{DomainGo, DomainAPI, DomainAsm}; !slices.Equal(res.Domains, want) {
		t.Errorf("domains %v, want %v", res.Domains, want)
	}
	if res.Full.Domain != DomainAPI {
		t.Errorf("full fine-tuning on %s, want the fallback %s", res.Full.Domain, DomainAPI)
	}
	if len(res.Checks) != 9 {
		t.Errorf("%d checks, want 9", len(res.Checks))
	}
	for _, c := range res.Checks {
		if !c.OK {
			t.Errorf("check failed: %s: %s", c.Name, c.Detail)
		}
	}
	for _, s := range []string{"data", "pretrain", "lora:api", "lora:asm", "full:api", "switch", "merge", "latency", "samples"} {
		if !slices.Contains(stages, s) {
			t.Errorf("no progress event of stage %s (got %v)", s, stages)
		}
	}
	if err := WriteDemoReport(dir, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range append(PlotFiles(res), ReportFile, MetricsFile) {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// A cancelled context stops the demo with an error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RunDemo(ctx, cfg, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled demo: %v", err)
	}
}

func TestDemoConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*DemoConfig)
		want string
	}{
		{"one task", func(c *DemoConfig) { c.Tasks = c.Tasks[:1] }, "tasks"},
		{"full task not a task", func(c *DemoConfig) { c.FullTask = DomainAPI }, "FullTask"},
		{"repeated domain", func(c *DemoConfig) { c.Tasks = []string{DomainGo, DomainAsm} }, "twice"},
		{"context beyond the model", func(c *DemoConfig) { c.Context = 999 }, "context"},
		{"bad rank", func(c *DemoConfig) { c.LoRA.R = -1 }, "rank"},
	} {
		cfg := QuickDemoConfig()
		c.edit(&cfg)
		if _, err := RunDemo(context.Background(), cfg, t.TempDir()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}

// ReadGoFiles concatenates pattern by pattern, files sorted, tests left
// out, and cuts at maxBytes; bad patterns are errors naming them.
func TestReadGoFiles(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "src/b/z.go", "Z")
	writeFile(t, root, "src/b/a.go", "A")
	writeFile(t, root, "src/b/a_test.go", "T")
	writeFile(t, root, "doc/spec.html", "SPEC")
	got, err := ReadGoFiles(root, 100, "doc/*.html", "src/b/*.go")
	if err != nil || got != "SPECAZ" {
		t.Errorf("ReadGoFiles = %q, %v; want \"SPECAZ\"", got, err)
	}
	if got, err := ReadGoFiles(root, 5, "doc/*.html", "src/b/*.go"); err != nil || got != "SPECA" {
		t.Errorf("ReadGoFiles(max 5) = %q, %v; want \"SPECA\"", got, err)
	}
	for _, c := range []struct {
		max  int
		pats []string
		want string
	}{
		{100, []string{"src/nothing/*.go"}, `pattern "src/nothing/*.go" matches no file`},
		{100, []string{"src/b/*_test.go"}, `pattern "src/b/*_test.go" matches no file`},
		{100, []string{"src/[b/*.go"}, `pattern "src/[b/*.go"`},
		{0, []string{"doc/*.html"}, "maxBytes 0"},
	} {
		if _, err := ReadGoFiles(root, c.max, c.pats...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadGoFiles(%d, %q): error %v, want one containing %q", c.max, c.pats, err, c.want)
		}
	}
	// The notebooks' patterns all match in a full Go distribution.
	if _, err := os.Stat(filepath.Join(runtime.GOROOT(), "doc", "go_spec.html")); err != nil {
		t.Skipf("GOROOT is not a full Go distribution: %v", err)
	}
	for _, pat := range []string{"src/strings/*.go", "src/runtime/*_amd64.s", "doc/go_spec.html"} {
		if s, err := ReadGoFiles("", 1000, pat); err != nil || len(s) != 1000 {
			t.Errorf("ReadGoFiles(GOROOT, %q): %d bytes, %v", pat, len(s), err)
		}
	}
}
