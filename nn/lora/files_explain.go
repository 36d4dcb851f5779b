package lora

import (
	"errors"
	"fmt"
	"sort"
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

// hostMismatch reports whether the key checkKeys reports first (the first
// missing key, else the first unexpected one) is an A or B matrix: then the
// file adapts other layers than this host has (another base). Other keys (a
// DoRA magnitude, a module to save) point at a file that disagrees with its
// own config instead.
func hostMismatch(have []string, want map[string][]int) bool {
	got := map[string]bool{}
	var extra []string
	for _, k := range have {
		got[k] = true
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	var missing []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	key := ""
	switch {
	case len(missing) > 0:
		key = missing[0]
	case len(extra) > 0:
		key = extra[0]
	}
	return strings.Contains(key, ".lora_A") || strings.Contains(key, ".lora_B") || strings.Contains(key, ".lora_embedding_")
}
