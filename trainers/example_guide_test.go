package trainers_test

// Examples of package trainers' entry points, as used in docs/guide.md.

import (
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/trainers"
)

// guideTable is the smallest LanguageModel: a table of next-token logits
// per token, logits[i] = T[ids[i]] (a bigram model). T starts at zero, so
// every token is equally likely.
type guideTable struct{ t *graph.Param }

func newGuideTable(vocab int) *guideTable {
	return &guideTable{t: graph.NewParam("table", graph.Float32, vocab, vocab)}
}

func (m *guideTable) Params() []*graph.Param { return []*graph.Param{m.t} }
func (m *guideTable) VocabSize() int         { return m.t.Shape()[0] }
func (m *guideTable) Logits(ids *graph.Node, batch, ctx int) *graph.Node {
	b := ids.Builder()
	return graph.Embedding(b.Param(m.t), ids) // [batch·ctx] → [batch·ctx, V]
}

// guideBytes encodes text as bytes (vocabulary 256, no end-of-text id).
func guideBytes(s string) []int {
	ids := make([]int, len(s))
	for i := range ids {
		ids[i] = int(s[i])
	}
	return ids
}

// guideData is "abab…" cut into windows of 8 tokens: after a comes b.
func guideData() *trainers.TextDataset {
	var text []byte
	for i := 0; i < 200; i++ {
		text = append(text, "ab"[i%2])
	}
	ds, err := trainers.NewTextDataset(guideBytes(string(text)), 8)
	if err != nil {
		log.Fatal(err)
	}
	return ds
}

// Any model with Params, Logits and VocabSize is a LanguageModel: full
// fine-tuning, LoRA and evaluation only differ in which parameters are
// Trainable.
func ExampleLanguageModel() {
	var m trainers.LanguageModel = newGuideTable(256)
	fmt.Println(m.VocabSize(), m.Params())
	// Output: 256 [table [256 256] float32]
}

// Train runs AdamW steps; an Observer sees every step and validation.
func ExampleTrainer_Train() {
	train, valid, err := trainers.Split(guideData(), 0.2, 1)
	if err != nil {
		log.Fatal(err)
	}
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps, cfg.LR, cfg.EvalEvery = 4, 8, 30, 0.1, 10
	var steps, evals int
	cfg.Observer = trainers.Observer{
		OnStep: func(trainers.StepInfo) { steps++ },
		OnEval: func(e trainers.EvalInfo) { evals++ },
	}
	tr, err := trainers.New(newGuideTable(256), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	res, err := tr.Train(train, valid)
	if err != nil {
		log.Fatal(err)
	}
	// The untrained table's loss is ln 256: training lowers it.
	fmt.Println(res.Steps, steps, evals, res.Losses[0] > res.Losses[29], res.Valid.Loss < math.Log(256)-1)
	// Output: 30 30 3 true true
}

// Evaluate scores a dataset with the current parameters: an untrained table
// gives every one of 256 tokens the same probability, loss ln 256.
func ExampleTrainer_Evaluate() {
	cfg := trainers.DefaultConfig()
	cfg.Context = 8
	tr, err := trainers.New(newGuideTable(256), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	r, err := tr.Evaluate(guideData())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("loss %.4f = ln 256 = %.4f, perplexity %.0f, %v tokens\n", r.Loss, math.Log(256), r.Perplexity, r.Tokens)
	// Output: loss 5.5452 = ln 256 = 5.5452, perplexity 256, 192 tokens
}

// A checkpoint holds the trainable parameters, AdamW's moments and the run
// state; LoadParams copies its parameters into a model, e.g. for inference.
func ExampleTrainer_SaveCheckpoint() {
	dir, _ := os.MkdirTemp("", "guide-ckpt")
	defer os.RemoveAll(dir)
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps, cfg.LR = 4, 8, 5, 0.1
	model := newGuideTable(256)
	tr, _ := trainers.New(model, cfg)
	defer tr.Close()
	if _, err := tr.Train(guideData(), nil); err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "step5.safetensors")
	if err := tr.SaveCheckpoint(path); err != nil {
		log.Fatal(err)
	}
	meta, err := trainers.ReadCheckpointMeta(path)
	fmt.Println(meta.Step, meta.Params, meta.Config.LR, err)

	fresh := newGuideTable(256)
	err = trainers.LoadParams(path, fresh.Params())
	fmt.Println(err, fmt.Sprint(fresh.t.Values()) == fmt.Sprint(model.t.Values()))
	// Output:
	// 5 [table] 0.1 <nil>
	// <nil> true
}

func ExampleReadCheckpointMeta() {
	_, err := trainers.ReadCheckpointMeta(filepath.Join(os.TempDir(), "no-such-checkpoint.safetensors"))
	fmt.Println(err != nil)
	// Output: true
}

func ExampleLoadParams() {
	err := trainers.LoadParams(filepath.Join(os.TempDir(), "no-such-checkpoint.safetensors"), nil)
	fmt.Println(err != nil)
	// Output: true
}

// Schedule is the learning-rate schedule a run over n examples will use.
func ExampleTrainer_Schedule() {
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Epochs, cfg.Warmup = 8, 2, 5 // Steps 0: derived from Epochs
	tr, _ := trainers.New(newGuideTable(4), cfg)
	s := tr.Schedule(100) // ⌈2·100/8⌉ = 25 steps
	fmt.Println(s.Kind, s.Total, s.At(5), s.At(6))
	// Output: linear 25 0.0002 0.0002
}

func ExampleDefaultConfig() {
	c := trainers.DefaultConfig()
	fmt.Println(c.Batch, c.Context, c.LR, c.Schedule, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, c.MaxGradNorm, c.Validate())
	// Output: 8 128 0.0002 linear 0.9 0.999 1e-06 0.01 1 <nil>
}

func ExamplePaperE2EConfig() {
	c := trainers.PaperE2EConfig()
	fmt.Println(c.LR, c.Warmup, c.Batch, c.Epochs, c.LabelSmoothing, c.Context, c.MaxGradNorm)
	// Output: 0.0002 500 8 5 0.1 512 0
}

func ExampleConfig_Validate() {
	c := trainers.DefaultConfig()
	c.Batch = 0
	fmt.Println(c.Validate())
	// Output: trainers: config Batch = 0, want ≥ 1
}

// AdamW's first step moves each element by about lr against the sign of
// its gradient (bias correction makes m̂ = g and v̂ = g²).
func ExampleNewAdamW() {
	opt := trainers.NewAdamW(0.9, 0.999, 1e-8, 0)
	p, _ := graph.NewParamFrom("w", []float64{1, 1}, 2)
	g := graph.Array{Shape: []int{2}, F64: []float64{0.5, -2}}
	if err := opt.Step([]*graph.Param{p}, []graph.Array{g}, 0.1); err != nil {
		log.Fatal(err)
	}
	m, v, _ := opt.Moments("w")
	fmt.Printf("%.4f %v %.4f %.4f %d %v\n", p.Values(), opt.StateNames(), m, v, opt.StepCount(), opt.Step(nil, []graph.Array{g}, 0.1) != nil)
	// Output: [0.9000 1.1000] [w] [0.0500 -0.2000] [0.0003 0.0040] 1 true
}

// By default only matrices are weight-decayed, not biases or LayerNorm
// gains.
func ExampleDecayMatrices() {
	w := graph.NewParam("h.0.mlp.c_fc.weight", graph.Float32, 4, 16)
	b := graph.NewParam("h.0.mlp.c_fc.bias", graph.Float32, 16)
	fmt.Println(trainers.DecayMatrices(w), trainers.DecayMatrices(b))
	// Output: true false
}

// A TextDataset cuts a token stream into windows of Context+1 tokens that
// overlap by one.
func ExampleNewTextDataset() {
	ds, err := trainers.NewTextDataset([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ds.Len(), ds.Context(), ds.Example(0).Tokens, ds.Example(2).Tokens)
	// Output: 3 3 [0 1 2 3] [6 7 8 9]
}

func ExampleLoadText() {
	dir, _ := os.MkdirTemp("", "guide-text")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "corpus.txt")
	if err := os.WriteFile(path, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	tok, err := gpt.NewTokenizer("bytes")
	if err != nil {
		log.Fatal(err)
	}
	ds, err := trainers.LoadText(path, tok, 8) // 29 bytes: ⌊28/8⌋ windows
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ds.Len(), len(ds.Tokens()))
	// Output: 3 29
}

// Split makes a seeded train/validation split.
func ExampleSplit() {
	ds, _ := trainers.NewTextDataset(make([]int, 101), 10) // 10 windows
	train, valid, err := trainers.Split(ds, 0.2, 1)
	fmt.Println(train.Len(), valid.Len(), err)
	// Output: 8 2 <nil>
}

// guideChars encodes lowercase letters, space and '|' as 1 … 28; 0 is EOT.
type guideChars struct{}

func (guideChars) Encode(s string) []int {
	var ids []int
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			ids = append(ids, int(r-'a')+1)
		case r == ' ':
			ids = append(ids, 27)
		default:
			ids = append(ids, 28)
		}
	}
	return ids
}
func (guideChars) EOT() int { return 0 }

// Prompt/completion pairs (E2E NLG format): the loss is on the completion
// and the end-of-text token only.
func ExampleLoadCompletions() {
	dir, _ := os.MkdirTemp("", "guide-e2e")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "train.txt")
	_ = os.WriteFile(path, []byte("name aromi||aromi is here\nname zizzi||zizzi\n"), 0o644)
	set, err := trainers.LoadCompletions(path, guideChars{}, " ")
	if err != nil {
		log.Fatal(err)
	}
	for i := 0; i < set.Len(); i++ {
		ex := set.Example(i)
		fmt.Println(ex.PromptLen, len(ex.Tokens)-ex.PromptLen) // prompt "name x" + " "; completion + EOT
	}
	// Output:
	// 11 14
	// 11 6
}
