// Package chat turns conversations into what instruction tuning trains on:
// the model's own chat template rendered over JSONL conversations, the
// tokens of the result, and a loss mask that covers exactly the assistant's
// turns.
//
// # Overview
//
//	d, err := chat.LoadJSONL("train.jsonl", chat.ReadOptions{})   // {"messages": [...]} or {"prompt", "completion"}
//	tmpl, err := chat.NewTemplate("tokenizer_config.json", tok.ChatTemplate()) // or chat.ChatML()
//	f, err := chat.NewFormatter(tmpl.WithTokens(specials), chat.FromTokenizer(tok))
//	e, err := f.Encode(d.Records[0].Conversation)  // e.Text, e.IDs, e.Mask
//	set, stats, err := f.Dataset(d, chat.DatasetOptions{Context: 512, EOS: -1}) // trainers examples
//	ids, err := f.Prompt(history)                  // ids that make the model answer
//
// # Data
//
// ReadJSONL reads one record per line: FormatChat,
// {"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}
// (an assistant message may carry "weight": 0 to be context only), or
// FormatPromptCompletion, {"prompt": "…", "completion": "…"} as plain
// text or {"prompt": [messages], "completion": [messages]} as a
// conversation. A malformed line is a *LineError naming the file and line;
// ReadOptions.SkipBadLines counts such lines instead.
//
// # Templates
//
// Template renders a Jinja chat_template (tokenizer_config.json's) with
// github.com/ardanlabs/jinja, with what transformers' apply_chat_template
// passes: messages, add_generation_prompt, tools = none, the tokenizer's
// bos_token, eos_token, pad_token and unk_token, raise_exception and
// strftime_now, with trim_blocks and lstrip_blocks on. The real templates
// of SmolLM2, Qwen2.5, Qwen3, Llama 3 and Llama 3.2 render byte for byte as
// Hugging Face's own JavaScript Jinja renders them (TestTemplateReference).
// ChatML is the built-in template for models without one (GPT-2).
//
// # The loss mask
//
// For a conversation m₁…mₙ rendered as T = R(m₁…mₙ), the trained turn k
// (an assistant message) is the byte span [s_k, e_k) of T with
//
//	s_k = len(R(m₁…m_{k−1}, add_generation_prompt))   (which must be a prefix of T)
//	e_k = the end of the first end-of-turn text in T after s_k
//
// The end-of-turn text is found once per template by rendering a probe
// conversation: the special token that follows the assistant's content
// ("<|im_end|>", "<|eot_id|>"). So the span holds what the model must write
// after the generation prompt, its end-of-turn token included, and not the
// newline or header some templates put after it. T is tokenized whole
// (special tokens in it read as tokens, nothing added around it) and token
// j is trained when its byte range in T, from the tokenizer's offsets,
// overlaps a span. Token boundaries are never guessed: no piece is
// tokenized on its own.
//
// # Examples and packing
//
// Dataset makes trainers.Examples with a Mask. A conversation longer than
// the context keeps its first Context+1 tokens (one left with nothing
// trained is dropped and counted), or, with Pack, all examples are joined
// and cut into windows (trainers.Pack) whose masks are the slices of the
// examples' masks they cover.
//
// # Errors
//
// Functions return errors with context (the file and line, the message
// number, the template's name); nothing panics on user data.
package chat
