package graph

import (
	"fmt"

	"github.com/golora/golora/safetensors"
)

// This file adapts Params to the safetensors file format, so that the format
// package depends on nothing of golora's outside internal/.

// LoadParam overwrites p's values with the tensor name of f. The tensor's
// shape must equal p's exactly; its dtype (F32, F64, F16 or BF16) is
// converted to p's as File.Float32s or File.Float64s would, straight into
// p's storage. p is unchanged on error, and the error names the file and
// the tensor.
func LoadParam(f *safetensors.File, name string, p *Param) error {
	if p == nil {
		return fmt.Errorf("graph: load tensor %q: nil parameter", name)
	}
	if p.DType() == Float64 {
		return f.Float64sInto(name, p.Shape(), p.Float64s())
	}
	return f.Float32sInto(name, p.Shape(), p.Float32s())
}

// ParamTensor returns a copy of p's values as an F32 or F64 safetensors
// tensor named name, following p's dtype.
func ParamTensor(name string, p *Param) safetensors.Tensor {
	if p.DType() == Float64 {
		return safetensors.FromFloat64s(name, p.Shape(), p.Float64s())
	}
	return safetensors.FromFloat32s(name, p.Shape(), p.Float32s())
}
