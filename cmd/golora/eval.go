package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/tokenizer"
	"github.com/golora/golora/trainers"
)

// evalResult is what eval prints.
type evalResult struct {
	Base       string  `json:"base"`
	Adapter    string  `json:"adapter,omitempty"`
	Data       string  `json:"data"`
	Format     string  `json:"data_format"`
	Loss       float64 `json:"loss"`
	Perplexity float64 `json:"perplexity"`
	Split      string  `json:"split"`
	Tokens     float64 `json:"tokens"`
	Examples   int     `json:"examples"`
}

func runEval(c *cli, args []string) error {
	f := newFlags(c, "--base MODEL_DIR [--adapter ADAPTER_DIR] --data PATH [--json]",
		"Prints the mean cross-entropy (nats per token) and perplexity of the model, with the\nadapter when one is given, on every loss token of --data: plain text cut into windows\nof --context tokens, or context||completion lines scored on the completion.",
		"golora eval --base nano-model --adapter e2e-adapter --data valid.txt --json")
	var base, adapter, data, format, split string
	var batch, ctx, validTokens int
	var validFraction float64
	var seed uint64
	var asJSON bool
	f.StringVar(&base, "base", "", "`MODEL_DIR`: base model folder")
	f.StringVar(&adapter, "adapter", "", "`ADAPTER_DIR`: adapter folder to apply")
	f.StringVar(&data, "data", "", "data `FILE` (plain text, context||completion lines, or JSONL chat or prompt-completion)")
	f.StringVar(&format, "format", "auto", "data format: auto, chat, prompt-completion, text or completions")
	var co chatOptions
	co.register(f)
	f.IntVar(&batch, "batch", 8, "sequences per forward pass")
	f.IntVar(&ctx, "context", 0, "tokens per sequence (0: the model's context, at most 128)")
	f.StringVar(&split, "split", "all", "the examples to score: all, or the train or valid part of finetune's --valid-fraction split\n(give the --seed, --valid-fraction and --context the training used)")
	f.Float64Var(&validFraction, "valid-fraction", 0.1, "with --split: the share finetune held out")
	f.Uint64Var(&seed, "seed", 1, "with --split: the seed of the split")
	f.IntVar(&validTokens, "valid-tokens", 0, "with --split valid: score at most this many tokens, on evenly spaced examples, as finetune's\nvalidation does (default 65536 with --split valid, like finetune's; 0: all)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	var pf precisionFlags
	pf.register(f)
	if err := f.parseNone(args); err != nil {
		return err
	}
	if err := pf.check(); err != nil {
		return err
	}
	if batch < 1 {
		return usagef("--batch %d: want ≥ 1", batch)
	}
	switch split {
	case "all", "train", "valid":
	default:
		return usagef("--split %q: want all, train or valid", split)
	}
	if split != "all" && !(validFraction > 0 && validFraction < 1) {
		return usagef("--valid-fraction %v: want in (0, 1) with --split %s", validFraction, split)
	}
	if validTokens < 0 {
		return usagef("--valid-tokens %d: want ≥ 0 (0: all)", validTokens)
	}
	if !flagGiven(f, "valid-tokens") && split == "valid" {
		validTokens = defaultValidTokens
	}
	if err := need("base", base); err != nil {
		return err
	}
	if err := need("data", data); err != nil {
		return err
	}
	m, tok, err := loadBase("base", base)
	if err != nil {
		return err
	}
	if ctx, err = contextFlag(ctx, m); err != nil {
		return err
	}
	if err := checkEvalMemory(m.shape, batch, ctx); err != nil {
		return err
	}
	if _, err := loadAdapter(m, adapter); err != nil {
		return err
	}
	nn.SetTrainable(m.Params(), false) // nothing trains here
	if err := pf.apply(m); err != nil {
		return err
	}
	co.use(tok, c.stderr, asJSON)
	ds, fm, err := loadDataFlag("data", data, tok, ctx, format, &co)
	if err != nil {
		return err
	}
	if split != "all" {
		// Exactly finetune's split: the same loader, context, fraction and
		// seed give the same examples on each side.
		if ds.Len() < 2 {
			return fmt.Errorf("--split %s: --data %s has %d example, too few to split", split, data, ds.Len())
		}
		tr, va, err := trainers.Split(ds, validFraction, seed)
		if err != nil {
			return fmt.Errorf("--valid-fraction: %w", err)
		}
		ds = tr
		if split == "valid" {
			ds = trainers.CapTokens(va, validTokens)
		}
	}
	var onProgress func(trainers.EvalProgress)
	if isTerminal(c.stderr) { // a bar on a terminal; nothing in logs and pipes
		bar := newProgress(c.stderr, "eval", false)
		onProgress = bar.evalProgress
		defer bar.endLine()
	}
	r, err := evaluate(m, ds, batch, ctx, onProgress)
	if err != nil {
		return err
	}
	out := evalResult{Base: base, Adapter: adapter, Data: data, Format: fm, Split: split,
		Loss: r.Loss, Perplexity: r.Perplexity, Tokens: r.Tokens, Examples: r.Examples}
	if asJSON {
		return writeJSON(c.stdout, out)
	}
	fmt.Fprintf(c.stdout, "loss %.4f  perplexity %.3f  tokens %s  examples %d\n", r.Loss, r.Perplexity,
		strconv.FormatFloat(r.Tokens, 'f', -1, 64), r.Examples)
	return nil
}

// contextFlag checks a --context value against m and fills in the default.
func contextFlag(ctx int, m *loadedModel) (int, error) {
	bs := m.ContextSize()
	if ctx < 0 || ctx > bs {
		return 0, usagef("--context %d: want 0 … %d (%s)", ctx, bs, m.shape.contextWhy())
	}
	if ctx == 0 {
		ctx = min(bs, 128)
	}
	return ctx, nil
}

// evaluate scores ds with m as it is (adapters included), reporting its
// progress to progress (nil: none).
func evaluate(m trainers.LanguageModel, ds trainers.Dataset, batch, ctx int, progress func(trainers.EvalProgress)) (trainers.EvalResult, error) {
	tc := trainers.DefaultConfig()
	tc.Batch, tc.EvalBatch, tc.Context = batch, batch, ctx
	tc.Observer.OnEvalProgress = progress
	ev, err := trainers.New(m, tc)
	if err != nil {
		return trainers.EvalResult{}, err
	}
	defer ev.Close()
	return ev.Evaluate(ds)
}

func runMerge(c *cli, args []string) error {
	f := newFlags(c, "--base MODEL_DIR --adapter ADAPTER_DIR --out MODEL_DIR",
		"Adds the adapter's update into the base weights (W ← W + (α/r)·A·B) and writes the\nresult to --out as a plain model folder, which runs at the base model's speed.",
		"golora merge --base nano-model --adapter e2e-adapter --out nano-e2e")
	var base, adapter, out string
	f.StringVar(&base, "base", "", "`MODEL_DIR`: base model folder")
	f.StringVar(&adapter, "adapter", "", "`ADAPTER_DIR`: adapter folder")
	f.StringVar(&out, "out", "", "`MODEL_DIR`: model folder to write")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if err := need("base", base); err != nil {
		return err
	}
	if err := need("adapter", adapter); err != nil {
		return err
	}
	// Merging must never modify its inputs: not the base folder (merging
	// into it would apply the adapter twice on the next load), not the
	// adapter.
	if err := guardOutputs([]flagPath{{"out", out}}, []flagPath{{"base", base}, {"adapter", adapter}}); err != nil {
		return err
	}
	if err := checkOutputDir("out", out, outputFiles); err != nil {
		return err
	}
	m, _, err := loadBase("base", base)
	if err != nil {
		return err
	}
	lm, err := loadAdapter(m, adapter)
	if err != nil {
		return err
	}
	// GPT-2's output head is the token embedding's table (and so is a
	// tied Llama's), so merging an update of the embedding would change
	// the head too: refuse it in the flags' words (the library's error
	// names its Go switch).
	if paths, err := lm.Paths(lora.DefaultAdapter); err == nil && m.shape.tiedHead() {
		for _, p := range paths {
			if _, ok := lm.Layer(p).(*lora.Embedding); ok {
				return fmt.Errorf("--adapter %s adapts the token embedding %s, whose table the model's output head shares: merging it would change the head too; use the adapter unmerged (eval or generate --adapter), or train it without the embedding (wte, embed_tokens) in --targets", adapter, p)
			}
		}
	}
	// An untied head has its own weight: an embedding update merges into
	// the embedding alone.
	lm.MergeEmbeddings = !m.shape.tiedHead()
	if err := lm.MergeAndUnload(); err != nil {
		return fmt.Errorf("--adapter %s: %w", adapter, err)
	}
	if err := makeParent(out); err != nil {
		return err
	}
	if err := m.Save(out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote model %s (%s merged into %s)\n", out, adapter, base)
	return nil
}

func runTokenize(c *cli, args []string) error {
	f := newFlags(c, "--base MODEL_DIR (--text TEXT | --chat FILE.jsonl)",
		"Prints the token ids of --text under the model's tokenizer, space-separated on one line\n(or as a JSON array). --tokenizer names a tokenizer instead of a model: bytes, gpt2, or\na Hugging Face tokenizer.json (or a folder with one, or with vocab.json and merges.txt).\n\nWith --chat it shows what training sees of a chat or prompt-completion JSONL file: each\nconversation rendered with the chat template, the trained tokens (the assistant's turns)\nhighlighted and the tokens beyond --context marked; with --json, one line per\nconversation with its token ids and mask (1 on each trained token).",
		`golora tokenize --base nano-model --text "Hello, world"`)
	var base, text, tokName string
	var asJSON bool
	f.StringVar(&base, "base", "", "`MODEL_DIR`: model folder whose tokenizer to use")
	f.StringVar(&tokName, "tokenizer", "", "tokenizer `NAME|PATH` instead of --base: bytes, gpt2, or a tokenizer.json file or folder")
	f.StringVar(&text, "text", "", "the `TEXT` to tokenize")
	f.BoolVar(&asJSON, "json", false, "print a JSON array (with --chat: one {\"line\", \"ids\", \"mask\"} object per conversation)")
	var tc tokenizeChat // --chat and its flags (tokenize_chat.go)
	tc.register(f)
	if err := f.parseNone(args); err != nil {
		return err
	}
	if tc.file != "" {
		if text != "" {
			return usagef("give --text or --chat, not both")
		}
		return tc.run(c, base, tokName, asJSON)
	}
	var encode func(string) ([]int, error)
	switch {
	case base != "" && tokName != "":
		return usagef("give --base or --tokenizer, not both")
	case tokName == "bytes" || tokName == "gpt2":
		tok, err := gpt.NewTokenizer(tokName)
		if err != nil {
			return err
		}
		encode = func(s string) ([]int, error) { return gpt.EncodeText(tok, s) }
	case tokName != "":
		st, err := os.Stat(tokName)
		if err != nil {
			return usagef("--tokenizer %q: want bytes, gpt2, or a tokenizer.json file or folder (%v)", tokName, err)
		}
		var ht *tokenizer.Tokenizer
		if st.IsDir() {
			ht, err = tokenizer.LoadDir(tokName)
		} else {
			ht, err = tokenizer.LoadFile(tokName)
		}
		if err != nil {
			return fmt.Errorf("--tokenizer %s: %w", tokName, err)
		}
		encode = ht.Encode
	case base != "":
		tok, _, err := loadFolderTokenizer("base", base)
		if err != nil {
			return err
		}
		encode = func(s string) ([]int, error) { return gpt.EncodeText(tok, s) }
	default:
		return usagef("--base is required (or --tokenizer)")
	}
	ids, err := encode(text)
	if err != nil {
		return err
	}
	if asJSON {
		if ids == nil {
			ids = []int{}
		}
		return writeJSON(c.stdout, ids)
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	fmt.Fprintln(c.stdout, strings.Join(s, " "))
	return nil
}
