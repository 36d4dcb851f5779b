package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn"
)

// generation is what generate prints with --json.
type generation struct {
	Prompt     string  `json:"prompt"`
	Text       string  `json:"text"` // the generated continuation
	Tokens     []int   `json:"tokens"`
	StopToken  int     `json:"stop_token"` // −1: stopped at --max-new-tokens
	LogProb    float64 `json:"log_prob"`
	PromptCrop int     `json:"prompt_tokens_cropped"`
}

func runGenerate(c *cli, args []string) error {
	f := newFlags(c, "--base MODEL_DIR [--adapter ADAPTER_DIR] --prompt TEXT [--max-new-tokens N …]",
		"Continues --prompt with the model (and the adapter, when one is given) and prints the\nprompt followed by the continuation. Decoding is greedy unless --temperature > 0\n(sampling, optionally restricted by --top-k and --top-p) or --beams ≥ 1 (beam search).\nIt stops at the end-of-text token (for a Llama-family folder, at any eos id of its\ngeneration_config.json or config.json) or after --max-new-tokens tokens.",
		`golora generate --base nano-model --adapter e2e-adapter --prompt "name[The Eagle] | food[French]||" --beams 4`)
	var base, adapter, prompt string
	var maxNew, topK, beams, noRepeat int
	var temperature, topP, lengthPenalty float64
	var seed uint64
	var asJSON, asChat bool
	var system, chatTemplate string
	f.StringVar(&base, "base", "", "`MODEL_DIR`: base model folder")
	f.StringVar(&adapter, "adapter", "", "`ADAPTER_DIR`: adapter folder to apply")
	f.StringVar(&prompt, "prompt", "", "the `TEXT` to continue")
	f.IntVar(&maxNew, "max-new-tokens", 0, "most tokens to generate, at most the model's context (0: 64, or the context if smaller)")
	f.Float64Var(&temperature, "temperature", 0, "sample from softmax(logits / T) when > 0; 0 is greedy decoding")
	f.IntVar(&topK, "top-k", 0, "sample only among the K most likely tokens (needs --temperature)")
	f.Float64Var(&topP, "top-p", 0, "sample only among the most likely tokens whose probability reaches P (needs --temperature)")
	f.IntVar(&beams, "beams", 0, "beam search with this many beams (0: none)")
	f.Float64Var(&lengthPenalty, "length-penalty", 0, "beam search ranks logP / length^α with this α")
	f.IntVar(&noRepeat, "no-repeat-ngram", 0, "never generate an n-gram of this size twice (0: no rule)")
	f.Uint64Var(&seed, "seed", 1, "seed of the sampler")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&asChat, "chat", false, "one chat turn: --prompt is the user's message, rendered with the chat template, and\nonly the answer is printed (decoding defaults from generation_config.json)")
	f.StringVar(&system, "system", "", "with --chat: system message `TEXT`")
	f.StringVar(&chatTemplate, "chat-template", "", "with --chat: Jinja chat template `FILE` instead of the model's")
	var pf precisionFlags
	pf.register(f)
	if err := f.parseNone(args); err != nil {
		return err
	}
	if err := pf.check(); err != nil {
		return err
	}
	if !asChat && (system != "" || chatTemplate != "") {
		return usagef("--system and --chat-template need --chat")
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch {
	case maxNew < 0:
		return usagef("--max-new-tokens %d: want ≥ 1 (0: the default)", maxNew)
	case !finite(temperature) || temperature < 0:
		return usagef("--temperature %v: want 0 (greedy) or a finite value > 0", temperature)
	case topK < 0:
		return usagef("--top-k %d: want ≥ 0", topK)
	case !(topP >= 0 && topP <= 1):
		return usagef("--top-p %v: want in [0, 1]", topP)
	case (topK > 0 || topP > 0) && temperature == 0:
		return usagef("--top-k and --top-p need sampling: set --temperature > 0")
	case beams < 0:
		return usagef("--beams %d: want ≥ 0", beams)
	case beams > 0 && temperature > 0:
		return usagef("--beams with --temperature: beam search is deterministic, give one or the other")
	case !finite(lengthPenalty) || (lengthPenalty != 0 && beams == 0):
		return usagef("--length-penalty %v: needs --beams ≥ 1 and a finite value", lengthPenalty)
	case noRepeat < 0:
		return usagef("--no-repeat-ngram %d: want ≥ 0", noRepeat)
	}
	if err := need("base", base); err != nil {
		return err
	}
	if prompt == "" {
		return usagef("--prompt is required (a non-empty text)")
	}
	m, tok, err := loadBase("base", base)
	if err != nil {
		return err
	}
	bs := m.ContextSize()
	if maxNew == 0 {
		maxNew = min(64, bs)
	}
	if maxNew > bs {
		return usagef("--max-new-tokens %d: want at most %d (the model's context)", maxNew, bs)
	}
	if _, err := loadAdapter(m, adapter); err != nil {
		return err
	}
	nn.SetTrainable(m.Params(), false) // nothing trains here
	if err := pf.apply(m); err != nil {
		return err
	}
	if v := m.VocabSize(); beams > v {
		return usagef("--beams %d: want at most %d (the model's vocabulary: each beam continues with a different token)", beams, v)
	}
	opts := gpt.GenerateOptions{MaxNewTokens: maxNew, Temperature: temperature, TopK: topK, TopP: topP,
		Seed: seed, Beams: beams, LengthPenalty: lengthPenalty, NoRepeatNGram: noRepeat}
	ids, err := gpt.EncodeText(tok, prompt)
	if err != nil {
		return fmt.Errorf("--prompt: %w", err)
	}
	var cs *chatSetup
	if asChat { // chat.go
		if ids, cs, err = chatTurn(f, base, tok, chatTemplate, system, prompt, &opts); err != nil {
			return err
		}
	}
	if err := checkGenerateMemory(m, len(ids), opts); err != nil {
		return err
	}
	gens, err := m.Generate([][]int{ids}, opts)
	if err != nil {
		return err
	}
	g := gens[0]
	text := strings.ToValidUTF8(tok.Decode(g.Tokens), "\uFFFD")
	if cs != nil { // the end-of-turn text, when it is not one token
		text = cs.f.CutAnswer(text)
	}
	if asJSON {
		toks := g.Tokens
		if toks == nil {
			toks = []int{}
		}
		return writeJSON(c.stdout, generation{Prompt: prompt, Text: text, Tokens: toks, StopToken: g.Stop,
			LogProb: g.LogProb, PromptCrop: g.Cropped})
	}
	if asChat {
		fmt.Fprintln(c.stdout, text)
		return nil
	}
	fmt.Fprintln(c.stdout, prompt+text)
	return nil
}
