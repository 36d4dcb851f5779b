package plots_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strings"
	"testing"

	"github.com/golora/golora/notebooks/plots"
)

// decode checks that b is a PNG image and returns it.
func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return img
}

// colourful counts pixels that are not grey, to see that lines or cells
// were drawn in colour.
func colourful(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.R != c.G || c.G != c.B {
				n++
			}
		}
	}
	return n
}

func TestLines(t *testing.T) {
	l := plots.Lines{
		Title: "loss", XLabel: "step", YLabel: "loss", LogY: true,
		Series: []plots.Series{
			{Name: "a", X: []float64{1, 2, 3}, Y: []float64{3, 2, 1}},
			{Name: "b", X: []float64{1, 2, 3}, Y: []float64{4, 2.5, 2}},
		},
	}
	im, err := l.Render()
	if err != nil {
		t.Fatal(err)
	}
	if im.Title != "loss" {
		t.Errorf("title %q", im.Title)
	}
	img := decode(t, im.PNG)
	// 6×3.6 inches at 96 dpi.
	if got := img.Bounds().Size(); got != image.Pt(576, 346) && got != image.Pt(576, 345) {
		t.Errorf("size %v, want 576×346", got)
	}
	if n := colourful(img); n < 100 {
		t.Errorf("only %d coloured pixels: lines not drawn", n)
	}
	l.Width, l.Height = 3, 2
	im, err = l.Render()
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, im.PNG).Bounds().Size(); got.X != 288 {
		t.Errorf("width %d, want 288 for 3 inches", got.X)
	}
}

// colourfulIn counts non-grey pixels inside r.
func colourfulIn(img image.Image, r image.Rectangle) int {
	sub := image.NewRGBA(r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			sub.Set(x, y, img.At(x, y))
		}
	}
	return colourful(sub)
}

func TestLegendPlacement(t *testing.T) {
	// A rising line from the bottom left to the top right leaves the top
	// left and bottom right corners empty, except for the legend.
	l := plots.Lines{Series: []plots.Series{{Name: "a long series name", X: []float64{0, 1}, Y: []float64{0, 1}}}}
	corner := func(left, bottom bool) (topLeft, bottomRight int) {
		l.LegendLeft, l.LegendBottom = left, bottom
		im, err := l.Render()
		if err != nil {
			t.Fatal(err)
		}
		img := decode(t, im.PNG)
		w, h := img.Bounds().Dx(), img.Bounds().Dy()
		return colourfulIn(img, image.Rect(40, 0, w/3, h/5)), colourfulIn(img, image.Rect(2*w/3, 4*h/5, w, h-30))
	}
	if tl, br := corner(true, false); tl == 0 || br != 0 {
		t.Errorf("legend top left: %d coloured pixels top left, %d bottom right", tl, br)
	}
	if tl, br := corner(false, true); tl != 0 || br == 0 {
		t.Errorf("legend bottom right: %d coloured pixels top left, %d bottom right", tl, br)
	}
}

func TestHeatmapRow(t *testing.T) {
	g := [][]float64{{1, 0.5, 0.2}, {0.5, 1, 0.3}}
	im, err := plots.HeatmapRow([]plots.Heatmap{
		{Title: "q", Grid: g, Min: 0, Max: 1},
		{Title: "v", Grid: g},
	}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if im.Title != "q | v" {
		t.Errorf("title %q", im.Title)
	}
	img := decode(t, im.PNG)
	if got := img.Bounds().Size(); got.Y != 192 || got.X <= 2*182 {
		t.Errorf("size %v: want height 192 and two panels plus a bar", got)
	}
	if n := colourful(img); n < 1000 {
		t.Errorf("only %d coloured pixels: cells not drawn", n)
	}
	one, err := plots.Heatmap{Grid: g}.Render()
	if err != nil {
		t.Fatal(err)
	}
	if decode(t, one.PNG).Bounds().Dx() >= img.Bounds().Dx() {
		t.Error("one map is not narrower than two")
	}
}

func TestSimpleRender(t *testing.T) {
	im := plots.Image{Title: "x", PNG: []byte{1, 2, 3}}
	m := im.SimpleRender()
	if b, ok := m["image/png"].([]byte); !ok || len(b) != 3 {
		t.Errorf("image/png = %v", m["image/png"])
	}
	if m["text/plain"] != `[PNG image "x", 3 bytes]` {
		t.Errorf("text/plain = %v", m["text/plain"])
	}
}

func TestErrors(t *testing.T) {
	inf := 1.0
	for i := 0; i < 2000; i++ {
		inf *= 10
	}
	cases := []struct {
		name string
		draw func() (plots.Image, error)
		want string
	}{
		{"no series", plots.Lines{Title: "t"}.Render, `chart "t" has no series`},
		{"lengths", plots.Lines{Series: []plots.Series{{Name: "s", X: []float64{1}, Y: nil}}}.Render,
			`series "s"`},
		{"log of zero", plots.Lines{LogY: true, Series: []plots.Series{{Name: "s", X: []float64{1}, Y: []float64{0}}}}.Render,
			"log axis"},
		{"not finite", plots.Lines{Series: []plots.Series{{Name: "s", X: []float64{1}, Y: []float64{inf}}}}.Render,
			"not finite"},
		{"no maps", func() (plots.Image, error) { return plots.HeatmapRow(nil, 0) }, "no heat maps"},
		{"empty map", plots.Heatmap{Title: "e"}.Render, `heat map "e" is empty`},
		{"ragged", plots.Heatmap{Title: "r", Grid: [][]float64{{1, 2}, {3}}}.Render, "row 1 has 1 values"},
		{"second map bad", func() (plots.Image, error) {
			return plots.HeatmapRow([]plots.Heatmap{{Grid: [][]float64{{1}}}, {Title: "x", Grid: [][]float64{{inf}}}}, 0)
		}, `heat map "x": cell [0][0]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im, err := c.draw()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if im.PNG != nil {
				t.Error("an image returned with an error")
			}
		})
	}
}

func TestWriteSamples(t *testing.T) {
	dir := os.Getenv("PLOTS_SAMPLES")
	if dir == "" {
		t.Skip("set PLOTS_SAMPLES to a folder to look at sample images")
	}
	im, err := plots.Lines{Title: "loss", Series: []plots.Series{
		{Name: "a", X: []float64{1, 2, 3}, Y: []float64{3, 2, 1}},
		{Name: "b", X: []float64{1, 2, 3}, Y: []float64{4, 2.5, 2}}}}.Render()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/lines.png", im.PNG, 0o644); err != nil {
		t.Fatal(err)
	}
	g := make([][]float64, 8)
	for i := range g {
		g[i] = make([]float64, 16)
		for j := range g[i] {
			g[i][j] = 1 / float64(1+i+j)
		}
	}
	im, err = plots.HeatmapRow([]plots.Heatmap{{Title: "q", XLabel: "j", YLabel: "i", Grid: g, Max: 1}, {Title: "v", Grid: g}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/heat.png", im.PNG, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A loss curve as PNG bytes, ready for display.PNG in a notebook.
func ExampleLines() {
	chart := plots.Lines{
		Title: "training loss", XLabel: "step", YLabel: "loss",
		Series: []plots.Series{{Name: "LoRA", X: []float64{1, 2, 3}, Y: []float64{2.0, 1.5, 1.2}}},
	}
	im, err := chart.Render() // the last expression of a notebook cell: im
	if err != nil {
		fmt.Println(err)
		return
	}
	img, _ := png.Decode(bytes.NewReader(im.PNG))
	fmt.Println(im.Title, img.Bounds().Size())
	// Output: training loss (576,346)
}

// Two similarity grids side by side with a shared colour scale.
func ExampleHeatmapRow() {
	g := [][]float64{{1, 0.4}, {0.4, 0.9}}
	im, err := plots.HeatmapRow([]plots.Heatmap{
		{Title: "W_q", XLabel: "j", YLabel: "i", Grid: g, Min: 0, Max: 1},
		{Title: "W_v", XLabel: "j", Grid: g},
	}, 2.5)
	if err != nil {
		fmt.Println(err)
		return
	}
	img, _ := png.Decode(bytes.NewReader(im.PNG))
	fmt.Println(im.Title, img.Bounds().Dy())
	// Output: W_q | W_v 240
}
