package lora

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/safetensors"
)

// Save writes the named adapter as a PEFT adapter folder dir:
// adapter_config.json and adapter_model.safetensors, with keys
// "base_model.model." + KeyPrefix + path + ".lora_A.weight" [r, in] and
// ".lora_B.weight" [out, r] (".lora_embedding_A" [r, V] and
// ".lora_embedding_B" [d, r] for embeddings), and the fully trained
// parameters under their own names. Tensors keep the parameters' dtype. A
// layer adapted on fused parts is written in block form (see
// docs/formats-adapters.md).
//
// The folder is replaced atomically: readers see the old complete folder or
// the new one. An existing dir may hold only the two adapter files.
func (m *Model) Save(dir, name string) error {
	if err := m.usable(); err != nil {
		return err
	}
	st, err := m.state(name)
	if err != nil {
		return fmt.Errorf("lora: save: %w", err)
	}
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	var plans []*layerPlan
	var ads []*Adapter
	for _, path := range st.paths {
		w := m.byPath[path]
		p := &layerPlan{path: path}
		switch l := w.(type) {
		case *Linear:
			p.lin, p.layout = l.Base, l.Parts
		case *Embedding:
			p.emb = l.Base
		}
		ad := w.state().Adapter(name)
		p.rank, p.alpha, p.scale, p.parts = ad.Rank, ad.Alpha, ad.Scale, partsOf(ad)
		plans, ads = append(plans, p), append(ads, ad)
	}
	layout := m.fileLayout(st.cfg, plans)
	var tensors []safetensors.Tensor
	for i, lt := range layout {
		a, b := toFile(ads[i], lt)
		dt := ads[i].Slices[0].A.DType()
		tensors = append(tensors, fileTensor(lt.keyA, lt.shapeA, a, dt), fileTensor(lt.keyB, lt.shapeB, b, dt))
		if lt.keyM != "" {
			tensors = append(tensors, fileTensor(lt.keyM, lt.shapeB[:1], ads[i].Magnitude.Values(), dt))
		}
	}
	for _, p := range st.extras {
		src := st.saved[p]
		if m.owner[p] == name {
			src = p
		}
		tensors = append(tensors, graph.ParamTensor(keyRoot+m.KeyPrefix+p.Name, src))
	}
	cfgJSON, err := m.configJSON(st, layout)
	if err != nil {
		return fmt.Errorf("lora: save %s: %w", dir, err)
	}
	var weights bytes.Buffer
	if err := safetensors.Write(&weights, tensors, safetensors.WithChecksums(map[string]string{"format": "pt"})); err != nil {
		return fmt.Errorf("lora: save %s: %w", dir, err)
	}
	err = atomicfile.ReplaceDir(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, ConfigFile), cfgJSON, 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, WeightsFile), weights.Bytes(), 0o644)
	})
	if err != nil {
		return fmt.Errorf("lora: save: %w", err)
	}
	return nil
}

// checkReplaceable refuses to replace a folder holding anything but an
// adapter's two files.
func checkReplaceable(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lora: save %s: %w", dir, err)
	}
	for _, e := range entries {
		if n := e.Name(); n != ConfigFile && n != WeightsFile {
			return fmt.Errorf("lora: save %s: the folder holds %q besides an adapter; refusing to replace it", dir, n)
		}
	}
	return nil
}

func fileTensor(name string, shape []int, v []float64, dt graph.DType) safetensors.Tensor {
	if dt == graph.Float64 {
		return safetensors.FromFloat64s(name, shape, v)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return safetensors.FromFloat32s(name, shape, f)
}

// toFile lays out ad's A and B as the file's A [R, in] and B [out, R]
// (transposed; block form for fused parts).
func toFile(ad *Adapter, lt layerTensors) (a, b []float64) {
	in, out, R := lt.shapeA[1], lt.shapeB[0], lt.fileRank
	a, b = make([]float64, R*in), make([]float64, out*R)
	r := ad.Rank
	for j, s := range ad.Slices {
		av, bv := s.A.Values(), s.B.Values()
		for i := 0; i < in; i++ {
			for p := 0; p < r; p++ {
				a[(j*r+p)*in+i] = av[i*r+p] // A_fileᵀ block j
			}
		}
		for p := 0; p < r; p++ {
			for c := 0; c < s.Width; c++ {
				b[(s.Offset+c)*R+j*r+p] = bv[p*s.Width+c]
			}
		}
	}
	return a, b
}

// configJSON writes adapter_config.json for an adapter.
func (m *Model) configJSON(st *adapterState, layout []layerTensors) ([]byte, error) {
	c := st.cfg
	fc := fileConfig{
		PeftType: "LORA", TaskType: c.TaskType,
		R: c.R, LoraAlpha: c.Alpha, LoraDropout: c.Dropout,
		Bias: string(c.Bias), UseRSLoRA: c.RSLoRA, UseDoRA: c.DoRA, InitLoraWeights: true,
		RankPattern: c.RankPattern, AlphaPattern: c.AlphaPattern,
		ModulesToSave: c.ModulesToSave, LayersToTransform: c.Layers, InferenceMode: true,
	}
	if c.BaseModel != "" {
		fc.BaseModel = &c.BaseModel
	}
	if c.Init != InitDefault {
		fc.InitLoraWeights = string(c.Init)
	}
	if len(c.Layers) > 0 && c.LayersPattern != "" {
		fc.LayersPattern = &c.LayersPattern
	}
	if fc.RankPattern == nil {
		fc.RankPattern = map[string]int{}
	}
	if fc.AlphaPattern == nil {
		fc.AlphaPattern = map[string]float64{}
	}
	if c.TargetRegex != "" {
		fc.TargetModules = c.TargetRegex
	} else if len(c.Targets) == 1 && c.Targets[0] == AllLinear {
		fc.TargetModules = AllLinear
	} else {
		targets, err := m.peftTargets(c, layout)
		if err != nil {
			return nil, err
		}
		fc.TargetModules = targets
	}
	sliced := map[string][]string{}
	for _, lt := range layout {
		if lt.plan.parts != nil {
			sliced[lt.plan.path] = lt.plan.parts
		}
	}
	if len(sliced) > 0 {
		fc.Golora = &goloraKey{Format: 1, Targets: c.Targets, R: c.R, LoraAlpha: c.Alpha,
			RankPattern: c.RankPattern, AlphaPattern: c.AlphaPattern, FusedParts: c.FusedParts, Slices: sliced,
			Note: blockNote(c, layout[0])}
		// PEFT reads the block form: the first layer's r and alpha on top,
		// exact per-layer patterns where another layer differs.
		fc.R, fc.LoraAlpha = layout[0].fileRank, layout[0].fileAlpha
		fc.RankPattern, fc.AlphaPattern = map[string]int{}, map[string]float64{}
		for _, lt := range layout[1:] {
			key := regexp.QuoteMeta(lt.plan.path)
			if lt.fileRank != fc.R {
				fc.RankPattern[key] = lt.fileRank
			}
			if lt.fileAlpha != fc.LoraAlpha {
				fc.AlphaPattern[key] = lt.fileAlpha
			}
		}
	}
	out, err := json.MarshalIndent(fc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// peftTargets turns Config.Targets into PEFT target_modules: a fused target
// "c_attn[q,v]" or a part name "q" becomes the layer name "c_attn".
// A malformed target is an error (Validate rejects it before an adapter
// exists, so only a Config changed behind the Model's back reaches here).
func (m *Model) peftTargets(c Config, layout []layerTensors) ([]string, error) {
	var out []string
	add := func(t string) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, t := range c.Targets {
		name, parts, err := parseTarget(t)
		if err != nil {
			return nil, err
		}
		if parts != nil {
			add(name)
			continue
		}
		matched := false
		for _, lt := range layout {
			if nameMatches(name, lt.plan.path, m.KeyPrefix) {
				matched = true
			}
		}
		if matched || t == AllLinear {
			add(t)
			continue
		}
		for _, lt := range layout { // a part name: name the fused layers it selected
			if slices.Contains(lt.plan.parts, name) {
				add(lastSegment(lt.plan.path))
			}
		}
	}
	return out, nil
}
