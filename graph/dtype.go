package graph

import (
	"fmt"

	"gorgonia.org/tensor"
)

// DType is the floating-point type of a parameter or a graph: Float32 or Float64.
type DType int

const (
	// Float32 is IEEE-754 single precision, the type models train in.
	Float32 DType = iota
	// Float64 is IEEE-754 double precision, the type gradient checks run in.
	Float64
)

// String returns "float32" or "float64".
func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	}
	return fmt.Sprintf("DType(%d)", int(d))
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	if d == Float32 {
		return 4
	}
	return 8
}

// ParseDType turns "float32"/"f32" or "float64"/"f64" into a DType.
func ParseDType(s string) (DType, error) {
	switch s {
	case "float32", "f32", "F32":
		return Float32, nil
	case "float64", "f64", "F64":
		return Float64, nil
	}
	return 0, fmt.Errorf("graph: unknown dtype %q (want float32 or float64)", s)
}

func (d DType) valid() bool { return d == Float32 || d == Float64 }

func (d DType) tensorDtype() tensor.Dtype {
	if d == Float64 {
		return tensor.Float64
	}
	return tensor.Float32
}

func fromTensorDtype(t tensor.Dtype) (DType, bool) {
	switch t {
	case tensor.Float32:
		return Float32, true
	case tensor.Float64:
		return Float64, true
	}
	return 0, false
}
