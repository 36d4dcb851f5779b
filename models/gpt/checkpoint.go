package gpt

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
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/safetensors"
	"github.com/golora/golora/tokenizer"
)

// The two files of a Hugging Face GPT-2 folder.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// tokenizerKey is the config.json key that records the tokenizer name; the
// Hugging Face library keeps unknown keys and ignores them.
const tokenizerKey = "golora_tokenizer"

// hfConfig is the part of a Hugging Face GPT2Config that golora reads or
// writes. Pointer fields tell an absent (or null) key from a zero value.
type hfConfig struct {
	ModelType     *string  `json:"model_type,omitempty"`
	Architectures []string `json:"architectures,omitempty"`
	Activation    *string  `json:"activation_function,omitempty"`
	NLayer        *int     `json:"n_layer,omitempty"`
	NHead         *int     `json:"n_head,omitempty"`
	NEmbd         *int     `json:"n_embd,omitempty"`
	NPositions    *int     `json:"n_positions,omitempty"`
	NCtx          *int     `json:"n_ctx,omitempty"`
	VocabSize     *int     `json:"vocab_size,omitempty"`
	LayerNormEps  *float64 `json:"layer_norm_epsilon,omitempty"`
	EmbdPdrop     *float64 `json:"embd_pdrop,omitempty"`
	ResidPdrop    *float64 `json:"resid_pdrop,omitempty"`
	AttnPdrop     *float64 `json:"attn_pdrop,omitempty"`
	BosTokenID    *int     `json:"bos_token_id,omitempty"`
	EosTokenID    *int     `json:"eos_token_id,omitempty"`
	Tokenizer     *string  `json:"golora_tokenizer,omitempty"`

	// Options of GPT2Config that change the maths; Load accepts only the
	// values that mean GPT-2's own architecture.
	NInner                  *int  `json:"n_inner,omitempty"`
	ScaleAttnWeights        *bool `json:"scale_attn_weights,omitempty"`
	ScaleAttnByInverseLayer *bool `json:"scale_attn_by_inverse_layer_idx,omitempty"`
	AddCrossAttention       *bool `json:"add_cross_attention,omitempty"`
}

// ReadConfig reads the config.json of a Hugging Face GPT-2 folder and returns
// it as a Config; see Load for the keys it reads and the checks it makes.
func ReadConfig(dir string) (Config, error) {
	cfg, _, err := readConfig(dir)
	return cfg, err
}

// readConfig is ReadConfig that also returns the keys as read.
func readConfig(dir string) (Config, hfConfig, error) {
	path := filepath.Join(dir, ConfigFile)
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() > maxConfigSize {
		return Config{}, hfConfig{}, fmt.Errorf("gpt: read config %s: %d bytes, more than a config can need (%d)", path, st.Size(), maxConfigSize)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, hfConfig{}, fmt.Errorf("gpt: read config: %w", err)
	}
	cfg, h, err := parseConfig(raw, tokenizer.HasFiles(dir))
	if err != nil {
		return Config{}, hfConfig{}, fmt.Errorf("gpt: read config %s: %w", path, err)
	}
	return cfg, h, nil
}

// parseConfig reads config.json; hasFiles says whether the folder has
// Hugging Face tokenizer files.
func parseConfig(raw []byte, hasFiles bool) (Config, hfConfig, error) {
	var h hfConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&h); err != nil {
		return Config{}, h, fmt.Errorf("not a GPT-2 config: %w", err)
	}
	if h.ModelType != nil && *h.ModelType != "gpt2" {
		return Config{}, h, fmt.Errorf("model_type %q, want \"gpt2\"", *h.ModelType)
	}
	if h.Activation != nil && *h.Activation != "gelu_new" && *h.Activation != "gelu_pytorch_tanh" {
		return Config{}, h, fmt.Errorf("activation_function %q: golora's GPT-2 uses the tanh GELU (\"gelu_new\")", *h.Activation)
	}
	switch {
	case h.ScaleAttnWeights != nil && !*h.ScaleAttnWeights:
		return Config{}, h, errors.New("scale_attn_weights false is not supported (GPT-2 scales by 1/√head_dim)")
	case h.ScaleAttnByInverseLayer != nil && *h.ScaleAttnByInverseLayer:
		return Config{}, h, errors.New("scale_attn_by_inverse_layer_idx true is not supported")
	case h.AddCrossAttention != nil && *h.AddCrossAttention:
		return Config{}, h, errors.New("add_cross_attention true is not supported (GPT-2 is decoder-only)")
	}
	required := []struct {
		key string
		v   *int
	}{{"n_layer", h.NLayer}, {"n_head", h.NHead}, {"n_embd", h.NEmbd}, {"vocab_size", h.VocabSize}}
	for _, r := range required {
		if r.v == nil {
			return Config{}, h, fmt.Errorf("no %s", r.key)
		}
	}
	positions := h.NPositions
	if positions == nil {
		positions = h.NCtx // the older name of the same size
	}
	if positions == nil {
		return Config{}, h, errors.New("no n_positions")
	}
	if h.NInner != nil && *h.NInner != 4**h.NEmbd {
		return Config{}, h, fmt.Errorf("n_inner %d: only GPT-2's MLP width 4·n_embd = %d is supported", *h.NInner, 4**h.NEmbd)
	}
	cfg := Config{
		NLayer: *h.NLayer, NHead: *h.NHead, NEmbd: *h.NEmbd, BlockSize: *positions, VocabSize: *h.VocabSize,
		// Absent keys take GPT2Config's defaults.
		LayerNormEps: 1e-5, EmbdDropout: 0.1, ResidDropout: 0.1, AttnDropout: 0.1,
	}
	for _, f := range []struct {
		v   *float64
		dst *float64
	}{{h.LayerNormEps, &cfg.LayerNormEps}, {h.EmbdPdrop, &cfg.EmbdDropout}, {h.ResidPdrop, &cfg.ResidDropout}, {h.AttnPdrop, &cfg.AttnDropout}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	switch {
	case h.Tokenizer != nil:
		cfg.Tokenizer = *h.Tokenizer
	case hasFiles:
		cfg.Tokenizer = TokenizerHF // tokenizer.json or vocab.json + merges.txt
	case cfg.VocabSize == gpt2Vocab:
		cfg.Tokenizer = "gpt2" // a checkpoint from the hub without tokenizer files
	default:
		return Config{}, h, fmt.Errorf("no %q key and vocab_size %d is not GPT-2's %d: add \"%s\": \"bytes\" (or the name of the tokenizer the model was trained with)",
			tokenizerKey, cfg.VocabSize, gpt2Vocab, tokenizerKey)
	}
	if err := cfg.validate(HFName); err != nil {
		return Config{}, h, err
	}
	return cfg, h, nil
}

// marshalConfig writes cfg with the keys of a Hugging Face GPT2Config.
func marshalConfig(cfg Config, tok Tokenizer) ([]byte, error) {
	eot := tok.EOT()
	str := func(s string) *string { return &s }
	h := hfConfig{
		ModelType:     str("gpt2"),
		Architectures: []string{"GPT2LMHeadModel"},
		Activation:    str("gelu_new"),
		NLayer:        &cfg.NLayer,
		NHead:         &cfg.NHead,
		NEmbd:         &cfg.NEmbd,
		NPositions:    &cfg.BlockSize,
		NCtx:          &cfg.BlockSize,
		VocabSize:     &cfg.VocabSize,
		LayerNormEps:  &cfg.LayerNormEps,
		EmbdPdrop:     &cfg.EmbdDropout,
		ResidPdrop:    &cfg.ResidDropout,
		AttnPdrop:     &cfg.AttnDropout,
		BosTokenID:    &eot,
		EosTokenID:    &eot,
		Tokenizer:     &cfg.Tokenizer,
	}
	out, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// bufferKey matches the causal-mask buffers that some checkpoints store,
// "h.{i}.attn.bias" and "h.{i}.attn.masked_bias"; they are not parameters.
var bufferKey = regexp.MustCompile(`^h\.[0-9]+\.attn\.(bias|masked_bias)$`)

// Load reads a Hugging Face GPT-2 folder (config.json and model.safetensors)
// into a new model of dtype dt. A folder downloaded from the hub (such as
// "gpt2" or "gpt2-medium") loads as it is, and so does one Save wrote.
//
// config.json must have n_layer, n_head, n_embd, vocab_size and n_positions
// (or n_ctx); layer_norm_epsilon, embd_pdrop, resid_pdrop and attn_pdrop
// default to GPT2Config's 1e-5 and 0.1. The tokenizer is the
// "golora_tokenizer" key; when that key is absent, it is the folder's
// Hugging Face tokenizer files ("hf": tokenizer.json, or vocab.json and
// merges.txt, read with package tokenizer) if it has them, else "gpt2"
// when vocab_size is 50257. model_type (if present) must be "gpt2", activation_function
// "gelu_new", and the options that change GPT-2's architecture (n_inner,
// scale_attn_weights, scale_attn_by_inverse_layer_idx, add_cross_attention)
// must keep GPT-2's values.
//
// model.safetensors must hold every parameter of BaseParams, named with or
// without the "transformer." prefix, in F32, F64, F16 or BF16 (converted to
// dt), with finite values. The causal-mask buffers "h.{i}.attn.bias" and
// "h.{i}.attn.masked_bias" are skipped; "lm_head.weight" is accepted only if
// it equals wte.weight (GPT-2 ties them). A missing file, a missing, extra or
// mis-shaped tensor, or a config that does not match the tensors is an error
// that names the file and the tensor.
func Load(dir string, dt graph.DType) (*Model, error) {
	cfg, h, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, WeightsFile)
	f, err := readWeights(path)
	if err != nil {
		return nil, err
	}
	// The file must be able to hold the parameters config.json describes
	// before anything that size is allocated.
	if err := checkWeightsFit(cfg, dt, f.DataBytes()); err != nil {
		return nil, fmt.Errorf("gpt: load %s: %w", dir, err)
	}
	m, err := assemble(cfg, dt) // readConfig validated cfg
	if err != nil {
		return nil, fmt.Errorf("gpt: load %s: %w", dir, err)
	}
	if cfg.Tokenizer == TokenizerHF {
		if m.hfFiles, m.hfTok, err = hfTokenizerOf(dir, h.EosTokenID); err != nil {
			return nil, err
		}
		if v := m.hfTok.VocabSize(); v > cfg.VocabSize {
			return nil, fmt.Errorf("gpt: load %s: the tokenizer has %d ids but %s has vocab_size %d", dir, v, ConfigFile, cfg.VocabSize)
		}
	}
	if err := m.loadWeights(f, path); err != nil {
		return nil, err
	}
	return m, nil
}

// readWeights reads the safetensors file at path.
func readWeights(path string) (*safetensors.File, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, berr := os.Stat(filepath.Join(filepath.Dir(path), "pytorch_model.bin")); berr == nil {
				return nil, fmt.Errorf("gpt: load: %w (the folder has only pytorch_model.bin: convert it to safetensors first)", err)
			}
		}
		return nil, fmt.Errorf("gpt: load: %w", err)
	}
	return f, nil
}

// loadWeights fills the base parameters from f, read from path.
func (m *Model) loadWeights(f *safetensors.File, path string) error {
	fail := func(tensor, format string, args ...any) error {
		return fmt.Errorf("gpt: load %s: tensor %q: %s", path, tensor, fmt.Sprintf(format, args...))
	}
	params := map[string]*graph.Param{}
	for _, p := range m.BaseParams() {
		params[p.Name] = p
	}
	c := m.cfg
	shapeHint := fmt.Sprintf("%s has n_layer %d, n_embd %d, n_positions %d, vocab_size %d", ConfigFile, c.NLayer, c.NEmbd, c.BlockSize, c.VocabSize)

	found := map[string]string{} // parameter name → key in the file
	var lmHead string
	for _, key := range f.Names() {
		name := strings.TrimPrefix(key, "transformer.")
		switch {
		case bufferKey.MatchString(name):
			continue
		case key == "lm_head.weight":
			lmHead = key
			continue
		}
		if _, ok := params[name]; !ok {
			return fail(key, "unexpected tensor: not a parameter of the GPT-2 that config.json describes (%s)", shapeHint)
		}
		if prev, dup := found[name]; dup {
			return fail(key, "stored twice, also as %q", prev)
		}
		found[name] = key
	}
	for _, p := range m.BaseParams() {
		key, ok := found[p.Name]
		if !ok {
			return fail(p.Name, "missing (neither %q nor %q is in the file; %s)", p.Name, "transformer."+p.Name, shapeHint)
		}
		if t, _ := f.Tensor(key); !slices.Equal(t.Shape, p.Shape()) {
			return fail(key, "shape %v, want %v (%s)", t.Shape, p.Shape(), shapeHint)
		}
		if err := graph.LoadParam(f, key, p); err != nil {
			return fmt.Errorf("gpt: load: %w", err)
		}
		if i := firstNonFinite(p); i >= 0 {
			return fail(key, "element %d is %v", i, p.Values()[i])
		}
	}
	if lmHead != "" {
		if err := m.checkTiedHead(f, lmHead); err != nil {
			return fmt.Errorf("gpt: load %s: %w", path, err)
		}
	}
	return nil
}

// checkTiedHead accepts an lm_head.weight only when it equals wte.weight
// (after conversion to the model's dtype): golora's head is always tied.
func (m *Model) checkTiedHead(f *safetensors.File, key string) error {
	head := m.WTE.Weight.Clone()
	head.Name = key
	t, _ := f.Tensor(key)
	if !slices.Equal(t.Shape, head.Shape()) {
		return fmt.Errorf("tensor %q: shape %v, want %v like wte.weight (the LM head is tied to it)", key, t.Shape, head.Shape())
	}
	if err := graph.LoadParam(f, key, head); err != nil {
		return err
	}
	i := firstDiff(head.Float32s(), m.WTE.Weight.Float32s())
	if head.DType() == graph.Float64 {
		i = firstDiff(head.Float64s(), m.WTE.Weight.Float64s())
	}
	if i >= 0 {
		return fmt.Errorf("tensor %q differs from wte.weight at element %d (%v vs %v): golora's GPT-2 ties the LM head to wte and cannot load a separate head",
			key, i, head.Values()[i], m.WTE.Weight.Values()[i])
	}
	return nil
}

// firstDiff returns the first index where a and b differ, or −1.
func firstDiff[T float32 | float64](a, b []T) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// firstNonFinite returns the index of the first NaN or ±Inf in p, or −1.
func firstNonFinite(p *graph.Param) int {
	if d := p.Float32s(); d != nil {
		for i, v := range d {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return i
			}
		}
		return -1
	}
	for i, v := range p.Float64s() {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return i
		}
	}
	return -1
}

// Save writes the model to dir as a Hugging Face GPT-2 folder: config.json
// (GPT2Config keys plus "golora_tokenizer") and model.safetensors (the
// BaseParams under their Hugging Face names, F32 for a float32 model and F64
// for a float64 one, with metadata format "pt"). Load(dir) gives back the
// same model bit for bit; the folder has the layout in which the Hugging
// Face library reads a GPT2LMHeadModel.
//
// A model whose tokenizer is "hf" also gets the tokenizer files it was
// loaded with (or that SetTokenizer gave it), so the folder reloads with
// the same tokenizer.
//
// The folder is replaced atomically (see atomicfile.ReplaceDir): a reader
// sees the old complete folder or the new one. To keep that promise without
// deleting anything else, Save refuses a dir that holds files other than
// config.json, model.safetensors and the tokenizer files it writes. It also refuses a model whose layers
// SetLayer replaced (LoRA wrappers): merge and unwrap them first, or save the
// adapter with package lora, so that no trained weight is silently left out.
func (m *Model) Save(dir string) error {
	if r := m.replaced(); len(r) > 0 {
		return fmt.Errorf("gpt: save %s: layers %s are replaced by wrappers (LoRA?): restore the base layers (merging first to keep the change) or save the adapter separately", dir, strings.Join(r, ", "))
	}
	tok, err := m.Tokenizer()
	if err != nil {
		return fmt.Errorf("gpt: save %s: %w", dir, err)
	}
	var tokFiles []tokenizer.File
	if m.cfg.Tokenizer == TokenizerHF {
		tokFiles = m.hfFiles.Files()
	}
	if entries, err := os.ReadDir(dir); err == nil {
		var other []string
		for _, e := range entries {
			n := e.Name()
			if n == ConfigFile || n == WeightsFile || slices.ContainsFunc(tokFiles, func(f tokenizer.File) bool { return f.Name == n }) {
				continue
			}
			other = append(other, n)
		}
		if len(other) > 0 {
			return fmt.Errorf("gpt: save %s: the folder also holds %s, which saving would delete: save to a new folder", dir, strings.Join(other, ", "))
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("gpt: save: %w", err)
	}
	config, err := marshalConfig(m.cfg, tok)
	if err != nil {
		return fmt.Errorf("gpt: save %s: %w", dir, err)
	}
	var tensors []safetensors.Tensor
	for _, p := range m.BaseParams() {
		tensors = append(tensors, graph.ParamTensor(p.Name, p))
	}
	err = atomicfile.ReplaceDir(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, ConfigFile), config, 0o644); err != nil {
			return err
		}
		for _, f := range tokFiles {
			if err := os.WriteFile(filepath.Join(tmp, f.Name), f.Data, 0o644); err != nil {
				return err
			}
		}
		return safetensors.WriteFile(filepath.Join(tmp, WeightsFile), tensors, safetensors.WithChecksums(map[string]string{"format": "pt"}))
	})
	if err != nil {
		return fmt.Errorf("gpt: save: %w", err)
	}
	return nil
}
