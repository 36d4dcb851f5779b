package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/golora/golora/chat"
	"github.com/golora/golora/experiments"
)

func runGoDocQA(c *cli, args []string) error {
	f := newFlags(c, "--out FILE.jsonl [--text FILE] [--packages LIST] [--max N] [--seed S]",
		"Makes an instruction data set from the doc comments of Go's standard library in the Go\ninstallation on this machine (GOROOT): questions such as \"What does strings.Contains do\nin Go?\" answered by the first sentence of the doc comment, and function signatures, in\nchat JSONL (one conversation per line; some with a system message, some with two\nexchanges). --text also writes the doc comments as plain text, to pretrain a model from\nscratch on the same words. Nothing is downloaded.",
		"golora godoc-qa --out godoc.jsonl --text godoc.txt")
	var out, text, pkgs string
	var maxConv int
	var seed uint64
	f.StringVar(&out, "out", "", "chat JSONL `FILE` to write")
	f.StringVar(&text, "text", "", "also write the doc comments as plain text to this `FILE`")
	f.StringVar(&pkgs, "packages", "", "comma-separated standard-library import paths (default: "+strings.Join(experiments.GoDocPackages(), ",")+")")
	f.IntVar(&maxConv, "max", 0, "most conversations (0: all)")
	f.Uint64Var(&seed, "seed", 1, "seed of the wording, grouping and order")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if err := need("out", out); err != nil {
		return err
	}
	if maxConv < 0 {
		return usagef("--max %d: want ≥ 0", maxConv)
	}
	if err := checkOutputFiles(flagPath{"out", out}, flagPath{"text", text}); err != nil {
		return err
	}
	var list []string
	for _, p := range strings.Split(pkgs, ",") {
		if p = strings.TrimSpace(p); p != "" {
			list = append(list, p)
		}
	}
	root, err := experiments.FindGoRoot()
	if err != nil {
		return err
	}
	if err := guardOutputs([]flagPath{{"out", out}, {"text", text}}, []flagPath{{"goroot", root}}); err != nil {
		return err
	}
	convs, docs, err := experiments.GoDocQA(root, experiments.GoDocOptions{Packages: list, Max: maxConv, Seed: seed})
	if err != nil {
		return fmt.Errorf("--packages: %w", err)
	}
	var b bytes.Buffer
	if err := chat.WriteJSONL(&b, convs); err != nil {
		return err
	}
	if err := makeParent(out); err != nil {
		return err
	}
	if err := writeFileAtomic(out, b.Bytes()); err != nil {
		return fmt.Errorf("--out %s: %w", out, err)
	}
	if text != "" {
		if err := makeParent(text); err != nil {
			return err
		}
		if err := writeFileAtomic(text, []byte(docs)); err != nil {
			return fmt.Errorf("--text %s: %w", text, err)
		}
	}
	pairs := 0
	for _, cv := range convs {
		for _, m := range cv.Messages {
			if m.Role == chat.RoleAssistant {
				pairs++
			}
		}
	}
	fmt.Fprintf(c.stdout, "wrote %s: %d conversations, %d questions and answers, from the doc comments of %s\n", out, len(convs), pairs, root)
	return nil
}
