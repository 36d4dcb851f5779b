package lora

import (
	"math"
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
