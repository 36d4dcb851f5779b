package trainers_test

import (
	"fmt"
	"strings"
	"sync"

	"github.com/golora/golora/trainers"
)

// ExampleTrainer_SetCollective trains one model on two ranks of a
// LocalGroup (goroutines standing in for MPI processes) with a global batch
// of 8: each rank trains on 4 rows, the head's gradients are all-reduced,
// and both ranks end where one process with batch 8 does. (16×29 + 29)
// float32 head values = 1972 bytes travel per step.
func ExampleTrainer_SetCollective() {
	tok := chars{"abcdefghijklmnopqrstuvwxyz ."}
	text := strings.Repeat("the cat sat on the mat. the dog sat on the log. ", 20)
	data, _ := trainers.NewTextDataset(tok.Encode(text), 16)
	cfg := trainers.DefaultConfig()
	cfg.Batch, cfg.Context, cfg.Steps, cfg.LR = 8, 16, 20, 0.05

	train := func(rank trainers.Collective) (float64, int64) {
		model := newBigram(29, 16, 1)
		model.emb.Trainable = false // train the head only: only its gradients travel
		tr, _ := trainers.New(model, cfg)
		defer tr.Close()
		if err := tr.SetCollective(rank); err != nil {
			panic(err)
		}
		res, err := tr.Train(data, nil)
		if err != nil {
			panic(err)
		}
		return res.Losses[len(res.Losses)-1], res.AllReducedBytes / int64(res.Steps)
	}
	one, _ := train(nil)
	group, _ := trainers.NewLocalGroup(2)
	var wg sync.WaitGroup
	loss := make([]float64, 2)
	bytes := make([]int64, 2)
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loss[r], bytes[r] = train(group.Rank(r))
		}()
	}
	wg.Wait()
	fmt.Printf("one process: final loss %.4f\n", one)
	fmt.Printf("2 ranks:     final loss %.4f and %.4f, %d bytes all-reduced per step\n", loss[0], loss[1], bytes[0])
	// Output:
	// one process: final loss 1.0487
	// 2 ranks:     final loss 1.0487 and 1.0487, 1972 bytes all-reduced per step
}
