package experiments

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/trainers"
)

// Data formats of LoadData.
const (
	// FormatAuto detects the format from the content (see DetectFormat).
	FormatAuto = "auto"
	// FormatText is plain text for language modelling: the whole file is one
	// token stream cut into windows of context+1 tokens.
	FormatText = "text"
	// FormatCompletions is one "context||completion" pair per line (E2E
	// style): the loss covers only the completion and its end-of-text token.
	FormatCompletions = "completions"
)

// DetectFormat returns FormatCompletions when every non-blank line of data
// contains "||", and FormatText otherwise (also for data without a
// non-blank line).
func DetectFormat(data []byte) string {
	seen := false
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !bytes.Contains(line, []byte(trainers.CompletionSep)) {
			return FormatText
		}
		seen = true
	}
	if seen {
		return FormatCompletions
	}
	return FormatText
}

// LoadData reads a data file as a trainers.Dataset for a model whose
// tokenizer is tok: plain text cut into windows of ctx+1 tokens, or
// "context||completion" lines (format FormatText, FormatCompletions, or
// FormatAuto / "" to detect it). A completions line is the sequence
// Encode(context) + Encode("||") + Encode(completion) + [EOT], the line as
// written, with the loss on the completion and EOT only; so a model trained
// on it continues a prompt "context||". It returns the format used. A missing or
// empty file, a text shorter than one window, or a malformed completions
// line is an error naming the file.
func LoadData(path string, tok gpt.Tokenizer, ctx int, format string) (trainers.Dataset, string, error) {
	if tok == nil {
		return nil, "", errors.New("experiments: load data: nil tokenizer")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("experiments: data: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, "", fmt.Errorf("experiments: data file %s is empty", path)
	}
	switch format {
	case "", FormatAuto:
		format = DetectFormat(b)
	case FormatText, FormatCompletions:
	default:
		return nil, "", fmt.Errorf("experiments: data format %q, want %s, %s or %s", format, FormatAuto, FormatText, FormatCompletions)
	}
	if format == FormatCompletions {
		ds, err := trainers.ParseCompletions(bytes.NewReader(b), path, tok, trainers.CompletionSep)
		if err != nil {
			return nil, "", fmt.Errorf("experiments: %w", err)
		}
		return ds, format, nil
	}
	ids, err := gpt.EncodeText(tok, string(b))
	if err != nil {
		return nil, "", fmt.Errorf("experiments: data file %s: %w", path, err)
	}
	ds, err := trainers.NewTextDataset(ids, ctx)
	if err != nil {
		return nil, "", fmt.Errorf("experiments: data file %s: %w", path, err)
	}
	return ds, format, nil
}

// Tokens encodes each document with tok and joins them into one stream with
// the end-of-text id after each document.
func Tokens(tok gpt.Tokenizer, docs []string) []int {
	var ids []int
	for _, d := range docs {
		ids = append(ids, tok.Encode(d)...)
		ids = append(ids, tok.EOT())
	}
	return ids
}

// FindGoRoot returns the root of a Go distribution whose sources are on
// disk: $GOROOT when set, else what `go env GOROOT` prints, else the
// GOROOT this binary was built with. It checks that the folder has src/.
func FindGoRoot() (string, error) {
	var tried []string
	try := func(dir string) bool {
		if dir == "" {
			return false
		}
		tried = append(tried, dir)
		st, err := os.Stat(filepath.Join(dir, "src"))
		return err == nil && st.IsDir()
	}
	if d := os.Getenv("GOROOT"); try(d) {
		return d, nil
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); try(d) {
			return d, nil
		}
	}
	//lint:ignore SA1019 the build-time GOROOT is the last resort when no go command is on PATH.
	if d := runtime.GOROOT(); try(d) {
		return d, nil
	}
	if len(tried) == 0 {
		return "", errors.New("experiments: no Go distribution found: set GOROOT or put the go command on PATH")
	}
	return "", fmt.Errorf("experiments: no Go sources (src/) under %s: set GOROOT to a Go distribution", strings.Join(tried, ", "))
}
