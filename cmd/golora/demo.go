package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/golora/golora/experiments"
	"github.com/golora/golora/internal/atomicfile"
)

func runDemo(c *cli, args []string) error {
	f := newFlags(c, "[--out DIR]",
		"Runs golora end to end on text every Go installation has (the Go distribution's own\nfiles; no network, no other data): pretrains a small GPT with a byte tokenizer on Go\nsource code, trains one LoRA adapter for the documentation prose (doc/) and one for\nassembly (*.s) on that same base, and a full fine-tuning baseline on the prose. It\nchecks that each adapter beats the base and the other adapter on its own task, that\nLoRA trains under 5% of the parameters and that merged and unmerged outputs agree, and\nwrites a report folder: report.md, metrics.json, loss curves (PNG), the base model and\nthe adapters. It takes about 84 s of CPU time: 2–3 minutes on two busy CPU cores.",
		"golora demo --out golora-demo")
	var out, goroot string
	var seed uint64
	var asJSON, quiet, quick bool
	f.StringVar(&out, "out", "golora-demo", "report folder to write (replaced if it holds a previous demo report)")
	f.Uint64Var(&seed, "seed", 1, "seed of the weights, data splits and samples")
	f.StringVar(&goroot, "goroot", "", "Go distribution to read text from (default: $GOROOT, `go env GOROOT`, or the build's)")
	f.BoolVar(&asJSON, "json", false, "print metrics.json to stdout instead of the summary")
	f.BoolVar(&quiet, "quiet", false, "no progress output")
	f.BoolVar(&quick, "quick", false, hidden+"a seconds-long run on less text and fewer steps (tests)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if err := guardOutputs([]flagPath{{"out", out}}, []flagPath{{"goroot", goroot}}); err != nil {
		return err
	}
	if err := checkOutputDir("out", out, demoFile); err != nil {
		return err
	}
	cfg := experiments.DefaultDemoConfig()
	if quick {
		cfg = experiments.QuickDemoConfig()
	}
	cfg.Seed, cfg.GoRoot = seed, goroot
	cfg.BaseName = filepath.Join(out, experiments.DemoBaseDir) // so that analyze finds it
	if goroot != "" {
		if err := checkInputDir("goroot", goroot, "src"); err != nil {
			return err
		}
	}
	var p *demoProgress
	if !quiet {
		p = &demoProgress{c: c}
		cfg.Progress = p.event
	}
	if err := makeParent(out); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	var res *experiments.DemoResult
	err := atomicfile.ReplaceDir(out, func(tmp string) error {
		var err error
		if res, err = experiments.RunDemo(ctx, cfg, tmp); err != nil {
			return err
		}
		return experiments.WriteDemoReport(tmp, res)
	})
	if p != nil && p.bar != nil {
		p.bar.endLine()
	}
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(c.stdout, res); err != nil {
			return err
		}
	} else {
		printDemoSummary(c, res, out, time.Since(start))
	}
	if !res.Passed {
		failed := 0
		for _, ch := range res.Checks {
			if !ch.OK {
				failed++
			}
		}
		return fmt.Errorf("%d of %d checks failed; see %s/%s", failed, len(res.Checks), out, experiments.ReportFile)
	}
	return nil
}

// demoFile accepts what a demo report folder holds, so that a previous
// report can be replaced (and nothing else).
func demoFile(name string, isDir bool) bool {
	if isDir {
		return name == experiments.DemoBaseDir || name == experiments.DemoAdaptersDir
	}
	return name == experiments.ReportFile || name == experiments.MetricsFile ||
		(strings.HasPrefix(name, "loss-") && strings.HasSuffix(name, ".png"))
}

// demoProgress shows the demo's events: a progress bar per training run and
// a line per other phase.
type demoProgress struct {
	c     *cli
	stage string
	bar   *progress
}

func (p *demoProgress) event(e experiments.DemoEvent) {
	if e.Total > 0 {
		if e.Stage != p.stage || p.bar == nil {
			p.bar.endLine()
			p.stage = e.Stage
			p.bar = newProgress(p.c.stderr, e.Stage, false)
		}
		if e.ValidLoss != 0 {
			p.bar.valid, p.bar.validStep = e.ValidLoss, e.Step
			return
		}
		p.bar.step(e.Step, e.Total, e.Loss, e.TokensPerSec)
		return
	}
	if p.bar != nil {
		p.bar.endLine()
	}
	p.stage = e.Stage
	p.bar = nil
	fmt.Fprintf(p.c.stderr, "%s: %s\n", e.Stage, e.Message)
}

// printDemoSummary writes the headline numbers and the checks.
func printDemoSummary(c *cli, r *experiments.DemoResult, out string, took time.Duration) {
	w := c.stdout
	fmt.Fprintf(w, "golora demo: wrote %s/ (%s, %s, loss curves, base model, adapters) in %s\n\n",
		out, experiments.ReportFile, experiments.MetricsFile, clock(took))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "validation loss\t%s\t\n", strings.Join(r.Domains, "\t"))
	rows := []string{"base"}
	for _, l := range r.LoRA {
		rows = append(rows, l.Name)
	}
	rows = append(rows, r.Full.Name)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t", row)
		for _, d := range r.Domains {
			fmt.Fprintf(tw, "%.4f\t", r.ValidLoss[row][d])
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, l := range r.LoRA {
		fmt.Fprintf(w, "%s: %s of %s parameters trained (%.2f%%), adapter file %s bytes vs base %s bytes, %.0f tokens/s\n",
			l.Name, commas(l.Trainable), commas(l.All), l.Percent, commas(int(r.Files.AdapterBytes[l.Domain])),
			commas(int(r.Files.BaseModelBytes)), l.TokensPerSec)
	}
	fmt.Fprintf(w, "%s: %s parameters trained (100%%), %.0f tokens/s\n", r.Full.Name, commas(r.Full.Trainable), r.Full.TokensPerSec)
	l := r.Latency
	fmt.Fprintf(w, "latency of 1 × %d tokens: base %.2f ms, unmerged %.2f ms, merged %.2f ms\n\n", l.Context, l.BaseMs, l.UnmergedMs, l.MergedMs)
	for _, ch := range r.Checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, ch.Name, ch.Detail)
	}
	if r.Passed {
		fmt.Fprintln(w, "\nevery check passed")
	}
}
