package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/golora/golora/experiments"
)

func runBench(c *cli, args []string) error {
	f := newFlags(c, "[--configs tiny,small|all] [--json]",
		"Measures, on random tokens, the training throughput of LoRA (r = 8 on q and v) and of\nfull fine-tuning, the latency of one batch-1 forward pass for the base model and with\nan adapter unmerged and merged, and the peak Go heap of each, for standard shapes:\n  tiny       2 layers, d 64, 4 heads, context 64, batch 16, vocab 96\n  small      4 layers, d 128, 4 heads, context 128, batch 16, vocab 96\n  gpt2-124M  GPT-2 small's shape, context 256, batch 4, vocab 50257 (slow: minutes)\nTimings depend on the machine's load; compare numbers taken together.",
		"golora bench --configs tiny --json > bench.json")
	var configs string
	var steps, warmup, runs int
	var seed uint64
	var asJSON bool
	f.StringVar(&configs, "configs", "tiny,small", "comma-separated configurations (tiny, small, gpt2-124M) or all")
	f.IntVar(&steps, "steps", 0, "timed training steps per mode (0: each configuration's own)")
	f.IntVar(&warmup, "warmup", 0, "untimed training steps first (0: each configuration's own)")
	f.IntVar(&runs, "latency-runs", 0, "timed forward passes per latency (0: each configuration's own)")
	f.Uint64Var(&seed, "seed", 1, "seed of the weights and tokens")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.noArgs(pos); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		v    int
	}{{"steps", steps}, {"warmup", warmup}, {"latency-runs", runs}} {
		if v.v < 0 {
			return usagef("--%s %d: want ≥ 0", v.name, v.v)
		}
	}
	names := strings.Split(configs, ",")
	if configs == "all" {
		names = experiments.BenchConfigNames()
	}
	opt := experiments.BenchOptions{Steps: steps, Warmup: warmup, LatencyRuns: runs, Seed: seed,
		Progress: func(msg string) { fmt.Fprintln(c.stderr, "bench: "+msg) }}
	for _, n := range names {
		cfg, err := experiments.StandardBenchConfig(strings.TrimSpace(n))
		if err != nil {
			return usagef("--configs %q: want a comma-separated list of %s, or all", configs, strings.Join(experiments.BenchConfigNames(), ", "))
		}
		opt.Configs = append(opt.Configs, cfg)
	}
	res, err := experiments.Bench(opt)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(c.stdout, res)
	}
	fmt.Fprintf(c.stdout, "%s %s/%s, %d CPUs, BLAS %s, %s\n", res.GoVersion, res.GOOS, res.GOARCH, res.CPUs, res.BLAS, res.Date)
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tparams\tLoRA tok/s\tfull tok/s\tLoRA heap MiB\tfull heap MiB\tbase ms\tunmerged ms\tmerged ms\t|merged−unmerged|\t")
	for _, r := range res.Configs {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2g\t\n", r.Name, commas(r.Params),
			r.LoRATokensPerSec, r.FullTokensPerSec, r.LoRAPeakHeapMiB, r.FullPeakHeapMiB,
			r.LatencyBaseMs, r.LatencyUnmergedMs, r.LatencyMergedMs, r.MergedMaxAbsDiff)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "latency: one forward pass of 1 × context tokens, median; peak RSS of the process %.0f MiB\n", res.PeakRSSMiB)
	return nil
}
