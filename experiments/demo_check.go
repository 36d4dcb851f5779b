package experiments

import (
	"fmt"
	"math"
)

// check evaluates the report's claims.
func (d *demo) check() {
	r := d.res
	add := func(name string, ok bool, format string, a ...any) {
		r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
	}
	for _, t := range d.tasks {
		own := r.ValidLoss["lora:"+t][t]
		base := r.ValidLoss["base"][t]
		add("lora:"+t+" beats the base on "+t, own < base, "validation loss %.4f vs base %.4f", own, base)
		for _, u := range d.tasks {
			if u == t {
				continue
			}
			other := r.ValidLoss["lora:"+u][t]
			add("lora:"+t+" beats lora:"+u+" on "+t, own < other, "validation loss %.4f vs %.4f", own, other)
		}
	}
	for _, run := range r.LoRA {
		add(run.Name+" trains under 5% of the parameters", run.Percent < 5,
			"%d of %d parameters (%.2f%%)", run.Trainable, run.All, run.Percent)
	}
	for _, mc := range r.Merge {
		add("lora:"+mc.Adapter+" merged = unmerged", mc.OK,
			"max |Δlogit| %.3g ≤ %.3g (1e-4 × max |logit| %.3g)", mc.MaxAbsDiff, mc.Tolerance, mc.MaxAbsLogit)
	}
	// The adapters reloaded from their folders onto one base must score what
	// they scored right after training.
	worst := 0.0
	for _, t := range d.tasks {
		for _, dom := range r.Domains {
			a, b := r.Switching[t][dom], r.ValidLoss["lora:"+t][dom]
			worst = math.Max(worst, math.Abs(a-b)/math.Max(1, math.Abs(b)))
		}
	}
	add("adapters reloaded on one base reproduce their losses", worst <= 1e-5,
		"largest relative difference %.2g (tolerance 1e-5)", worst)
	r.Passed = true
	for _, c := range r.Checks {
		r.Passed = r.Passed && c.OK
	}
}
