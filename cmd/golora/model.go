package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/models/llama"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/trainers"
)

// The commands handle every architecture golora implements through the
// two types below: a baseModel is a loaded model (GPT-2 from package gpt,
// or a Llama-family decoder from package llama), a modelShape its
// configuration, which is known before the weights are (pretrain checks
// memory before it builds the model). config.json's model_type picks the
// package (readModelType); nothing else in the commands asks which it is.

// baseModel is what the commands need of a loaded model: training
// (trainers.LanguageModel), adapters (nn.Host, BaseLayer), generation,
// saving and its tokenizer. *gpt.Model and *llama.Model both are.
type baseModel interface {
	trainers.LanguageModel
	nn.Host
	BaseLayer(path string) (nn.Layer, error)
	BaseParams() []*graph.Param
	Generate(prompts [][]int, opts gpt.GenerateOptions) ([]gpt.Generation, error)
	ContextSize() int
	SetRecompute(every int) error
	SetLossInBlocks(on bool)
	Save(dir string) error
	Tokenizer() (gpt.Tokenizer, error)
}

// loadedModel is a baseModel with its shape.
type loadedModel struct {
	baseModel
	shape modelShape
}

// hostOf is the model itself that m wraps, for package lora: it asks the
// host for optional methods (PEFTKeyPrefix, which makes a Llama adapter's
// keys PEFT's), which an embedded interface does not pass on.
func hostOf(m baseModel) baseModel {
	if l, ok := m.(*loadedModel); ok {
		return l.baseModel
	}
	return m
}

// modelShape is a model configuration in the terms the commands need:
// what to call it, how much memory it takes, which outputs a model folder
// of it holds.
type modelShape interface {
	// arch is config.json's model_type ("gpt2", "llama", "qwen2", …).
	arch() string
	// describe is the shape in words for messages: "a model of …".
	describe() string
	// summary is inspect's line: the architecture and its sizes.
	summary() string
	// context is the longest context the model runs.
	context() int
	// contextWhy says what limits the context, for --context errors:
	// "the model's context", or a sliding window.
	contextWhy() string
	// width is the model width d: no layer's update has a larger rank.
	width() int
	// loraParamsPerRank is Σ (in + out) over every layer LoRA can adapt:
	// an adapter of rank r on all of them has r times this many
	// parameters.
	loraParamsPerRank() float64
	// modelBytes is the memory of the weights in float32.
	modelBytes() int64
	// trainBytes estimates a training step (train) or an evaluation batch
	// of batch × ctx tokens with trainable trainable parameters, weights
	// not included (see gpt.Config.TrainBytes).
	trainBytes(batch, ctx, trainable int, train bool) int64
	// defaultTargets are finetune's --targets when none are given: the
	// attention's query and value projections, as in the LoRA paper and
	// PEFT's defaults.
	defaultTargets() []string
	// tiedHead reports whether the LM head is the token embedding's table,
	// so that merging an embedding update would change the head too.
	tiedHead() bool
	// outputFile reports whether a file of a model folder of this family
	// may be replaced by one written there (checkOutputDir).
	outputFile(name string, isDir bool) bool
}

// readModelType returns the model_type of the folder dir's config.json,
// "gpt2" when it has none (golora's early folders), and an error naming
// it when no package of golora reads it.
func readModelType(flagName, dir string) (string, error) {
	mt, err := llama.ModelType(dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", where(flagName, dir), err)
	}
	switch {
	case mt == "" || mt == "gpt2":
		return "gpt2", nil
	case slices.Contains(llama.Archs(), mt):
		return mt, nil
	}
	return "", fmt.Errorf("%s: %s: model_type %q: golora reads %s", where(flagName, dir), gpt.ConfigFile, mt, strings.Join(append([]string{"gpt2"}, llama.Archs()...), ", "))
}

// openModel reads the model folder dir (given to --flagName) with the
// package its model_type names.
func openModel(flagName, dir string) (*loadedModel, error) {
	if err := checkInputDir(flagName, dir, gpt.ConfigFile); err != nil {
		return nil, err
	}
	arch, err := readModelType(flagName, dir)
	if err != nil {
		return nil, err
	}
	if arch == "gpt2" {
		if err := checkInputDir(flagName, dir, gpt.WeightsFile); err != nil {
			return nil, err
		}
		m, err := gpt.Load(dir, graph.Float32)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where(flagName, dir), err)
		}
		return &loadedModel{m, gptShape{m.Config()}}, nil
	}
	m, err := llama.Load(dir, graph.Float32)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where(flagName, dir), err)
	}
	return &loadedModel{m, llamaShape{m.Config()}}, nil
}

// readShape reads the configuration of the model folder dir without its
// weights.
func readShape(flagName, dir string) (modelShape, error) {
	if err := checkInputDir(flagName, dir, gpt.ConfigFile); err != nil {
		return nil, err
	}
	arch, err := readModelType(flagName, dir)
	if err != nil {
		return nil, err
	}
	if arch == "gpt2" {
		cfg, err := gpt.ReadConfig(dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where(flagName, dir), err)
		}
		return gptShape{cfg}, nil
	}
	cfg, err := llama.ReadConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where(flagName, dir), err)
	}
	return llamaShape{cfg}, nil
}

// loadFolderTokenizer returns the tokenizer of the model folder dir
// without reading its weights, and its context.
func loadFolderTokenizer(flagName, dir string) (gpt.Tokenizer, modelShape, error) {
	s, err := readShape(flagName, dir)
	if err != nil {
		return nil, nil, err
	}
	var tok gpt.Tokenizer
	if s.arch() == "gpt2" {
		tok, err = gpt.LoadTokenizer(dir)
	} else {
		tok, err = llama.LoadTokenizer(dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where(flagName, dir), err)
	}
	return tok, s, nil
}

// gptShape is GPT-2's configuration.
type gptShape struct{ c gpt.Config }

func (s gptShape) arch() string { return "gpt2" }
func (s gptShape) describe() string {
	c := s.c
	return fmt.Sprintf("a model of %d layers × width %d (context %d, vocabulary %d)", c.NLayer, c.NEmbd, c.BlockSize, c.VocabSize)
}
func (s gptShape) summary() string {
	c := s.c
	return fmt.Sprintf("GPT-2 model: %d layers, %d heads, width %d, context %d, vocabulary %d, tokenizer %s",
		c.NLayer, c.NHead, c.NEmbd, c.BlockSize, c.VocabSize, c.Tokenizer)
}
func (s gptShape) context() int { return s.c.BlockSize }
func (s gptShape) width() int   { return s.c.NEmbd }
func (s gptShape) contextWhy() string {
	return "the model's context"
}
func (s gptShape) loraParamsPerRank() float64 {
	d := float64(s.c.NEmbd)
	return float64(s.c.NLayer)*16*d + float64(s.c.VocabSize) + d
}
func (s gptShape) modelBytes() int64 { return s.c.ModelBytes(4) }
func (s gptShape) trainBytes(batch, ctx, trainable int, train bool) int64 {
	return s.c.TrainBytes(batch, ctx, trainable, 4, train)
}
func (s gptShape) tiedHead() bool           { return true }
func (s gptShape) defaultTargets() []string { return []string{"q", "v"} }
func (s gptShape) outputFile(name string, isDir bool) bool {
	return only(gpt.ConfigFile, gpt.WeightsFile)(name, isDir)
}

// llamaShape is a Llama-family configuration.
type llamaShape struct{ c llama.Config }

// archNames are the architectures' names in messages.
var archNames = map[string]string{llama.ArchLlama: "Llama", llama.ArchMistral: "Mistral", llama.ArchQwen2: "Qwen2", llama.ArchQwen3: "Qwen3"}

func (s llamaShape) arch() string { return s.c.Arch }
func (s llamaShape) describe() string {
	c := s.c
	return fmt.Sprintf("a %s model of %d layers × width %d (context %d, vocabulary %d)", archNames[c.Arch], c.NumLayers, c.Hidden, c.ContextSize(), c.VocabSize)
}
func (s llamaShape) summary() string {
	c := s.c
	head := "separate head"
	if c.TieEmbeddings {
		head = "tied head"
	}
	return fmt.Sprintf("%s model (model_type %s): %d layers, %d heads (%d key/value), head width %d, width %d, MLP %d, context %d, vocabulary %d, %s, rope %s θ %g, tokenizer %s",
		archNames[c.Arch], c.Arch, c.NumLayers, c.Heads, c.KVHeads, c.HeadWidth(), c.Hidden, c.Intermediate, c.ContextSize(), c.VocabSize,
		head, ropeName(c.RoPE), c.RoPE.Theta, c.Tokenizer)
}

// ropeName is the scaling rule of r ("default" for none).
func ropeName(r graph.RoPEConfig) string {
	if r.Type == "" {
		return "default"
	}
	return r.Type
}

func (s llamaShape) context() int { return s.c.ContextSize() }
func (s llamaShape) width() int   { return s.c.Hidden }
func (s llamaShape) contextWhy() string {
	if w := s.c.SlidingWindow; w > 0 && w < s.c.MaxPositions {
		return fmt.Sprintf("the model's sliding_window %d: golora does not implement sliding-window attention, so it refuses longer contexts", w)
	}
	return "the model's context"
}
func (s llamaShape) loraParamsPerRank() float64 {
	c := s.c
	d, q, kv, f := float64(c.Hidden), float64(c.Heads*c.HeadWidth()), float64(c.KVHeads*c.HeadWidth()), float64(c.Intermediate)
	block := (d + q) + 2*(d+kv) + (q + d) + 3*(d+f)
	n := float64(c.NumLayers)*block + float64(c.VocabSize) + d
	if !c.TieEmbeddings {
		n += float64(c.VocabSize) + d
	}
	return n
}
func (s llamaShape) modelBytes() int64 { return saturate(4 * float64(s.c.NumParams())) }

// trainBytes follows gpt.Config.TrainBytes's count for a Llama block: per
// token, the two RMSNorms and their inputs, q, k and v (k and v repeated
// for the query heads), the rotated q and k, the attention output, o_proj
// and the residuals, and gate, up, SiLU and their product; attention keeps
// its scores and probabilities, batch·heads·ctx² each.
func (s llamaShape) trainBytes(batch, ctx, trainable int, train bool) int64 {
	c := s.c
	n := float64(batch) * float64(ctx)
	d, q, kv, f := float64(c.Hidden), float64(c.Heads*c.HeadWidth()), float64(c.KVHeads*c.HeadWidth()), float64(c.Intermediate)
	perToken := float64(c.NumLayers)*(6*d+5*q+2*kv+2*q+4*f) + 3*d
	attn := 2 * float64(c.NumLayers) * float64(batch) * float64(c.Heads) * float64(ctx) * float64(ctx)
	logits := n * float64(c.VocabSize)
	values := n*perToken + attn + logits
	ints := n * 8 * 4
	const margin = 1.25
	if !train {
		return saturate(margin * (values*4 + ints))
	}
	return saturate(margin * ((2*values+logits+4*float64(trainable))*4 + ints))
}
func (s llamaShape) tiedHead() bool           { return s.c.TieEmbeddings }
func (s llamaShape) defaultTargets() []string { return []string{"q_proj", "v_proj"} }

// outputFile allows what llama.Model.Save writes: the config, the
// generation config, the weights (one file or shards and their index) and
// the tokenizer files.
func (s llamaShape) outputFile(name string, isDir bool) bool {
	if isDir {
		return false
	}
	switch name {
	case llama.ConfigFile, llama.GenerationConfigFile, llama.WeightsFile, llama.WeightsIndexFile,
		"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json":
		return true
	}
	ok, _ := filepath.Match("model-*-of-*.safetensors", name)
	return ok
}

// outputFiles allows, in a model folder --out, the files a model of any
// family writes (before the base is read, its family is not known).
func outputFiles(name string, isDir bool) bool {
	return gptShape{}.outputFile(name, isDir) || llamaShape{}.outputFile(name, isDir)
}

// where names the folder dir in an error: "--base DIR", or DIR when no
// flag gave it.
func where(flagName, dir string) string {
	if flagName == "" {
		return dir
	}
	return "--" + flagName + " " + dir
}
