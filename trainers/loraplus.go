package trainers

import (
	"strings"

	"github.com/golora/golora/graph"
)

// LoRA+ (Hayou et al. 2024, arXiv 2402.12354) trains the B factors of LoRA
// faster than the A factors: η_B = ratio·η_A. PEFT's create_loraplus_optimizer
// sorts the trainable parameters into four groups, by name and shape, and
// so does LoRAPlusGroups.
const (
	// GroupLoRAA holds the A factors and every other trainable matrix: η.
	GroupLoRAA = "lora_A"
	// GroupLoRAB holds the B factors and every one-dimensional trainable
	// parameter (biases, DoRA magnitudes, LayerNorm gains): ratio·η.
	GroupLoRAB = "lora_B"
	// GroupLoRABNoDecay is GroupLoRAB's biases and LayerNorm parameters,
	// which never decay.
	GroupLoRABNoDecay = "lora_B_no_decay"
	// GroupLoRAEmbedding holds the parameters of adapters on embeddings
	// (their A, B and DoRA magnitude): Config.LoRAPlusLREmbedding.
	GroupLoRAEmbedding = "lora_embedding"
)

// defaultLoRAPlusLREmbedding is PEFT's loraplus_lr_embedding.
const defaultLoRAPlusLREmbedding = 1e-6

// LoRAPlusGroups returns AdamW.Group for LoRA+ with cfg's ratio, embedding
// learning rate and weight decay (see Config.LoRAPlusRatio), given every
// parameter of the model (all are needed to tell which layers are
// embeddings). The rules, PEFT's on golora's parameter names:
//
//   - a parameter of a layer with an adapter on an embedding (its name
//     contains ".lora_embedding_", or it is a DoRA magnitude
//     "<path>.lora_magnitude_vector…" of such a layer): GroupLoRAEmbedding,
//     η_emb (LoRAPlusLREmbedding, default 1e-6), λ = LoRAPlusWeightDecay;
//   - else a name containing "lora_B", or a one-dimensional parameter:
//     ratio·η, λ = LoRAPlusWeightDecay (GroupLoRAB), or 0 for a bias or a
//     LayerNorm parameter (GroupLoRABNoDecay);
//   - else (lora_A, other matrices): GroupLoRAA, η, λ = LoRAPlusWeightDecay.
//
// η is Config.LR; every group's rate follows the schedule.
func LoRAPlusGroups(all []*graph.Param, cfg Config) func(p *graph.Param) ParamGroup {
	embLR := cfg.LoRAPlusLREmbedding
	if embLR == 0 {
		embLR = defaultLoRAPlusLREmbedding
	}
	embScale := 0.0
	if cfg.LR > 0 {
		embScale = embLR / cfg.LR
	}
	embedding := map[string]bool{} // layer paths of adapters on embeddings
	for _, p := range all {
		if i := strings.Index(p.Name, ".lora_embedding_"); i >= 0 {
			embedding[p.Name[:i]] = true
		}
	}
	wd := cfg.LoRAPlusWeightDecay
	return func(p *graph.Param) ParamGroup {
		if i := strings.Index(p.Name, ".lora_"); i >= 0 && embedding[p.Name[:i]] {
			return ParamGroup{Name: GroupLoRAEmbedding, LRScale: embScale, WeightDecay: wd}
		}
		if strings.Contains(p.Name, "lora_B") || len(p.Shape()) == 1 {
			if strings.Contains(p.Name, "bias") || isLayerNorm(p.Name) {
				return ParamGroup{Name: GroupLoRABNoDecay, LRScale: cfg.LoRAPlusRatio}
			}
			return ParamGroup{Name: GroupLoRAB, LRScale: cfg.LoRAPlusRatio, WeightDecay: wd}
		}
		return ParamGroup{Name: GroupLoRAA, LRScale: 1, WeightDecay: wd}
	}
}

// isLayerNorm reports a LayerNorm parameter by golora's naming ("ln_f.…",
// "h.0.ln_1.…").
func isLayerNorm(name string) bool {
	for _, seg := range strings.Split(name, ".") {
		if strings.HasPrefix(seg, "ln_") || seg == "ln" || seg == "norm" || strings.HasSuffix(seg, "layernorm") || strings.HasSuffix(seg, "_norm") {
			return true
		}
	}
	return false
}
