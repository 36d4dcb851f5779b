package experiments_test

import (
	"fmt"

	"github.com/golora/golora/experiments"
	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
)

func ExampleDetectFormat() {
	fmt.Println(experiments.DetectFormat([]byte("name[Eagle]||The Eagle serves food.\n")))
	fmt.Println(experiments.DetectFormat([]byte("Once upon a time\n")))
	// Output:
	// completions
	// text
}

func ExampleNewForward() {
	cfg, _ := gpt.Preset("nano")
	m, _ := gpt.New(cfg, graph.Float32)
	_ = m.Init(graph.NewRand(1))
	f, err := experiments.NewForward(m, 1, 4) // one sequence of 4 tokens
	if err != nil {
		panic(err)
	}
	defer f.Close()
	logits, _ := f.Run(gpt.ByteTokenizer().Encode("Go!\n"))
	fmt.Println(logits.Shape) // [4, 257]: next-token logits at every position
	// Output:
	// [4 257]
}

func ExampleStandardBenchConfig() {
	for _, name := range experiments.BenchConfigNames() {
		c, _ := experiments.StandardBenchConfig(name)
		fmt.Printf("%s: %d layers, d %d, context %d, batch %d\n", c.Name, c.Layers, c.Embd, c.Context, c.Batch)
	}
	// Output:
	// tiny: 2 layers, d 64, context 64, batch 16
	// small: 4 layers, d 128, context 128, batch 16
	// gpt2-124M: 12 layers, d 768, context 256, batch 4
	// smollm2-135M: 30 layers, d 576, context 256, batch 4
}

func ExampleMaxAbsDiff() {
	diff, scale, _ := experiments.MaxAbsDiff([]float64{1, -4, 2}, []float64{1, -4.5, 2.25})
	fmt.Println(diff, scale)
	// Output:
	// 0.5 4
}
