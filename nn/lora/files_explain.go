package lora

import (
	"errors"
	"fmt"
	"strings"
)

// ErrOtherBase is wrapped by the errors of Load and LoadAdapter when the
// adapter does not fit the host: its layers, tensor names or shapes are
// those of another base model.
var ErrOtherBase = errors.New("adapter made for another base")

// otherBase marks err as a mismatch between the adapter and the host.
func otherBase(err error) error { return fmt.Errorf("%w: %w", ErrOtherBase, err) }

// blockNote is the one-line explanation written into the golora key of an
// adapter stored in block form: how PEFT's r and lora_alpha relate to the
// rank and α asked for, taking lt (the first layer) as the example.
func blockNote(c Config, lt layerTensors) string {
	p := lt.plan
	k := len(p.parts)
	if k == 0 {
		return ""
	}
	scale := "α/r"
	if c.RSLoRA {
		scale = "α/√r"
	}
	return fmt.Sprintf("r = %d and lora_alpha = %g above are PEFT's block form: the %s parts of %s are stored as one update of rank %d×%d = %d with lora_alpha %g, which keeps the scale %s; golora.r = %d and golora.lora_alpha = %g are the values asked for",
		lt.fileRank, lt.fileAlpha, strings.Join(p.parts, ", "), lastSegment(p.path), k, p.rank, lt.fileRank, lt.fileAlpha, scale, p.rank, p.alpha)
}
