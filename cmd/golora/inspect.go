package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/models/llama"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
	"github.com/golora/golora/trainers"
)

// inspected is what inspect prints with --json.
type inspected struct {
	Path string `json:"path"`
	// Kind is "model", "adapter", "checkpoint" or "safetensors".
	Kind    string `json:"kind"`
	Summary string `json:"summary"`
	// Explanation is a line on how the file stores what the summary says
	// (an adapter in PEFT's block form), "" when there is nothing to add.
	Explanation string            `json:"explanation,omitempty"`
	Config      map[string]any    `json:"config,omitempty"`
	File        string            `json:"file"`
	Bytes       int64             `json:"bytes"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Tensors     []tensorInfo      `json:"tensors"`
	Params      int               `json:"params"`
}

type tensorInfo struct {
	Name   string `json:"name"`
	DType  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Params int    `json:"params"`
}

func runInspect(c *cli, args []string) error {
	f := newFlags(c, "PATH [--json]",
		"Lists the tensors, shapes and parameter counts of a model folder (config.json +\nmodel.safetensors), an adapter folder (adapter_config.json + adapter_model.safetensors),\na trainer checkpoint or any .safetensors file, with what its config says.",
		"golora inspect e2e-adapter")
	var asJSON bool
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one PATH, got %d arguments", len(pos))
	}
	res, err := inspectPath(pos[0])
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(c.stdout, res)
	}
	return res.print(c.stdout)
}

// inspectPath recognises and reads path.
func inspectPath(path string) (*inspected, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	res := &inspected{Path: path}
	var cfgFile string
	switch {
	case !st.IsDir():
		res.File, res.Kind = path, "safetensors"
	case exists(filepath.Join(path, gpt.ConfigFile)):
		res.Kind, cfgFile, res.File = "model", filepath.Join(path, gpt.ConfigFile), filepath.Join(path, gpt.WeightsFile)
	case exists(filepath.Join(path, lora.ConfigFile)):
		res.Kind, cfgFile, res.File = "adapter", filepath.Join(path, lora.ConfigFile), filepath.Join(path, lora.WeightsFile)
	default:
		return nil, fmt.Errorf("%s: not a model folder (%s), an adapter folder (%s) or a .safetensors file", path, gpt.ConfigFile, lora.ConfigFile)
	}
	if cfgFile != "" {
		b, err := os.ReadFile(cfgFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfgFile, unwrapPath(err))
		}
		if err := json.Unmarshal(b, &res.Config); err != nil {
			return nil, fmt.Errorf("%s: not a JSON object: %w", cfgFile, err)
		}
	}
	files := []string{res.File}
	if res.Kind == "model" && !exists(res.File) && exists(filepath.Join(path, llama.WeightsIndexFile)) {
		// A sharded checkpoint: every shard its index lists.
		var err error
		if files, err = shardFiles(path); err != nil {
			return nil, err
		}
		res.File = filepath.Join(path, llama.WeightsIndexFile)
	}
	for i, file := range files {
		sf, err := safetensors.ReadFile(file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: no %s", path, filepath.Base(file))
			}
			return nil, err
		}
		if fst, err := os.Stat(file); err == nil {
			res.Bytes += fst.Size()
		}
		if i == 0 {
			res.Metadata = sf.Metadata
		}
		names := sf.Names()
		sort.SliceStable(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
		for _, n := range names {
			t, _ := sf.Tensor(n)
			k := 1
			for _, d := range t.Shape {
				k *= d
			}
			res.Tensors = append(res.Tensors, tensorInfo{Name: n, DType: t.DType, Shape: t.Shape, Params: k})
			res.Params += k
		}
	}
	if len(files) > 1 {
		sort.SliceStable(res.Tensors, func(i, j int) bool { return naturalLess(res.Tensors[i].Name, res.Tensors[j].Name) })
	}
	switch res.Kind {
	case "model":
		shape, err := readShape("", path)
		if err != nil {
			return nil, err
		}
		res.Summary = shape.summary()
	case "adapter":
		res.Summary, res.Explanation = adapterSummary(res.Config)
	default:
		if res.Metadata["format"] == trainers.CheckpointFormat {
			res.Kind = "checkpoint"
			meta, err := trainers.ReadCheckpointMeta(path)
			if err != nil {
				return nil, err
			}
			res.Summary = fmt.Sprintf("trainer checkpoint: step %d of a run of %d steps, %d trainable tensors, %s",
				meta.Step, meta.Config.Steps, len(meta.Params), meta.DType)
			res.Metadata = map[string]string{"format": trainers.CheckpointFormat}
		} else {
			res.Summary = "safetensors file"
		}
	}
	return res, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// print writes the inspection as text: a summary and a table of tensors.
func (r *inspected) print(w io.Writer) error {
	fmt.Fprintf(w, "%s: %s\n", r.Path, r.Summary)
	if r.Explanation != "" {
		fmt.Fprintf(w, "  %s\n", r.Explanation)
	}
	fmt.Fprintf(w, "%s: %d tensors, %s parameters, %s bytes\n", r.File, len(r.Tensors), commas(r.Params), commas(int(r.Bytes)))
	keys := make([]string, 0, len(r.Metadata))
	for k := range r.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := r.Metadata[k]
		if k == safetensors.ChecksumKey {
			v = "CRC-32C of every tensor (checked: the data is intact)"
		}
		if len(v) > 80 {
			v = v[:77] + "..."
		}
		fmt.Fprintf(w, "metadata %s: %s\n", k, v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\tdtype\tshape\tparams\t")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t\n", t.Name, t.DType, t.Shape, commas(t.Params))
	}
	return tw.Flush()
}

// naturalLess orders names with their numbers compared as numbers
// ("h.2" before "h.10").
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		na, ra := leadingNumber(a)
		nb, rb := leadingNumber(b)
		switch {
		case na >= 0 && nb >= 0:
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
		case a[0] != b[0]:
			return a[0] < b[0]
		default:
			a, b = a[1:], b[1:]
		}
	}
	return len(a) < len(b)
}

// leadingNumber returns the number s starts with (−1 for none) and the rest.
func leadingNumber(s string) (int, string) {
	i := 0
	for i < len(s) && i < 9 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return -1, s
	}
	n, _ := strconv.Atoi(s[:i])
	return n, s[i:]
}

// commas writes n with a comma every three digits.
func commas(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	var b strings.Builder
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// adapterSummary describes an adapter from its adapter_config.json: the
// rank and α asked for (golora's key when the adapter is in PEFT's block
// form), and for the block form a line on how PEFT's r and lora_alpha
// relate to them.
func adapterSummary(cfg map[string]any) (summary, explanation string) {
	targets := cfg["target_modules"]
	r, alpha := cfg["r"], cfg["lora_alpha"]
	g, _ := cfg["golora"].(map[string]any)
	if g != nil {
		if t, ok := g["targets"].([]any); ok {
			targets = t
		}
		r, alpha = g["r"], g["lora_alpha"]
	}
	summary = fmt.Sprintf("LoRA adapter: r %v, α %v, targets %v, base %v", r, alpha, list(targets), cfg["base_model_name_or_path"])
	if g == nil {
		return summary, ""
	}
	summary += fmt.Sprintf("; stored in PEFT's block form as r %v, α %v", cfg["r"], cfg["lora_alpha"])
	// The first layer in block form as the example.
	sl, _ := g["slices"].(map[string]any)
	layers := make([]string, 0, len(sl))
	for l := range sl {
		layers = append(layers, l)
	}
	if len(layers) == 0 {
		return summary, ""
	}
	sort.Slice(layers, func(i, j int) bool { return naturalLess(layers[i], layers[j]) })
	parts, _ := sl[layers[0]].([]any)
	name := layers[0][strings.LastIndex(layers[0], ".")+1:]
	scale := "α/r"
	if on, _ := cfg["use_rslora"].(bool); on {
		scale = "α/√r"
	}
	explanation = fmt.Sprintf("PEFT has no per-part LoRA: the %s parts of each fused %s are stored as one update of %d × r = %v with α %v, the same scale %s; golora reads back r %v, α %v",
		list(parts), name, len(parts), cfg["r"], cfg["lora_alpha"], scale, r, alpha)
	return summary, explanation
}

// list writes a JSON list of names as "q,v", anything else as it is.
func list(v any) string {
	items, ok := v.([]any)
	if !ok {
		return fmt.Sprint(v)
	}
	s := make([]string, len(items))
	for i, x := range items {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// shardFiles lists the shard files of the sharded checkpoint in the folder
// dir, in the order of its model.safetensors.index.json.
func shardFiles(dir string) ([]string, error) {
	idx := filepath.Join(dir, llama.WeightsIndexFile)
	b, err := os.ReadFile(idx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", idx, unwrapPath(err))
	}
	var v struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", idx, err)
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range v.WeightMap {
		if !seen[f] && f == filepath.Base(f) {
			seen[f] = true
			files = append(files, filepath.Join(dir, f))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: its weight_map lists no shard", idx)
	}
	sort.Strings(files)
	return files, nil
}
