//go:build !openblas

package graph

const blasName = "gonum"
