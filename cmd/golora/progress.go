package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golora/golora/trainers"
)

// progress draws a training progress bar on a terminal (redrawn in place,
// at most ten times a second) or, when the output is not a terminal, a line
// every tenth of the run and at each validation.
type progress struct {
	w         io.Writer
	tty       bool
	label     string
	start     time.Time
	last      time.Time
	lastTen   int
	valid     float64 // last validation loss, 0 before any
	validStep int     // the step it was measured at
	first     int     // steps done before this run (resumed)
	drawn     bool
	evalLast  time.Time // last validation progress shown
	ranks     int       // data-parallel ranks (0: one process)
	bytes     int64     // gradient bytes all-reduced per step
	mem       *memWatch // peak memory, when watched
}

// newProgress returns a progress bar on w labelled label, or nil when quiet.
func newProgress(w io.Writer, label string, quiet bool) *progress {
	if quiet {
		return nil
	}
	return &progress{w: w, tty: isTerminal(w), label: label, start: time.Now(), lastTen: -1}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// observer returns trainer callbacks that drive the bar (none when p is
// nil).
func (p *progress) observer() trainers.Observer {
	if p == nil {
		return trainers.Observer{}
	}
	return trainers.Observer{
		OnStep: func(s trainers.StepInfo) { p.step(s.Step, s.TotalSteps, s.Loss, s.TokensPerSec) },
		OnEval: func(e trainers.EvalInfo) {
			p.valid, p.validStep = e.Loss, e.Step
			if !p.tty {
				p.endLine()
				fmt.Fprintf(p.w, "%s: step %d: validation loss %.4f on %s tokens\n", p.label, e.Step, e.Loss, commas(int(e.Tokens)))
			}
		},
		OnEvalProgress: p.evalProgress,
	}
}

// resumed tells the bar that the run continues after step steps, so that
// its speed and time left count only this run's steps.
func (p *progress) resumed(step int) {
	if p != nil {
		p.first = step
	}
}

// evalProgress shows a validation in progress: on a terminal in place of
// the bar (at most ten times a second), otherwise a line every 5 seconds
// once it has run that long.
func (p *progress) evalProgress(e trainers.EvalProgress) {
	if p == nil {
		return
	}
	now := time.Now()
	if e.Done == 0 {
		p.evalLast = now
		if !p.tty {
			return
		}
	}
	at := "" // the eval command validates no training step
	if e.Step > 0 {
		at = fmt.Sprintf(" step %d:", e.Step)
	}
	if p.tty {
		if e.Done != 0 && e.Done != e.Total && now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		p.last = now
		fmt.Fprintf(p.w, "\r\033[K%s:%s validating %d/%d examples", p.label, at, e.Done, e.Total)
		p.drawn = true
		return
	}
	if e.Done < e.Total && now.Sub(p.evalLast) >= 5*time.Second {
		p.evalLast = now
		fmt.Fprintf(p.w, "%s:%s validating, %d/%d examples\n", p.label, at, e.Done, e.Total)
	}
}

// step reports training step `step` of `total`.
func (p *progress) step(step, total int, loss, tps float64) {
	if p == nil || total <= 0 {
		return
	}
	now := time.Now()
	elapsed := now.Sub(p.start)
	eta := time.Duration(float64(elapsed) / float64(max(1, step-p.first)) * float64(total-step))
	info := fmt.Sprintf("%d/%d loss %.4f", step, total, loss)
	if p.valid != 0 {
		info += fmt.Sprintf(" valid %.4f (step %d)", p.valid, p.validStep)
	}
	if tps > 0 {
		info += fmt.Sprintf(" %.0f tok/s", tps)
	}
	if p.ranks > 1 {
		info += fmt.Sprintf(" %d ranks %s/step", p.ranks, byteSize(p.bytes))
	}
	if p.mem != nil {
		info += " " + p.mem.String()
	}
	info += " " + clock(elapsed)
	if step < total && elapsed >= time.Second {
		info += " eta " + clock(eta)
	}
	if p.tty {
		if step != total && now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		p.last = now
		const width = 24
		done := width * step / total
		bar := strings.Repeat("=", done) + strings.Repeat(" ", width-done)
		fmt.Fprintf(p.w, "\r\033[K%s [%s] %s", p.label, bar, info)
		p.drawn = true
		if step == total {
			p.endLine()
		}
		return
	}
	if ten := 10 * step / total; ten != p.lastTen || step == total {
		if step == total && ten == p.lastTen {
			return
		}
		p.lastTen = ten
		fmt.Fprintf(p.w, "%s: %s\n", p.label, info)
	}
}

// setDist makes the bar show the ranks of a data-parallel run and the
// gradient bytes each step all-reduces.
func (p *progress) setDist(ranks int, bytes int64) {
	if p != nil {
		p.ranks, p.bytes = ranks, bytes
	}
}

// message prints a line of text (ending a bar drawn on a terminal first).
func (p *progress) message(format string, a ...any) {
	if p == nil {
		return
	}
	p.endLine()
	fmt.Fprintf(p.w, format+"\n", a...)
}

// endLine moves past a bar drawn in place.
func (p *progress) endLine() {
	if p != nil && p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// clock writes d as m:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
