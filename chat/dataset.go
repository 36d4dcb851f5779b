package chat

import (
	"fmt"

	"github.com/golora/golora/trainers"
)

// DatasetOptions says how Dataset turns records into training examples.
// Context has no default (0 is an error naming it); Pack false keeps one
// example per record; nil Prefix puts nothing before a prompt. EOS 0 is
// the id 0, like any other id: set −1 for none.
type DatasetOptions struct {
	// Context is the model's input length: an example holds at most
	// Context+1 tokens.
	Context int
	// Pack joins all examples into one stream cut into windows of
	// Context+1 tokens (trainers.Pack) instead of one example per record,
	// truncated.
	Pack bool
	// Prefix are the ids put before a plain prompt-completion record (the
	// tokenizer's post-processor prefix: Llama's BOS), and EOS the id put
	// after its completion (−1: none). Conversations need neither: the
	// template writes its own.
	Prefix []int
	EOS    int
}

// DatasetStats counts what Dataset did.
type DatasetStats struct {
	Records   int // records read
	Examples  int // examples (or packed windows) made
	Truncated int // records longer than Context+1 tokens, cut to their start (not packed)
	Dropped   int // records left out: no trained token within the context
	Tokens    int // tokens of all records
	Trained   int // their trained tokens
}

// Dataset encodes the records of d as training examples: a conversation
// with its assistant-turn mask (Encode), a plain prompt-completion record
// as Prefix + tokens of the prompt + tokens of the completion + EOS with
// the loss on the completion and EOS. Without Pack, a record longer than
// Context+1 tokens keeps its first Context+1, and one left with no trained
// token is dropped (counted). An error names the file and line.
func (f *Formatter) Dataset(d *Data, o DatasetOptions) (*trainers.ExampleSet, DatasetStats, error) {
	st := DatasetStats{Records: len(d.Records)}
	if o.Context < 1 {
		return nil, st, fmt.Errorf("chat: dataset %s: context %d, want ≥ 1", d.Name, o.Context)
	}
	exs := make([]trainers.Example, 0, len(d.Records))
	for _, r := range d.Records {
		ex, err := f.Example(r, o.Prefix, o.EOS)
		if err != nil {
			return nil, st, &LineError{d.Name, r.Line, err}
		}
		st.Tokens += len(ex.Tokens)
		st.Trained += trainers.TargetsWithin(ex, 0)
		exs = append(exs, ex)
	}
	if o.Pack {
		set, err := trainers.Pack(exs, o.Context, d.Name)
		if err != nil {
			return nil, st, fmt.Errorf("chat: %w", err)
		}
		st.Examples = len(set.Examples)
		return set, st, nil
	}
	set := &trainers.ExampleSet{Name: d.Name}
	for _, ex := range exs {
		if len(ex.Tokens) > o.Context+1 {
			st.Truncated++
		}
		if trainers.TargetsWithin(ex, o.Context) == 0 {
			st.Dropped++
			continue
		}
		set.Examples = append(set.Examples, ex)
	}
	if len(set.Examples) == 0 {
		return nil, st, fmt.Errorf("chat: %s: no record has a trained token within the first %d tokens (raise the context or use packing)", d.Name, o.Context+1)
	}
	st.Examples = len(set.Examples)
	return set, st, nil
}

// Example encodes one record (see Dataset).
func (f *Formatter) Example(r Record, prefix []int, eos int) (trainers.Example, error) {
	if !r.Plain {
		e, err := f.Encode(r.Conversation)
		if err != nil {
			return trainers.Example{}, err
		}
		return trainers.Example{Tokens: e.IDs, Mask: e.Mask}, nil
	}
	p, _, err := f.coder.EncodeOffsets(r.Prompt)
	if err != nil {
		return trainers.Example{}, err
	}
	c, _, err := f.coder.EncodeOffsets(r.Completion)
	if err != nil {
		return trainers.Example{}, err
	}
	toks := append(append([]int(nil), prefix...), p...)
	n := len(toks)
	toks = append(toks, c...)
	if eos >= 0 {
		toks = append(toks, eos)
	}
	return trainers.Example{Tokens: toks, PromptLen: n}, nil
}
