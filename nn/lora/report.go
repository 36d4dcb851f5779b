package lora

import (
	"fmt"
	"strconv"
)

// ParamReport counts parameters the way PEFT's print_trainable_parameters
// does: All is every parameter of the model, adapters included; Trainable
// those with Trainable set.
type ParamReport struct {
	Trainable, All int
}

// Percent is 100·Trainable/All (0 for an empty model).
func (r ParamReport) Percent() float64 {
	if r.All == 0 {
		return 0
	}
	return 100 * float64(r.Trainable) / float64(r.All)
}

// String is PEFT's line, e.g.
//
//	trainable params: 294,912 || all params: 124,734,720 || trainable%: 0.2364
func (r ParamReport) String() string {
	return fmt.Sprintf("trainable params: %s || all params: %s || trainable%%: %.4f",
		thousands(r.Trainable), thousands(r.All), r.Percent())
}

// thousands writes n with a comma every three digits (Python's {:,d}).
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// Report counts the model's parameters (see ParamReport).
func (m *Model) Report() ParamReport {
	var r ParamReport
	for _, p := range m.Params() {
		r.All += p.Len()
		if p.Trainable {
			r.Trainable += p.Len()
		}
	}
	return r
}
