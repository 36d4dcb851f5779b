package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/golora/golora/experiments"
	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
)

// result is the outcome of one in-process run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// golora runs the command in-process with args.
func golora(args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// mustRun runs the command and fails the test unless it exits with 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := golora(args...)
	if r.code != 0 {
		t.Fatalf("golora %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r
}

// fixture is a tiny base model and data files shared by the tests of the
// package (built once: training even a tiny model takes a moment).
type fixture struct {
	dir                 string
	base, otherBase     string // model folders: width 16, and width 24 (another shape)
	code, prose, compl  string // text files: Go-like code, prose, completions
	adapter, adapterAll string // adapters on base: q,v prose; c_attn,c_fc code
	err                 error
}

var (
	fixOnce sync.Once
	fix     fixture
)

// tinyModel are the pretrain flags of the fixture's models (width d).
func tinyModel(d int) []string {
	return []string{"--preset", "nano", "--layers", "2", "--heads", "2", "--embd", fmt.Sprint(d), "--block-size", "32",
		"--context", "16", "--batch", "4", "--quiet"}
}

// asGolora, set to 1 in the environment, makes the test binary run as the
// golora command (tests start it under mpirun).
const asGolora = "GOLORA_TEST_AS_GOLORA"

func TestMain(m *testing.M) {
	if os.Getenv(asGolora) == "1" {
		os.Exit(finishDist(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
	}
	code := m.Run()
	if fix.dir != "" {
		os.RemoveAll(fix.dir)
	}
	if chatFixture.dir != "" {
		os.RemoveAll(filepath.Dir(chatFixture.dir)) // chat_test.go
	}
	os.Exit(code)
}

// getFixture builds the shared models and files on first use.
func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		f := &fix
		f.dir, f.err = os.MkdirTemp("", "golora-cmd-test-")
		if f.err != nil {
			return
		}
		p := func(n string) string { return filepath.Join(f.dir, n) }
		f.code, f.prose, f.compl = p("code.txt"), p("prose.txt"), p("compl.txt")
		var code, prose, compl strings.Builder
		for i := 0; i < 60; i++ {
			fmt.Fprintf(&code, "func f%d(x int) int {\n\treturn x*%d + %d\n}\n\n", i, i%7, i%5)
			fmt.Fprintf(&prose, "The %s sat on the %s number %d, and the day was %s.\n", pick(i, "cat", "dog", "bird"), pick(i+1, "mat", "log", "wall"), i, pick(i+2, "warm", "long", "grey"))
			fmt.Fprintf(&compl, "name[%s] | food[%s]||%s serves %s food.\n", pick(i, "Eagle", "Mill", "Punter"), pick(i+1, "French", "Thai", "fast"), pick(i, "Eagle", "Mill", "Punter"), pick(i+1, "French", "Thai", "fast"))
		}
		for path, s := range map[string]string{f.code: code.String(), f.prose: prose.String(), f.compl: compl.String()} {
			if f.err = os.WriteFile(path, []byte(s), 0o644); f.err != nil {
				return
			}
		}
		f.base, f.otherBase = p("base"), p("other-base")
		f.adapter, f.adapterAll = p("adapter-qv"), p("adapter-all")
		steps := []struct {
			args []string
		}{
			{append(tinyModel(16), "--data", f.code, "--out", f.base, "--steps", "30", "--lr", "3e-3")},
			{append(tinyModel(24), "--data", f.code, "--out", f.otherBase, "--steps", "2")},
			{[]string{"finetune", "--base", f.base, "--data", f.prose, "--out", f.adapter, "--steps", "15", "--lr", "1e-2", "--context", "16", "--batch", "4", "--quiet"}},
			{[]string{"finetune", "--base", f.base, "--data", f.code, "--out", f.adapterAll, "--targets", "c_attn,c_fc", "--rank", "4", "--steps", "10", "--lr", "1e-2", "--context", "16", "--batch", "4", "--quiet"}},
		}
		for i, s := range steps {
			args := s.args
			if i < 2 {
				args = append([]string{"pretrain"}, args...)
			}
			if r := golora(args...); r.code != 0 {
				f.err = fmt.Errorf("golora %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
				return
			}
		}
	})
	if fix.err != nil {
		t.Fatal(fix.err)
	}
	return &fix
}

func pick(i int, s ...string) string { return s[i%len(s)] }

// loadModel reads a model folder, with an adapter when dir is not "".
func loadModel(t *testing.T, base, adapter string) *gpt.Model {
	t.Helper()
	m, err := gpt.Load(base, graph.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if adapter != "" {
		if _, err := lora.Load(m, adapter); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// logitsOf returns m's logits for one sequence of ids.
func logitsOf(t *testing.T, m *gpt.Model, ids []int) []float64 {
	t.Helper()
	f, err := experiments.NewForward(m, 1, len(ids))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, err := f.Logits(ids)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// nll is −log softmax(row)[target], computed in float64 with the row max
// subtracted.
func nll(row []float64, target int) float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, v)
	}
	s := 0.0
	for _, v := range row {
		s += math.Exp(v - mx)
	}
	return math.Log(s) + mx - row[target]
}

// decodeJSON unmarshals a command's JSON output.
func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, s)
	}
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
