package trainers

import (
	"math"
	"testing"
)

func TestScheduleValues(t *testing.T) {
	// LR 1, MinLR 0.1, 4 warm-up steps of 14: decay steps 5…14 have q = (t−5)/10.
	cases := []struct {
		kind string
		t    int
		want float64
	}{
		{ScheduleConstant, 1, 0.25},
		{ScheduleConstant, 4, 1},
		{ScheduleConstant, 14, 1},
		{ScheduleLinear, 2, 0.5},
		{ScheduleLinear, 5, 1},
		{ScheduleLinear, 10, 0.1 + 0.9*0.5},
		{ScheduleLinear, 14, 0.1 + 0.9*0.1},
		{ScheduleLinear, 99, 0.1 + 0.9*0.1}, // past the end: the last value
		{ScheduleCosine, 3, 0.75},
		{ScheduleCosine, 5, 1},
		{ScheduleCosine, 10, 0.1 + 0.9*0.5},
		{ScheduleCosine, 14, 0.1 + 0.9*0.5*(1+math.Cos(0.9*math.Pi))},
		{ScheduleCosine, 0, 0.25}, // before the start: step 1
	}
	for _, c := range cases {
		s := Schedule{Kind: c.kind, LR: 1, MinLR: 0.1, Warmup: 4, Total: 14}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := s.At(c.t); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("%s step %d: %v, want %v", c.kind, c.t, got, c.want)
		}
	}
	// No warm-up: the first step has the peak rate; every step is > MinLR.
	s := Schedule{Kind: ScheduleLinear, LR: 2, Total: 4}
	for i, want := range []float64{2, 1.5, 1, 0.5} {
		if got := s.At(i + 1); got != want {
			t.Errorf("linear without warm-up, step %d: %v, want %v", i+1, got, want)
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	bad := []Schedule{
		{Kind: "exp", LR: 1, Total: 3},
		{Kind: ScheduleLinear, LR: 1, Total: 0},
		{Kind: ScheduleLinear, LR: 1, Warmup: 5, Total: 3},
		{Kind: ScheduleLinear, LR: 1, MinLR: 2, Total: 3},
	}
	for _, s := range bad {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}
