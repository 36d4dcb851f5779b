package graph

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Precision is how a frozen weight is stored: float32 (the default), bf16,
// int8 or nf4. Only a frozen (not trainable) 2-D parameter can be held at a
// precision other than F32; ops read it through tiles dequantized on the fly
// (see Linear), so its float32 values never exist whole.
type Precision int

const (
	// F32 is a float32 (or float64) weight as loaded: no quantization.
	F32 Precision = iota
	// BF16 keeps the upper 16 bits of each float32 (rounded to nearest
	// even): 2 bytes an element; exact for weights that ship in bf16.
	BF16
	// Int8 stores round(w/s·127) with one absmax scale s per output
	// channel: 1 byte an element.
	Int8
	// NF4 is QLoRA's 4-bit NormalFloat: the index of the nearest of 16
	// codes per element, two a byte, times the absmax of its block of 64,
	// those absmax values double-quantized (offset by their mean, then
	// 8 bits each with one scale per block of 256): about 0.52 bytes an
	// element.
	NF4
)

// String returns "f32", "bf16", "int8" or "nf4".
func (p Precision) String() string {
	switch p {
	case F32:
		return "f32"
	case BF16:
		return "bf16"
	case Int8:
		return "int8"
	case NF4:
		return "nf4"
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// ParsePrecision reads "f32", "bf16", "int8" or "nf4" (case-insensitive;
// "float32" too).
func ParsePrecision(s string) (Precision, error) {
	switch strings.ToLower(s) {
	case "f32", "float32", "fp32":
		return F32, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "int8":
		return Int8, nil
	case "nf4":
		return NF4, nil
	}
	return F32, fmt.Errorf("unknown precision %q (want f32, bf16, int8 or nf4)", s)
}

// Block sizes of NF4 and of its double quantization (QLoRA §3).
const (
	NF4Block   = 64  // elements per absmax
	NF4DQBlock = 256 // absmax values per 8-bit scale
)

// NF4Codes are the 16 values of the 4-bit NormalFloat data type of QLoRA
// (Dettmers et al. 2023, appendix E): quantiles of N(0, 1) scaled to
// [−1, 1], with an exact zero. An element is stored as the index of the
// nearest code to w/absmax.
var NF4Codes = [16]float32{
	-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
	-0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0,
	0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
	0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
}

// NF4HalfGap returns half the gap between the two codes around v in
// [−1, 1]: the largest rounding error, in units of the block's absmax, of
// an element whose scaled value is v.
func NF4HalfGap(v float64) float64 {
	for i := 0; i+1 < len(NF4Codes); i++ {
		if v <= float64(NF4Codes[i+1]) {
			return (float64(NF4Codes[i+1]) - float64(NF4Codes[i])) / 2
		}
	}
	return (float64(NF4Codes[15]) - float64(NF4Codes[14])) / 2
}

// nearestNF4 is the index of the code nearest to v (v in [−1, 1]).
func nearestNF4(v float32) byte {
	// first code whose midpoint with the next is ≥ v
	lo, hi := 0, 15
	for lo < hi {
		mid := (lo + hi) / 2
		if v > (NF4Codes[mid]+NF4Codes[mid+1])/2 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return byte(lo)
}

// QTensor is a 2-D [rows, cols] matrix held at a Precision, row-major like
// the float matrix it came from.
type QTensor struct {
	prec       Precision
	rows, cols int

	bf16 []uint16

	i8       []int8
	scale    []float32 // int8: absmax/127 per output channel
	rowScale bool      // int8: one scale per row (else per column)

	nibbles []byte    // nf4: two code indices a byte, the even element in the low nibble
	am8     []int8    // nf4: double-quantized absmax per block of 64
	amScale []float32 // nf4: the scale of am8 per block of 256 absmax values
	amMean  float32   // nf4: the mean the absmax values were offset by
	amF32   []float32 // nf4 without double quantization (tests): the absmax values
}

// QuantizeOptions tunes Quantize.
type QuantizeOptions struct {
	// RowScale gives int8 one scale per row instead of one per column. A
	// Linear weight [in, out] has its output channels in columns; an
	// embedding table [V, d] (used as a tied LM head) in rows.
	RowScale bool
	// NoDoubleQuant keeps NF4's block absmax values in float32 (tests
	// compare the code book's error bound without the second step).
	NoDoubleQuant bool
}

// Quantize stores the row-major matrix w [rows, cols] at precision p.
func Quantize(w []float32, rows, cols int, p Precision, opt QuantizeOptions) (*QTensor, error) {
	if rows <= 0 || cols <= 0 || len(w) != rows*cols {
		return nil, fmt.Errorf("graph: quantize: %d values for shape [%d, %d]", len(w), rows, cols)
	}
	for i, v := range w {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("graph: quantize: element %d is %v", i, v)
		}
	}
	q := &QTensor{prec: p, rows: rows, cols: cols}
	switch p {
	case BF16:
		q.bf16 = make([]uint16, len(w))
		for i, v := range w {
			q.bf16[i] = toBF16(v)
		}
	case Int8:
		q.quantizeInt8(w, opt.RowScale)
	case NF4:
		q.quantizeNF4(w, !opt.NoDoubleQuant)
	default:
		return nil, fmt.Errorf("graph: quantize: precision %v stores nothing to quantize", p)
	}
	return q, nil
}

// toBF16 rounds a float32 to bfloat16, to nearest even.
func toBF16(v float32) uint16 {
	b := math.Float32bits(v)
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

func fromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

func (q *QTensor) quantizeInt8(w []float32, rowScale bool) {
	q.rowScale = rowScale
	q.i8 = make([]int8, len(w))
	n := q.cols
	if rowScale {
		n = q.rows
	}
	absmax := make([]float32, n)
	for i := range q.rows {
		for j := range q.cols {
			a := float32(math.Abs(float64(w[i*q.cols+j])))
			k := j
			if rowScale {
				k = i
			}
			absmax[k] = max(absmax[k], a)
		}
	}
	q.scale = make([]float32, n)
	for k, a := range absmax {
		q.scale[k] = a / 127
	}
	for i := range q.rows {
		for j := range q.cols {
			k := j
			if rowScale {
				k = i
			}
			s := q.scale[k]
			if s == 0 {
				continue
			}
			q.i8[i*q.cols+j] = int8(math.RoundToEven(float64(w[i*q.cols+j] / s)))
		}
	}
}

func (q *QTensor) quantizeNF4(w []float32, double bool) {
	n := len(w)
	blocks := (n + NF4Block - 1) / NF4Block
	absmax := make([]float32, blocks)
	for b := range blocks {
		var a float32
		for _, v := range w[b*NF4Block : min(n, (b+1)*NF4Block)] {
			a = max(a, float32(math.Abs(float64(v))))
		}
		absmax[b] = a
	}
	if double {
		q.doubleQuant(absmax)
	} else {
		q.amF32 = absmax
	}
	q.nibbles = make([]byte, (n+1)/2)
	for b := range blocks {
		a := q.absmax(b) // the value dequantization will use
		for i := b * NF4Block; i < min(n, (b+1)*NF4Block); i++ {
			var c byte = 7 // the zero code
			if a != 0 {
				c = nearestNF4(min(1, max(-1, w[i]/a)))
			}
			q.nibbles[i/2] |= c << (4 * (i % 2))
		}
	}
}

// doubleQuant stores absmax as their mean plus 8-bit offsets, one scale per
// NF4DQBlock values.
func (q *QTensor) doubleQuant(absmax []float32) {
	var sum float64
	for _, a := range absmax {
		sum += float64(a)
	}
	q.amMean = float32(sum / float64(len(absmax)))
	q.am8 = make([]int8, len(absmax))
	q.amScale = make([]float32, (len(absmax)+NF4DQBlock-1)/NF4DQBlock)
	for k := range q.amScale {
		blk := absmax[k*NF4DQBlock : min(len(absmax), (k+1)*NF4DQBlock)]
		var m float32
		for _, a := range blk {
			m = max(m, float32(math.Abs(float64(a-q.amMean))))
		}
		q.amScale[k] = m / 127
		if m == 0 {
			continue
		}
		for i, a := range blk {
			q.am8[k*NF4DQBlock+i] = int8(math.RoundToEven(float64((a - q.amMean) / q.amScale[k])))
		}
	}
}

// absmax is the (dequantized) absmax of NF4 block b.
func (q *QTensor) absmax(b int) float32 {
	if q.amF32 != nil {
		return q.amF32[b]
	}
	return q.amMean + float32(q.am8[b])*q.amScale[b/NF4DQBlock]
}

// Precision is the storage precision.
func (q *QTensor) Precision() Precision { return q.prec }

// Shape is [rows, cols].
func (q *QTensor) Shape() []int { return []int{q.rows, q.cols} }

// Bytes is the storage the tensor holds.
func (q *QTensor) Bytes() int64 {
	return int64(2*len(q.bf16) + len(q.i8) + 4*len(q.scale) + len(q.nibbles) + len(q.am8) + 4*len(q.amScale) + 4*len(q.amF32) + 4)
}

// Dequantize returns the whole matrix in float32 (tests, merges and
// exports; ops never call it).
func (q *QTensor) Dequantize() []float32 {
	out := make([]float32, q.rows*q.cols)
	dequantRange(q, out, 0)
	return out
}

func (q *QTensor) clone() *QTensor {
	c := *q
	c.bf16 = slices.Clone(q.bf16)
	c.i8 = slices.Clone(q.i8)
	c.scale = slices.Clone(q.scale)
	c.nibbles = slices.Clone(q.nibbles)
	c.am8 = slices.Clone(q.am8)
	c.amScale = slices.Clone(q.amScale)
	c.amF32 = slices.Clone(q.amF32)
	return &c
}

// dequantRange writes the elements [start, start+len(dst)) of the
// row-major matrix into dst.
func dequantRange[T floatT](q *QTensor, dst []T, start int) {
	switch q.prec {
	case BF16:
		for i := range dst {
			dst[i] = T(fromBF16(q.bf16[start+i]))
		}
	case Int8:
		for i := 0; i < len(dst); {
			k := start + i
			r, c0 := k/q.cols, k%q.cols
			n := min(len(dst)-i, q.cols-c0)
			row, out := q.i8[k:k+n], dst[i:i+n]
			if q.rowScale {
				s := q.scale[r]
				for j, v := range row {
					out[j] = T(float32(v) * s)
				}
			} else {
				sc := q.scale[c0 : c0+n]
				for j, v := range row {
					out[j] = T(float32(v) * sc[j])
				}
			}
			i += n
		}
	case NF4:
		for i := 0; i < len(dst); {
			k := start + i
			b := k / NF4Block
			a := q.absmax(b)
			end := min(len(dst), (b+1)*NF4Block-start)
			for ; i < end; i++ {
				k := start + i
				c := (q.nibbles[k/2] >> (4 * (k % 2))) & 15
				dst[i] = T(NF4Codes[c] * a)
			}
		}
	}
}

// dequantRows writes rows [r0, r1) into dst ((r1−r0)·cols elements).
func dequantRows[T floatT](q *QTensor, dst []T, r0, r1 int) {
	dequantRange(q, dst[:(r1-r0)*q.cols], r0*q.cols)
}
