package main

import (
	"fmt"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/memlimit"
	"github.com/golora/golora/nn/lora"
)

// preCheckRank runs before the adapter is built: no layer's update has a
// rank above the model width, so a rank above it is refused (checkRank
// names the layer after injection); with --force, the adapter's largest
// possible size (every layer adapted) must fit in memory.
func preCheckRank(cfg modelShape, rank int, force bool) error {
	if d := cfg.width(); rank > d && !force {
		return usagef("--rank %d: above the model's width %d, the largest rank any of its layers' updates can have; want --rank ≤ %d (or --force)", rank, d, d)
	}
	need := float64(rank) * cfg.loraParamsPerRank() * 4 * 5 // float32: A and B, gradients, AdamW's moments
	if err := memlimit.Check(saturate(need), fmt.Sprintf("a LoRA adapter of --rank %d", rank)); err != nil {
		return usagef("%v: lower --rank", err)
	}
	return nil
}

// checkRank refuses a LoRA rank above the width of an adapted layer (or
// part): the update of an in × out block has rank at most min(in, out), so a
// larger r only adds parameters and changes the α/r scale. --force allows it.
func checkRank(lm *lora.Model, rank int, force bool) error {
	if force {
		return nil
	}
	paths, err := lm.Paths(lora.DefaultAdapter)
	if err != nil {
		return err
	}
	for _, path := range paths {
		ad, err := lm.Adapter(path, lora.DefaultAdapter)
		if err != nil {
			return err
		}
		for _, s := range ad.Slices {
			in := s.A.Shape()[0]
			if limit := min(in, s.Width); ad.Rank > limit {
				what := path
				if s.Part != "" {
					what += " part " + s.Part
				}
				return usagef("--rank %d: above the width of %s (%d × %d), whose update has rank at most %d; want --rank ≤ %d (or --force)", rank, what, in, s.Width, limit, limit)
			}
		}
	}
	return nil
}

// warnTrainableShare warns when an adapter trains more than half of the
// parameters: then LoRA saves little over full fine-tuning.
func warnTrainableShare(c *cli, params []*graph.Param) {
	var trainable, all int
	for _, p := range params {
		all += p.Len()
		if p.Trainable {
			trainable += p.Len()
		}
	}
	if all > 0 && 2*trainable > all {
		fmt.Fprintf(c.stderr, "%s: warning: the adapter trains %.0f%% of the parameters (%d of %d); LoRA's saving is a small share: lower --rank or adapt fewer --targets (or use --full)\n",
			c.name, 100*float64(trainable)/float64(all), trainable, all)
	}
}
