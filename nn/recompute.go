package nn

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/golora/golora/graph"
)

// ParseRecompute reads an activation-recomputation policy: "none" (0),
// "blocks" (1: recompute every block from its input) or "every-N" (N:
// keep the input of every N-th block and recompute N blocks at a time).
func ParseRecompute(s string) (int, error) {
	switch s {
	case "none", "":
		return 0, nil
	case "blocks":
		return 1, nil
	}
	if v, ok := strings.CutPrefix(s, "every-"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("unknown recompute policy %q (want none, blocks or every-N with N ≥ 1)", s)
}

// RecomputeName is ParseRecompute's inverse.
func RecomputeName(every int) string {
	switch every {
	case 0:
		return "none"
	case 1:
		return "blocks"
	}
	return fmt.Sprintf("every-%d", every)
}

// Blocks applies block(0), …, block(n−1) to x in turn. With every ≥ 1, each
// run of every consecutive blocks is one graph.Checkpoint: only its input
// is kept, and its activations are recomputed in the backward pass, giving
// the same gradients.
func Blocks(x *graph.Node, n, every int, block func(i int, x *graph.Node) *graph.Node) *graph.Node {
	if every <= 0 {
		for i := range n {
			x = block(i, x)
		}
		return x
	}
	for i := 0; i < n; i += every {
		j := min(n, i+every)
		x = graph.Checkpoint(x, func(x *graph.Node) *graph.Node {
			for k := i; k < j; k++ {
				x = block(k, x)
			}
			return x
		})
	}
	return x
}
