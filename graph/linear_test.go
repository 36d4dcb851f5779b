package graph

import "testing"

func linearCases() []opCase {
	return []opCase{
		{name: "x·W+b", params: []pspec{{name: "x", shape: []int{5, 4}}, {name: "W", shape: []int{4, 3}}, {name: "b", shape: []int{3}}},
			build: func(b *Builder, p []*Node) *Node { return Linear(p[0], p[1], p[2]) }},
		{name: "x·W", params: []pspec{{name: "x", shape: []int{5, 4}}, {name: "W", shape: []int{4, 3}}},
			build: func(b *Builder, p []*Node) *Node { return Linear(p[0], p[1], nil) }},
		{name: "x·Wᵀ+b", params: []pspec{{name: "x", shape: []int{5, 4}}, {name: "W", shape: []int{3, 4}}, {name: "b", shape: []int{3}}},
			build: func(b *Builder, p []*Node) *Node { return LinearT(p[0], p[1], p[2]) }},
		{name: "add", params: []pspec{{name: "x", shape: []int{2, 3}}, {name: "y", shape: []int{2, 3}}},
			build: func(b *Builder, p []*Node) *Node { return Add(p[0], p[1]) }},
		{name: "mul", params: []pspec{{name: "x", shape: []int{2, 3}}, {name: "y", shape: []int{2, 3}}},
			build: func(b *Builder, p []*Node) *Node { return Mul(p[0], p[1]) }},
		{name: "sum", params: []pspec{{name: "x", shape: []int{2, 3}}},
			build: func(b *Builder, p []*Node) *Node { return Sum(p[0]) }},
		{name: "shared weight", params: []pspec{{name: "x", shape: []int{5, 4}}, {name: "W", shape: []int{4, 4}}},
			build: func(b *Builder, p []*Node) *Node { return Linear(Linear(p[0], p[1], nil), p[1], nil) }},
	}
}

func TestLinearGradients(t *testing.T) {
	for _, c := range linearCases() {
		t.Run(c.name, func(t *testing.T) { runOpCase(t, c) })
	}
}

func TestLinearMatchesReference(t *testing.T) {
	ps := makeParams([]pspec{{name: "x", shape: []int{3, 2}}, {name: "W", shape: []int{2, 4}}, {name: "b", shape: []int{4}}}, Float64, 9)
	got := forward(t, Float64, ps, func(b *Builder, p []*Node) *Node { return Linear(p[0], p[1], p[2]) })
	x, w, bias := ps[0].Float64s(), ps[1].Float64s(), ps[2].Float64s()
	for i := 0; i < 3; i++ {
		for j := 0; j < 4; j++ {
			want := bias[j]
			for k := 0; k < 2; k++ {
				want += x[i*2+k] * w[k*4+j]
			}
			if d := got[i*4+j] - want; d > 1e-14 || d < -1e-14 {
				t.Fatalf("y[%d,%d] = %v, want %v", i, j, got[i*4+j], want)
			}
		}
	}
	gotT := forward(t, Float64, []*Param{ps[0], transposed(ps[1]), ps[2]}, func(b *Builder, p []*Node) *Node { return LinearT(p[0], p[1], p[2]) })
	compareRel(t, "LinearT", gotT, got, 1e-15)
}

func transposed(p *Param) *Param {
	s := p.Shape()
	out := NewParam(p.Name+"ᵀ", Float64, s[1], s[0])
	for i := 0; i < s[0]; i++ {
		for j := 0; j < s[1]; j++ {
			out.Float64s()[j*s[0]+i] = p.Float64s()[i*s[1]+j]
		}
	}
	return out
}

func TestLinearShapeErrors(t *testing.T) {
	b := NewBuilder(Float64, 1)
	x := b.Input("x", 2, 3)
	w := b.Param(NewParam("w", Float64, 4, 5))
	y := Linear(x, w, nil)
	if y.Err() == nil {
		t.Fatal("mismatched inner sizes built without error")
	}
	if _, err := b.Compile(Sum(y)); err == nil {
		t.Fatal("compile after a failed op succeeded")
	}
}
