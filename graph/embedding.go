package graph

import (
	"errors"
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Embedding looks up rows of table: out[i] = table[ids[i]] for a float table
// [V, d] and an integer input ids [N], giving [N, d]. The gradient with
// respect to the table scatter-adds the rows of dy, so an id that occurs
// several times gets the sum of its rows' gradients:
//
//	dtable[v] = Σ_{i: ids[i] = v} dy[i]
//
// ids are not differentiable. An id outside [0, V) makes the run (Program.Run
// or Forward) return an error naming the id; nothing panics.
func Embedding(table, ids *Node) *Node {
	if table != nil && table.err == nil && table.q != nil {
		return quantEmbedding(table, ids)
	}
	b, bad := check("Embedding", table, ids)
	if bad != nil {
		return bad
	}
	if table.isInt {
		return b.fail(errors.New("graph: Embedding: table is an integer node, want a float [V, d] node"))
	}
	if !ids.isInt {
		return b.fail(fmt.Errorf("graph: Embedding: ids %s is not an integer input", ids.Name()))
	}
	ts := table.n.Shape()
	grads := func(in []*G.Node, _, dy *G.Node) ([]*G.Node, error) {
		// dy [N, d], ids [N] → dtable [V, d]
		dt, _, err := b.gradNode(&embedGradKernel{v: ts[0], ids: ids.Name()}, dy, in[1])
		return []*G.Node{dt, nil}, err
	}
	gn, _, err := b.apply(&embedKernel{ids: ids.Name()}, []bool{true, false}, grads, table.n, ids.n)
	return b.wrap(gn, err, "Embedding", table, ids)
}

// embedKernel gathers table rows; ids names the ids input in errors.
type embedKernel struct{ ids string }

func (*embedKernel) String() string { return "Embedding" }

func (*embedKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	t, ids := in[0], in[1]
	if t.Dims() != 2 {
		return nil, fmt.Errorf("table shape %v, want [V, d]", t)
	}
	if ids.Dims() != 1 {
		return nil, fmt.Errorf("ids shape %v, want [N]", ids)
	}
	return tensor.Shape{ids[0], t[1]}, nil
}

func (k *embedKernel) forward(out tval, in []tval) error {
	v, d := in[0].shape[0], in[0].shape[1]
	if err := checkIDs(k.ids, in[1].ints, v); err != nil {
		return err
	}
	if out.f32 != nil {
		gatherRows(out.f32, in[0].f32, in[1].ints, d)
	} else {
		gatherRows(out.f64, in[0].f64, in[1].ints, d)
	}
	return nil
}

// checkIDs reports the first id outside [0, v) of the input called name.
func checkIDs(name string, ids []int, v int) error {
	for i, id := range ids {
		if id < 0 || id >= v {
			return fmt.Errorf("%s: id %d at position %d is outside [0, %d)", name, id, i, v)
		}
	}
	return nil
}

// gatherRows copies table[ids[i]] into row i of out; rows have d elements.
func gatherRows[T floatT](out, table []T, ids []int, d int) {
	for i, id := range ids {
		copy(out[i*d:(i+1)*d], table[id*d:(id+1)*d])
	}
}

// embedGradKernel scatter-adds dy [N, d] into a [V, d] table gradient.
type embedGradKernel struct {
	v   int
	ids string
}

func (*embedGradKernel) String() string { return "Embedding.dtable" }

func (k *embedGradKernel) outShape(in []tensor.Shape) (tensor.Shape, error) {
	return tensor.Shape{k.v, in[0][1]}, nil
}

func (k *embedGradKernel) forward(out tval, in []tval) error {
	if err := checkIDs(k.ids, in[1].ints, k.v); err != nil {
		return err
	}
	d := in[0].shape[1]
	if out.f32 != nil {
		scatterAddRows(out.f32, in[0].f32, in[1].ints, d)
	} else {
		scatterAddRows(out.f64, in[0].f64, in[1].ints, d)
	}
	return nil
}

// scatterAddRows overwrites out with zeros and adds row i of dy into row
// ids[i]. The whole table is cleared each run: the buffer may have been
// reused in place by a gradient sum (a tied weight), so no row can be
// assumed to still be zero.
func scatterAddRows[T floatT](out, dy []T, ids []int, d int) {
	clear(out)
	for i, id := range ids {
		dst := out[id*d : (id+1)*d]
		for j, v := range dy[i*d : (i+1)*d] {
			dst[j] += v
		}
	}
}
