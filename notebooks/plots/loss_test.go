package plots

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotutil"
)

// The axes span exactly the drawn points: the smoothed training loss and
// the validation points, step 0 included.
func TestLossChartRanges(t *testing.T) {
	run := Loss{Name: "a", Train: []float64{4, 2, 6}, ValidSteps: []int{0, 3}, Valid: []float64{5, 3.5}}
	cases := []struct {
		smooth     int
		ymin, ymax float64
		xmin, xmax float64
	}{
		{1, 2, 6, 0, 3}, // raw: 4, 2, 6
		{2, 3, 5, 0, 3}, // 4, 3, 4; validation 5, 3.5
		{0, 3, 5, 0, 3}, // 4, 3, 4 with the default 10
	}
	for _, c := range cases {
		p, err := LossChart{Title: "t", Runs: []Loss{run}, Smooth: c.smooth}.plot()
		if err != nil {
			t.Fatal(err)
		}
		ymin := c.ymin
		if p.Y.Min != ymin || p.Y.Max != c.ymax || p.X.Min != c.xmin || p.X.Max != c.xmax {
			t.Errorf("smooth %d: x [%v, %v], y [%v, %v]; want x [%v, %v], y [%v, %v]",
				c.smooth, p.X.Min, p.X.Max, p.Y.Min, p.Y.Max, c.xmin, c.xmax, ymin, c.ymax)
		}
		if p.Y.Label.Text != "loss (nats per token)" || p.X.Label.Text != "step" {
			t.Errorf("labels %q, %q", p.X.Label.Text, p.Y.Label.Text)
		}
	}
}

// Each run is drawn in its own colour: two runs show the first two colours
// of the palette, one run only the first.
func TestLossChartColours(t *testing.T) {
	a := Loss{Name: "a", Train: []float64{3, 2, 1, 1}, ValidSteps: []int{0, 4}, Valid: []float64{3, 1.5}}
	b := Loss{Name: "b", Train: []float64{4, 3, 2, 2}, ValidSteps: []int{0, 4}, Valid: []float64{4, 2.5}}
	has := func(runs []Loss, i int) int {
		im, err := LossChart{Title: "t", Runs: runs, Width: 4, Height: 3}.Render()
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(im.PNG))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.Bounds().Size(); got.X != 384 {
			t.Errorf("width %d px, want 384 for 4 inches", got.X)
		}
		want := color.NRGBAModel.Convert(plotutil.Color(i)).(color.NRGBA)
		n := 0
		bd := img.Bounds()
		for y := bd.Min.Y; y < bd.Max.Y; y++ {
			for x := bd.Min.X; x < bd.Max.X; x++ {
				if color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA) == want {
					n++
				}
			}
		}
		return n
	}
	if n0, n1 := has([]Loss{a, b}, 0), has([]Loss{a, b}, 1); n0 < 20 || n1 < 20 {
		t.Errorf("two runs: %d and %d pixels of the first two colours", n0, n1)
	}
	if n := has([]Loss{a}, 1); n != 0 {
		t.Errorf("one run: %d pixels of the second colour", n)
	}
}

func TestLossChartErrors(t *testing.T) {
	cases := []struct {
		c    LossChart
		want string
	}{
		{LossChart{Title: "e"}, "no runs"},
		{LossChart{Runs: []Loss{{Name: "r", ValidSteps: []int{1}}}}, `run "r": 1 validation steps and 0 losses`},
		{LossChart{Runs: []Loss{{Name: "r"}}}, `run "r": no losses`},
		{LossChart{Runs: []Loss{{Name: "r", Train: []float64{1, math.Inf(1)}}}}, "not finite"},
	}
	for _, c := range cases {
		if _, err := c.c.Render(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.c, err, c.want)
		}
	}
}
