package experiments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/notebooks/plots"
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
	files := PlotFiles(res)
	curves := [][]plots.Loss{{loss("pretraining", res.Pretrain.Curve)}}
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
		cs := []plots.Loss{loss(fmt.Sprintf("LoRA r=%d", r.Rank), from(r.Curve))}
		if res.Full.Domain == r.Domain {
			cs = append(cs, loss("full fine-tuning", from(res.Full.Curve)))
		}
		curves = append(curves, cs)
	}
	for i, file := range files {
		title := "pretraining on " + DomainDescription(res.Pretrain.Domain)
		if i > 0 {
			title = "fine-tuning the base on " + DomainDescription(res.LoRA[i-1].Domain)
		}
		img, err := plots.LossChart{Title: title, Runs: curves[i], Width: 7, Height: 4.5}.Render()
		if err != nil {
			return fmt.Errorf("experiments: report: plot %s: %w", file, err)
		}
		if err := writeBytes(filepath.Join(dir, file), img.PNG); err != nil {
			return err
		}
	}
	var md bytes.Buffer
	writeMarkdown(&md, res, files)
	return writeBytes(filepath.Join(dir, ReportFile), md.Bytes())
}

// loss is a run's Curve as the charting package takes it.
func loss(name string, c Curve) plots.Loss {
	return plots.Loss{Name: name, Train: c.Train, ValidSteps: c.ValidSteps, Valid: c.Valid}
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
