package lora

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// BiasMode says which biases train with an adapter (loralib's and PEFT's
// bias argument).
type BiasMode string

const (
	// BiasNone trains no bias (the default).
	BiasNone BiasMode = "none"
	// BiasAll trains every bias of the model: every parameter whose name
	// ends in ".bias".
	BiasAll BiasMode = "all"
	// BiasLoRAOnly trains the biases of the layers the adapter wraps.
	BiasLoRAOnly BiasMode = "lora_only"
)

// InitMode picks how a new adapter's A and B start.
type InitMode string

const (
	// InitDefault is loralib's and PEFT's default (init_lora_weights =
	// true): A ~ U(−1/√in, 1/√in) (kaiming-uniform with a = √5, fan-in
	// in), B = 0. Embeddings: A = 0, B ~ N(0, 1).
	InitDefault InitMode = "default"
	// InitGaussian is PEFT's "gaussian": A ~ N(0, σ²) with σ = 1/r, B = 0.
	// Embeddings as InitDefault.
	InitGaussian InitMode = "gaussian"
	// InitPiSSA is PEFT's "pissa": from the SVD W = U·Σ·Vᵀ of the base
	// weight [in, out] (of each adapted slice of a fused projection),
	// A = U_r·√(Σ_r/s) [in, r] and B = √(Σ_r/s)·V_rᵀ [r, out], so s·A·B is
	// the best rank-r approximation of W; the frozen base becomes
	// W_res = W − s·A·B. Linear layers only.
	InitPiSSA InitMode = "pissa"
)

// AllLinear is the target that selects every *nn.Linear layer of the host
// except one whose path ends in "lm_head" (PEFT's "all-linear").
const AllLinear = "all-linear"

// Config describes one adapter. Every field's zero value has a documented
// default, so the zero Config is usable: r = 8, α = 8 on every linear layer
// but an lm_head (AllLinear), plain LoRA initialised as loralib and PEFT do,
// no dropout and no biases trained. Validate reports what is wrong.
// Field names follow PEFT's LoraConfig, whose JSON keys are given.
type Config struct {
	// R is the rank r ≥ 1 of every update ("r"; default 8). A fused target
	// such as "c_attn[q,v]" gets rank R on each adapted slice.
	R int
	// Alpha is α ("lora_alpha"; default 8). The update is scaled by α/r, or
	// by α/√r when RSLoRA is set.
	Alpha float64
	// RSLoRA selects the rank-stabilised scale α/√r ("use_rslora").
	RSLoRA bool
	// DoRA selects weight-decomposed low-rank adaptation (Liu et al. 2024,
	// "use_dora"): each adapted layer also trains a magnitude vector m, one
	// entry per output column, and computes y = g ⊙ (x·W + s·(x·A)·B) + b
	// with g = m / ‖W + s·A·B‖ (column norms, held constant for
	// backpropagation). m starts at ‖W + s·A·B‖, so g = 1 and the model is
	// unchanged. On a fused layer adapted on some parts, m and g cover
	// every output column of the layer (see docs/lora.md).
	DoRA bool
	// Dropout is the LoRA dropout probability p ∈ [0, 1) on the input of
	// the low-rank path of Linear layers ("lora_dropout"; default 0).
	Dropout float64

	// Targets names the layers to adapt ("target_modules"). Each entry is
	// matched against every layer path of the host, and against the path
	// with the model's KeyPrefix in front:
	//
	//   - "c_attn": a layer whose path is "c_attn" or ends in ".c_attn";
	//   - "c_attn[q,v]": such a fused layer (see FusedParts), adapting only
	//     the output blocks q and v;
	//   - "q": when no layer is called q, the part q of every fused layer
	//     whose layout has a part q ("q","v" is "c_attn[q,v]" on GPT-2);
	//   - "all-linear" (AllLinear): every *nn.Linear except an lm_head.
	//
	// An entry that matches nothing is an error naming it. Empty Targets
	// and TargetRegex mean AllLinear.
	Targets []string
	// TargetRegex, instead of Targets, selects the layers whose path (or
	// KeyPrefix + path) the regular expression matches in full (PEFT's
	// string target_modules).
	TargetRegex string
	// Layers restricts adaptation to these layer indices
	// ("layers_to_transform"): the index is the number after LayersPattern
	// in a path ("h.3.attn.c_attn" is layer 3). Layers without an index are
	// left alone when Layers is set.
	Layers []int
	// LayersPattern is the path segment before the layer index
	// ("layers_pattern": "h" for GPT-2, "layers" for Llama-family models).
	// Empty, PEFT's default, takes the number after any segment (the last
	// such number in the path).
	LayersPattern string
	// RankPattern and AlphaPattern override R and Alpha per layer
	// ("rank_pattern", "alpha_pattern"). A key is a regular expression that
	// matches a layer when (.*\.)?(key)$ matches its path or KeyPrefix +
	// path; the longest matching key wins.
	RankPattern  map[string]int
	AlphaPattern map[string]float64

	// Bias says which biases train and are saved with the adapter ("bias";
	// default BiasNone).
	Bias BiasMode
	// ModulesToSave names modules (as Targets names layers, by path or path
	// suffix) whose parameters train fully and are saved with the adapter,
	// such as "ln_f" ("modules_to_save"). Each adapter keeps its own copy.
	ModulesToSave []string

	// Init picks the initialisation of A and B ("init_lora_weights";
	// default InitDefault).
	Init InitMode
	// Seed seeds the random initialisation.
	Seed uint64

	// FusedParts gives the output layout of fused projections, by layer
	// name (last path segment): the output columns split into equal blocks,
	// one per part. nil means GPT2FusedParts.
	FusedParts map[string][]string

	// BaseModel is recorded as "base_model_name_or_path".
	BaseModel string
	// TaskType is recorded as "task_type" (default "CAUSAL_LM").
	TaskType string
}

// GPT2FusedParts is GPT-2's fused projection: c_attn's 3d output columns
// are q | k | v.
func GPT2FusedParts() map[string][]string {
	return map[string][]string{"c_attn": {"q", "k", "v"}}
}

// PaperGPT2 is the paper's GPT-2 setting (Hu et al. 2021, Table 11): r = 4
// and α = 32 on W_q and W_v only (the q and v blocks of c_attn), LoRA
// dropout 0.1.
func PaperGPT2() Config {
	return Config{R: 4, Alpha: 32, Dropout: 0.1, Targets: []string{"q", "v"}}
}

// PEFTDefault is PEFT's LoraConfig default on GPT-2: r = 8, α = 8 on the
// whole fused c_attn (one rank-8 update for q, k and v together).
func PEFTDefault() Config {
	return Config{R: 8, Alpha: 8, Targets: []string{"c_attn"}}
}

// withDefaults returns c with the documented defaults filled in.
func (c Config) withDefaults() Config {
	if c.R == 0 {
		c.R = 8
	}
	if c.Alpha == 0 {
		c.Alpha = 8
	}
	if c.Bias == "" {
		c.Bias = BiasNone
	}
	if c.Init == "" {
		c.Init = InitDefault
	}
	if c.FusedParts == nil {
		c.FusedParts = GPT2FusedParts()
	}
	if c.TaskType == "" {
		c.TaskType = "CAUSAL_LM"
	}
	if len(c.Targets) == 0 && c.TargetRegex == "" {
		c.Targets = []string{AllLinear}
	}
	return c
}

// Validate reports the first invalid field of c (after defaults), or nil.
// It does not look at a model: Inject reports targets that match nothing.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.R < 1:
		return fmt.Errorf("lora: config: rank r = %d, want ≥ 1", c.R)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 0):
		return fmt.Errorf("lora: config: alpha = %v, want a finite α > 0", c.Alpha)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("lora: config: dropout = %v, want 0 ≤ p < 1", c.Dropout)
	case len(c.Targets) > 0 && c.TargetRegex != "":
		return errors.New("lora: config: set Targets or TargetRegex, not both")
	}
	switch c.Bias {
	case BiasNone, BiasAll, BiasLoRAOnly:
	default:
		return fmt.Errorf("lora: config: bias %q, want none, all or lora_only", c.Bias)
	}
	switch c.Init {
	case InitDefault, InitGaussian, InitPiSSA:
	default:
		return fmt.Errorf("lora: config: init %q, want default, gaussian or pissa", c.Init)
	}
	if c.TargetRegex != "" {
		if _, err := regexp.Compile(c.TargetRegex); err != nil {
			return fmt.Errorf("lora: config: target regex %q: %w", c.TargetRegex, err)
		}
	}
	for _, t := range c.Targets {
		if _, _, err := parseTarget(t); err != nil {
			return err
		}
	}
	for k, r := range c.RankPattern {
		if _, err := patternRegexp(k); err != nil {
			return fmt.Errorf("lora: config: rank pattern %q: %w", k, err)
		}
		if r < 1 {
			return fmt.Errorf("lora: config: rank pattern %q: rank %d, want ≥ 1", k, r)
		}
	}
	for k, a := range c.AlphaPattern {
		if _, err := patternRegexp(k); err != nil {
			return fmt.Errorf("lora: config: alpha pattern %q: %w", k, err)
		}
		if !(a > 0) || math.IsInf(a, 0) {
			return fmt.Errorf("lora: config: alpha pattern %q: alpha %v, want a finite α > 0", k, a)
		}
	}
	for name, parts := range c.FusedParts {
		if len(parts) < 2 {
			return fmt.Errorf("lora: config: fused layer %q has %d parts, want ≥ 2", name, len(parts))
		}
		seen := map[string]bool{}
		for _, p := range parts {
			if p == "" || seen[p] {
				return fmt.Errorf("lora: config: fused layer %q: part %q is empty or repeated", name, p)
			}
			seen[p] = true
		}
	}
	for _, l := range c.Layers {
		if l < 0 {
			return fmt.Errorf("lora: config: layer index %d, want ≥ 0", l)
		}
	}
	return nil
}

// Scale is the factor s of the update s·(x·A)·B for rank r and alpha α:
// α/r, or α/√r with RSLoRA.
func (c Config) Scale(r int, alpha float64) float64 {
	if c.RSLoRA {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

// parseTarget splits "name[p1,p2]" into name and parts (nil parts for a
// plain name).
func parseTarget(t string) (string, []string, error) {
	open := strings.IndexByte(t, '[')
	if open < 0 {
		if t == "" || strings.ContainsAny(t, "]") {
			return "", nil, fmt.Errorf("lora: config: target %q is not a layer name", t)
		}
		return t, nil, nil
	}
	if open == 0 || !strings.HasSuffix(t, "]") {
		return "", nil, fmt.Errorf("lora: config: target %q: want name[part,part,…]", t)
	}
	var parts []string
	seen := map[string]bool{}
	for _, p := range strings.Split(t[open+1:len(t)-1], ",") {
		p = strings.TrimSpace(p)
		if p == "" || seen[p] || strings.ContainsAny(p, "[]") {
			return "", nil, fmt.Errorf("lora: config: target %q: part %q is empty, repeated or malformed", t, p)
		}
		seen[p] = true
		parts = append(parts, p)
	}
	return t[:open], parts, nil
}

// nameMatches reports whether target name t names the layer at path (PEFT's
// rule: the whole path, or a suffix after a dot), also trying prefix+path.
func nameMatches(t, path, prefix string) bool {
	for _, p := range []string{path, prefix + path} {
		if p == t || strings.HasSuffix(p, "."+t) {
			return true
		}
	}
	return false
}

func patternRegexp(key string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:.*\.)?(?:` + key + `)$`)
}

// patternValue returns the value of the longest key of pattern that
// matches path (or prefix+path); ties go to the lexically first key.
func patternValue[V any](pattern map[string]V, path, prefix string) (V, bool) {
	keys := make([]string, 0, len(pattern))
	for k := range pattern {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		re, err := patternRegexp(k)
		if err != nil {
			continue // Validate reports it
		}
		if re.MatchString(path) || re.MatchString(prefix+path) {
			return pattern[k], true
		}
	}
	var zero V
	return zero, false
}

// layerIndex returns the number after the segment pattern in path
// ("h.3.attn.c_attn" → 3), or false. An empty pattern takes the last
// number that follows a segment and precedes another, as PEFT's default
// (layers_pattern None) does.
func layerIndex(path, pattern string) (int, bool) {
	segs := strings.Split(path, ".")
	if pattern == "" {
		for i := len(segs) - 3; i >= 0; i-- {
			if n, err := strconv.Atoi(segs[i+1]); err == nil && n >= 0 {
				return n, true
			}
		}
		return 0, false
	}
	for i := 0; i+2 < len(segs); i++ {
		if segs[i] == pattern {
			if n, err := strconv.Atoi(segs[i+1]); err == nil && n >= 0 {
				return n, true
			}
		}
	}
	return 0, false
}

// rankAlpha gives the rank and alpha of the layer at path.
func (c Config) rankAlpha(path, prefix string) (int, float64) {
	r, alpha := c.R, c.Alpha
	if v, ok := patternValue(c.RankPattern, path, prefix); ok {
		r = v
	}
	if v, ok := patternValue(c.AlphaPattern, path, prefix); ok {
		alpha = v
	}
	return r, alpha
}

// clone returns a deep copy of c.
func (c Config) clone() Config {
	c.Targets = append([]string(nil), c.Targets...)
	c.Layers = append([]int(nil), c.Layers...)
	c.ModulesToSave = append([]string(nil), c.ModulesToSave...)
	if c.RankPattern != nil {
		m := make(map[string]int, len(c.RankPattern))
		for k, v := range c.RankPattern {
			m[k] = v
		}
		c.RankPattern = m
	}
	if c.AlphaPattern != nil {
		m := make(map[string]float64, len(c.AlphaPattern))
		for k, v := range c.AlphaPattern {
			m[k] = v
		}
		c.AlphaPattern = m
	}
	if c.FusedParts != nil {
		m := make(map[string][]string, len(c.FusedParts))
		for k, v := range c.FusedParts {
			m[k] = append([]string(nil), v...)
		}
		c.FusedParts = m
	}
	return c
}
