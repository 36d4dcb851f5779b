package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/golora/golora/experiments"
	"github.com/golora/golora/graph"
)

func runBench(c *cli, args []string) error {
	f := newFlags(c, "[--configs tiny,small|all] [--json]",
		"Measures, on random tokens, the training throughput of LoRA (r = 8 on q and v; on all\nlinear layers of a Llama shape) and of full fine-tuning, the latency of one batch-1 forward pass for the base model and with\nan adapter unmerged and merged, and the peak Go heap of each, for standard shapes:\n  tiny       2 layers, d 64, 4 heads, context 64, batch 16, vocab 96\n  small      4 layers, d 128, 4 heads, context 128, batch 16, vocab 96\n  gpt2-124M  GPT-2 small's shape, context 256, batch 4, vocab 50257 (slow: minutes)\n  smollm2-135M  SmolLM2-135M's Llama shape: 30 layers, d 576, 9 heads (3 key/value), FFN 1536,\n             context 256, batch 4, vocab 49152; LoRA on all linear layers (slow: minutes)\nTimings depend on the machine's load; compare numbers taken together.",
		"golora bench --configs tiny --json > bench.json")
	var configs string
	var steps, warmup, runs int
	var seed uint64
	var asJSON bool
	var threads int
	var dist distFlags
	f.StringVar(&configs, "configs", "tiny,small", "comma-separated configurations (tiny, small, gpt2-124M, smollm2-135M) or all")
	f.IntVar(&threads, "threads", 0, "threads (GOMAXPROCS) per process (0: the Go default, one per CPU); under mpirun -np N\nthe training runs data-parallel on N ranks × this many threads, and latency is skipped")
	dist.register(f)
	f.IntVar(&steps, "steps", 0, "timed training steps per mode (0: each configuration's own)")
	f.IntVar(&warmup, "warmup", 0, "untimed training steps first (0: each configuration's own)")
	f.IntVar(&runs, "latency-runs", 0, "timed forward passes per latency (0: each configuration's own)")
	f.Uint64Var(&seed, "seed", 1, "seed of the weights and tokens")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	var modes string
	var noLatency bool
	var pf precisionFlags
	f.StringVar(&modes, "modes", "lora,full", "trainings to measure: lora, full or both (the peak RSS is the process's: give one mode\nto read its own)")
	f.BoolVar(&noLatency, "no-latency", false, "skip the inference latencies")
	var shape struct{ layers, embd, heads, context, batch, vocab int }
	f.IntVar(&shape.layers, "layers", 0, "override the configurations' number of blocks (0: theirs)")
	f.IntVar(&shape.embd, "embd", 0, "override the width d (0: theirs)")
	f.IntVar(&shape.heads, "heads", 0, "override the attention heads (0: theirs)")
	f.IntVar(&shape.context, "context", 0, "override the context (0: theirs)")
	f.IntVar(&shape.batch, "batch", 0, "override the batch (0: theirs)")
	f.IntVar(&shape.vocab, "vocab", 0, "override the vocabulary (0: theirs)")
	pf.register(f)
	pf.registerRecompute(f)
	if err := f.parseNone(args); err != nil {
		return err
	}
	if err := pf.check(); err != nil {
		return err
	}
	var modeList []string
	for _, m := range strings.Split(modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case "lora", "full":
			modeList = append(modeList, m)
		default:
			return usagef("--modes %q: want lora, full or lora,full", modes)
		}
	}
	if pf.prec != graph.F32 && slices.Contains(modeList, "full") {
		return usagef("--base-precision %v applies to LoRA: give --modes lora", pf.prec)
	}
	for _, v := range []struct {
		name string
		v    int
	}{{"steps", steps}, {"warmup", warmup}, {"latency-runs", runs}, {"threads", threads}} {
		if v.v < 0 {
			return usagef("--%s %d: want ≥ 0", v.name, v.v)
		}
	}
	names := strings.Split(configs, ",")
	if configs == "all" {
		names = experiments.BenchConfigNames()
	}
	// More threads than CPUs only contend; far more exhaust the runtime's
	// thread limit (a fatal error), so they are refused.
	if limit := 4 * runtime.NumCPU(); threads > limit {
		return usagef("--threads %d: want at most %d (4 × the %d CPUs)", threads, limit, runtime.NumCPU())
	}
	if threads > 0 {
		runtime.GOMAXPROCS(threads)
	}
	world, err := joinWorld(c, dist.timeout)
	if err != nil {
		return err
	}
	leader := world == nil || world.Rank() == 0
	opt := experiments.BenchOptions{Steps: steps, Warmup: warmup, LatencyRuns: runs, Seed: seed,
		Modes: modeList, NoLatency: noLatency, BasePrecision: pf.prec, QuantizeEmbeddings: pf.embeddings, Recompute: pf.every}
	if leader {
		opt.Progress = func(msg string) { fmt.Fprintln(c.stderr, "bench: "+msg) }
	}
	if world != nil && world.Size() > 1 {
		opt.Collective = world
	}
	for _, n := range names {
		cfg, err := experiments.StandardBenchConfig(strings.TrimSpace(n))
		if err != nil {
			return usagef("--configs %q: want a comma-separated list of %s, or all", configs, strings.Join(experiments.BenchConfigNames(), ", "))
		}
		for _, o := range []struct {
			name string
			v    int
			dst  *int
		}{{"layers", shape.layers, &cfg.Layers}, {"embd", shape.embd, &cfg.Embd}, {"heads", shape.heads, &cfg.Heads},
			{"context", shape.context, &cfg.Context}, {"batch", shape.batch, &cfg.Batch}, {"vocab", shape.vocab, &cfg.Vocab}} {
			if o.v < 0 {
				return usagef("--%s %d: want ≥ 1 (0: the configuration's)", o.name, o.v)
			}
			if o.v > 0 {
				*o.dst = o.v
				cfg.Name += fmt.Sprintf(" %s=%d", o.name, o.v)
			}
		}
		if cfg.Embd%cfg.Heads != 0 {
			return usagef("--embd %d does not split into %d heads", cfg.Embd, cfg.Heads)
		}
		opt.Configs = append(opt.Configs, cfg)
	}
	res, err := experiments.Bench(opt)
	if err != nil || !leader {
		return failDist(c, world, err)
	}
	if asJSON {
		return writeJSON(c.stdout, res)
	}
	fmt.Fprintf(c.stdout, "%s %s/%s, %d CPUs, BLAS %s, %s; %d rank(s) × %d thread(s)\n", res.GoVersion, res.GOOS, res.GOARCH, res.CPUs, res.BLAS, res.Date, res.Ranks, res.Threads)
	if res.Ranks > 1 {
		return printDistBench(c, res)
	}
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
	for _, r := range res.Configs {
		for _, m := range []struct {
			mode string
			s    *experiments.MemorySplit
		}{{"LoRA", r.LoRAMemory}, {"full", r.FullMemory}} {
			if m.s == nil {
				continue
			}
			fmt.Fprintf(c.stdout, "%s %s: peak heap %s = base weights (%s) %s + adapter/weights with optimizer state %s + activations %s; process peak RSS so far %s\n",
				r.Name, m.mode, byteSize(m.s.PeakHeapBytes), m.s.BasePrecision, byteSize(m.s.BaseBytes), byteSize(m.s.TrainableBytes), byteSize(m.s.ActivationBytes), byteSize(m.s.PeakRSSBytes))
		}
	}
	return nil
}

// printDistBench writes the table of a data-parallel bench: global
// training throughput and the bytes each step all-reduced.
func printDistBench(c *cli, res *experiments.BenchResult) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tparams\tranks×threads\tLoRA tok/s\tfull tok/s\tLoRA ms/step\tfull ms/step\tLoRA all-reduced/step\tfull all-reduced/step\t")
	for _, r := range res.Configs {
		fmt.Fprintf(tw, "%s\t%s\t%d×%d\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t%s\t\n", r.Name, commas(r.Params), res.Ranks, res.Threads,
			r.LoRATokensPerSec, r.FullTokensPerSec, r.LoRAMsPerStep, r.FullMsPerStep, byteSize(r.LoRAAllReducedBytes), byteSize(r.FullAllReducedBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "tokens/s are global (all ranks); each config's batch is the global batch")
	return nil
}
