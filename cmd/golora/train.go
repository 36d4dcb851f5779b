package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/trainers"
)

// Default peak learning rates.
const (
	pretrainLR = 1e-3 // from scratch, small models
	loraLR     = 1e-3 // LoRA trains few parameters and tolerates a larger rate
	fullLR     = 2e-4 // the trainer's default, the LoRA paper's GPT-2 rate
)

func runPretrain(c *cli, args []string) error {
	f := newFlags(c, "[--arch ARCH] --preset NAME --data PATH --out MODEL_DIR [--steps N …]",
		"Trains a model from scratch on --data and writes it to --out as a Hugging Face model\nfolder (config.json and model.safetensors): GPT-2, or with --arch a Llama-family\ndecoder (llama, mistral, qwen2 or qwen3; presets nano and micro, golora's byte tokenizer).",
		"golora pretrain --preset nano --data input.txt --out nano-model --steps 100")
	var t trainFlags
	var arch, preset, out string
	var layers, heads, embd, blockSize int
	dropout := -1.0
	f.StringVar(&arch, "arch", "", "architecture: "+strings.Join(pretrainArchs(), ", ")+" (default gpt2, or llama for a llama- preset)")
	f.StringVar(&preset, "preset", "nano", "model shape: "+strings.Join(gpt.PresetNames(), ", ")+"; with a Llama --arch: nano, micro")
	f.IntVar(&layers, "layers", 0, "number of blocks (0: the preset's)")
	f.IntVar(&heads, "heads", 0, "attention heads (0: the preset's)")
	f.IntVar(&embd, "embd", 0, "model width (0: the preset's)")
	f.IntVar(&blockSize, "block-size", 0, "longest context the model can take (0: the preset's)")
	f.Float64Var(&dropout, "dropout", -1, "embedding, residual and attention dropout, GPT-2 only (-1: the preset's)")
	f.StringVar(&out, "out", "", "`MODEL_DIR`: model folder to write")
	t.register(f, "(default 1e-3)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	shape, err := pretrainShape(arch, preset, layers, heads, embd, blockSize, dropout)
	if err != nil {
		return err
	}
	if err := need("data", t.data); err != nil {
		return err
	}
	if err := t.guard(out, ""); err != nil {
		return err
	}
	if err := checkOutputDir("out", out, shape.outputFile); err != nil {
		return err
	}
	tc, err := t.config(shape.context(), pretrainLR, out)
	if err != nil {
		return err
	}
	if err := checkTrainMemory(shape, tc, int(shape.modelBytes()/4), true); err != nil {
		return err
	}
	tok, err := gpt.NewTokenizer(tokenizerName(shape))
	if err != nil {
		return err
	}
	train, valid, format, err := t.datasets(tok, tc.Context, c.stderr)
	if err != nil {
		return err
	}
	m, err := newRandom(shape, t.seed)
	if err != nil {
		return err
	}
	res, leader, err := trainModel(c, &t, m, tc, train, valid, "pretrain", out)
	if err != nil || !leader { // data-parallel: rank 0 writes
		return err
	}
	if err := makeParent(out); err != nil {
		return err
	}
	if err := m.Save(out); err != nil {
		return err
	}
	s := summarize(res, m.Params())
	s.Out, s.Kind, s.Format, s.Checkpoint = out, "model", format, tc.CheckpointPath
	return s.print(c.stdout, t.jsonOut)
}

func runFinetune(c *cli, args []string) error {
	f := newFlags(c, "--base MODEL_DIR --data PATH --out ADAPTER_DIR [--rank R --alpha A --targets q,v …]",
		"Trains a LoRA adapter on the base model: the base weights stay frozen and only the\nlow-rank matrices A and B of the target layers train. The adapter is written to --out\nas a PEFT folder (adapter_config.json and adapter_model.safetensors). With --full,\nevery weight trains instead and --out receives a whole model folder.",
		"golora finetune --base nano-model --data e2e.txt --out e2e-adapter --rank 8 --alpha 16 --targets q,v --steps 100")
	var t trainFlags
	var base, out, targets, bias, init string
	var rank int
	var alpha, loraDropout, loraplus float64
	var rslora, dora, full bool
	f.StringVar(&base, "base", "", "`MODEL_DIR`: base model folder")
	f.StringVar(&out, "out", "", "`ADAPTER_DIR`: adapter folder to write (a model folder with --full)")
	f.IntVar(&rank, "rank", 8, "LoRA rank r")
	f.Float64Var(&alpha, "alpha", 16, "LoRA α: the update is scaled by α/r")
	f.StringVar(&targets, "targets", "", "comma-separated layers to adapt: for GPT-2 q, k, v (parts of attn.c_attn), c_attn,\nc_proj, c_fc, wte; for Llama-family models q_proj, k_proj, v_proj, o_proj, gate_proj,\nup_proj, down_proj, embed_tokens, lm_head; or all-linear (default: q,v for GPT-2,\nq_proj,v_proj for Llama-family models)")
	f.Float64Var(&loraDropout, "lora-dropout", 0, "dropout on the input of the low-rank path")
	f.BoolVar(&rslora, "rslora", false, "scale by α/√r (rank-stabilised LoRA) instead of α/r")
	f.BoolVar(&dora, "dora", false, "DoRA (weight-decomposed LoRA): also train one magnitude per output column")
	f.Float64Var(&loraplus, "loraplus-lr-ratio", 0, "LoRA+: the B factors train at `R` × the learning rate (0: off)")
	f.StringVar(&bias, "bias", "none", "biases that train with the adapter: none, all or lora_only")
	f.StringVar(&init, "init", "default", "initialisation of A and B: default, gaussian or pissa")
	f.BoolVar(&full, "full", false, "full fine-tuning: train every weight and write a model folder")
	var pf precisionFlags
	pf.register(f)
	pf.registerRecompute(f)
	t.register(f, "(default 1e-3 for LoRA, 2e-4 with --full)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if err := pf.check(); err != nil {
		return err
	}
	if full && pf.prec != graph.F32 {
		return usagef("--base-precision %v: --full trains the base weights, which stay float32; a quantized base is for LoRA", pf.prec)
	}
	var lc lora.Config
	var err error
	if !full {
		if lc, err = loraFlags(rank, alpha, loraDropout, defaultIfUnset(f, "targets", targets, "q,v"), bias, init, rslora); err != nil {
			return err
		}
		lc.DoRA = dora
	} else if dora {
		return usagef("--dora: DoRA is an adapter; it does not apply to --full")
	} else if loraplus != 0 {
		return usagef("--loraplus-lr-ratio: LoRA+ sets the rates of adapters; it does not apply to --full")
	}
	if !(loraplus >= 0) || math.IsInf(loraplus, 0) {
		return usagef("--loraplus-lr-ratio %v: want a finite value ≥ 0 (0: off)", loraplus)
	}
	if err := need("base", base); err != nil {
		return err
	}
	if err := need("data", t.data); err != nil {
		return err
	}
	allowed := only(lora.ConfigFile, lora.WeightsFile)
	if full {
		allowed = outputFiles
	}
	if err := t.guard(out, base); err != nil {
		return err
	}
	if err := checkOutputDir("out", out, allowed); err != nil {
		return err
	}
	m, tok, err := loadBase("base", base)
	if err != nil {
		return err
	}
	lr := loraLR
	if full {
		lr = fullLR
	}
	if bs := m.ContextSize(); t.context > bs {
		return usagef("--context %d: want 0 … %d (%s)", t.context, bs, m.shape.contextWhy())
	}
	tc, err := t.config(m.ContextSize(), lr, out)
	if err != nil {
		return err
	}
	tc.LoRAPlusRatio = loraplus
	var lm *lora.Model
	if full {
		for _, p := range m.Params() {
			p.Trainable = true
		}
		if err := pf.apply(m); err != nil { // recomputation only: the precision is f32
			return err
		}
	} else {
		lc.Seed, lc.BaseModel = t.seed, base
		if !flagGiven(f, "targets") {
			lc.Targets = m.shape.defaultTargets()
			targets = strings.Join(lc.Targets, ",")
		}
		if err := preCheckRank(m.shape, rank, t.force); err != nil {
			return err
		}
		if lm, err = lora.Inject(hostOf(m), lc); err != nil {
			return fmt.Errorf("--targets %s: %w", targets, err)
		}
		if err := checkRank(lm, rank, t.force); err != nil {
			return err
		}
		if err := pf.apply(m); err != nil {
			return err
		}
		warnTrainableShare(c, m.Params())
	}
	trainable := 0
	for _, p := range m.Params() {
		if p.Trainable {
			trainable += p.Len()
		}
	}
	if err := checkTrainMemory(m.shape, tc, trainable, false); err != nil {
		return err
	}
	train, valid, format, err := t.datasets(tok, tc.Context, c.stderr)
	if err != nil {
		return err
	}
	res, leader, err := trainModel(c, &t, m, tc, train, valid, "finetune", out)
	if err != nil || !leader { // data-parallel: rank 0 writes
		return err
	}
	if err := makeParent(out); err != nil {
		return err
	}
	s := summarize(res, m.Params())
	s.Out, s.Format, s.Checkpoint = out, format, tc.CheckpointPath
	if full {
		s.Kind = "model"
		err = m.Save(out)
	} else {
		s.Kind = "adapter"
		err = lm.Save(out, lora.DefaultAdapter)
	}
	if err != nil {
		return err
	}
	return s.print(c.stdout, t.jsonOut)
}

// loraFlags checks the LoRA flags and returns the adapter configuration.
func loraFlags(rank int, alpha, dropout float64, targets, bias, init string, rslora bool) (lora.Config, error) {
	var lc lora.Config
	if rank < 1 {
		return lc, usagef("--rank %d: want ≥ 1", rank)
	}
	if !(alpha > 0) || alpha > 1e12 {
		return lc, usagef("--alpha %v: want a finite value > 0", alpha)
	}
	if !(dropout >= 0 && dropout < 1) {
		return lc, usagef("--lora-dropout %v: want in [0, 1)", dropout)
	}
	var ts []string
	for _, s := range strings.Split(targets, ",") {
		if s = strings.TrimSpace(s); s != "" {
			ts = append(ts, s)
		}
	}
	if len(ts) == 0 {
		return lc, usagef("--targets %q: name at least one layer", targets)
	}
	switch lora.BiasMode(bias) {
	case lora.BiasNone, lora.BiasAll, lora.BiasLoRAOnly:
	default:
		return lc, usagef("--bias %q: want none, all or lora_only", bias)
	}
	switch lora.InitMode(init) {
	case lora.InitDefault, lora.InitGaussian, lora.InitPiSSA:
	default:
		return lc, usagef("--init %q: want default, gaussian or pissa", init)
	}
	lc = lora.Config{R: rank, Alpha: alpha, Dropout: dropout, Targets: ts, RSLoRA: rslora,
		Bias: lora.BiasMode(bias), Init: lora.InitMode(init)}
	if err := lc.Validate(); err != nil {
		return lc, usagef("--targets %s: %v", targets, err)
	}
	return lc, nil
}

// maxSteps bounds a run's steps: more would outlast any machine (and
// their count overflows some arithmetic).
const maxSteps = 1<<31 - 1

// trainModel trains m's trainable parameters with the options of t,
// drawing progress on stderr, for the command writing to out. Ctrl-C stops
// after the current step (writing the checkpoint when one is configured).
// Started by an MPI launcher (golora built with -tags mpi), it trains as one
// rank of a data-parallel run: leader is false on every rank but 0, which
// writes nothing, and an error on any rank stops the whole job.
func trainModel(c *cli, t *trainFlags, m trainers.LanguageModel, tc trainers.Config, train, valid trainers.Dataset, label, out string) (res trainers.Result, leader bool, err error) {
	world, err := joinWorld(c, t.dist.timeout)
	if err != nil {
		return res, false, err
	}
	defer func() { err = failDist(c, world, err) }()
	leader = world == nil || world.Rank() == 0
	var metrics bytes.Buffer
	if t.metrics != "" {
		tc.Metrics = &metrics
	}
	bar := newProgress(c.stderr, label, t.quiet || !leader)
	if bar != nil {
		bar.mem = newMemWatch(m.Params())
		defer bar.mem.stop()
	}
	tc.Observer = bar.observer()
	tc.DataID = trainers.Fingerprint(train)
	if leader { // the files are rank 0's
		if err := removeStale(bar, label, tc.CheckpointPath, t.metrics, out); err != nil {
			return trainers.Result{}, leader, err
		}
	}
	tr, err := trainers.New(m, tc)
	if err != nil {
		return trainers.Result{}, leader, err
	}
	defer tr.Close()
	if err := setCollective(tr, world, bar, label, tc.Batch); err != nil {
		return trainers.Result{}, leader, err
	}
	if total := tr.Schedule(train.Len()).Total; total > maxSteps {
		if t.steps > 0 {
			return trainers.Result{}, leader, usagef("--steps %d: want at most %d", t.steps, maxSteps)
		}
		return trainers.Result{}, leader, usagef("--epochs %d: %d passes over %d examples take %d steps, more than %d; give fewer --epochs or --steps", t.epochs, t.epochs, train.Len(), total, maxSteps)
	}
	if t.resume != "" {
		if err := checkInputFile("resume", t.resume); err != nil {
			return trainers.Result{}, leader, err
		}
		meta, err := trainers.ReadCheckpointMeta(t.resume)
		if err != nil {
			return trainers.Result{}, leader, fmt.Errorf("--resume %s: %w", t.resume, err)
		}
		if err := checkResume(t, tc, tr.Schedule(train.Len()).Total, meta); err != nil {
			return trainers.Result{}, leader, err
		}
		if err := tr.Resume(t.resume); err != nil {
			if errors.Is(err, trainers.ErrOtherModel) {
				return trainers.Result{}, leader, fmt.Errorf("--resume %s was made for another base or other adapter flags (--targets, --rank, --full): %s", t.resume, after(err, trainers.ErrOtherModel))
			}
			return trainers.Result{}, leader, fmt.Errorf("--resume %s: %w", t.resume, err)
		}
		bar.resumed(tr.Step())
		bar.message("%s: resumed at step %d from %s", label, tr.Step(), t.resume)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, trainErr := tr.TrainContext(ctx, train, valid)
	bar.endLine()
	stopped := errors.Is(trainErr, context.Canceled) && tc.CheckpointPath != ""
	if trainErr != nil && !stopped {
		return res, leader, trainErr
	}
	if t.metrics != "" && leader {
		// On resume the history goes on from the checkpoint's step; after
		// Ctrl-C it is written up to the checkpoint just saved.
		b := metrics.Bytes()
		if t.resume != "" {
			if b, err = mergeMetrics(t.metrics, res.FirstStep, b); err != nil {
				return res, leader, fmt.Errorf("--metrics %s: %w", t.metrics, err)
			}
		}
		if err := makeParent(t.metrics); err != nil {
			return res, leader, err
		}
		if err := writeFileAtomic(t.metrics, b); err != nil {
			return res, leader, fmt.Errorf("--metrics %s: %w", t.metrics, err)
		}
	}
	if stopped {
		return res, leader, fmt.Errorf("%w; continue with --resume %s", trainErr, tc.CheckpointPath)
	}
	return res, leader, nil
}

// presetFlagName renders a model Config field as pretrain's flag, noting
// values that come from the preset rather than the command line:
// "--embd 50", "--embd 48 (preset nano's)".
func presetFlagName(preset string, given map[string]bool) func(string, any) string {
	flags := map[string]string{"NLayer": "layers", "NHead": "heads", "NEmbd": "embd", "BlockSize": "block-size",
		"EmbdDropout": "dropout", "ResidDropout": "dropout", "AttnDropout": "dropout"}
	return func(field string, v any) string {
		name, ok := flags[field]
		if !ok {
			return fmt.Sprintf("the vocabulary of preset %s (%s %v)", preset, field, v)
		}
		if given[name] {
			return fmt.Sprintf("--%s %v", name, v)
		}
		return fmt.Sprintf("--%s %v (preset %s's)", name, v, preset)
	}
}

// defaultIfUnset is v, or def when the flag name was not given.
func defaultIfUnset(f *flags, name, v, def string) string {
	if !flagGiven(f, name) {
		return def
	}
	return v
}
