package trainers

import (
	"math"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if err := PaperE2EConfig().Validate(); err != nil {
		t.Fatalf("paper config: %v", err)
	}
	cases := []struct {
		field string
		edit  func(*Config)
	}{
		{"Batch", func(c *Config) { c.Batch = 0 }},
		{"Context", func(c *Config) { c.Context = -1 }},
		{"Accumulate", func(c *Config) { c.Accumulate = 0 }},
		{"Steps", func(c *Config) { c.Steps, c.Epochs = 0, 0 }},
		{"LR", func(c *Config) { c.LR = math.NaN() }},
		{"MinLR", func(c *Config) { c.MinLR = 1 }},
		{"Beta1", func(c *Config) { c.Beta1 = 1 }},
		{"Beta2", func(c *Config) { c.Beta2 = -0.1 }},
		{"Eps", func(c *Config) { c.Eps = 0 }},
		{"WeightDecay", func(c *Config) { c.WeightDecay = math.Inf(1) }},
		{"MaxGradNorm", func(c *Config) { c.MaxGradNorm = -1 }},
		{"LabelSmoothing", func(c *Config) { c.LabelSmoothing = 1 }},
		{"CheckpointEvery", func(c *Config) { c.CheckpointEvery = 5 }},
		{"BestPath", func(c *Config) { c.CheckpointPath, c.BestPath = "a", "a" }},
		{"LogEvery", func(c *Config) { c.LogEvery = 0 }},
		{"LoRAPlusRatio", func(c *Config) { c.LoRAPlusRatio = -1 }},
		{"LoRAPlusLREmbedding", func(c *Config) { c.LoRAPlusLREmbedding = math.NaN() }},
		{"LoRAPlusWeightDecay", func(c *Config) { c.LoRAPlusWeightDecay = -0.1 }},
		{"schedule", func(c *Config) { c.Schedule = "Linear" }},
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %v", c.field, err)
		}
	}
}
