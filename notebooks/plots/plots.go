// Package plots draws the charts of golora's notebooks as PNG images with
// gonum/plot: line charts (loss curves, singular spectra), training and
// validation loss charts (LossChart, which `golora demo`'s report uses too)
// and rows of heat maps (subspace similarity).
//
// An Image is displayed by gophernotes when it is the value of a cell's last
// expression (it implements gophernotes' SimpleRender convention), with its
// title as the plain-text form; its PNG bytes can also be written to a file
// or passed to display.PNG.
//
// It is a package, rather than plotting code in each notebook, for two
// reasons: the notebooks stay short, and gophernotes fetches every package a
// notebook imports at its latest version, which an offline kernel cannot do
// for gonum/plot itself; imported through this package, gonum/plot comes at
// the version golora's go.mod pins.
//
// The API is non-generic and uses plain structs, so gophernotes can call it.
package plots

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Default sizes in inches (the images are 96 dots per inch).
const (
	DefaultWidth  = 6.0
	DefaultHeight = 3.6
)

// Image is a rendered chart.
type Image struct {
	Title string
	PNG   []byte // a PNG file
}

// SimpleRender gives gophernotes the image's MIME bundle: the PNG, and the
// title as text (instead of the bytes printed as numbers).
func (im Image) SimpleRender() map[string]interface{} {
	return map[string]interface{}{"image/png": im.PNG, "text/plain": im.String()}
}

// String describes the image in one line.
func (im Image) String() string {
	return fmt.Sprintf("[PNG image %q, %d bytes]", im.Title, len(im.PNG))
}

// Series is one line of a chart: the points (X[i], Y[i]).
type Series struct {
	Name string
	X, Y []float64
}

// Lines is a line chart. Width and Height are in inches (0: the defaults).
// With LogY the y axis is logarithmic, and every y value must be positive.
// The legend (the names of the series) sits in the top right corner, or on
// the left and at the bottom with LegendLeft and LegendBottom.
type Lines struct {
	Title, XLabel, YLabel    string
	LogY                     bool
	Series                   []Series
	Width, Height            float64
	LegendLeft, LegendBottom bool
}

// Render draws the chart.
func (l Lines) Render() (Image, error) {
	p, err := l.plot()
	if err != nil {
		return Image{}, err
	}
	w, h := size(l.Width, DefaultWidth), size(l.Height, DefaultHeight)
	c := vgimg.New(w, h)
	p.Draw(vgdraw.New(c))
	return encode(l.Title, c)
}

func (l Lines) plot() (*plot.Plot, error) {
	if len(l.Series) == 0 {
		return nil, fmt.Errorf("plots: chart %q has no series", l.Title)
	}
	p := plot.New()
	p.Title.Text = l.Title
	p.X.Label.Text = l.XLabel
	p.Y.Label.Text = l.YLabel
	if l.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	for i, s := range l.Series {
		if len(s.X) != len(s.Y) || len(s.X) == 0 {
			return nil, fmt.Errorf("plots: series %q of chart %q: %d x values and %d y values",
				s.Name, l.Title, len(s.X), len(s.Y))
		}
		xy := make(plotter.XYs, len(s.X))
		for j := range s.X {
			x, y := s.X[j], s.Y[j]
			if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
				return nil, fmt.Errorf("plots: series %q of chart %q: point %d (%g, %g) is not finite",
					s.Name, l.Title, j, x, y)
			}
			if l.LogY && y <= 0 {
				return nil, fmt.Errorf("plots: series %q of chart %q: point %d has y = %g on a log axis",
					s.Name, l.Title, j, y)
			}
			xy[j].X, xy[j].Y = x, y
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			return nil, fmt.Errorf("plots: series %q of chart %q: %w", s.Name, l.Title, err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		if s.Name != "" {
			p.Legend.Add(s.Name, line)
		}
	}
	p.Legend.Top, p.Legend.Left = !l.LegendBottom, l.LegendLeft
	if l.LegendLeft {
		p.Legend.XOffs = vg.Points(8) // clear of the y axis
	}
	return p, nil
}

// Heatmap is a matrix of values drawn as coloured cells: Grid[i][j] is the
// cell in row i+1 (y axis, bottom to top) and column j+1 (x axis). Colours
// run from Min to Max (both 0: from the grid's own minimum to its maximum).
type Heatmap struct {
	Title, XLabel, YLabel string
	Grid                  [][]float64
	Min, Max              float64
}

// HeatmapRow draws heat maps side by side with one colour bar, which uses
// the Min and Max of the first map. height is in inches (0: the default);
// each map gets a square panel. The image's title is the maps' titles.
func HeatmapRow(maps []Heatmap, height float64) (Image, error) {
	if len(maps) == 0 {
		return Image{}, errors.New("plots: no heat maps to draw")
	}
	lo, hi, err := maps[0].limits()
	if err != nil {
		return Image{}, err
	}
	cmap := moreland.ExtendedBlackBody()
	cmap.SetMin(lo)
	cmap.SetMax(hi)
	pal := cmap.Palette(255)

	h := size(height, DefaultHeight)
	panel := h * 0.95
	bar := vg.Inch * 0.9
	w := panel*vg.Length(len(maps)) + bar
	c := vgimg.New(w, h)
	dc := vgdraw.New(c)
	titles := make([]string, len(maps))
	for k, m := range maps {
		titles[k] = m.Title
		p, err := m.plot(pal, lo, hi)
		if err != nil {
			return Image{}, err
		}
		left := panel * vg.Length(k)
		p.Draw(vgdraw.Crop(dc, left, -(w - left - panel), 0, 0))
	}
	cb := plot.New()
	cb.HideX()
	cb.Y.Padding = 0
	cb.Add(&plotter.ColorBar{ColorMap: cmap, Vertical: true})
	cb.Draw(vgdraw.Crop(dc, w-bar, 0, vg.Inch*0.35, -vg.Inch*0.3))
	return encode(strings.Join(titles, " | "), c)
}

// Render draws one heat map with its colour bar.
func (m Heatmap) Render() (Image, error) { return HeatmapRow([]Heatmap{m}, 0) }

// limits returns the colour range and checks the grid.
func (m Heatmap) limits() (lo, hi float64, err error) {
	if len(m.Grid) == 0 || len(m.Grid[0]) == 0 {
		return 0, 0, fmt.Errorf("plots: heat map %q is empty", m.Title)
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for i, row := range m.Grid {
		if len(row) != len(m.Grid[0]) {
			return 0, 0, fmt.Errorf("plots: heat map %q: row %d has %d values, row 0 has %d",
				m.Title, i, len(row), len(m.Grid[0]))
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, 0, fmt.Errorf("plots: heat map %q: cell [%d][%d] is %g", m.Title, i, j, v)
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if m.Min != 0 || m.Max != 0 {
		lo, hi = m.Min, m.Max
	}
	if !(hi > lo) {
		hi = lo + 1 // a constant grid still gets a colour range
	}
	return lo, hi, nil
}

func (m Heatmap) plot(pal palette.Palette, lo, hi float64) (*plot.Plot, error) {
	if _, _, err := m.limits(); err != nil {
		return nil, err
	}
	// Cells are painted into an image, cellPx pixels each, which the plot
	// scales into the data area: crisp cells without the seams that
	// anti-aliasing leaves between vector rectangles.
	const cellPx = 16
	rows, cols := len(m.Grid), len(m.Grid[0])
	colors := pal.Colors()
	img := image.NewRGBA(image.Rect(0, 0, cols*cellPx, rows*cellPx))
	for i, row := range m.Grid {
		for j, v := range row {
			k := int(math.Round((v - lo) / (hi - lo) * float64(len(colors)-1)))
			k = max(0, min(len(colors)-1, k))
			cell := image.Rect(j*cellPx, (rows-1-i)*cellPx, (j+1)*cellPx, (rows-i)*cellPx)
			draw.Draw(img, cell, image.NewUniform(colors[k]), image.Point{}, draw.Src)
		}
	}
	p := plot.New()
	p.Title.Text = m.Title
	p.X.Label.Text = m.XLabel
	p.Y.Label.Text = m.YLabel
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Tick.Marker = intTicks{}
	p.Y.Tick.Marker = intTicks{}
	p.Add(plotter.NewImage(img, 0.5, 0.5, float64(cols)+0.5, float64(rows)+0.5))
	return p, nil
}

// intTicks labels integer positions, at most about eight of them.
type intTicks struct{}

func (intTicks) Ticks(lo, hi float64) []plot.Tick {
	first, last := int(math.Ceil(lo)), int(math.Floor(hi))
	step := 1
	for (last-first)/step > 8 {
		step *= 2
	}
	var ts []plot.Tick
	for v := first; v <= last; v++ {
		t := plot.Tick{Value: float64(v)}
		if (v-first)%step == 0 {
			t.Label = fmt.Sprint(v)
		}
		ts = append(ts, t)
	}
	return ts
}

func size(inches, def float64) vg.Length {
	if inches <= 0 {
		inches = def
	}
	return vg.Length(inches) * vg.Inch
}

func encode(title string, c *vgimg.Canvas) (Image, error) {
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return Image{}, fmt.Errorf("plots: encode PNG of %q: %w", title, err)
	}
	return Image{Title: title, PNG: buf.Bytes()}, nil
}
