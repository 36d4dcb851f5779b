package gpt_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
)

// A model is built from a preset (or any valid Config) and initialised from
// a seed. Its parameters carry the Hugging Face GPT-2 names.
func ExampleNew() {
	cfg, err := gpt.Preset("nano")
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := gpt.New(cfg, graph.Float32)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Init(graph.NewRand(42)); err != nil {
		fmt.Println(err)
		return
	}
	ps := m.Params()
	fmt.Println(len(ps), "tensors,", graph.CountParams(ps), "parameters")
	fmt.Println(ps[0])
	fmt.Println(ps[4])
	fmt.Println(ps[len(ps)-1])
	// Output:
	// 40 tensors, 103392 parameters
	// wte.weight [257 48] float32
	// h.0.attn.c_attn.weight [48 144] float32
	// ln_f.bias [48] float32
}

// Logits builds the forward pass for a batch of token sequences; Loss adds
// the next-token cross-entropy.
func ExampleModel_Logits() {
	cfg, _ := gpt.Preset("nano")
	m, _ := gpt.New(cfg, graph.Float32)
	_ = m.Init(graph.NewRand(1))
	tok, _ := gpt.NewTokenizer(cfg.Tokenizer)
	text := tok.Encode("hello!")       // 6 ids
	ids, targets := text[:5], text[1:] // predict each next byte

	b := graph.NewBuilder(graph.Float32, 1)
	in := b.IntInput("ids", 5)
	logits := m.Logits(in, 1, 5) // [5, 257]
	loss := graph.SoftmaxCrossEntropy(logits, b.IntConstant("targets", targets, 5), nil, 0)
	prog, err := b.Compile(loss, logits)
	if err != nil {
		fmt.Println(err)
		return
	}
	prog.SetTraining(false) // no dropout
	_ = prog.SetInts(in, ids)
	if err := prog.Forward(); err != nil {
		fmt.Println(err)
		return
	}
	out, _ := prog.Output(logits)
	fmt.Println("logits", out.Shape)
	fmt.Printf("loss %.1f (an untrained model: about ln 257 = 5.5)\n", prog.Loss())
	// Output:
	// logits [5 257]
	// loss 5.5 (an untrained model: about ln 257 = 5.5)
}

// Save writes a Hugging Face GPT-2 folder; Load reads it back, as it reads
// a GPT-2 downloaded from the Hugging Face hub.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "golora-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	cfg, _ := gpt.Preset("nano")
	m, _ := gpt.New(cfg, graph.Float32)
	_ = m.Init(graph.NewRand(7))
	path := filepath.Join(dir, "nano")
	if err := m.Save(path); err != nil {
		fmt.Println(err)
		return
	}
	entries, _ := os.ReadDir(path)
	for _, e := range entries {
		fmt.Println(e.Name())
	}

	back, err := gpt.Load(path, graph.Float32)
	if err != nil {
		fmt.Println(err)
		return
	}
	same := back.Config() == m.Config()
	for i, p := range back.Params() {
		q := m.Params()[i]
		for j, v := range p.Float32s() {
			same = same && v == q.Float32s()[j]
		}
	}
	fmt.Println("same model:", same)

	_, err = gpt.Load(filepath.Join(dir, "missing"), graph.Float32)
	fmt.Println(err != nil)
	// Output:
	// config.json
	// model.safetensors
	// same model: true
	// true
}
