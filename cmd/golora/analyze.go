package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/models/llama"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
	"gonum.org/v1/gonum/mat"
)

// analysis is what analyze prints with --json.
type analysis struct {
	Base       string           `json:"base"` // the model folder used, or "" for a stand-in
	Adapters   []adapterReport  `json:"adapters"`
	Similarity []similarityItem `json:"subspace_similarity,omitempty"`
}

type adapterReport struct {
	Name    string       `json:"name"`
	Dir     string       `json:"dir"`
	Rank    int          `json:"rank"`
	Alpha   float64      `json:"alpha"`
	Targets []string     `json:"targets"`
	Updates []updateInfo `json:"updates"`
}

// updateInfo describes one low-rank update ΔW = s·A·B (one part of a fused
// layer, or a whole layer).
type updateInfo struct {
	Layer string `json:"layer"`
	Part  string `json:"part,omitempty"`
	// NormDeltaW is ‖ΔW‖_F and NormW the Frobenius norm of the base weight's
	// block the update adds to (0 without a base).
	NormDeltaW float64 `json:"norm_delta_w"`
	NormW      float64 `json:"norm_w,omitempty"`
	// Spectrum is ΔW's singular values, largest first (at most its rank).
	Spectrum []float64 `json:"spectrum"`
	// Amplification is ‖ΔW‖_F / ‖Uᵀ·W·V‖_F (Hu et al. 2021, Section 7.3),
	// 0 without a base.
	Amplification float64 `json:"amplification,omitempty"`
}

// similarityItem is the normalised subspace similarity of the two adapters'
// A on one layer part: Grid[i-1][j-1] = φ(A₁, A₂, i, j).
type similarityItem struct {
	Layer string      `json:"layer"`
	Part  string      `json:"part,omitempty"`
	Grid  [][]float64 `json:"grid"`
}

func runAnalyze(c *cli, args []string) error {
	f := newFlags(c, "--adapter DIR [--adapter DIR] [--base MODEL_DIR] [--json]",
		"Analyses LoRA updates as the paper's Section 7 does (Hu et al. 2021): for each adapted\nlayer, the singular values of ΔW = (α/r)·A·B and, with the base weights, the\namplification factor ‖ΔW‖_F / ‖Uᵀ·W·V‖_F. With two adapters, the normalised subspace\nsimilarity φ(A₁, A₂, i, j) of their A matrices, layer by layer. The base model is --base,\nor the adapter's base_model_name_or_path when that is a model folder; without one, the\nupdates are analysed on their own (no amplification).",
		"golora analyze --adapter docs-adapter --adapter asm-adapter --base base-model")
	var dirs listFlag
	var base string
	var top int
	var asJSON bool
	f.Var(&dirs, "adapter", "adapter folder `DIR`; give it twice to compare two adapters")
	f.StringVar(&base, "base", "", "base model folder `MODEL_DIR`, for the amplification factor")
	f.IntVar(&top, "top", 4, "singular values to print per update (all with --json)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if len(dirs) == 0 || len(dirs) > 2 {
		return usagef("--adapter: give one or two adapter folders, got %d", len(dirs))
	}
	if top < 1 {
		return usagef("--top %d: want ≥ 1", top)
	}
	for _, d := range dirs {
		if err := checkInputDir("adapter", d, lora.ConfigFile, lora.WeightsFile); err != nil {
			return err
		}
	}
	host, usedBase, err := analysisHost(base, dirs[0])
	if err != nil {
		return err
	}
	lm, err := lora.NewModel(hostOf(host))
	if err != nil {
		return err
	}
	res := analysis{Base: usedBase}
	names := []string{"a", "b"}[:len(dirs)]
	for i, d := range dirs {
		if err := lm.LoadAdapter(d, names[i]); err != nil {
			return adapterError(d, err)
		}
		rep, err := analyzeAdapter(lm, names[i], d, usedBase != "")
		if err != nil {
			return fmt.Errorf("--adapter %s: %w", d, err)
		}
		res.Adapters = append(res.Adapters, rep)
	}
	if len(dirs) == 2 {
		if res.Similarity, err = similarity(lm, names[0], names[1]); err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSON(c.stdout, res)
	}
	return res.print(c.stdout, top)
}

// analysisHost returns the model the adapters are loaded onto: --base, the
// adapter's base_model_name_or_path when it is a model folder, or a stand-in
// of the right shape built from the adapter's tensors (zero weights). The
// second result names the base folder used ("" for a stand-in).
func analysisHost(base, adapterDir string) (baseModel, string, error) {
	if base != "" {
		m, err := openModel("base", base)
		if err != nil {
			return nil, base, err
		}
		return m, base, nil
	}
	if b, err := os.ReadFile(filepath.Join(adapterDir, lora.ConfigFile)); err == nil {
		var cfg struct {
			Base string `json:"base_model_name_or_path"`
		}
		if json.Unmarshal(b, &cfg) == nil && cfg.Base != "" {
			if m, err := openModel("base", cfg.Base); err == nil {
				return m, cfg.Base, nil
			}
		}
	}
	m, err := standIn(filepath.Join(adapterDir, lora.WeightsFile))
	if err != nil {
		return nil, "", fmt.Errorf("--adapter %s: %w (give --base MODEL_DIR)", adapterDir, err)
	}
	return m, "", nil
}

var layerIndexRE = regexp.MustCompile(`\.(?:h|layers)\.(\d+)\.`)

// standIn builds a model (zero weights) of the shape the adapter file at
// path was trained on, as far as its tensor shapes tell: the number of
// layers, the width and (for embedding adapters) the vocabulary; for a
// Llama-family adapter (PEFT keys "….model.layers.{i}.…") also the
// widths of the projections it adapts.
func standIn(path string) (baseModel, error) {
	sf, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	layers, d, vocab := 0, 0, 0
	isLlama := false
	width := map[string]int{} // Llama projection → its output width
	for _, n := range sf.Names() {
		t, _ := sf.Tensor(n)
		if m := layerIndexRE.FindStringSubmatch(n); m != nil {
			i, _ := strconv.Atoi(m[1])
			layers = max(layers, i+1)
		}
		if strings.Contains(n, ".model.layers.") || strings.Contains(n, "model.embed_tokens") {
			isLlama = true
		}
		proj := ""
		for _, p := range []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} {
			if strings.Contains(n, "."+p+".") {
				proj = p
			}
		}
		switch {
		case len(t.Shape) != 2:
		case strings.HasSuffix(n, ".mlp.c_proj.lora_A.weight"):
			d = t.Shape[1] / 4 // [r, 4d]
		case proj == "down_proj" && strings.HasSuffix(n, ".lora_A.weight"):
			width["gate_proj"] = t.Shape[1] // [r, FFN]
		case proj == "o_proj" && strings.HasSuffix(n, ".lora_A.weight"):
			width["q_proj"] = t.Shape[1] // [r, heads·hd]
		case strings.HasSuffix(n, ".lora_A.weight"):
			d = t.Shape[1] // [r, d]
		case proj != "" && strings.HasSuffix(n, ".lora_B.weight"):
			width[proj] = t.Shape[0] // [out, r]
		case strings.HasSuffix(n, ".lora_embedding_A"):
			vocab = t.Shape[1] // [r, V]
		case strings.HasSuffix(n, ".lora_embedding_B"):
			d = t.Shape[0] // [d, r]
		}
	}
	if d == 0 {
		return nil, errors.New("cannot tell the model's width from the adapter's tensors")
	}
	if !isLlama {
		cfg := gpt.Config{NLayer: max(layers, 1), NHead: 1, NEmbd: d, BlockSize: 1,
			VocabSize: max(vocab, gpt.ByteTokenizer().VocabSize()), LayerNormEps: 1e-5, Tokenizer: "bytes"}
		return gpt.New(cfg, graph.Float32)
	}
	// One query head per key/value head ratio: q's width over k's (or
	// v's); key/value heads of the width k (or v) has.
	q := cmp.Or(width["q_proj"], width["o_proj"], d)
	kv := cmp.Or(width["k_proj"], width["v_proj"], q)
	if kv == 0 || q%kv != 0 || kv%2 != 0 {
		kv = q
	}
	cfg := llama.Config{Arch: llama.ArchLlama, NumLayers: max(layers, 1), Hidden: d,
		Intermediate: cmp.Or(width["gate_proj"], width["up_proj"], d), Heads: q / kv, KVHeads: 1, HeadDim: kv,
		VocabSize: max(vocab, 1), MaxPositions: 1, RMSNormEps: 1e-5, RoPE: graph.RoPEConfig{Theta: 10000},
		TieEmbeddings: true, BOS: -1, Tokenizer: llama.TokenizerNone}
	return llama.New(cfg, graph.Float32)
}

// analyzeAdapter computes the spectra (and amplification, with a real base)
// of every update of the named adapter.
func analyzeAdapter(lm *lora.Model, name, dir string, withBase bool) (adapterReport, error) {
	cfg, err := lm.Config(name)
	if err != nil {
		return adapterReport{}, err
	}
	rep := adapterReport{Name: name, Dir: dir, Rank: cfg.R, Alpha: cfg.Alpha, Targets: cfg.Targets}
	paths, err := lm.Paths(name)
	if err != nil {
		return rep, err
	}
	host, _ := lm.Host().(baseModel)
	for _, path := range paths {
		ad, err := lm.Adapter(path, name)
		if err != nil {
			return rep, err
		}
		var w *mat.Dense
		if withBase {
			if w, err = baseWeight(host, path); err != nil {
				return rep, err
			}
		}
		for _, s := range ad.Slices {
			dw, err := sliceDelta(ad.Scale, s)
			if err != nil {
				return rep, err
			}
			u := updateInfo{Layer: path, Part: s.Part, NormDeltaW: mat.Norm(dw, 2)}
			if u.Spectrum, err = lora.Spectrum(dw); err != nil {
				return rep, err
			}
			u.Spectrum = u.Spectrum[:min(len(u.Spectrum), ad.Rank)]
			if w != nil {
				rows, _ := w.Dims()
				wp := w.Slice(0, rows, s.Offset, s.Offset+s.Width)
				u.NormW = mat.Norm(wp, 2)
				if u.Amplification, err = lora.Amplification(wp, dw, ad.Rank); err != nil {
					return rep, err
				}
			}
			rep.Updates = append(rep.Updates, u)
		}
	}
	return rep, nil
}

// sliceDelta is s·A·B of one slice: [in, r]·[r, w] → [in, w].
func sliceDelta(scale float64, s lora.Slice) (*mat.Dense, error) {
	a, err := graph.ParamMatrix(s.A)
	if err != nil {
		return nil, err
	}
	b, err := graph.ParamMatrix(s.B)
	if err != nil {
		return nil, err
	}
	var dw mat.Dense
	dw.Mul(a, b)
	dw.Scale(scale, &dw)
	return &dw, nil
}

// baseWeight returns the frozen weight of the layer at path as a matrix.
func baseWeight(m baseModel, path string) (*mat.Dense, error) {
	l, err := m.BaseLayer(path)
	if err != nil {
		return nil, err
	}
	switch l := l.(type) {
	case *nn.Linear:
		return graph.ParamMatrix(l.Weight)
	case *nn.Embedding:
		return graph.ParamMatrix(l.Weight)
	}
	return nil, fmt.Errorf("layer %s: no weight matrix", path)
}

// similarity compares the A matrices of two adapters on every layer part
// both adapt.
func similarity(lm *lora.Model, a, b string) ([]similarityItem, error) {
	pa, err := lm.Paths(a)
	if err != nil {
		return nil, err
	}
	var out []similarityItem
	for _, path := range pa {
		ada, err := lm.Adapter(path, a)
		if err != nil {
			return nil, err
		}
		adb, err := lm.Adapter(path, b)
		if err != nil {
			continue // only a adapts this layer
		}
		for _, sa := range ada.Slices {
			for _, sb := range adb.Slices {
				if sa.Part != sb.Part {
					continue
				}
				ma, err := graph.ParamMatrix(sa.A)
				if err != nil {
					return nil, err
				}
				mb, err := graph.ParamMatrix(sb.A)
				if err != nil {
					return nil, err
				}
				grid, err := lora.SubspaceSimilarityGrid(ma, mb)
				if err != nil {
					return nil, fmt.Errorf("subspace similarity on %s %s: %w", path, sa.Part, err)
				}
				out = append(out, similarityItem{Layer: path, Part: sa.Part, Grid: grid})
			}
		}
	}
	return out, nil
}

// print writes the analysis as tables.
func (r analysis) print(w io.Writer, top int) error {
	if r.Base != "" {
		fmt.Fprintf(w, "base model: %s\n", r.Base)
	} else {
		fmt.Fprintln(w, "base model: none (updates analysed on their own; give --base for amplification)")
	}
	for _, a := range r.Adapters {
		fmt.Fprintf(w, "\nadapter %s (%s): r = %d, α = %g, targets %s\n", a.Name, a.Dir, a.Rank, a.Alpha, strings.Join(a.Targets, ","))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		head := "layer\tpart\t‖ΔW‖_F\tsingular values of ΔW\t"
		if r.Base != "" {
			head += "‖W‖_F\tamplification\t"
		}
		fmt.Fprintln(tw, head)
		for _, u := range a.Updates {
			var sv []string
			for _, v := range u.Spectrum[:min(top, len(u.Spectrum))] {
				sv = append(sv, fmt.Sprintf("%.3g", v))
			}
			line := fmt.Sprintf("%s\t%s\t%.4g\t%s\t", u.Layer, dash(u.Part), u.NormDeltaW, strings.Join(sv, " "))
			if r.Base != "" {
				line += fmt.Sprintf("%.4g\t%.3g\t", u.NormW, u.Amplification)
			}
			fmt.Fprintln(tw, line)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Similarity) > 0 {
		fmt.Fprintf(w, "\nsubspace similarity of A (%s vs %s): φ(i, j) = ‖U₁[:, :i]ᵀ·U₂[:, :j]‖²_F / min(i, j), 0 = orthogonal, 1 = nested\n",
			r.Adapters[0].Name, r.Adapters[1].Name)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "layer\tpart\tφ(1,1)\tφ(r,r)\tmean φ\t")
		for _, s := range r.Similarity {
			n, sum := 0, 0.0
			for _, row := range s.Grid {
				for _, v := range row {
					sum += v
					n++
				}
			}
			last := s.Grid[len(s.Grid)-1]
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.3f\t\n", s.Layer, dash(s.Part), s.Grid[0][0], last[len(last)-1], sum/math.Max(1, float64(n)))
		}
		return tw.Flush()
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
