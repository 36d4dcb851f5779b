// Package openblas links the system's OpenBLAS into builds with the openblas
// tag and exposes the one OpenBLAS setting package graph needs. Without the
// tag it is empty.
package openblas
