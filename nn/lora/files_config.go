package lora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

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
