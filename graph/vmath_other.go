//go:build !amd64

package graph

// hasAVX2 is false off amd64: every kernel runs its Go loop.
const hasAVX2 = false

func expSumVec(dst, src []float32, m float32) (done int, sum float64) { return 0, 0 }

func geluVec(y, t, x []float32) int { return 0 }

func geluGradVec(dx, x, t, dy []float32) int { return 0 }

func siluVec(y, s, x []float32) int { return 0 }

func lnVec(d int) bool { return false }

func lnRowFwd(y, x, g, b []float32, eps float64) (mu, r float64) { panic("graph: no vector LayerNorm") }

func lnRowBwd(dx, x, g, dy []float32, mu, r float32, dg, db []float64) {
	panic("graph: no vector LayerNorm")
}

func maxVec(x []float32) (m float32, done int) { return 0, 0 }

func dotVec(a, b []float32) (dot float64, done int) { return 0, 0 }

func dsoftmaxVec(out, a, p, g []float32, d float32) int { return 0 }
