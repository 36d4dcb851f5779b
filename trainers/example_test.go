package trainers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/trainers"
)

// bigram is a minimal LanguageModel: logits = E[ids]·W + b.
type bigram struct {
	emb, w, b *graph.Param
	vocab     int
}

func newBigram(vocab, dim int, seed uint64) *bigram {
	m := &bigram{
		emb:   graph.NewParam("emb", graph.Float32, vocab, dim),
		w:     graph.NewParam("head.weight", graph.Float32, dim, vocab),
		b:     graph.NewParam("head.bias", graph.Float32, vocab),
		vocab: vocab,
	}
	rng := graph.NewRand(seed)
	graph.InitNormal(m.emb, rng, 1)
	graph.InitNormal(m.w, rng, 0.1)
	return m
}

func (m *bigram) Params() []*graph.Param { return []*graph.Param{m.emb, m.w, m.b} }
func (m *bigram) VocabSize() int         { return m.vocab }
func (m *bigram) Logits(ids *graph.Node, batch, ctx int) *graph.Node {
	b := ids.Builder()
	return graph.Linear(graph.Embedding(b.Param(m.emb), ids), b.Param(m.w), b.Param(m.b))
}

// chars is a character-level tokenizer over a fixed alphabet; id 0 is EOT.
type chars struct{ alphabet string }

func (c chars) Encode(s string) []int {
	var ids []int
	for _, r := range s {
		ids = append(ids, strings.IndexRune(c.alphabet, r)+1)
	}
	return ids
}
func (c chars) EOT() int { return 0 }

func ExampleNew() {
	tok := chars{"abcdefghijklmnopqrstuvwxyz ."}
	text := strings.Repeat("the cat sat on the mat. the dog sat on the log. ", 40)
	data, _ := trainers.NewTextDataset(tok.Encode(text), 16)
	train, valid, _ := trainers.Split(data, 0.1, 1)

	model := newBigram(29, 16, 1)
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps, cfg.LR = 8, 16, 60, 0.05
	tr, err := trainers.New(model, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	before, _ := tr.Evaluate(valid)
	res, err := tr.Train(train, valid)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("steps:", res.Steps)
	fmt.Println("loss decreased:", res.Valid.Loss < before.Loss)
	// Output:
	// steps: 60
	// loss decreased: true
}

// A run stopped through its context leaves a checkpoint; a new Trainer that
// resumes it finishes the run exactly as if it had never stopped.
func ExampleTrainer_Resume() {
	dir, _ := os.MkdirTemp("", "golora-example")
	defer os.RemoveAll(dir)
	tok := chars{"abcdefghijklmnopqrstuvwxyz ."}
	data, _ := trainers.NewTextDataset(tok.Encode(strings.Repeat("a cat and a hat. ", 30)), 8)

	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps, cfg.LR = 4, 8, 10, 0.05
	cfg.CheckpointPath = filepath.Join(dir, "run.safetensors")

	full, _ := trainers.New(newBigram(29, 8, 1), cfg)
	want, _ := full.Train(data, nil)

	ctx, stop := context.WithCancel(context.Background())
	cfg.Observer.OnStep = func(s trainers.StepInfo) {
		if s.Step == 4 {
			stop() // e.g. Ctrl-C
		}
	}
	first, _ := trainers.New(newBigram(29, 8, 1), cfg)
	part1, err := first.TrainContext(ctx, data, nil)
	fmt.Println("stopped:", err != nil, "after step", part1.Steps)

	cfg.Observer = trainers.Observer{}
	second, _ := trainers.New(newBigram(29, 8, 1), cfg)
	if err := second.Resume(cfg.CheckpointPath); err != nil {
		fmt.Println(err)
		return
	}
	part2, _ := second.Train(data, nil)
	same := fmt.Sprint(append(part1.Losses, part2.Losses...)) == fmt.Sprint(want.Losses)
	fmt.Println("same losses:", same)
	// Output:
	// stopped: true after step 4
	// same losses: true
}

func ExampleParseCompletions() {
	tok := chars{"abcdefghijklmnopqrstuvwxyz :|."}
	src := "name : aromi | area : city||aromi is in the city.\n"
	set, err := trainers.ParseCompletions(strings.NewReader(src), "train.txt", tok, " ")
	if err != nil {
		fmt.Println(err)
		return
	}
	ex := set.Example(0)
	fmt.Println("prompt tokens:", ex.PromptLen)
	fmt.Println("loss tokens:", len(ex.Tokens)-ex.PromptLen) // completion + EOT

	_, err = trainers.ParseCompletions(strings.NewReader("ok||fine\nbroken\n"), "train.txt", tok, " ")
	fmt.Println(err)
	// Output:
	// prompt tokens: 27
	// loss tokens: 22
	// trainers: train.txt line 2: no "||" between context and completion
}

func ExampleSchedule_At() {
	s := trainers.Schedule{Kind: trainers.ScheduleLinear, LR: 1e-3, Warmup: 2, Total: 6}
	for t := 1; t <= 6; t++ {
		fmt.Printf("step %d: %.2e\n", t, s.At(t))
	}
	// Output:
	// step 1: 5.00e-04
	// step 2: 1.00e-03
	// step 3: 1.00e-03
	// step 4: 7.50e-04
	// step 5: 5.00e-04
	// step 6: 2.50e-04
}
