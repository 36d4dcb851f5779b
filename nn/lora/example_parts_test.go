package lora_test

import (
	"fmt"
	"log"

	"github.com/golora/golora/nn/lora"
)

// A fused layer's parts are reached by name: the adapter's slice on v, the
// columns of v, and the Section 7 analysis of ΔW_v as plain Go values.
func ExampleModel_Analyze() {
	m, _ := lora.Inject(newGuideHost(1), lora.Config{R: 2, Targets: []string{"q", "v"}})
	guideTrain(m, 3)
	const path = "h.0.attn.c_attn" // [4, 12]: q | k | v
	ad, _ := m.Adapter(path, lora.DefaultAdapter)
	v, err := ad.Slice("v")
	if err != nil {
		log.Fatal(err)
	}
	off, width, _ := m.Columns(path, "v")
	fmt.Println(ad.Parts(), v.Offset, v.Width, off, width)
	an, err := m.Analyze(path, "v", lora.DefaultAdapter)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(an.Rank, len(an.DeltaW), len(an.DeltaW[0]), len(an.Spectrum), an.NormDeltaW > 0, an.Spectrum[2] < 1e-6*an.Spectrum[0])
	_, err = ad.Slice("k")
	fmt.Println(err)
	// Output:
	// [q v] 8 4 8 4
	// 2 4 4 4 true true
	// lora: adapter "default" adapts parts q, v of the layer, not "k"
}
