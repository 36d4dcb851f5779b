package lora

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/safetensors"
)

// File names inside an adapter folder (PEFT's).
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// keyRoot starts every tensor key of a PEFT adapter file.
const keyRoot = "base_model.model."

// maxConfigSize bounds adapter_config.json (real ones are ~1 kB).
const maxConfigSize = 1 << 20

// fileConfig is adapter_config.json as written: PEFT's LoraConfig keys in
// PEFT's meaning, plus golora's own key for what PEFT cannot express.
type fileConfig struct {
	PeftType          string             `json:"peft_type"`
	TaskType          string             `json:"task_type"`
	BaseModel         *string            `json:"base_model_name_or_path"`
	R                 int                `json:"r"`
	LoraAlpha         float64            `json:"lora_alpha"`
	LoraDropout       float64            `json:"lora_dropout"`
	TargetModules     any                `json:"target_modules"`
	Bias              string             `json:"bias"`
	FanInFanOut       bool               `json:"fan_in_fan_out"`
	UseRSLoRA         bool               `json:"use_rslora"`
	InitLoraWeights   any                `json:"init_lora_weights"`
	RankPattern       map[string]int     `json:"rank_pattern"`
	AlphaPattern      map[string]float64 `json:"alpha_pattern"`
	ModulesToSave     []string           `json:"modules_to_save"`
	LayersToTransform []int              `json:"layers_to_transform"`
	LayersPattern     *string            `json:"layers_pattern"`
	UseDoRA           bool               `json:"use_dora"`
	InferenceMode     bool               `json:"inference_mode"`
	Golora            *goloraKey         `json:"golora,omitempty"`
}

// goloraKey records an adapter that adapts parts of fused projections. The
// tensors of such layers are written as one whole-layer update of rank
// k·r (block form), and the PEFT keys r, lora_alpha, rank_pattern and
// alpha_pattern describe that form; these fields keep the compact form.
type goloraKey struct {
	// Format is 1.
	Format int `json:"format"`
	// Targets, R, LoraAlpha, RankPattern and AlphaPattern are the Config's.
	Targets      []string           `json:"targets"`
	R            int                `json:"r"`
	LoraAlpha    float64            `json:"lora_alpha"`
	RankPattern  map[string]int     `json:"rank_pattern,omitempty"`
	AlphaPattern map[string]float64 `json:"alpha_pattern,omitempty"`
	// FusedParts is Config.FusedParts; Slices maps each layer written in
	// block form to its adapted parts, in layout order.
	FusedParts map[string][]string `json:"fused_parts"`
	Slices     map[string][]string `json:"slices"`
	// Note explains, for a reader of the file, how the PEFT keys relate to
	// the values asked for; readers ignore it.
	Note string `json:"note,omitempty"`
}

// readConfig is adapter_config.json as read: the keys golora uses, with
// the ones PEFT lets take several JSON types kept raw.
type readConfig struct {
	PeftType          *string            `json:"peft_type"`
	TaskType          *string            `json:"task_type"`
	BaseModel         *string            `json:"base_model_name_or_path"`
	R                 *int               `json:"r"`
	LoraAlpha         *float64           `json:"lora_alpha"`
	LoraDropout       float64            `json:"lora_dropout"`
	TargetModules     json.RawMessage    `json:"target_modules"`
	Bias              *string            `json:"bias"`
	UseRSLoRA         bool               `json:"use_rslora"`
	InitLoraWeights   json.RawMessage    `json:"init_lora_weights"`
	RankPattern       map[string]int     `json:"rank_pattern"`
	AlphaPattern      map[string]float64 `json:"alpha_pattern"`
	ModulesToSave     []string           `json:"modules_to_save"`
	LayersToTransform json.RawMessage    `json:"layers_to_transform"`
	LayersPattern     json.RawMessage    `json:"layers_pattern"`
	UseDoRA           bool               `json:"use_dora"`
	Golora            *goloraKey         `json:"golora"`
}

// layerTensors is one adapted layer in file form: keys, shapes and the
// rank and alpha PEFT reads for it.
type layerTensors struct {
	plan           *layerPlan
	keyA, keyB     string
	shapeA, shapeB []int
	keyM           string // DoRA's magnitude [out], "" without DoRA
	fileRank       int
	fileAlpha      float64
}

// magnitudeKey ends the key of DoRA's magnitude vector. PEFT writes it
// without a ".weight" suffix (and appends one when it loads); Load accepts
// both spellings.
const magnitudeKey = ".lora_magnitude_vector"

// fileLayout works out the file form of each plan: PEFT's [r, in] and
// [out, r] layouts, and for a layer adapted on k fused parts one block
// update of rank k·r with alpha k·α (√k·α with rsLoRA), which keeps the
// scale.
func (m *Model) fileLayout(cfg Config, plans []*layerPlan) []layerTensors {
	out := make([]layerTensors, len(plans))
	for i, p := range plans {
		in, width := p.dims()
		root := keyRoot + m.KeyPrefix + p.path
		lt := layerTensors{plan: p, fileRank: p.rank, fileAlpha: p.alpha}
		if k := len(p.parts); k > 0 {
			lt.fileRank = k * p.rank
			if cfg.RSLoRA {
				lt.fileAlpha = math.Sqrt(float64(k)) * p.alpha
			} else {
				lt.fileAlpha = float64(k) * p.alpha
			}
		}
		if p.emb != nil {
			lt.keyA, lt.keyB = root+".lora_embedding_A", root+".lora_embedding_B"
		} else {
			lt.keyA, lt.keyB = root+".lora_A.weight", root+".lora_B.weight"
		}
		lt.shapeA, lt.shapeB = []int{lt.fileRank, in}, []int{width, lt.fileRank}
		if cfg.DoRA {
			lt.keyM = root + magnitudeKey
		}
		out[i] = lt
	}
	return out
}

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
		tensors = append(tensors, safetensors.FromParam(keyRoot+m.KeyPrefix+p.Name, src))
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
		fc.TargetModules = m.peftTargets(c, layout)
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
func (m *Model) peftTargets(c Config, layout []layerTensors) []string {
	var out []string
	add := func(t string) {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, t := range c.Targets {
		name, parts, _ := parseTarget(t)
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
	return out
}

// Load injects the adapter in folder dir into host as adapter "default" and
// makes it active (PEFT's PeftModel.from_pretrained). On error the host is
// left exactly as it was. Use NewModel, set KeyPrefix, then LoadAdapter for
// files whose keys have another prefix.
func Load(host nn.Host, dir string) (*Model, error) {
	m, err := NewModel(host)
	if err != nil {
		return nil, err
	}
	if err := m.LoadAdapter(dir, DefaultAdapter); err != nil {
		m.restoreTrainable()
		return nil, err
	}
	return m, nil
}

func (m *Model) restoreTrainable() {
	for p, on := range m.before {
		p.Trainable = on
	}
}

// LoadAdapter reads the PEFT adapter folder dir as adapter name (active if
// no adapter is). Everything is checked before anything changes: the
// config's fields, that the tensor keys are exactly the ones the config
// asks for on this host (no key missing, none unexpected), every tensor's
// dtype (F32, F64, F16 or BF16), shape (so its rank) and values (finite;
// zero outside the blocks of a fused layer in block form). The first
// problem is returned as one error naming the file and tensor, and the
// model is left exactly as it was.
//
// A PiSSA adapter is loaded as it is: its base must already be the
// residual W − s·A·B.
func (m *Model) LoadAdapter(dir, name string) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := m.checkNewName(name); err != nil {
		return err
	}
	if m.merged {
		return fmt.Errorf("lora: load %s: %w (unmerge first)", dir, ErrAlreadyMerged)
	}
	fail := func(err error) error { return fmt.Errorf("lora: load %s: %w", dir, err) }
	cfg, peft, sliced, err := readAdapterConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return fail(err)
	}
	plans, err := m.resolve(cfg)
	if err != nil {
		return fail(otherBase(fmt.Errorf("%s: %w", ConfigFile, err)))
	}
	if err := checkSlices(plans, sliced); err != nil {
		return fail(otherBase(fmt.Errorf("%s: %w", ConfigFile, err)))
	}
	extras, err := m.resolveExtras(cfg, plans)
	if err != nil {
		return fail(otherBase(fmt.Errorf("%s: %w", ConfigFile, err)))
	}
	layout := m.fileLayout(cfg, plans)
	if err := checkBlockForm(cfg, peft, layout, m.KeyPrefix); err != nil {
		return fail(fmt.Errorf("%s: %w", ConfigFile, err))
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return fail(err)
	}
	want := map[string][]int{}
	for _, lt := range layout {
		want[lt.keyA], want[lt.keyB] = lt.shapeA, lt.shapeB
		if lt.keyM != "" {
			want[lt.keyM] = lt.shapeB[:1]
		}
	}
	for _, p := range extras {
		want[keyRoot+m.KeyPrefix+p.Name] = p.Shape()
	}
	names, stored, err := magnitudeSpellings(f.Names())
	if err != nil {
		return fail(fmt.Errorf("%s: %w", WeightsFile, err))
	}
	if err := checkKeys(names, want); err != nil {
		err = fmt.Errorf("%s: %w", WeightsFile, err)
		if hostMismatch(names, want) {
			err = otherBase(err)
		}
		return fail(err)
	}
	read := func(key string, rank int) ([]float64, error) {
		v, shape, err := f.Float64s(stored[key])
		if err != nil {
			return nil, err
		}
		if !slices.Equal(shape, want[key]) {
			hint := ""
			if w := want[key]; rank > 0 && len(shape) == 2 {
				r, o := 0, 1 // A [r, in]: the rank is dimension 0; B [out, r]: dimension 1
				if strings.HasSuffix(key, "B.weight") || strings.HasSuffix(key, "_B") {
					r, o = 1, 0
				}
				if shape[o] == w[o] && shape[r] != rank {
					hint = fmt.Sprintf(" (rank %d in the file, %d from %s)", shape[r], rank, ConfigFile)
				}
			}
			err := fmt.Errorf("%s: tensor %q has shape %v, want %v%s", WeightsFile, key, shape, want[key], hint)
			if hint == "" { // the file agrees with itself, not with this host
				err = otherBase(err)
			}
			return nil, err
		}
		for i, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%s: tensor %q holds %v at element %d", WeightsFile, key, x, i)
			}
		}
		return v, nil
	}
	ads := make([]*Adapter, len(plans))
	for i, lt := range layout {
		a, err := read(lt.keyA, lt.fileRank)
		if err != nil {
			return fail(err)
		}
		b, err := read(lt.keyB, lt.fileRank)
		if err != nil {
			return fail(err)
		}
		ads[i] = lt.plan.newAdapter(name, cfg)
		if err := fromFile(ads[i], lt, a, b); err != nil {
			return fail(err)
		}
		if lt.keyM != "" {
			mv, err := read(lt.keyM, 0)
			if err != nil {
				return fail(err)
			}
			if err := ads[i].Magnitude.SetValues(mv); err != nil {
				return fail(err)
			}
		}
	}
	extraVals := map[*graph.Param][]float64{}
	for _, p := range extras {
		v, err := read(keyRoot+m.KeyPrefix+p.Name, 0)
		if err != nil {
			return fail(err)
		}
		extraVals[p] = v
	}
	return m.commit(name, cfg, plans, ads, nil, extras, extraVals)
}

// magnitudeSpellings maps each key of a weights file to the name it is
// checked under: DoRA's "….lora_magnitude_vector.weight" to PEFT's
// "….lora_magnitude_vector". stored maps every such name back to the key in
// the file. A file with both spellings for one layer is an error.
func magnitudeSpellings(keys []string) (names []string, stored map[string]string, err error) {
	stored = make(map[string]string, len(keys))
	for _, k := range keys {
		name := k
		if strings.HasSuffix(k, magnitudeKey+".weight") {
			name = strings.TrimSuffix(k, ".weight")
		}
		if prev, dup := stored[name]; dup {
			return nil, nil, fmt.Errorf("tensors %q and %q are the same magnitude vector", prev, k)
		}
		stored[name] = k
		names = append(names, name)
	}
	return names, stored, nil
}

// checkKeys reports the first missing key, else the first unexpected one
// (sorted), with how many more there are.
func checkKeys(have []string, want map[string][]int) error {
	var missing, extra []string
	got := map[string]bool{}
	for _, k := range have {
		got[k] = true
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	more := func(n int) string {
		if n > 1 {
			return fmt.Sprintf(" (and %d more)", n-1)
		}
		return ""
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tensor %q%s", missing[0], more(len(missing)))
	}
	if len(extra) > 0 {
		return fmt.Errorf("unexpected tensor %q%s: the config and this model ask for no such tensor", extra[0], more(len(extra)))
	}
	return nil
}

// fromFile sets ad's A and B from the file's A [R, in] and B [out, R],
// checking that a block-form B is zero outside its blocks.
func fromFile(ad *Adapter, lt layerTensors, a, b []float64) error {
	in, out, R, r := lt.shapeA[1], lt.shapeB[0], lt.fileRank, ad.Rank
	for j, s := range ad.Slices {
		av, bv := make([]float64, in*r), make([]float64, r*s.Width)
		for i := 0; i < in; i++ {
			for p := 0; p < r; p++ {
				av[i*r+p] = a[(j*r+p)*in+i]
			}
		}
		for c := 0; c < out; c++ {
			inside := c >= s.Offset && c < s.Offset+s.Width
			for p := 0; p < r; p++ {
				v := b[c*R+j*r+p]
				if inside {
					bv[p*s.Width+c-s.Offset] = v
				} else if v != 0 {
					return fmt.Errorf("%s: tensor %q is not in golora's block form: element [%d, %d] = %g lies outside the columns of part %q", WeightsFile, lt.keyB, c, j*r+p, v, s.Part)
				}
			}
		}
		if err := s.A.SetValues(av); err != nil {
			return err
		}
		if err := s.B.SetValues(bv); err != nil {
			return err
		}
	}
	return nil
}

// checkSlices checks that the golora key's record of the layers in block
// form (nil without the key) is what the targets select.
func checkSlices(plans []*layerPlan, sliced map[string][]string) error {
	n := 0
	for _, p := range plans {
		if p.parts != nil {
			n++
		}
		if sliced != nil && !slices.Equal(p.parts, sliced[p.path]) {
			return fmt.Errorf("golora key: slices of %s are %v, the targets select %v", p.path, sliced[p.path], p.parts)
		}
	}
	if sliced == nil && n > 0 {
		return errors.New("targets select parts of fused layers, which needs the golora key")
	}
	if len(sliced) != n {
		return fmt.Errorf("golora key: %d layers in block form, the targets select %d", len(sliced), n)
	}
	return nil
}

// checkBlockForm checks that the PEFT keys (r, lora_alpha and patterns)
// give every layer the rank and scale of its file form.
func checkBlockForm(cfg, peft Config, layout []layerTensors, prefix string) error {
	for _, lt := range layout {
		r, alpha := peft.rankAlpha(lt.plan.path, prefix)
		want := lt.plan.scale
		got := peft.Scale(r, alpha)
		if r != lt.fileRank || math.Abs(got-want) > 1e-12*math.Abs(want) {
			return fmt.Errorf("r = %d and lora_alpha = %v for %s disagree with the golora key (block rank %d, scale %v)", r, alpha, lt.plan.path, lt.fileRank, want)
		}
	}
	return nil
}

// readAdapterConfig parses adapter_config.json into the adapter's Config
// (compact form, defaults filled in), the Config the PEFT keys alone
// describe (for the rank and scale checks) and the golora key's slices
// (nil without the key).
func readAdapterConfig(path string) (Config, Config, map[string][]string, error) {
	fail := func(format string, args ...any) (Config, Config, map[string][]string, error) {
		return Config{}, Config{}, nil, fmt.Errorf("%s: %s", ConfigFile, fmt.Sprintf(format, args...))
	}
	st, err := os.Stat(path)
	if err != nil {
		return Config{}, Config{}, nil, err
	}
	if st.Size() > maxConfigSize {
		return fail("%d bytes, more than a config can need (%d)", st.Size(), maxConfigSize)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, Config{}, nil, err
	}
	var rc readConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&rc); err != nil {
		return fail("not a valid config: %v", err)
	}
	if dec.More() {
		return fail("trailing data after the JSON object")
	}
	switch {
	case rc.PeftType == nil:
		return fail("no peft_type")
	case *rc.PeftType != "LORA":
		return fail("peft_type %q, want \"LORA\"", *rc.PeftType)
	case rc.R == nil:
		return fail("no r")
	case rc.LoraAlpha == nil:
		return fail("no lora_alpha")
	}
	c := Config{R: *rc.R, Alpha: *rc.LoraAlpha, Dropout: rc.LoraDropout, RSLoRA: rc.UseRSLoRA, DoRA: rc.UseDoRA,
		RankPattern: rc.RankPattern, AlphaPattern: rc.AlphaPattern, ModulesToSave: rc.ModulesToSave, Bias: BiasNone}
	if c.R < 1 {
		return fail("r = %d, want ≥ 1", c.R)
	}
	if !(c.Alpha > 0) {
		return fail("lora_alpha = %v, want > 0", c.Alpha)
	}
	if rc.Bias != nil {
		c.Bias = BiasMode(*rc.Bias)
	}
	if rc.TaskType != nil {
		c.TaskType = *rc.TaskType
	}
	if rc.BaseModel != nil {
		c.BaseModel = *rc.BaseModel
	}
	if err := parseTargets(rc.TargetModules, &c); err != nil {
		return fail("target_modules: %v", err)
	}
	if err := parseInit(rc.InitLoraWeights, &c); err != nil {
		return fail("init_lora_weights: %v", err)
	}
	if err := parseLayers(rc.LayersToTransform, rc.LayersPattern, &c); err != nil {
		return fail("%v", err)
	}
	if err := c.Validate(); err != nil {
		return fail("%s", strings.TrimPrefix(err.Error(), "lora: config: "))
	}
	peft := c.withDefaults()
	var sliced map[string][]string
	if g := rc.Golora; g != nil {
		if g.Format != 1 {
			return fail("golora key: format %d, want 1", g.Format)
		}
		if sliced = g.Slices; sliced == nil {
			sliced = map[string][]string{}
		}
		c.Targets, c.TargetRegex, c.R, c.Alpha = g.Targets, "", g.R, g.LoraAlpha
		c.RankPattern, c.AlphaPattern, c.FusedParts = g.RankPattern, g.AlphaPattern, g.FusedParts
		if err := c.Validate(); err != nil {
			return fail("golora key: %s", strings.TrimPrefix(err.Error(), "lora: config: "))
		}
	}
	return c.withDefaults(), peft, sliced, nil
}

func parseTargets(raw json.RawMessage, c *Config) error {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == AllLinear {
			c.Targets = []string{AllLinear}
		} else {
			c.TargetRegex = s
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return fmt.Errorf("want a non-empty list of names or a regular expression, got %s", abbrev(raw))
	}
	c.Targets = list
	return nil
}

func parseInit(raw json.RawMessage, c *Config) error {
	c.Init = InitDefault
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var on bool
	if err := json.Unmarshal(raw, &on); err == nil {
		return nil // true and false both leave the stored A and B to the file
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("want true, false or a method name, got %s", abbrev(raw))
	}
	switch {
	case s == "gaussian":
		c.Init = InitGaussian
	case s == "pissa" || strings.HasPrefix(s, "pissa_niter_"):
		c.Init = InitPiSSA
	default:
		return fmt.Errorf("%q is not supported (golora knows true, gaussian and pissa)", s)
	}
	return nil
}

func parseLayers(layers, pattern json.RawMessage, c *Config) error {
	if len(layers) > 0 && string(layers) != "null" {
		var one int
		if err := json.Unmarshal(layers, &one); err == nil {
			c.Layers = []int{one}
		} else if err := json.Unmarshal(layers, &c.Layers); err != nil {
			return fmt.Errorf("layers_to_transform: want an integer or a list of them, got %s", abbrev(layers))
		}
	}
	if len(pattern) > 0 && string(pattern) != "null" {
		var list []string
		if err := json.Unmarshal(pattern, &c.LayersPattern); err == nil {
			return nil
		}
		if err := json.Unmarshal(pattern, &list); err != nil || len(list) != 1 {
			return fmt.Errorf("layers_pattern: want a name or a list of one, got %s", abbrev(pattern))
		}
		c.LayersPattern = list[0]
	}
	return nil
}

func abbrev(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}
