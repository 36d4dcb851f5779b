// Package tokenizer reads Hugging Face tokenizer.json files and encodes and
// decodes text exactly as Hugging Face's tokenizers library does with them:
// the same token ids, the same decoded text. It covers the two families of
// today's decoder-only models: byte-level BPE (GPT-2, Llama 3, Qwen2/3,
// SmolLM2) and SentencePiece-style BPE with byte fallback (Llama 2,
// Mistral). GPT-2's older vocab.json + merges.txt load through the same
// code (FromVocabMerges, LoadDir).
//
// # Overview
//
//	tok, err := tokenizer.LoadDir("Llama-3.2-1B")        // tokenizer.json (+ tokenizer_config.json)
//	ids, err := tok.Encode("Hello world")                 // [128000 9906 1917] with the BOS template
//	e, err := tok.EncodeWith(text, tokenizer.EncodeOptions{NoTemplate: true})
//	text, err := tok.Decode(ids)
//
// Encode follows the library's pipeline:
//
//  1. added tokens (tokenizer.json's "added_tokens", such as
//     "<|begin_of_text|>" or "<|im_end|>") are found in the input first,
//     leftmost and then longest, honouring single_word, lstrip and rstrip,
//     and are never split; tokens with normalized=true are found in the
//     normalized text of step 2 instead;
//  2. the normalizer rewrites each piece between them: NFC, NFD, NFKC,
//     NFKD, Prepend, Replace, Strip, Sequence;
//  3. the pre-tokenizer cuts it into words: Split (regex or string, all five
//     behaviours, invert), ByteLevel (with or without GPT-2's pattern,
//     add_prefix_space), Digits, Metaspace (prepend_scheme, split),
//     Sequence;
//  4. the model encodes each word: BPE with merges as "a b" strings or
//     ["a", "b"] pairs, ignore_merges, byte_fallback (<0xNN> tokens),
//     unk_token and fuse_unk, continuing_subword_prefix, end_of_word_suffix;
//     a word's tokens are cached;
//  5. the post-processor adds its special tokens: TemplateProcessing (the
//     single-text template, e.g. Llama's BOS), ByteLevel (offset trimming),
//     Sequence. EncodeOptions.NoTemplate leaves them out.
//
// Decode maps ids to their token strings and runs the decoder chain:
// ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence.
// DecodeStream decodes ids one at a time for streaming generation.
//
// # Exactness and refusals
//
// Anything in a file that would change ids or text and that this package
// does not implement is refused when the file is read, with an error that
// names it: another component type (WordPiece, Unigram, Lowercase,
// BertPreTokenizer, …), an unknown setting of a known component, BPE
// dropout, truncation or padding. A tokenizer that could drop characters
// it cannot encode (no unk_token, no byte_fallback, no complete byte-level
// alphabet) is refused too, and so is an added token whose id differs from
// the one Hugging Face would give it. Encoding cannot fail afterwards:
// regexes run without a time limit or backtracking limit.
//
// Regexes (Split, Replace) are Oniguruma patterns; they run on regexp2,
// which agrees with Oniguruma on what tokenizer files use (\p{…} classes,
// \s, (?i:…), lookahead). Where Hugging Face's Rust library and its
// JavaScript port differ, this package follows Rust.
//
// # Offsets
//
// EncodeWith returns each token's byte range in the input, carried
// through every normalizer and pre-tokenizer, so a caller can map a span of
// text (an assistant's turn in a rendered chat) to the tokens that hold it.
// Text that is not valid UTF-8 is read with U+FFFD for each ill-formed
// sequence, aligned to the bytes it replaces.
//
// # Concurrency
//
// A Tokenizer is safe for concurrent use; its only mutable state is the
// word cache, behind a lock.
package tokenizer
