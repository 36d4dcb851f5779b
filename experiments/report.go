package experiments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/golora/golora/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Files of the demo report, written by WriteDemoReport.
const (
	ReportFile  = "report.md"
	MetricsFile = "metrics.json"
)

// PlotFiles lists the PNG loss curves WriteDemoReport writes for res:
// loss-pretrain.png, then loss-<task>.png per task.
func PlotFiles(res *DemoResult) []string {
	files := []string{"loss-pretrain.png"}
	for _, r := range res.LoRA {
		files = append(files, "loss-"+r.Domain+".png")
	}
	return files
}

// WriteDemoReport writes the report of res into dir: report.md,
// metrics.json (res as JSON) and the loss curves (PlotFiles), each file
// atomically.
func WriteDemoReport(dir string, res *DemoResult) error {
	if res == nil {
		return errors.New("experiments: report: nil result")
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("experiments: report: %w", err)
	}
	if err := writeBytes(filepath.Join(dir, MetricsFile), append(js, '\n')); err != nil {
		return err
	}
	plots := PlotFiles(res)
	curves := [][]namedCurve{{{"pretraining", res.Pretrain.Curve}}}
	for _, r := range res.LoRA {
		// Fine-tuning starts from the base: its loss is the validation point
		// of step 0.
		from := func(c Curve) Curve {
			if base, ok := res.ValidLoss["base"][r.Domain]; ok {
				c.ValidSteps = append([]int{0}, c.ValidSteps...)
				c.Valid = append([]float64{base}, c.Valid...)
			}
			return c
		}
		cs := []namedCurve{{fmt.Sprintf("LoRA r=%d", r.Rank), from(r.Curve)}}
		if res.Full.Domain == r.Domain {
			cs = append(cs, namedCurve{"full fine-tuning", from(res.Full.Curve)})
		}
		curves = append(curves, cs)
	}
	for i, file := range plots {
		title := "pretraining on " + DomainDescription(res.Pretrain.Domain)
		if i > 0 {
			title = "fine-tuning the base on " + DomainDescription(res.LoRA[i-1].Domain)
		}
		png, err := lossPlot(title, curves[i])
		if err != nil {
			return fmt.Errorf("experiments: report: plot %s: %w", file, err)
		}
		if err := writeBytes(filepath.Join(dir, file), png); err != nil {
			return err
		}
	}
	var md bytes.Buffer
	writeMarkdown(&md, res, plots)
	return writeBytes(filepath.Join(dir, ReportFile), md.Bytes())
}

func writeBytes(path string, b []byte) error {
	err := atomicfile.WriteFile(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("experiments: write %s: %w", path, err)
	}
	return nil
}

type namedCurve struct {
	name  string
	curve Curve
}

// palette: one colour per run (blue, orange, green).
var palette = [...]color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}}

// lossPlot draws the training loss (a 10-step moving average) and the
// validation points of each curve and returns a PNG.
func lossPlot(title string, cs []namedCurve) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats per token)"
	p.Legend.Top = true
	for i, c := range cs {
		col := palette[i%len(palette)]
		train := make(plotter.XYs, len(c.curve.Train))
		for j := range c.curve.Train {
			lo := max(0, j-9)
			s := 0.0
			for _, v := range c.curve.Train[lo : j+1] {
				s += v
			}
			train[j] = plotter.XY{X: float64(j + 1), Y: s / float64(j+1-lo)}
		}
		if len(train) > 0 {
			l, err := plotter.NewLine(train)
			if err != nil {
				return nil, err
			}
			l.Color = col
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(c.name+" (train, 10-step mean)", l)
		}
		if len(c.curve.Valid) > 0 {
			valid := make(plotter.XYs, len(c.curve.Valid))
			for j, v := range c.curve.Valid {
				valid[j] = plotter.XY{X: float64(c.curve.ValidSteps[j]), Y: v}
			}
			l, s, err := plotter.NewLinePoints(valid)
			if err != nil {
				return nil, err
			}
			l.Color, s.Color = col, col
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l, s)
			p.Legend.Add(c.name+" (validation)", l, s)
		}
	}
	wt, err := p.WriterTo(7*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeMarkdown writes report.md.
func writeMarkdown(w io.Writer, r *DemoResult, plots []string) {
	pf := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	tasks := r.Domains[1:]
	pf("# golora demo report\n\n")
	pf("Run on %s: %s, %d CPUs, %s, BLAS %s, seed %d; it took %s.\n\n",
		r.Date, r.Platform, r.CPUs, r.GoVersion, r.BLAS, r.Seed, minSec(r.ElapsedSec))
	verdict := "**Every check passed.**"
	if !r.Passed {
		verdict = "**Some checks FAILED** (marked ✗ below)."
	}
	pf("%s\n\n", verdict)

	pf("## What ran\n\n")
	m := r.Model
	pf("A GPT with %d layers, width %d, %d heads, a context of %d tokens and the %s tokenizer (%d ids) — %s parameters — ",
		m.Layers, m.Embd, m.Heads, m.Context, m.Tokenizer, m.Vocab, thousands(m.Params))
	pf("was pretrained from scratch for %d steps on %s. ", r.Pretrain.Steps, DomainDescription(r.Pretrain.Domain))
	if len(r.LoRA) > 0 {
		l := r.LoRA[0]
		pf("On that same base, one LoRA adapter per task (r = %d, α = %g on %s; %d steps each) and, as a baseline, full fine-tuning on %s (%d steps). ",
			l.Rank, l.Alpha, strings.Join(l.Targets, ","), l.Steps, r.Full.Domain, r.Full.Steps)
	}
	src := "the Go distribution on this machine"
	if r.TextSource != "" {
		src = "the " + r.TextSource + " distribution on this machine"
	}
	pf("All text comes from %s, read in sorted order:\n\n", src)
	pf("| domain | role | what | files | bytes | train tokens | validation tokens |\n|---|---|---|---:|---:|---:|---:|\n")
	for _, d := range r.Data {
		pf("| %s | %s | %s | %d | %s | %s | %s |\n", d.Domain, d.Role, d.Description, d.Files,
			thousands(d.Bytes), thousands(d.TrainTokens), thousands(d.ValidTokens))
	}

	pf("\n## Checks\n\n")
	for _, c := range r.Checks {
		mark := "✓"
		if !c.OK {
			mark = "✗"
		}
		pf("- %s %s: %s\n", mark, c.Name, c.Detail)
	}

	pf("\n## Validation loss (nats per token; lower is better)\n\n")
	pf("Each model right after training, on every domain's held-out windows:\n\n")
	lossTable(w, r.Domains, []string{"base"}, r.ValidLoss, r)
	pf("\nTask switching: ONE base model with both adapters loaded from their folders, the active adapter switched between evaluations:\n\n")
	lossTable(w, r.Domains, tasks, r.Switching, nil)

	pf("\n## Parameters, files and speed\n\n")
	pf("| run | trainable params | of all | trainable %% | training tokens/s | time |\n|---|---:|---:|---:|---:|---:|\n")
	runs := append([]RunInfo{r.Pretrain}, r.LoRA...)
	runs = append(runs, r.Full)
	for _, run := range runs {
		pf("| %s | %s | %s | %.2f%% | %.0f | %s |\n", run.Name, thousands(run.Trainable), thousands(run.All),
			run.Percent, run.TokensPerSec, minSec(run.Seconds))
	}
	pf("\nBase model file (model.safetensors): %s bytes.", thousands(int(r.Files.BaseModelBytes)))
	for _, t := range tasks {
		if b, ok := r.Files.AdapterBytes[t]; ok {
			pf(" Adapter %s (adapter_model.safetensors): %s bytes (%.1f%% of the base).", t, thousands(int(b)),
				100*float64(b)/math.Max(1, float64(r.Files.BaseModelBytes)))
		}
	}
	pf("\n\n## Merged and unmerged outputs\n\n")
	pf("| adapter | max abs difference of logits | max abs logit | tolerance | agree |\n|---|---:|---:|---:|---|\n")
	for _, mc := range r.Merge {
		pf("| %s | %.3g | %.3g | %.3g | %s |\n", mc.Adapter, mc.MaxAbsDiff, mc.MaxAbsLogit, mc.Tolerance, yesNo(mc.OK))
	}
	l := r.Latency
	pf("\nInference latency, one forward pass of %d × %d tokens (median of %d; adapter %s): base %.2f ms, unmerged %.2f ms, merged %.2f ms.\n",
		l.Batch, l.Context, l.Runs, l.Adapter, l.BaseMs, l.UnmergedMs, l.MergedMs)

	pf("\n## Loss curves\n\n")
	for _, f := range plots {
		pf("![%s](%s)\n\n", strings.TrimSuffix(f, ".png"), f)
	}
	if len(r.Samples) > 0 {
		pf("## Samples (temperature %g, top-k %d)\n\n", sampleTemperature, sampleTopK)
		for _, s := range r.Samples {
			pf("**%s**, prompt %q:\n\n```text\n%s%s\n```\n\n", s.Model, s.Prompt, s.Prompt, strings.ReplaceAll(s.Text, "```", "'''"))
		}
	}
	pf("All numbers are in %s.\n", MetricsFile)
}

// lossTable writes a table of losses[row][domain]; rows are the given
// names, then (when r is not nil) every LoRA and full run.
func lossTable(w io.Writer, domains, rows []string, losses map[string]map[string]float64, r *DemoResult) {
	if r != nil {
		for _, run := range r.LoRA {
			rows = append(rows, run.Name)
		}
		rows = append(rows, r.Full.Name)
	}
	fmt.Fprintf(w, "| model | %s |\n|---|%s\n", strings.Join(domains, " | "), strings.Repeat("---:|", len(domains)))
	for _, row := range rows {
		fmt.Fprintf(w, "| %s |", row)
		for _, d := range domains {
			if v, ok := losses[row][d]; ok {
				fmt.Fprintf(w, " %.4f |", v)
			} else {
				fmt.Fprint(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

// minSec writes seconds as "4m 05s" or "12.3s".
func minSec(s float64) string {
	if s < 60 {
		return fmt.Sprintf("%.1fs", s)
	}
	return fmt.Sprintf("%dm %02ds", int(s)/60, int(s)%60)
}

// thousands writes n with a comma every three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
