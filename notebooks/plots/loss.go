package plots

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Loss is one training run's loss curve: the training loss of steps 1, 2, …
// and the validation loss measured at ValidSteps (step 0 is before the first
// update).
type Loss struct {
	Name       string
	Train      []float64
	ValidSteps []int
	Valid      []float64
}

// LossChart draws loss curves, one colour a run: the training loss as a
// moving mean over Smooth steps (0: 10; 1: raw), solid, and the validation
// points, dashed with markers. The y label is the loss in nats per token;
// Width and Height are in inches (0: the defaults). `golora demo`'s report
// draws its curves with it.
type LossChart struct {
	Title         string
	Runs          []Loss
	Smooth        int
	Width, Height float64
}

// Render draws the chart.
func (c LossChart) Render() (Image, error) {
	p, err := c.plot()
	if err != nil {
		return Image{}, err
	}
	cv := vgimg.New(size(c.Width, DefaultWidth), size(c.Height, DefaultHeight))
	p.Draw(vgdraw.New(cv))
	return encode(c.Title, cv)
}

func (c LossChart) plot() (*plot.Plot, error) {
	if len(c.Runs) == 0 {
		return nil, fmt.Errorf("plots: loss chart %q has no runs", c.Title)
	}
	smooth := c.Smooth
	if smooth <= 0 {
		smooth = 10
	}
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats per token)"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	for i, r := range c.Runs {
		if len(r.ValidSteps) != len(r.Valid) {
			return nil, fmt.Errorf("plots: loss chart %q, run %q: %d validation steps and %d losses", c.Title, r.Name, len(r.ValidSteps), len(r.Valid))
		}
		if len(r.Train)+len(r.Valid) == 0 {
			return nil, fmt.Errorf("plots: loss chart %q, run %q: no losses", c.Title, r.Name)
		}
		for _, v := range append(append([]float64(nil), r.Train...), r.Valid...) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("plots: loss chart %q, run %q: loss %v is not finite", c.Title, r.Name, v)
			}
		}
		col := plotutil.Color(i)
		if len(r.Train) > 0 {
			train := make(plotter.XYs, len(r.Train))
			for j := range r.Train {
				lo := max(0, j-smooth+1)
				s := 0.0
				for _, v := range r.Train[lo : j+1] {
					s += v
				}
				train[j] = plotter.XY{X: float64(j + 1), Y: s / float64(j+1-lo)}
			}
			l, err := plotter.NewLine(train)
			if err != nil {
				return nil, err
			}
			l.Color = col
			l.Width = vg.Points(1.5)
			p.Add(l)
			name := r.Name + " (train)"
			if smooth > 1 {
				name = fmt.Sprintf("%s (train, %d-step mean)", r.Name, smooth)
			}
			p.Legend.Add(name, l)
		}
		if len(r.Valid) > 0 {
			valid := make(plotter.XYs, len(r.Valid))
			for j, v := range r.Valid {
				valid[j] = plotter.XY{X: float64(r.ValidSteps[j]), Y: v}
			}
			l, s, err := plotter.NewLinePoints(valid)
			if err != nil {
				return nil, err
			}
			l.Color, s.Color = col, col
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l, s)
			p.Legend.Add(r.Name+" (validation)", l, s)
		}
	}
	return p, nil
}
