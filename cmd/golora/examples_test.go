package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golora/golora/experiments"
)

// envExamples turns on TestExamplesRun, which runs every example command of
// the README and of the --help texts (minutes: it includes the demo). CI
// runs it as a step of its own.
const envExamples = "GOLORA_EXAMPLES"

// example is one example command line and where it was found.
type example struct {
	source string // "README.md" or "golora finetune --help"
	line   string
}

// readmeExamples returns the command lines of README.md's CLI block: the
// first ```sh block after the "## The command-line tool" heading, comments
// and blank lines left out.
func readmeExamples(t *testing.T) []example {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## The command-line tool")
	if !ok {
		t.Fatal(`README.md has no "## The command-line tool" section`)
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("README.md's CLI section has no ```sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	var out []example
	for _, line := range strings.Split(block, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, example{"README.md", line})
		}
	}
	return out
}

// helpExamples returns the example lines of every command's --help: the
// indented lines after "example:" or "examples:" up to a blank line. Any
// example a command adds to its help is picked up here.
func helpExamples(t *testing.T) []example {
	t.Helper()
	var out []example
	for _, c := range commands() {
		r := golora(c.name, "--help")
		if r.code != 0 {
			t.Fatalf("golora %s --help: exit %d", c.name, r.code)
		}
		sc := bufio.NewScanner(strings.NewReader(r.stdout))
		in := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "example:" || line == "examples:":
				in = true
			case in && strings.TrimSpace(line) == "":
				in = false
			case in && strings.HasPrefix(line, "  "):
				out = append(out, example{"golora " + c.name + " --help", strings.TrimSpace(line)})
			}
		}
	}
	return out
}

// TestExampleExtraction checks that the runner finds the examples: the
// README's block, at least one per command, each a golora command (or the
// install line the runner stands in for).
func TestExampleExtraction(t *testing.T) {
	readme, help := readmeExamples(t), helpExamples(t)
	if len(readme) < 5 {
		t.Errorf("README.md's CLI block gives %d commands: %v", len(readme), readme)
	}
	per := map[string]int{}
	for _, e := range help {
		per[e.source]++
	}
	for _, c := range commands() {
		if per["golora "+c.name+" --help"] == 0 {
			t.Errorf("golora %s --help shows no example", c.name)
		}
	}
	for _, e := range append(readme, help...) {
		if words := shellWords(e.line); len(words) == 0 || (words[0] != "golora" && !setupLine(e.line)) {
			t.Errorf("%s: %q is not a golora command", e.source, e.line)
		}
	}
}

// setupLine reports a line that installs golora, which the runner provides
// on PATH instead.
func setupLine(line string) bool {
	return strings.HasPrefix(line, "go install ") || strings.HasPrefix(line, "go build ")
}

// TestExamplesRun runs every example command as written, with a golora
// command on PATH, in a temporary folder: the README's block in order in one
// folder, each --help example in a folder of its own. Inputs an example
// names but does not make are provided first, by what the flag takes: text
// files (--data, --valid) hold Go source from the Go distribution, model
// folders (--base) are a tiny model that golora pretrain made from that
// text, adapters (--adapter) one that golora finetune made on it,
// checkpoints (--resume) one it wrote. Any non-zero exit fails the test.
func TestExamplesRun(t *testing.T) {
	if os.Getenv(envExamples) != "1" {
		t.Skipf("set %s=1 to run every README and --help example (minutes; CI does)", envExamples)
	}
	examples := append(readmeExamples(t), helpExamples(t)...)
	fx := exampleFixtures(t)
	readmeDir := t.TempDir()
	for i, e := range examples {
		dir := readmeDir
		if e.source != "README.md" {
			dir = t.TempDir()
		}
		if setupLine(e.line) {
			t.Logf("%s: %s: golora is on PATH already", e.source, e.line)
			continue
		}
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			fx.provide(t, dir, e.line)
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", e.line)
			cmd.Dir = dir
			cmd.Env = fx.env
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			t.Logf("%s: %s (%s)", e.source, e.line, time.Since(start).Round(100*time.Millisecond))
			if err != nil {
				tail := out.String()
				if len(tail) > 3000 {
					tail = "…" + tail[len(tail)-3000:]
				}
				t.Fatalf("%s: %s\n%v\n%s", e.source, e.line, err, tail)
			}
		})
	}
}

// exampleInputs are the files an example may name without making them.
type exampleInputs struct {
	text, model, adapter, checkpoint string
	env                              []string
}

// exampleFixtures makes the inputs: Go source text, a tiny model trained on
// it by pretrain, an adapter and a checkpoint by finetune; and a golora
// command (this test binary in command mode) on PATH.
func exampleFixtures(t *testing.T) *exampleInputs {
	t.Helper()
	dir := t.TempDir()
	goroot, err := experiments.FindGoRoot()
	if err != nil {
		t.Skipf("no Go distribution to read text from: %v", err)
	}
	src, err := experiments.ReadGoDomain(goroot, experiments.DomainGo, 24<<10)
	if err != nil {
		t.Fatal(err)
	}
	fx := &exampleInputs{
		text:       filepath.Join(dir, "go.txt"),
		model:      filepath.Join(dir, "model"),
		adapter:    filepath.Join(dir, "adapter"),
		checkpoint: filepath.Join(dir, "run.safetensors"),
	}
	if err := os.WriteFile(fx.text, []byte(strings.Join(src.Docs, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(bin, "golora")); err != nil {
		t.Fatal(err)
	}
	fx.env = append(os.Environ(), asGolora+"=1", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	mustRun(t, "pretrain", "--preset", "nano", "--layers", "2", "--embd", "32", "--heads", "2", "--data", fx.text,
		"--out", fx.model, "--steps", "30", "--batch", "4", "--quiet")
	mustRun(t, "finetune", "--base", fx.model, "--data", fx.text, "--out", fx.adapter, "--steps", "4", "--batch", "4",
		"--quiet", "--checkpoint", fx.checkpoint)
	return fx
}

// provide makes, in dir, the inputs line names that do not exist there yet.
func (fx *exampleInputs) provide(t *testing.T, dir, line string) {
	t.Helper()
	words := shellWords(line)
	if len(words) < 2 || words[0] != "golora" {
		return
	}
	command := words[1]
	for i := 2; i < len(words); i++ {
		w := words[i]
		var flag, value string
		switch {
		case strings.HasPrefix(w, "-"):
			flag = strings.TrimLeft(w, "-")
			if name, v, ok := strings.Cut(flag, "="); ok {
				flag, value = name, v
			} else if i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
				value = words[i+1]
				i++
			}
		case command == "inspect":
			flag, value = "path", w
		default:
			continue
		}
		if value == "" {
			continue
		}
		path := value
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if _, err := os.Lstat(path); err == nil {
			continue
		}
		var from string
		switch {
		case flag == "data" || flag == "valid":
			from = fx.text
		case flag == "base":
			from = fx.model
		case flag == "adapter":
			from = fx.adapter
		case flag == "resume":
			from = fx.checkpoint
		case flag == "path" && strings.HasSuffix(value, ".safetensors"):
			from = fx.checkpoint
		case flag == "path" && strings.Contains(value, "adapter"):
			from = fx.adapter
		case flag == "path":
			from = fx.model
		default:
			continue // an output, or a value that is no path
		}
		if st, err := os.Stat(from); err == nil && st.IsDir() {
			copyTree(t, from, path)
			continue
		}
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shellWords splits a command line into words as a POSIX shell would for
// plain words and '…' and "…" quotes, stopping at a redirection, pipe or
// list operator (what follows is the shell's business).
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	have := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				end = len(line) - i - 1
			}
			cur.WriteString(line[i+1 : i+1+end])
			have = true
			i += end + 1
		case c == ' ' || c == '\t':
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		case strings.IndexByte("><|;&#", c) >= 0 && !have:
			return words
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		words = append(words, cur.String())
	}
	return words
}
