package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchText is about 1 MB of the reference corpus, repeated: code, prose,
// whitespace runs, CJK and emoji, so the word cache sees both repeats and
// a realistic share of distinct words.
func benchText() string {
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		sb.WriteString(referenceCorpus[i%len(referenceCorpus)])
		sb.WriteString(" ")
	}
	return sb.String()
}

// BenchmarkEncode measures Encode on the real files (skipped without
// them: bash scripts/setup-node.sh) and on the byte-level fixture:
//
//	go test ./tokenizer -run '^$' -bench Encode -benchtime 5x
func BenchmarkEncode(b *testing.B) {
	text := benchText()
	for _, f := range referenceFiles {
		if f.patch != nil {
			continue
		}
		b.Run(f.name, func(b *testing.B) {
			data, err := os.ReadFile(filepath.Join(refDir, f.path))
			if err != nil {
				b.Skipf("%v: run bash scripts/setup-node.sh", err)
			}
			tok, err := FromJSON(data)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := tok.Encode(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoad measures reading a real tokenizer.json (9–11 MB).
func BenchmarkLoad(b *testing.B) {
	for _, f := range referenceFiles {
		if f.patch != nil {
			continue
		}
		b.Run(f.name, func(b *testing.B) {
			data, err := os.ReadFile(filepath.Join(refDir, f.path))
			if err != nil {
				b.Skipf("%v: run bash scripts/setup-node.sh", err)
			}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := FromJSON(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
