package trainers

import (
	"fmt"
	"math"
)

// Names of the learning-rate schedules (Config.Schedule, Schedule.Kind).
const (
	ScheduleConstant = "constant"
	ScheduleLinear   = "linear"
	ScheduleCosine   = "cosine"
)

// Schedule gives the learning rate of each optimizer step. Steps are counted
// from 1 to Total. With W = Warmup and q = (t − W − 1)/(Total − W), the rate
// of step t is
//
//	t ≤ W:     LR·t/W                               (linear warm-up, every kind)
//	constant:  LR
//	linear:    MinLR + (LR − MinLR)·(1 − q)          (LR at t = W+1, decays toward MinLR)
//	cosine:    MinLR + (LR − MinLR)·½(1 + cos πq)
//
// q runs over [0, 1), so no step gets a zero rate from the decay. After
// Total the rate stays at its value for Total.
type Schedule struct {
	Kind   string  // ScheduleConstant, ScheduleLinear or ScheduleCosine
	LR     float64 // peak rate
	MinLR  float64 // floor of the decaying kinds
	Warmup int     // warm-up steps
	Total  int     // steps of the whole run
}

func scheduleKind(kind string) (string, error) {
	switch kind {
	case ScheduleConstant, ScheduleLinear, ScheduleCosine:
		return kind, nil
	}
	return "", fmt.Errorf("trainers: unknown schedule %q (want %q, %q or %q)", kind, ScheduleConstant, ScheduleLinear, ScheduleCosine)
}

// Validate checks the kind and that 0 ≤ Warmup ≤ Total and 0 ≤ MinLR ≤ LR.
func (s Schedule) Validate() error {
	if _, err := scheduleKind(s.Kind); err != nil {
		return err
	}
	if s.Total < 1 || s.Warmup < 0 || s.Warmup > s.Total {
		return fmt.Errorf("trainers: schedule with %d warm-up steps of %d in total, want 0 ≤ warm-up ≤ total and total ≥ 1", s.Warmup, s.Total)
	}
	if !(s.MinLR >= 0 && s.MinLR <= s.LR) || math.IsInf(s.LR, 0) {
		return fmt.Errorf("trainers: schedule MinLR %v and LR %v, want 0 ≤ MinLR ≤ LR < ∞", s.MinLR, s.LR)
	}
	return nil
}

// At returns the learning rate of step t (1-based); t < 1 is treated as 1.
func (s Schedule) At(t int) float64 {
	t = max(1, min(t, s.Total))
	if t <= s.Warmup {
		return s.LR * float64(t) / float64(s.Warmup)
	}
	if s.Kind == ScheduleConstant {
		return s.LR
	}
	q := float64(t-s.Warmup-1) / float64(s.Total-s.Warmup)
	f := 1 - q
	if s.Kind == ScheduleCosine {
		f = 0.5 * (1 + math.Cos(math.Pi*q))
	}
	return s.MinLR + (s.LR-s.MinLR)*f
}
