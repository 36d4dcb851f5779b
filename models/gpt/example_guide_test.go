package gpt_test

// Examples of package gpt's entry points, as used in docs/guide.md.

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn"
)

// guideNano is the "nano" preset, float64, with GPT-2's initialisation from
// seed.
func guideNano(seed uint64) *gpt.Model {
	cfg, err := gpt.Preset("nano")
	if err != nil {
		log.Fatal(err)
	}
	m, err := gpt.New(cfg, graph.Float64)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Init(graph.NewRand(seed)); err != nil {
		log.Fatal(err)
	}
	return m
}

func ExamplePresetNames() {
	fmt.Println(gpt.PresetNames())
	// Output: [nano micro mini gpt2 gpt2-medium]
}

func ExamplePreset() {
	for _, name := range []string{"nano", "gpt2"} {
		cfg, err := gpt.Preset(name)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(name, cfg.NLayer, cfg.NHead, cfg.NEmbd, cfg.BlockSize, cfg.VocabSize, cfg.Tokenizer, cfg.NumParams())
	}
	_, err := gpt.Preset("gpt5")
	fmt.Println(err != nil)
	// Output:
	// nano 3 3 48 128 257 bytes 103392
	// gpt2 12 12 768 1024 50257 gpt2 124439808
	// true
}

// Any shape is a Config; Validate names the first bad field.
func ExampleConfig_Validate() {
	cfg, _ := gpt.Preset("nano")
	cfg.BlockSize = 64                           // a shorter context: fewer wpe rows
	fmt.Println(cfg.Validate(), cfg.NumParams()) // 103,392 − 64·48
	cfg.NHead = 5                                // 48 is not divisible by 5
	fmt.Println(cfg.Validate() != nil)
	// Output:
	// <nil> 100320
	// true
}

// Init draws GPT-2's weights from a seeded source: N(0, 0.02²), with the
// residual projections c_proj scaled by 1/√(2·NLayer).
func ExampleModel_Init() {
	std := func(p *graph.Param) float64 {
		var s float64
		for _, v := range p.Values() {
			s += v * v
		}
		return math.Sqrt(s / float64(p.Len()))
	}
	a, b := guideNano(5), guideNano(5)
	same := fmt.Sprint(a.BaseParams()[4].Values()) == fmt.Sprint(b.BaseParams()[4].Values())
	fc, _ := a.BaseLayer("h.0.mlp.c_fc")
	proj, _ := a.BaseLayer("h.0.mlp.c_proj")
	fmt.Printf("same seed, same weights: %v; std c_fc %.3f, c_proj %.3f (0.02/√6 = %.3f)\n",
		same, std(fc.(*nn.Linear).Weight), std(proj.(*nn.Linear).Weight), 0.02/math.Sqrt(6))
	// Output: same seed, same weights: true; std c_fc 0.020, c_proj 0.008 (0.02/√6 = 0.008)
}

// Save writes a Hugging Face GPT-2 folder, which ReadConfig and Load read.
func ExampleModel_Save() {
	dir, err := os.MkdirTemp("", "guide-gpt")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "nano-go")
	if err := guideNano(1).Save(path); err != nil {
		log.Fatal(err)
	}
	cfg, err := gpt.ReadConfig(path)
	fmt.Println(cfg.NLayer, cfg.NEmbd, cfg.Tokenizer, err)
	// Output: 3 48 bytes <nil>
}

func ExampleReadConfig() {
	_, err := gpt.ReadConfig(filepath.Join(os.TempDir(), "no-such-model-folder"))
	fmt.Println(err != nil)
	// Output: true
}

// Layers lists what LoRA can wrap; SetLayer replaces one, BaseLayer returns
// the original.
func ExampleModel_Layers() {
	m := guideNano(1)
	for _, l := range m.Layers()[:5] {
		fmt.Println(l.Path)
	}
	fmt.Println(len(m.Layers()))
	base, _ := m.BaseLayer("h.1.mlp.c_fc")
	fmt.Println(m.SetLayer("h.1.mlp.c_fc", base), m.SetLayer("lm_head", base) != nil)
	// Output:
	// wte
	// h.0.attn.c_attn
	// h.0.attn.c_proj
	// h.0.mlp.c_fc
	// h.0.mlp.c_proj
	// 13
	// <nil> true
}

// BaseParams are the checkpoint's tensors in Hugging Face order.
func ExampleModel_BaseParams() {
	ps := guideNano(1).BaseParams()
	fmt.Println(len(ps), ps[0].Name, ps[1].Name, ps[2].Name, ps[len(ps)-1].Name)
	// Output: 40 wte.weight wpe.weight h.0.ln_1.weight ln_f.bias
}

// Loss is the masked next-token cross-entropy of Logits. An untrained
// model's loss is about ln V.
func ExampleModel_Loss() {
	m := guideNano(1)
	tok := gpt.ByteTokenizer()
	text := tok.Encode("func main() {}")
	n := len(text) - 1
	b := graph.NewBuilder(graph.Float64, 1)
	ids := b.IntConstant("ids", text[:n], n)
	targets := b.IntConstant("targets", text[1:], n)
	loss := m.Loss(ids, targets, nil, 1, n, 0)
	prog, err := b.Compile(loss)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Run(); err != nil { // forward and backward
		log.Fatal(err)
	}
	g, _ := prog.Grad(m.BaseParams()[0])
	fmt.Printf("loss %.2f ≈ ln 257 = %.2f; gradient of wte: %v\n", prog.Loss(), math.Log(257), g.Shape)
	// Output: loss 5.55 ≈ ln 257 = 5.55; gradient of wte: [257 48]
}

// Embed, the blocks' Forward and Head are the three stages of Logits.
func ExampleBlock_Forward() {
	m := guideNano(1)
	ids := []int{10, 20, 30, 40}
	b := graph.NewBuilder(graph.Float64, 1)
	in := b.IntConstant("ids", ids, 4)
	logits := m.Logits(in, 1, 4)
	x := m.Embed(in, b.IntConstant("pos", []int{0, 1, 2, 3}, 4)) // [4, 48]
	for _, blk := range m.H {
		x = blk.Forward(x, 1)
	}
	staged := m.Head(x) // [4, 257]
	prog, err := b.Compile(nil, logits, staged)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	prog.SetTraining(false)
	if err := prog.Forward(); err != nil {
		log.Fatal(err)
	}
	l1, _ := prog.Output(logits)
	l2, _ := prog.Output(staged)
	fmt.Println(l1.Shape, fmt.Sprint(l1.Values()) == fmt.Sprint(l2.Values()))
	// Output: [4 257] true
}

func ExampleByteTokenizer() {
	tok := gpt.ByteTokenizer()
	ids := tok.Encode("héllo<|endoftext|>") // é is two bytes
	fmt.Println(ids, tok.Decode(ids[:3]), tok.VocabSize())
	// Output: [104 195 169 108 108 111 256] hé 257
}

func ExampleGPT2Tokenizer() {
	tok, err := gpt.GPT2Tokenizer()
	if err != nil {
		log.Fatal(err)
	}
	ids := tok.Encode("LoRA adapts GPT-2.")
	fmt.Println(len(ids), tok.Decode(ids), tok.EOT())
	// Output: 9 LoRA adapts GPT-2. 50256
}

// A Generator keeps its compiled decoders between calls.
func ExampleModel_NewGenerator() {
	m := guideNano(1)
	gen, err := m.NewGenerator(gpt.GenerateOptions{MaxNewTokens: 5, StopTokens: []int{}})
	if err != nil {
		log.Fatal(err)
	}
	defer gen.Close()
	tok := gpt.ByteTokenizer()
	first, err := gen.Generate([][]int{tok.Encode("package ")})
	if err != nil {
		log.Fatal(err)
	}
	again, _ := gen.Generate([][]int{tok.Encode("package ")})
	fmt.Println(len(first[0].Tokens), fmt.Sprint(first[0].Tokens) == fmt.Sprint(again[0].Tokens)) // greedy: deterministic
	// Output: 5 true
}
