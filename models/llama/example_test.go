package llama_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/models/llama"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/tokenizer"
)

func ExamplePreset() {
	for _, name := range llama.PresetNames() {
		c, _ := llama.Preset(name)
		fmt.Printf("%-13s %2d layers, d %3d, %d/%d heads of %d, %11d parameters\n",
			name, c.NumLayers, c.Hidden, c.Heads, c.KVHeads, c.HeadWidth(), c.NumParams())
	}
	// Output:
	// llama-nano     3 layers, d  48, 4/2 heads of 12,       88704 parameters
	// llama-micro    4 layers, d 128, 4/2 heads of 32,      771328 parameters
	// smollm2-135M  30 layers, d 576, 9/3 heads of 64,   134515008 parameters
}

// A model is built from a config, initialised from a seed, and run like any
// golora model: Logits (or Loss) adds its graph to a builder.
func ExampleNew() {
	cfg, _ := llama.Preset("llama-nano")
	m, err := llama.New(cfg, graph.Float32)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Init(graph.NewRand(1)); err != nil {
		log.Fatal(err)
	}
	b := graph.NewBuilder(graph.Float32, 1)
	ids := b.IntConstant("ids", []int{72, 105, 33, 256}, 4) // one sequence of 4 byte ids
	logits := m.Logits(ids, 1, 4)
	prog, err := b.Compile(nil, logits)
	if err != nil {
		log.Fatal(err)
	}
	defer prog.Close()
	if err := prog.Forward(); err != nil {
		log.Fatal(err)
	}
	out, _ := prog.Output(logits)
	fmt.Println(logits.Shape(), out.Len())
	// Output: [4 257] 1028
}

// Save writes a Hugging Face folder (config.json, generation_config.json,
// model.safetensors, or shards with an index); Load reads one, converting
// F32, F16 or BF16 tensors.
func ExampleLoad() {
	cfg, _ := llama.Preset("llama-nano")
	m, _ := llama.New(cfg, graph.Float32)
	_ = m.Init(graph.NewRand(1))
	dir, _ := os.MkdirTemp("", "llama-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "nano")
	if err := m.SaveWith(path, llama.SaveOptions{DType: "BF16", MaxShardBytes: 100_000}); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(path)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	back, err := llama.Load(path, graph.Float32)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(back.Config().Arch, back.Config().NumLayers, back.VocabSize())
	// Output:
	// config.json
	// generation_config.json
	// model-00001-of-00002.safetensors
	// model-00002-of-00002.safetensors
	// model.safetensors.index.json
	// llama 3 257
}

// Generation runs on package gpt's decoder, KV cache and sampler; it stops
// at the model's eos ids unless StopTokens says otherwise.
func ExampleModel_Generate() {
	cfg, _ := llama.Preset("llama-nano")
	m, _ := llama.New(cfg, graph.Float32)
	_ = m.Init(graph.NewRand(1))
	gens, err := m.Generate([][]int{{72, 105}}, gpt.GenerateOptions{MaxNewTokens: 5, StopTokens: []int{}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(gens[0].Tokens), gens[0].Stop)
	// Output: 5 -1
}

// PEFT's target names work on the Hugging Face module paths, and adapter
// files use PEFT's keys.
func ExampleModel_Layers() {
	cfg, _ := llama.Preset("llama-nano")
	m, _ := llama.New(cfg, graph.Float32)
	lm, err := lora.Inject(m, lora.Config{R: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj"}})
	if err != nil {
		log.Fatal(err)
	}
	paths, _ := lm.Paths(lora.DefaultAdapter)
	fmt.Println(len(paths), paths[0], paths[1])
	fmt.Printf("%q\n", lm.KeyPrefix)
	// Output:
	// 6 model.layers.0.self_attn.q_proj model.layers.0.self_attn.v_proj
	// ""
}

func ExampleGenerationConfig_Options() {
	g := llama.NewGenerationConfig(151645, 151643)
	g.DoSample, g.Temperature, g.TopK, g.TopP = true, 0.6, 20, 0.95 // Qwen3's published defaults
	o, ignored := g.Options()
	fmt.Println(o.Temperature, o.TopK, o.TopP, o.StopTokens, ignored)
	// Output: 0.6 20 0.95 [151645 151643] []
}

// ReadConfig reads config.json in transformers' classic layout or v5's;
// ModelType tells a caller which package loads a folder.
func ExampleReadConfig() {
	dir, _ := os.MkdirTemp("", "llama-config")
	defer os.RemoveAll(dir)
	config := `{"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
	  "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
	  "max_position_embeddings": 40960, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
	  "tie_word_embeddings": true, "eos_token_id": 151645}`
	if err := os.WriteFile(filepath.Join(dir, llama.ConfigFile), []byte(config), 0o644); err != nil {
		log.Fatal(err)
	}
	kind, _ := llama.ModelType(dir)
	c, err := llama.ReadConfig(dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(kind, c.NumLayers, c.Heads, c.KVHeads, c.HeadDim, c.QKNorm, c.RoPE.Theta, c.EOS, c.NumParams())
	// Output: qwen3 28 16 8 128 true 1e+06 [151645] 596049920
}

// A model carries its Hugging Face tokenizer: Save writes tokenizer.json
// next to the weights, and LoadTokenizer reads it back without the weights.
func ExampleLoadTokenizer() {
	tok, err := tokenizer.LoadFile("../../tokenizer/testdata/bytelevel.json") // a small byte-level BPE
	if err != nil {
		log.Fatal(err)
	}
	cfg, _ := llama.Preset("llama-nano")
	cfg.VocabSize, cfg.BOS, cfg.EOS = 300, -1, []int{273} // its ids, and <|endoftext|>
	m, _ := llama.New(cfg, graph.Float32)
	if err := m.SetTokenizer(tok, 273); err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "llama-tok")
	defer os.RemoveAll(dir)
	if err := m.Save(filepath.Join(dir, "m")); err != nil {
		log.Fatal(err)
	}
	t, err := llama.LoadTokenizer(filepath.Join(dir, "m"))
	if err != nil {
		log.Fatal(err)
	}
	ids := t.Encode("Hello world")
	fmt.Println(t.Name(), ids, t.Decode(ids), t.EOT())
	// Output: hf [271 263] Hello world 273
}
