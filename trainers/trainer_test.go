package trainers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
)

// TestSameSeedSameRun: two runs from the same seed give identical losses and
// parameters, dropout included; another seed gives different losses.
func TestSameSeedSameRun(t *testing.T) {
	tr, va := textData(t, 2000, 12, 8)
	run := func(seed uint64) ([]float64, map[string][]float64) {
		m := newTinyLM(graph.Float64, 12, 6, 0, 0.1, 1)
		cfg := testConfig()
		cfg.Seed = seed
		res, err := newTrainer(t, m, cfg).Train(tr, va)
		if err != nil {
			t.Fatal(err)
		}
		return res.Losses, snapshot(m.Params())
	}
	l1, p1 := run(7)
	l2, p2 := run(7)
	if !equalBits(l1, l2) {
		t.Fatalf("same seed, different losses:\n%v\n%v", l1, l2)
	}
	for name := range p1 {
		if !equalBits(p1[name], p2[name]) {
			t.Fatalf("same seed, different %s", name)
		}
	}
	if l3, _ := run(8); equalBits(l1, l3) {
		t.Fatal("different seeds gave identical losses")
	}
}

// TestResumeIsExact stops a run through its context after step 7 (inside
// an epoch, with dropout, accumulation, warm-up, clipping, label smoothing
// and validation), resumes a fresh model from the checkpoint and compares
// with a run never stopped: the same losses and bit-identical parameters
// and optimizer state.
func TestResumeIsExact(t *testing.T) {
	cases := []struct {
		name   string
		dt     graph.DType
		prompt bool // variable-length examples with prompts instead of text windows
		bucket int
		plus   float64 // LoRA+ ratio
	}{
		{"float64", graph.Float64, false, 0, 0},
		{"float32", graph.Float32, false, 0, 0},
		{"float64-prompts-bucketed", graph.Float64, true, 2, 0},
		{"float64-loraplus", graph.Float64, false, 0, 16},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dt := c.dt
			tr, va := textData(t, 600, 12, 8) // 60 training windows: an epoch is 7.5 steps
			if c.prompt {
				tr, va = promptData(60, 12, 7), promptData(13, 12, 8)
			}
			dir := t.TempDir()
			cfg := testConfig()
			cfg.Steps = 20
			cfg.Accumulate = 2
			cfg.MaxGradNorm = 0.5
			cfg.LabelSmoothing = 0.1
			cfg.EvalEvery = 3
			cfg.Schedule = ScheduleCosine
			cfg.BucketMultiple = c.bucket
			cfg.LoRAPlusRatio = c.plus

			full := newTinyLM(dt, 12, 6, 2, 0.2, 1)
			fcfg := cfg
			fcfg.BestPath = filepath.Join(dir, "full-best.safetensors")
			ftr := newTrainer(t, full, fcfg)
			want, err := ftr.Train(tr, va)
			if err != nil {
				t.Fatal(err)
			}

			// The interrupted run.
			part := newTinyLM(dt, 12, 6, 2, 0.2, 1)
			pcfg := cfg
			pcfg.CheckpointPath = filepath.Join(dir, "ckpt.safetensors")
			pcfg.CheckpointEvery = 5
			pcfg.BestPath = filepath.Join(dir, "best.safetensors")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pcfg.Observer.OnStep = func(s StepInfo) {
				if s.Step == 7 {
					cancel()
				}
			}
			first, err := newTrainer(t, part, pcfg).TrainContext(ctx, tr, va)
			if !errors.Is(err, context.Canceled) || first.Steps != 7 {
				t.Fatalf("stopped run: steps %d, err %v; want 7 and context.Canceled", first.Steps, err)
			}

			// A fresh process: new model with the initial values, resumed.
			again := newTinyLM(dt, 12, 6, 2, 0.2, 1)
			pcfg.Observer = Observer{}
			rtr := newTrainer(t, again, pcfg)
			if err := rtr.Resume(pcfg.CheckpointPath); err != nil {
				t.Fatal(err)
			}
			if rtr.Step() != 7 {
				t.Fatalf("resumed at step %d, want 7", rtr.Step())
			}
			second, err := rtr.Train(tr, va)
			if err != nil {
				t.Fatal(err)
			}
			got := append(append([]float64{}, first.Losses...), second.Losses...)
			if !equalBits(got, want.Losses) {
				t.Fatalf("losses differ:\nresumed %v\nfull    %v", got, want.Losses)
			}
			if c.bucket > 0 && len(rtr.trainProgs) < 2 {
				t.Fatalf("bucketing compiled %d training programs, want several", len(rtr.trainProgs))
			}
			if second.FirstStep != 7 || second.Steps != 20 {
				t.Fatalf("second part covered steps %d…%d, want 7…20", second.FirstStep, second.Steps)
			}
			pf, pr := snapshot(full.Params()), snapshot(again.Params())
			for name := range pf {
				if !equalBits(pf[name], pr[name]) {
					t.Fatalf("%s differs after resume", name)
				}
			}
			for _, name := range ftr.Optimizer().StateNames() {
				m1, v1, _ := ftr.Optimizer().Moments(name)
				m2, v2, ok := rtr.Optimizer().Moments(name)
				if !ok || !equalBits(m1, m2) || !equalBits(v1, v2) {
					t.Fatalf("optimizer state of %s differs after resume", name)
				}
			}
			if second.Valid != want.Valid || second.BestStep != want.BestStep || second.BestValidLoss != want.BestValidLoss {
				t.Fatalf("validation differs: resumed %+v best %v@%d, full %+v best %v@%d",
					second.Valid, second.BestValidLoss, second.BestStep, want.Valid, want.BestValidLoss, want.BestStep)
			}
			// The best checkpoints of both runs hold the same parameters.
			a, b := newTinyLM(dt, 12, 6, 2, 0, 2), newTinyLM(dt, 12, 6, 2, 0, 2)
			if err := LoadParams(fcfg.BestPath, a.Params()); err != nil {
				t.Fatal(err)
			}
			if err := LoadParams(pcfg.BestPath, b.Params()); err != nil {
				t.Fatal(err)
			}
			sa, sb := snapshot(a.Params()), snapshot(b.Params())
			for name := range sa {
				if !equalBits(sa[name], sb[name]) {
					t.Fatalf("best checkpoints differ in %s", name)
				}
			}
		})
	}
}

// TestFrozenParamsUntouched: a LoRA-like run changes only the low-rank
// factors; the frozen weights are bit-identical and have no optimizer state
// and no checkpoint entry.
func TestFrozenParamsUntouched(t *testing.T) {
	tr, va := textData(t, 2000, 12, 8)
	m := newTinyLM(graph.Float32, 12, 6, 2, 0.1, 1)
	m.freezeBase()
	before := snapshot(m.Params())
	cfg := testConfig()
	cfg.WeightDecay = 0.1
	cfg.DecayAll = true
	cfg.CheckpointPath = filepath.Join(t.TempDir(), "lora.safetensors")
	trn := newTrainer(t, m, cfg)
	if _, err := trn.Train(tr, va); err != nil {
		t.Fatal(err)
	}
	after := snapshot(m.Params())
	for _, p := range []*graph.Param{m.emb, m.w, m.b} {
		if !equalBits(before[p.Name], after[p.Name]) {
			t.Errorf("frozen %s changed", p.Name)
		}
	}
	for _, p := range []*graph.Param{m.a, m.bb} {
		if equalBits(before[p.Name], after[p.Name]) {
			t.Errorf("trainable %s did not change", p.Name)
		}
	}
	if got := trn.Optimizer().StateNames(); strings.Join(got, ",") != "head.lora_A,head.lora_B" {
		t.Errorf("optimizer state for %v, want only the LoRA factors", got)
	}
	meta, err := ReadCheckpointMeta(cfg.CheckpointPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(meta.Params, ",") != "head.lora_A,head.lora_B" {
		t.Errorf("checkpoint params %v", meta.Params)
	}
}

// TestTrainingReducesValidationLoss for full training and for runs where
// only some parameters are trainable.
func TestTrainingReducesValidationLoss(t *testing.T) {
	cases := []struct {
		name   string
		rank   int
		freeze func(m *tinyLM)
	}{
		{"full", 0, func(*tinyLM) {}},
		{"lora", 2, (*tinyLM).freezeBase},
		{"head-only", 0, func(m *tinyLM) { m.emb.Trainable = false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, va := textData(t, 4000, 12, 8)
			m := newTinyLM(graph.Float32, 12, 8, c.rank, 0, 3)
			c.freeze(m)
			cfg := testConfig()
			cfg.Steps = 150
			cfg.Batch = 8
			cfg.LR = 0.03
			trn := newTrainer(t, m, cfg)
			start, err := trn.Evaluate(va)
			if err != nil {
				t.Fatal(err)
			}
			res, err := trn.Train(tr, va)
			if err != nil {
				t.Fatal(err)
			}
			// The chain's entropy bound: 0.8 of the mass on one token gives
			// a best loss near 1.0 nat; a uniform guess is ln 12 = 2.48.
			if !(res.Valid.Loss < 0.8*start.Loss) {
				t.Fatalf("validation loss %v → %v: did not decrease by 20%%", start.Loss, res.Valid.Loss)
			}
		})
	}
}

// TestNonFiniteLossStops injects NaN into a parameter after step 3: step 4
// fails naming the step, and the checkpoint of step 2 still loads with the
// values it had.
func TestNonFiniteLossStops(t *testing.T) {
	tr, va := textData(t, 2000, 12, 8)
	m := newTinyLM(graph.Float64, 12, 6, 0, 0, 1)
	cfg := testConfig()
	cfg.CheckpointPath = filepath.Join(t.TempDir(), "ckpt.safetensors")
	cfg.CheckpointEvery = 2
	var atCkpt map[string][]float64
	cfg.Observer.OnCheckpoint = func(c CheckpointInfo) {
		if c.Step == 2 {
			atCkpt = snapshot(m.Params())
		}
	}
	cfg.Observer.OnStep = func(s StepInfo) {
		if s.Step == 3 {
			for i := range m.w.Float64s() {
				m.w.Float64s()[i] = math.NaN()
			}
		}
	}
	_, err := newTrainer(t, m, cfg).Train(tr, va)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "step 4") {
		t.Fatalf("error %v, want ErrNonFinite naming step 4", err)
	}
	meta, err := ReadCheckpointMeta(cfg.CheckpointPath)
	if err != nil || meta.Step != 2 {
		t.Fatalf("checkpoint after the failure: step %d, err %v; want step 2", meta.Step, err)
	}
	fresh := newTinyLM(graph.Float64, 12, 6, 0, 0, 99)
	rt := newTrainer(t, fresh, testConfig())
	if err := rt.Resume(cfg.CheckpointPath); err != nil {
		t.Fatal(err)
	}
	for _, p := range fresh.Params() {
		if !equalBits(p.Values(), atCkpt[p.Name]) {
			t.Fatalf("%s in the checkpoint differs from its value at step 2", p.Name)
		}
	}
}

// TestNonFiniteGradientStops makes the loss finite but a gradient infinite:
// with E = 1e200, W = 0, A = 1e-250 and column 0 of B = 1e200 (the rest 0),
// the logits are ~1e151 while dA = Eᵀ·(dy·Bᵀ) ~ 1e400 overflows. The error names the step and A,
// and no parameter is changed by the failed step.
func TestNonFiniteGradientStops(t *testing.T) {
	tr, va := textData(t, 2000, 12, 8)
	m := newTinyLM(graph.Float64, 12, 6, 2, 0, 1)
	cfg := testConfig()
	cfg.MaxGradNorm = 0
	var before map[string][]float64
	cfg.Observer.OnStep = func(s StepInfo) {
		if s.Step != 2 {
			return
		}
		fill := func(v []float64, x float64) {
			for i := range v {
				v[i] = x
			}
		}
		fill(m.emb.Float64s(), 1e200)
		fill(m.w.Float64s(), 0)
		fill(m.a.Float64s(), 1e-250)
		fill(m.bb.Float64s(), 0)
		m.bb.Float64s()[0], m.bb.Float64s()[12] = 1e200, 1e200
		before = snapshot(m.Params())
	}
	_, err := newTrainer(t, m, cfg).Train(tr, va)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "step 3") || !strings.Contains(err.Error(), "gradient of head.lora_A") {
		t.Fatalf("error %v, want ErrNonFinite naming step 3 and head.lora_A", err)
	}
	for _, p := range m.Params() {
		if !equalBits(p.Values(), before[p.Name]) {
			t.Fatalf("the failed step changed %s", p.Name)
		}
	}
}

// TestAccumulationEqualsLargerBatch: k micro-batches of b sequences give the
// same losses and parameters as batches of k·b, also when the micro-batches
// hold different numbers of loss tokens (prompts of random length).
func TestAccumulationEqualsLargerBatch(t *testing.T) {
	data := promptData(96, 12, 1)
	run := func(batch, k, bucket int) ([]float64, map[string][]float64) {
		m := newTinyLM(graph.Float64, 12, 6, 0, 0, 1)
		cfg := testConfig()
		cfg.Batch, cfg.Accumulate, cfg.BucketMultiple = batch, k, bucket
		cfg.Steps = 8
		cfg.MaxGradNorm = 0.7 // clipping acts on the accumulated gradient
		res, err := newTrainer(t, m, cfg).Train(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Losses, snapshot(m.Params())
	}
	l1, p1 := run(12, 1, 0)
	l4, p4 := run(3, 4, 1) // and each micro-batch padded only to its longest row
	for i := range l1 {
		if d := math.Abs(l1[i] - l4[i]); d > 1e-13 {
			t.Fatalf("step %d: loss %v with one batch, %v accumulated (|Δ| %g)", i+1, l1[i], l4[i], d)
		}
	}
	for name := range p1 {
		for i := range p1[name] {
			// AdamW divides by √v + ε, which amplifies rounding differences in
			// tiny gradients: 1e-9 is far below the step size (0.05) yet far
			// above what a wrong weighting gives (~1e-3).
			if d := math.Abs(p1[name][i] - p4[name][i]); d > 1e-9 {
				t.Fatalf("%s[%d]: %v vs %v", name, i, p1[name][i], p4[name][i])
			}
		}
	}
}

// TestEvaluateMatchesReference compares Evaluate with the cross-entropy of
// the bigram model computed directly from its parameters, for several
// validation batch sizes (different padding of the last batch).
func TestEvaluateMatchesReference(t *testing.T) {
	data := promptData(23, 12, 2)
	m := newTinyLM(graph.Float64, 12, 5, 0, 0.5, 4) // dropout must be off in Evaluate
	emb, w, b := m.emb.Float64s(), m.w.Float64s(), m.b.Float64s()
	var sum, n float64
	for _, ex := range data.Examples {
		for j := max(ex.PromptLen, 1); j < len(ex.Tokens); j++ {
			prev := ex.Tokens[j-1]
			logits := make([]float64, 12)
			mx := math.Inf(-1)
			for v := range logits {
				logits[v] = b[v]
				for k := 0; k < 5; k++ {
					logits[v] += emb[prev*5+k] * w[k*12+v]
				}
				mx = math.Max(mx, logits[v])
			}
			var z float64
			for _, l := range logits {
				z += math.Exp(l - mx)
			}
			sum += mx + math.Log(z) - logits[ex.Tokens[j]]
			n++
		}
	}
	want := sum / n
	for _, eb := range []int{1, 4, 7, 30} {
		cfg := testConfig()
		cfg.EvalBatch = eb
		cfg.LabelSmoothing = 0.3 // must not apply to validation
		ev, err := newTrainer(t, m, cfg).Evaluate(data)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(ev.Loss-want) > 1e-12 || ev.Tokens != n || ev.Examples != 23 {
			t.Fatalf("eval batch %d: loss %v over %v tokens, want %v over %v", eb, ev.Loss, ev.Tokens, want, n)
		}
	}
}

// TestMetricsAndObserver checks the JSON lines and the callbacks.
func TestMetricsAndObserver(t *testing.T) {
	tr, va := textData(t, 2000, 12, 8)
	var buf bytes.Buffer
	cfg := testConfig()
	cfg.Steps = 7
	cfg.LogEvery = 3
	cfg.EvalEvery = 5
	cfg.MaxGradNorm = 1e-3 // every step clips
	cfg.Metrics = &buf
	var steps []StepInfo
	var evals []EvalInfo
	cfg.Observer = Observer{OnStep: func(s StepInfo) { steps = append(steps, s) }, OnEval: func(e EvalInfo) { evals = append(evals, e) }}
	res, err := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), cfg).Train(tr, va)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 7 || len(evals) != 2 || evals[0].Step != 5 || evals[1].Step != 7 {
		t.Fatalf("%d step and %d eval callbacks (%+v)", len(steps), len(evals), evals)
	}
	var lines []map[string]interface{}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var v map[string]interface{}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		lines = append(lines, v)
	}
	// steps 3, 6, 7 (the last) and validations after 5 and 7
	var logged []float64
	for _, l := range lines {
		if _, ok := l["val_loss"]; ok {
			continue
		}
		for _, k := range []string{"step", "loss", "lr", "grad_norm", "tokens_per_sec", "elapsed_sec"} {
			if _, ok := l[k]; !ok {
				t.Fatalf("metrics line %v lacks %s", l, k)
			}
		}
		logged = append(logged, l["step"].(float64))
		s := steps[int(l["step"].(float64))-1]
		if l["loss"].(float64) != s.Loss || l["lr"].(float64) != s.LR {
			t.Fatalf("metrics line %v disagrees with step info %+v", l, s)
		}
	}
	if len(lines) != 5 || len(logged) != 3 || logged[0] != 3 || logged[1] != 6 || logged[2] != 7 {
		t.Fatalf("logged steps %v in %d lines", logged, len(lines))
	}
	for _, s := range steps {
		if !s.Clipped || s.GradNorm <= 1e-3 || s.Tokens <= 0 {
			t.Fatalf("step info %+v: want clipped with the pre-clip norm", s)
		}
	}
	if res.Tokens != steps[6].Tokens || res.Tokens != 7*4*8 {
		t.Fatalf("tokens %d, want %d", res.Tokens, 7*4*8)
	}
}

// TestLRFollowsSchedule: each step uses the schedule's rate.
func TestLRFollowsSchedule(t *testing.T) {
	tr, _ := textData(t, 2000, 12, 8)
	cfg := testConfig()
	cfg.Steps = 9
	cfg.Warmup = 3
	cfg.MinLR = 0.01
	var lrs []float64
	cfg.Observer.OnStep = func(s StepInfo) { lrs = append(lrs, s.LR) }
	trn := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), cfg)
	if _, err := trn.Train(tr, nil); err != nil {
		t.Fatal(err)
	}
	s := trn.Schedule(tr.Len())
	for i, lr := range lrs {
		if lr != s.At(i+1) {
			t.Fatalf("step %d: lr %v, schedule %v", i+1, lr, s.At(i+1))
		}
	}
}

// TestEpochBudget: Steps = 0 trains ⌈Epochs·N/(Batch·Accumulate)⌉ steps.
func TestEpochBudget(t *testing.T) {
	data := promptData(30, 12, 3)
	cfg := testConfig()
	cfg.Steps, cfg.Epochs, cfg.Batch, cfg.Accumulate = 0, 2, 4, 2
	res, err := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), cfg).Train(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 8 || math.Abs(res.Epochs-64.0/30) > 1e-12 {
		t.Fatalf("%d steps, %v epochs; want 8 and %v", res.Steps, res.Epochs, 64.0/30)
	}
}

func TestNewRejectsBadModels(t *testing.T) {
	m := newTinyLM(graph.Float32, 12, 6, 0, 0, 1)
	dup := &renamed{m, "emb.weight"}
	if _, err := New(dup, testConfig()); err == nil || !strings.Contains(err.Error(), `two parameters named "emb.weight"`) {
		t.Errorf("duplicate names: %v", err)
	}
	mixed := newTinyLM(graph.Float32, 12, 6, 0, 0, 1)
	mixed.b = mixed.b.Convert(graph.Float64)
	if _, err := New(mixed, testConfig()); err == nil || !strings.Contains(err.Error(), "head.bias is float64") {
		t.Errorf("mixed dtypes: %v", err)
	}
	if _, err := New(nil, testConfig()); err == nil {
		t.Error("nil model accepted")
	}
	cfg := testConfig()
	cfg.Schedule = "step"
	if _, err := New(m, cfg); err == nil || !strings.Contains(err.Error(), `unknown schedule "step"`) {
		t.Errorf("bad schedule: %v", err)
	}
}

// renamed gives the head bias another parameter's name.
type renamed struct {
	*tinyLM
	name string
}

func (r *renamed) Params() []*graph.Param {
	ps := r.tinyLM.Params()
	c := ps[2].Clone()
	c.Name = r.name
	ps[2] = c
	return ps
}

func TestTrainErrors(t *testing.T) {
	tr, _ := textData(t, 2000, 12, 8)
	t.Run("unused trainable parameter", func(t *testing.T) {
		m := &extraParam{newTinyLM(graph.Float32, 12, 6, 0, 0, 1), graph.NewParam("unused", graph.Float32, 3)}
		_, err := newTrainer(t, m, testConfig()).Train(tr, nil)
		if err == nil || !strings.Contains(err.Error(), "unused is trainable but the loss does not depend on it") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("flags changed after New", func(t *testing.T) {
		m := newTinyLM(graph.Float32, 12, 6, 0, 0, 1)
		trn := newTrainer(t, m, testConfig())
		m.b.Trainable = false
		if _, err := trn.Train(tr, nil); err == nil || !strings.Contains(err.Error(), "head.bias was frozen after New") {
			t.Fatalf("error %v", err)
		}
		m2 := newTinyLM(graph.Float32, 12, 6, 0, 0, 1)
		m2.b.Trainable = false
		trn2 := newTrainer(t, m2, testConfig())
		m2.b.Trainable = true
		if _, err := trn2.Train(tr, nil); err == nil || !strings.Contains(err.Error(), "became trainable after New") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("failing metrics writer", func(t *testing.T) {
		cfg := testConfig()
		cfg.Metrics = &failAfter{w: io.Discard, n: 10}
		_, err := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), cfg).Train(tr, nil)
		if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "write metrics") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("nothing trainable", func(t *testing.T) {
		m := newTinyLM(graph.Float32, 12, 6, 0, 0, 1)
		m.freezeBase()
		_, err := newTrainer(t, m, testConfig()).Train(tr, nil)
		if err == nil || !strings.Contains(err.Error(), "no trainable parameters") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("token outside vocabulary", func(t *testing.T) {
		data := &ExampleSet{Examples: []Example{{Tokens: []int{1, 2, 3}}, {Tokens: []int{1, 12, 3}}}}
		cfg := testConfig()
		cfg.Batch = 2
		_, err := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), cfg).Train(data, nil)
		if err == nil || !strings.Contains(err.Error(), "training example 1: token 12 at position 1 is outside the vocabulary [0, 12)") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("text windows longer than context", func(t *testing.T) {
		ds, _ := NewTextDataset(markovTokens(100, 12, 1), 16)
		_, err := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), testConfig()).Train(ds, nil)
		if err == nil || !strings.Contains(err.Error(), "Config.Context ≥ 16") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("resume onto other data", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "c.safetensors")
		cfg := testConfig()
		cfg.Steps = 2
		cfg.CheckpointPath = path
		if _, err := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), cfg).Train(tr, nil); err != nil {
			t.Fatal(err)
		}
		cfg.Steps = 4
		rt := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), cfg)
		if err := rt.Resume(path); err != nil {
			t.Fatal(err)
		}
		_, err := rt.Train(promptData(10, 12, 1), nil)
		if err == nil || !strings.Contains(err.Error(), "training set of") {
			t.Fatalf("error %v", err)
		}
	})
}

// extraParam adds a trainable parameter the forward pass never uses.
type extraParam struct {
	*tinyLM
	extra *graph.Param
}

func (e *extraParam) Params() []*graph.Param { return append(e.tinyLM.Params(), e.extra) }

func TestResumeRejectsMismatch(t *testing.T) {
	tr, _ := textData(t, 2000, 12, 8)
	path := filepath.Join(t.TempDir(), "c.safetensors")
	cfg := testConfig()
	cfg.Steps = 2
	cfg.CheckpointPath = path
	if _, err := newTrainer(t, newTinyLM(graph.Float32, 12, 6, 0, 0, 1), cfg).Train(tr, nil); err != nil {
		t.Fatal(err)
	}
	// A LoRA trainer cannot resume a full fine-tuning checkpoint.
	lora := newTinyLM(graph.Float32, 12, 6, 2, 0, 5)
	lora.freezeBase()
	before := snapshot(lora.Params())
	rt := newTrainer(t, lora, testConfig())
	err := rt.Resume(path)
	if err == nil || !strings.Contains(err.Error(), "emb.weight is not a trainable parameter") {
		t.Fatalf("error %v", err)
	}
	after := snapshot(lora.Params())
	for n := range before {
		if !equalBits(before[n], after[n]) || rt.Step() != 0 {
			t.Fatalf("failed Resume changed %s", n)
		}
	}
	other := newTrainer(t, newTinyLM(graph.Float64, 12, 6, 0, 0, 1), testConfig())
	if err := other.Resume(path); err == nil || !strings.Contains(err.Error(), "checkpoint is float32, model is float64") {
		t.Fatalf("dtype mismatch: %v", err)
	}
	if err := other.Resume(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
	junk := filepath.Join(t.TempDir(), "junk.safetensors")
	if err := os.WriteFile(junk, []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := other.Resume(junk); err == nil {
		t.Fatal("junk accepted")
	}
}
