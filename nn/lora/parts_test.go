package lora_test

import (
	"math"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn/lora"
)

// TestPartsByName: the parts of a fused projection are reached by name,
// and the matrices and analyses of a part agree with values computed here
// element by element from the parameters (Param.At), with no offsets taken
// from the code under test.
func TestPartsByName(t *testing.T) {
	h, m := mustInject(t, graph.Float64, lora.Config{R: 2, Alpha: 4, Targets: []string{"q", "v"}, Seed: 1})
	train(t, h, 3, 0.5)
	const path = "h.0.attn.c_attn"
	ad, err := m.Adapter(path, lora.DefaultAdapter)
	if err != nil {
		t.Fatal(err)
	}
	w := h.attn[0].CAttn.(*lora.Linear).Base.Weight
	in, d := w.Shape()[0], w.Shape()[1]/3 // c_attn is [in, 3d]: q | k | v

	if got := ad.Parts(); strings.Join(got, ",") != "q,v" {
		t.Fatalf("Parts() = %v, want [q v]", got)
	}
	v, err := ad.Slice("v")
	if err != nil || v.Part != "v" || v.Offset != 2*d || v.Width != d {
		t.Fatalf("Slice(v) = %+v, %v; want part v at columns [%d, %d)", v, err, 2*d, 3*d)
	}
	if _, err := ad.Slice("k"); err == nil || !strings.Contains(err.Error(), "q, v") {
		t.Fatalf("Slice(k) of a q,v adapter: %v", err)
	}
	if _, err := ad.Slice(""); err == nil {
		t.Fatal(`Slice("") of a q,v adapter returned no error`)
	}
	for _, c := range []struct {
		part       string
		off, width int
	}{{"", 0, 3 * d}, {"q", 0, d}, {"k", d, d}, {"v", 2 * d, d}} {
		off, width, err := m.Columns(path, c.part)
		if err != nil || off != c.off || width != c.width {
			t.Fatalf("Columns(%q) = %d, %d, %v; want %d, %d", c.part, off, width, err, c.off, c.width)
		}
	}
	if _, _, err := m.Columns(path, "o"); err == nil || !strings.Contains(err.Error(), "q, k, v") {
		t.Fatalf("Columns(o): %v", err)
	}
	if _, _, err := m.Columns("h.0.mlp.c_fc", ""); err == nil {
		t.Fatal("Columns of a layer the adapter does not wrap returned no error")
	}

	// W_v and ΔW_v = s·A_v·B_v by hand.
	wv, err := m.Weight(path, "v")
	if err != nil {
		t.Fatal(err)
	}
	dwv, err := m.PartDeltaW(path, lora.DefaultAdapter, "v")
	if err != nil {
		t.Fatal(err)
	}
	want := make([][]float64, in)
	var fro float64
	for i := 0; i < in; i++ {
		want[i] = make([]float64, d)
		for j := 0; j < d; j++ {
			for k := 0; k < 2; k++ {
				want[i][j] += 2 * v.A.At(i, k) * v.B.At(k, j) // s = α/r = 2
			}
			fro += want[i][j] * want[i][j]
			if got := wv.At(i, j); got != w.At(i, 2*d+j) {
				t.Fatalf("Weight(v)[%d, %d] = %v, want W[%d, %d] = %v", i, j, got, i, 2*d+j, w.At(i, 2*d+j))
			}
			if got := dwv.At(i, j); math.Abs(got-want[i][j]) > 1e-12 {
				t.Fatalf("PartDeltaW(v)[%d, %d] = %v, want %v", i, j, got, want[i][j])
			}
		}
	}
	if fro == 0 {
		t.Fatal("the trained ΔW_v is zero: the test checks nothing")
	}
	dwk, err := m.PartDeltaW(path, lora.DefaultAdapter, "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range lora.Rows(dwk) {
		for _, x := range row {
			if x != 0 {
				t.Fatalf("ΔW_k has %v; the adapter does not adapt k", x)
			}
		}
	}

	a, err := m.Analyze(path, "v", lora.DefaultAdapter)
	if err != nil {
		t.Fatal(err)
	}
	if a.Rank != 2 || a.In != in || a.Out != d || len(a.DeltaW) != in || len(a.DeltaW[0]) != d {
		t.Fatalf("Analyze: rank %d, %d×%d, ΔW %d rows", a.Rank, a.In, a.Out, len(a.DeltaW))
	}
	if math.Abs(a.NormDeltaW-math.Sqrt(fro)) > 1e-12*math.Sqrt(fro) {
		t.Fatalf("NormDeltaW = %v, ‖ΔW_v‖_F by hand = %v", a.NormDeltaW, math.Sqrt(fro))
	}
	if math.Abs(a.DeltaW[in-1][d-1]-want[in-1][d-1]) > 1e-12 {
		t.Fatalf("Analysis.DeltaW corner = %v, want %v", a.DeltaW[in-1][d-1], want[in-1][d-1])
	}
	amp, err := lora.Amplification(wv, dwv, 2)
	if err != nil || math.Abs(a.Amplification-amp) > 1e-9*amp || math.Abs(a.ProjectedW*a.Amplification-a.NormDeltaW) > 1e-9 {
		t.Fatalf("Amplification %v (direct %v, %v), ProjectedW %v", a.Amplification, amp, err, a.ProjectedW)
	}
	if nz := len(a.Spectrum); nz != min(in, d) || a.Spectrum[2] > 1e-9*a.Spectrum[0] {
		t.Fatalf("spectrum of a rank-2 ΔW_v: %v", a.Spectrum)
	}

	grid, err := m.Similarity(path, "q", lora.DefaultAdapter, lora.DefaultAdapter)
	if err != nil || len(grid) != 2 || math.Abs(grid[1][1]-1) > 1e-12 {
		t.Fatalf("Similarity(q) of an adapter with itself = %v, %v; want φ(2, 2) = 1", grid, err)
	}
	if _, err := m.Similarity(path, "k", lora.DefaultAdapter, lora.DefaultAdapter); err == nil {
		t.Fatal("Similarity on a part the adapter does not adapt returned no error")
	}
}
