// Command golora trains, evaluates, merges and inspects LoRA adapters for
// GPT-2 and Llama-family models (Hugging Face model_type llama, mistral,
// qwen2 and qwen3, picked from a folder's config.json), and runs golora's
// demo and benchmarks.
//
// Usage:
//
//	golora demo     [--out DIR]
//	golora pretrain [--arch ARCH] --preset NAME --data PATH --out MODEL_DIR [--steps N …]
//	golora finetune --base MODEL_DIR --data PATH --out ADAPTER_DIR [--rank R --alpha A --targets q,v …]
//	golora eval     --base MODEL_DIR [--adapter ADAPTER_DIR] --data PATH [--json]
//	golora generate --base MODEL_DIR [--adapter ADAPTER_DIR] --prompt TEXT [--max-new-tokens N …]
//	golora merge    --base MODEL_DIR --adapter ADAPTER_DIR --out MODEL_DIR
//	golora chat     --base MODEL_DIR [--adapter ADAPTER_DIR] [--system TEXT]
//	golora tokenize --base MODEL_DIR (--text TEXT | --chat FILE.jsonl)
//	golora godoc-qa --out FILE.jsonl [--text FILE]
//	golora inspect  PATH
//	golora analyze  --adapter DIR [--adapter DIR]
//	golora bench    [--json]
//
// Run "golora COMMAND --help" for a command's flags; docs/cli.md has an
// example of each. Errors are one line on stderr and a non-zero exit code
// (2 for a bad command line, 1 for anything else); outputs are written
// atomically, so a failed command leaves nothing behind.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// gcPercent is the collector's target unless GOGC is set. A training run's
// buffers are planned once and live for the whole run, and its steps make
// only short-lived garbage (gonum's BLAS allocates a closure per block of a
// parallel product): with Go's default of 100 the heap grows to twice the
// live data between collections, which is the peak RSS. At 25 the peak is
// at most 1.25 times the live data; the extra collections scan little,
// since the buffers hold no pointers (docs/memory.md has the figures).
const gcPercent = 25

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	os.Exit(finishDist(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// command is one subcommand.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	run     func(c *cli, args []string) error
}

// commands lists the subcommands in the order the help shows them.
func commands() []command {
	return []command{
		{"demo", "[--out DIR]", "pretrain a small GPT on Go's own sources, fine-tune LoRA adapters for two other domains and a full fine-tuning baseline, check LoRA's claims and write a report", runDemo},
		{"pretrain", "[--arch ARCH] --preset NAME --data PATH --out MODEL_DIR [--steps N …]", "train a GPT-2 or Llama-style model from scratch and write a Hugging Face model folder", runPretrain},
		{"finetune", "--base MODEL_DIR --data PATH --out ADAPTER_DIR [--rank R --alpha A --targets q,v …]", "train a LoRA adapter (or, with --full, every weight) on a base model", runFinetune},
		{"eval", "--base MODEL_DIR [--adapter ADAPTER_DIR] --data PATH [--json]", "validation loss and perplexity of a model on a data file", runEval},
		{"generate", "--base MODEL_DIR [--adapter ADAPTER_DIR] --prompt TEXT [--max-new-tokens N …]", "continue a prompt", runGenerate},
		{"chat", "--base MODEL_DIR [--adapter ADAPTER_DIR] [--system TEXT]", "talk with the model in the terminal, in its chat template, with streamed answers", runChat},
		{"merge", "--base MODEL_DIR --adapter ADAPTER_DIR --out MODEL_DIR", "merge an adapter into its base and write a plain model folder", runMerge},
		{"tokenize", "--base MODEL_DIR (--text TEXT | --chat FILE)", "print the token ids of a text, on one line; show what training sees of chat data", runTokenize},
		{"godoc-qa", "--out FILE.jsonl [--text FILE]", "make a chat data set of questions and answers from the doc comments of Go's standard library", runGoDocQA},
		{"inspect", "PATH", "list the tensors, shapes and parameter counts of a model folder, an adapter folder or a .safetensors file", runInspect},
		{"analyze", "--adapter DIR [--adapter DIR]", "spectra and amplification of an adapter's updates; subspace similarity of two adapters", runAnalyze},
		{"bench", "[--json]", "training throughput, inference latency and memory of the standard model shapes", runBench},
	}
}

// cli is what a subcommand writes to.
type cli struct {
	name           string // "golora finetune"
	stdout, stderr io.Writer
	stdin          io.Reader // golora chat reads it
}

// usageError is a mistake on the command line (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// run is the whole command: it parses args, runs the subcommand and returns
// the exit code, writing results to stdout and errors and progress to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		writeUsage(stderr, cmds)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		writeUsage(stdout, cmds)
		return 0
	}
	for _, cmd := range cmds {
		if cmd.name != args[0] {
			continue
		}
		c := &cli{name: "golora " + cmd.name, stdout: stdout, stderr: stderr, stdin: os.Stdin}
		err := cmd.run(c, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errOtherRank):
			return 1 // a data-parallel rank whose error rank 0 reports
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "%s: %s (see %s --help)\n", c.name, oneLine(err), c.name)
			return 2
		}
		fmt.Fprintf(stderr, "%s: %s\n", c.name, oneLine(err))
		return 1
	}
	fmt.Fprintf(stderr, "golora: unknown command %q (see golora --help)\n", args[0])
	return 2
}

// oneLine joins the lines of an error message.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

func writeUsage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "golora: LoRA for GPT-2 and Llama-family models in Go")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  golora %-8s %s\n", c.name, c.args)
	}
	fmt.Fprintln(w)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "golora COMMAND --help" for the flags of a command.`)
}
