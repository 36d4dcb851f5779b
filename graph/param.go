package graph

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gorgonia.org/tensor"
)

// Param is a named tensor whose value outlives any single graph. Graphs built
// from it bind its storage directly, so an update made in place (by an
// optimizer, a merge or a load) is seen by the next run of every compiled
// Program that uses it.
//
// Trainable decides, when a Program is compiled, whether the Program computes a
// gradient for the parameter. A parameter that is not trainable is frozen: no
// gradient node is built for it and no optimizer sees it.
type Param struct {
	// Name is the parameter's dotted path, e.g. "h.0.attn.c_attn.weight".
	Name string
	// Trainable marks the parameter for gradient computation.
	Trainable bool

	value *tensor.Dense
	q     *QTensor // set when the weight is held quantized (value is nil)
}

// NewParam returns a zero-filled trainable parameter of the given shape. A
// parameter has at least one dimension: no shape gives shape [1].
//
// A shape with a zero or negative dimension, or a dtype other than Float32
// and Float64, is a programmer error: NewParam panics with a message that
// names the parameter. Where the shape or dtype come from data (a file, a
// flag, a config), call MakeParam, which returns that error instead.
func NewParam(name string, dt DType, shape ...int) *Param {
	p, err := MakeParam(name, dt, shape...)
	if err != nil {
		panic(err)
	}
	return p
}

// MakeParam is NewParam for shapes and dtypes that come from data: it
// returns an error naming the parameter when a dimension is zero or
// negative, the element count overflows, or dt is not Float32 or Float64.
func MakeParam(name string, dt DType, shape ...int) (*Param, error) {
	if len(shape) == 0 {
		shape = []int{1}
	}
	n, err := checkShape(name, dt, shape)
	if err != nil {
		return nil, err
	}
	shape = append([]int(nil), shape...)
	var t *tensor.Dense
	if dt == Float64 {
		t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float64, n)))
	} else {
		t = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
	}
	return &Param{Name: name, Trainable: true, value: t}, nil
}

// checkShape returns the element count of shape, or an error when a
// dimension is not positive, the count overflows an int, or dt is unknown.
func checkShape(name string, dt DType, shape []int) (int, error) {
	if !dt.valid() {
		return 0, fmt.Errorf("graph: parameter %s: unknown dtype %v (want Float32 or Float64)", name, dt)
	}
	n := 1
	for i, s := range shape {
		if s <= 0 {
			return 0, fmt.Errorf("graph: parameter %s: shape %v: dimension %d is %d, want > 0", name, shape, i, s)
		}
		if n > math.MaxInt/s {
			return 0, fmt.Errorf("graph: parameter %s: shape %v has more elements than an int holds", name, shape)
		}
		n *= s
	}
	return n, nil
}

// NewParamFrom wraps a copy of data (a []float32 or []float64 whose length is
// the product of shape) as a trainable parameter.
func NewParamFrom(name string, data interface{}, shape ...int) (*Param, error) {
	n, err := checkShape(name, Float32, shape)
	if err != nil {
		return nil, err
	}
	var p *Param
	switch d := data.(type) {
	case []float32:
		if len(d) != n {
			return nil, fmt.Errorf("graph: parameter %s: %d values for shape %v", name, len(d), shape)
		}
		p, _ = MakeParam(name, Float32, shape...)
		copy(p.Float32s(), d)
	case []float64:
		if len(d) != n {
			return nil, fmt.Errorf("graph: parameter %s: %d values for shape %v", name, len(d), shape)
		}
		p, _ = MakeParam(name, Float64, shape...)
		copy(p.Float64s(), d)
	default:
		return nil, fmt.Errorf("graph: parameter %s: data of type %T (want []float32 or []float64)", name, data)
	}
	return p, nil
}

// DType reports the element type.
func (p *Param) DType() DType {
	if p.q != nil {
		return Float32
	}
	dt, _ := fromTensorDtype(p.value.Dtype())
	return dt
}

// Shape returns a copy of the parameter's shape.
func (p *Param) Shape() []int {
	if p.q != nil {
		return p.q.Shape()
	}
	return append([]int(nil), p.value.Shape()...)
}

// Len is the number of elements.
func (p *Param) Len() int {
	if p.q != nil {
		return p.q.rows * p.q.cols
	}
	return p.value.Shape().TotalSize()
}

// Float32s returns the backing storage of a float32 parameter (nil for
// float64 and for a quantized parameter). Writes to it change the parameter
// in place.
func (p *Param) Float32s() []float32 {
	if p.q != nil || p.value.Dtype() != tensor.Float32 {
		return nil
	}
	return p.value.Float32s()
}

// Float64s returns the backing storage of a float64 parameter (nil for
// float32). Writes to it change the parameter in place.
func (p *Param) Float64s() []float64 {
	if p.q != nil || p.value.Dtype() != tensor.Float64 {
		return nil
	}
	return p.value.Float64s()
}

// Values returns a float64 copy of the values, whatever the dtype (for a
// quantized parameter, its dequantized values).
func (p *Param) Values() []float64 {
	if p.q != nil {
		out := make([]float64, p.Len())
		dequantRange(p.q, out, 0)
		return out
	}
	if d := p.Float64s(); d != nil {
		return append([]float64(nil), d...)
	}
	src := p.Float32s()
	out := make([]float64, len(src))
	for i, v := range src {
		out[i] = float64(v)
	}
	return out
}

// At returns one element as a float64, whatever the dtype. With one index
// it is the flat (row-major) position; with one index per dimension it is
// that element: p.At(i, j) of a matrix. An index out of range, or a count of
// indices that is neither 1 nor the number of dimensions, is a programmer
// error: At panics with a message naming the parameter, its shape and the
// index, as a slice or a gonum matrix would.
func (p *Param) At(idx ...int) float64 {
	i := flatIndex("Param "+p.Name, p.value.Shape(), idx)
	if d := p.Float64s(); d != nil {
		return d[i]
	}
	return float64(p.Float32s()[i])
}

// Set writes v (converted to the parameter's dtype) into one element,
// addressed as in At: p.Set(v, i, j). It panics, as At does, on an index
// out of range.
func (p *Param) Set(v float64, idx ...int) {
	i := flatIndex("Param "+p.Name, p.value.Shape(), idx)
	if d := p.Float64s(); d != nil {
		d[i] = v
		return
	}
	p.Float32s()[i] = float32(v)
}

// flatIndex turns idx (one flat index, or one per dimension of shape) into
// a flat row-major index, panicking with a message naming what when it is
// out of range.
func flatIndex(what string, shape []int, idx []int) int {
	n := 1
	for _, s := range shape {
		n *= s
	}
	switch {
	case len(idx) == 1:
		if idx[0] < 0 || idx[0] >= n {
			panic(fmt.Sprintf("graph: %s %v: index %d out of range [0, %d)", what, shape, idx[0], n))
		}
		return idx[0]
	case len(idx) != len(shape):
		panic(fmt.Sprintf("graph: %s %v: %d indices %v, want 1 (flat) or %d", what, shape, len(idx), idx, len(shape)))
	}
	flat := 0
	for d, i := range idx {
		if i < 0 || i >= shape[d] {
			panic(fmt.Sprintf("graph: %s %v: index %v out of range in dimension %d", what, shape, idx, d))
		}
		flat = flat*shape[d] + i
	}
	return flat
}

// SetValues overwrites the values in place from float64s, converting to the
// parameter's dtype.
func (p *Param) SetValues(v []float64) error {
	if len(v) != p.Len() {
		return fmt.Errorf("graph: parameter %s: %d values for %d elements", p.Name, len(v), p.Len())
	}
	if p.q != nil {
		return fmt.Errorf("graph: parameter %s is held at %v: dequantize it before writing its values", p.Name, p.q.prec)
	}
	if d := p.Float64s(); d != nil {
		copy(d, v)
		return nil
	}
	d := p.Float32s()
	for i, x := range v {
		d[i] = float32(x)
	}
	return nil
}

// CopyFrom overwrites p's values in place with src's, which must have the same
// shape; the dtype is converted when it differs.
func (p *Param) CopyFrom(src *Param) error {
	if !slices.Equal(p.Shape(), src.Shape()) {
		return fmt.Errorf("graph: copy %s into %s: shape %v, want %v", src.Name, p.Name, src.Shape(), p.Shape())
	}
	if p.DType() == src.DType() && p.q == nil && src.q == nil {
		if p.DType() == Float64 {
			copy(p.Float64s(), src.Float64s())
		} else {
			copy(p.Float32s(), src.Float32s())
		}
		return nil
	}
	return p.SetValues(src.Values())
}

// Clone returns a deep copy with the same name and trainable flag.
func (p *Param) Clone() *Param {
	if p.q != nil {
		return &Param{Name: p.Name, Trainable: p.Trainable, q: p.q.clone()}
	}
	c := NewParam(p.Name, p.DType(), p.Shape()...)
	c.Trainable = p.Trainable
	_ = c.CopyFrom(p)
	return c
}

// Convert returns a deep copy in the given dtype.
func (p *Param) Convert(dt DType) *Param {
	c := NewParam(p.Name, dt, p.Shape()...)
	c.Trainable = p.Trainable
	_ = c.SetValues(p.Values())
	return c
}

// Zero sets every element to 0 (a quantized parameter becomes a float32
// one).
func (p *Param) Zero() {
	if p.q != nil {
		p.value, p.q = newDense(Float32, tensor.Shape(p.q.Shape())), nil
		return
	}
	if d := p.Float64s(); d != nil {
		clear(d)
		return
	}
	clear(p.Float32s())
}

// String describes the parameter as "name [shape] dtype".
func (p *Param) String() string {
	if p.q != nil {
		return fmt.Sprintf("%s %v %s", p.Name, p.Shape(), p.q.prec)
	}
	return fmt.Sprintf("%s %v %s", p.Name, p.Shape(), p.DType())
}

// CountParams sums the element counts of ps.
func CountParams(ps []*Param) int {
	n := 0
	for _, p := range ps {
		n += p.Len()
	}
	return n
}

// Quantize holds a frozen 2-D float32 parameter at precision prec (F32
// leaves it as it is), dropping its float32 storage. A quantized parameter
// is read only by Linear, LinearT, Embedding and QuantColNorms, through
// tiles dequantized on the fly; it gets no gradient and cannot be written
// in place (Dequantize it first).
func (p *Param) Quantize(prec Precision, opt QuantizeOptions) error {
	if prec == F32 {
		return nil
	}
	if p.q != nil {
		return fmt.Errorf("graph: parameter %s is already held at %v", p.Name, p.q.prec)
	}
	if p.Trainable {
		return fmt.Errorf("graph: parameter %s is trainable: only a frozen weight can be quantized", p.Name)
	}
	s := p.Shape()
	if len(s) != 2 || p.DType() != Float32 {
		return fmt.Errorf("graph: parameter %s is %v %v: only a 2-D float32 weight can be quantized", p.Name, s, p.DType())
	}
	q, err := Quantize(p.Float32s(), s[0], s[1], prec, opt)
	if err != nil {
		return fmt.Errorf("graph: parameter %s: %w", p.Name, err)
	}
	p.q, p.value = q, nil
	return nil
}

// Precision is the parameter's storage precision (F32 for a float32 or
// float64 parameter).
func (p *Param) Precision() Precision {
	if p.q == nil {
		return F32
	}
	return p.q.prec
}

// Quantized returns the quantized storage, or nil.
func (p *Param) Quantized() *QTensor { return p.q }

// Dequantize turns a quantized parameter back into a float32 one with its
// dequantized values (a no-op for a float parameter): the path to merge an
// adapter into it or to write it out.
func (p *Param) Dequantize() {
	if p.q == nil {
		return
	}
	t := newDense(Float32, tensor.Shape(p.q.Shape()))
	dequantRange(p.q, t.Float32s(), 0)
	p.value, p.q = t, nil
}

// StorageBytes is the memory the parameter's values take.
func (p *Param) StorageBytes() int64 {
	if p.q != nil {
		return p.q.Bytes()
	}
	return int64(p.Len() * p.DType().Size())
}

// ParamMatrix copies a 2-D parameter into a float64 matrix of its shape.
func ParamMatrix(p *Param) (*mat.Dense, error) {
	if p == nil {
		return nil, errors.New("graph: ParamMatrix: nil parameter")
	}
	s := p.Shape()
	if len(s) != 2 || s[0] == 0 || s[1] == 0 {
		return nil, fmt.Errorf("graph: ParamMatrix: parameter %s has shape %v, want a non-empty matrix", p.Name, s)
	}
	return mat.NewDense(s[0], s[1], p.Values()), nil
}
