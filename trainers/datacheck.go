package trainers

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
)

// ErrOtherModel is wrapped by the error of Resume when the checkpoint's
// tensors are not the model's trainable parameters (another base model, or
// other adapter settings), as opposed to a damaged or unreadable file.
var ErrOtherModel = errors.New("checkpoint made for another model")

// Fingerprint identifies the contents of a dataset: a SHA-256 over its
// examples in order (each one's prompt length and tokens), as 32 hex digits.
// Two datasets with the same examples in the same order have the same
// fingerprint; any other file, split, window length or tokenizer gives
// another. Store it in Config.DataID so that checkpoints record it, and
// compare it when resuming (the command-line tool does). It reads every
// example once.
func Fingerprint(ds Dataset) string {
	if ds == nil {
		return ""
	}
	h := sha256.New()
	var buf []byte // one example's varints, written at once
	n := ds.Len()
	h.Write(binary.AppendVarint(nil, int64(n)))
	for i := 0; i < n; i++ {
		ex := ds.Example(i)
		buf = binary.AppendVarint(buf[:0], int64(ex.PromptLen))
		buf = binary.AppendVarint(buf, int64(len(ex.Tokens)))
		for _, t := range ex.Tokens {
			buf = binary.AppendVarint(buf, int64(t))
		}
		// A per-token mask (chat data) decides what is scored as much as
		// PromptLen does: a changed template or mask is other data.
		buf = binary.AppendVarint(buf, int64(len(ex.Mask)))
		for _, m := range ex.Mask {
			b := int64(0)
			if m {
				b = 1
			}
			buf = binary.AppendVarint(buf, b)
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// LossTokens is the number of targets of ex that carry loss before any
// truncation to a context: the tokens after the first and after the prompt,
// or, for an example with a per-token Mask, the masked ones (Example.Target).
func LossTokens(ex Example) int {
	return TargetsWithin(ex, 0)
}

// CapTokens returns ds when its examples hold at most maxTokens loss tokens
// in all (or maxTokens ≤ 0), and otherwise a subset of evenly spaced
// examples, in their order, holding at most maxTokens (at least one
// example): a validation set of bounded cost that still covers the whole
// data. The subset depends only on ds and maxTokens, so every validation of
// a run scores the same examples.
func CapTokens(ds Dataset, maxTokens int) Dataset {
	if ds == nil || maxTokens <= 0 {
		return ds
	}
	n := ds.Len()
	counts := make([]int, n)
	total := 0
	for i := range counts {
		counts[i] = LossTokens(ds.Example(i))
		total += counts[i]
	}
	if total <= maxTokens || n <= 1 {
		return ds
	}
	// k examples at positions ⌊i·n/k⌋; shrink k until they fit.
	k := max(1, min(n, int(float64(n)*float64(maxTokens)/float64(total))))
	for {
		idx := make([]int, k)
		sum := 0
		for i := range idx {
			idx[i] = i * n / k
			sum += counts[idx[i]]
		}
		if sum <= maxTokens || k == 1 {
			return &subset{ds: ds, idx: idx}
		}
		k--
	}
}
