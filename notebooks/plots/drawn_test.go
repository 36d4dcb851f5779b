package plots

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// These tests check what a chart draws where: a data point's pixel has its
// series' colour, the axes are where the plot's own transform puts them,
// and the number of series colours in the image is the number of series.

// pixelOf returns the pixel of data point (x, y) of p drawn on a canvas of
// size w×h through crop (vgimg's default 96 dpi, y down).
func pixelOf(p *plot.Plot, crop func(vgdraw.Canvas) vgdraw.Canvas, w, h vg.Length, x, y float64) image.Point {
	c := vgimg.New(w, h)
	da := p.DataCanvas(crop(vgdraw.New(c)))
	trX, trY := p.Transforms(&da)
	const dots = 96.0 / 72 // pixels per point
	hpx := float64(h) * dots
	return image.Pt(int(float64(trX(x))*dots), int(hpx-float64(trY(y))*dots))
}

// near reports whether some pixel within r of pt has colour want (each
// channel within tol).
func near(img image.Image, pt image.Point, r int, want color.Color, tol int) bool {
	wr, wg, wb, _ := want.RGBA()
	for dy := -r; dy <= r; dy++ {
		for dx := -r; dx <= r; dx++ {
			c := color.NRGBAModel.Convert(img.At(pt.X+dx, pt.Y+dy)).(color.NRGBA)
			if abs(int(c.R)-int(wr>>8)) <= tol && abs(int(c.G)-int(wg>>8)) <= tol && abs(int(c.B)-int(wb>>8)) <= tol {
				return true
			}
		}
	}
	return false
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// count returns how many pixels of img have colour want exactly.
func count(img image.Image, want color.Color) int {
	n := 0
	wr, wg, wb, _ := want.RGBA()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 == wr>>8 && g>>8 == wg>>8 && bl>>8 == wb>>8 {
				n++
			}
		}
	}
	return n
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestLinesDrawsPointsWhereTheAxesSay(t *testing.T) {
	// A rising and a falling line that cross at (1, 1).
	l := Lines{Title: "t", XLabel: "x", YLabel: "y", Series: []Series{
		{Name: "up", X: []float64{0, 2}, Y: []float64{0, 2}},
		{Name: "down", X: []float64{0, 2}, Y: []float64{2, 0}},
	}}
	im, err := l.Render()
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, im.PNG)
	p, err := l.plot()
	if err != nil {
		t.Fatal(err)
	}
	w, h := size(0, DefaultWidth), size(0, DefaultHeight)
	same := func(c vgdraw.Canvas) vgdraw.Canvas { return c }
	at := func(x, y float64) image.Point { return pixelOf(p, same, w, h, x, y) }

	up, down := plotutil.Color(0), plotutil.Color(1)
	// On the rising line, away from the crossing: its colour, not the other's.
	if pt := at(0.5, 0.5); !near(img, pt, 1, up, 40) || near(img, pt, 1, down, 40) {
		t.Errorf("pixel %v of (0.5, 0.5) on the rising line: %v, want the first series' colour %v", pt, img.At(pt.X, pt.Y), up)
	}
	if pt := at(1.5, 0.5); !near(img, pt, 1, down, 40) {
		t.Errorf("pixel %v of (1.5, 0.5) on the falling line: %v, want %v", pt, img.At(pt.X, pt.Y), down)
	}
	// Off both lines: neither colour.
	if pt := at(1, 1.7); near(img, pt, 2, up, 40) || near(img, pt, 2, down, 40) {
		t.Errorf("pixel %v of (1, 1.7), off both lines, has a series colour", pt)
	}
	// The x axis runs below the data area: a dark pixel under (1, 0).
	base := at(1, 0)
	dark := false
	for y := base.Y; y < base.Y+30 && !dark; y++ {
		c := color.GrayModel.Convert(img.At(base.X, y)).(color.Gray)
		dark = c.Y < 80
	}
	if !dark {
		t.Errorf("no axis line within 30 pixels below %v", base)
	}
	// Two series: their two colours are drawn, a third series' is not.
	if n0, n1, n2 := count(img, up), count(img, down), count(img, plotutil.Color(2)); n0 < 50 || n1 < 20 || n2 != 0 {
		t.Errorf("pixels of series colours 0, 1, 2: %d, %d, %d; want two series drawn", n0, n1, n2)
	}
}

func TestHeatmapCellColours(t *testing.T) {
	// Cell [0][0] (row 1, column 1) is Max, cell [1][2] (row 2, column 3) is Min.
	m := Heatmap{Title: "m", Grid: [][]float64{{1, 0.5, 0.5}, {0.5, 0.5, 0}}, Min: 0, Max: 1}
	im, err := m.Render()
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, im.PNG)
	cmap := moreland.ExtendedBlackBody()
	cmap.SetMin(0)
	cmap.SetMax(1)
	pal := cmap.Palette(255).Colors()
	p, err := m.plot(cmap.Palette(255), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := size(0, DefaultHeight)
	panel, bar := h*0.95, vg.Inch*0.9
	w := panel + bar
	crop := func(c vgdraw.Canvas) vgdraw.Canvas { return vgdraw.Crop(c, 0, -(w - panel), 0, 0) }
	for _, c := range []struct {
		col, row float64
		want     color.Color
	}{{1, 1, pal[len(pal)-1]}, {3, 2, pal[0]}, {2, 1, pal[127]}} {
		pt := pixelOf(p, crop, w, h, c.col, c.row)
		if !near(img, pt, 0, c.want, 8) {
			t.Errorf("cell (column %v, row %v) at pixel %v is %v, want %v", c.col, c.row, pt, img.At(pt.X, pt.Y), c.want)
		}
	}
}
