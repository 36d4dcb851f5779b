//go:build openblas

package graph

// #cgo LDFLAGS: -lopenblas
import "C"
