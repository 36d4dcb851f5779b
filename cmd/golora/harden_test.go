package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
)

// snapshotDir reads every file under dir (relative name → bytes).
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// copyTree copies the folder src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	for rel, b := range snapshotDir(t, src) {
		p := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMergeNeverModifiesInputs: merge refuses an --out that is the base (or
// the adapter), however it is spelled, or lies inside it or holds it; the
// base stays byte-identical. (A merge into its own base used to overwrite it
// and exit 0; loading the adapter on it again applied the update twice.)
func TestMergeNeverModifiesInputs(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	base, adapter := filepath.Join(dir, "base"), filepath.Join(dir, "adapter")
	copyTree(t, f.base, base)
	copyTree(t, f.adapter, adapter)
	if err := os.Symlink(base, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	relBase, err := filepath.Rel(wd, base)
	if err != nil {
		t.Fatal(err)
	}
	before, beforeAd := snapshotDir(t, base), snapshotDir(t, adapter)
	cases := []struct {
		name, base, out string
		want            string
	}{
		{"out is the base", base, base, "is the --base folder"},
		{"trailing slash", base, base + "/", "is the --base folder"},
		{"dot segments", base, filepath.Join(dir, "sub", "..", "base"), "is the --base folder"},
		{"relative path", base, relBase, "is the --base folder"},
		{"symbolic link to the base", base, filepath.Join(dir, "link"), "is the --base folder"},
		{"base given through the link", filepath.Join(dir, "link"), base, "is the --base folder"},
		{"inside the base", base, filepath.Join(base, "merged"), "lies inside the --base folder"},
		{"inside, through the link", base, filepath.Join(dir, "link", "merged"), "lies inside the --base folder"},
		{"a folder holding the base", base, dir, "holds the --base folder"},
		{"out is the adapter", base, adapter, "is the --adapter folder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := golora("merge", "--base", c.base, "--adapter", adapter, "--out", c.out)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "--out") || r.stdout != "" {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, c.want)
			}
			if !sameSnapshot(before, snapshotDir(t, base)) || !sameSnapshot(beforeAd, snapshotDir(t, adapter)) {
				t.Fatal("the base or the adapter changed")
			}
		})
	}
	// The same guard protects finetune's inputs.
	for _, args := range [][]string{
		{"finetune", "--base", base, "--data", f.prose, "--out", base, "--steps", "1"},
		{"finetune", "--full", "--base", filepath.Join(dir, "link"), "--data", f.prose, "--out", base, "--steps", "1"},
		{"finetune", "--base", base, "--data", f.prose, "--out", filepath.Join(dir, "o"), "--checkpoint", f.prose, "--steps", "1"},
		{"pretrain", "--data", f.code, "--out", filepath.Join(dir, "p"), "--metrics", f.code, "--steps", "1"},
		{"pretrain", "--data", filepath.Join(base, gpt.ConfigFile), "--out", base, "--steps", "1"},
	} {
		if r := golora(args...); r.code != 2 || !strings.Contains(r.stderr, "would") {
			t.Errorf("%s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if !sameSnapshot(before, snapshotDir(t, base)) {
		t.Fatal("the base changed")
	}
	// A merge elsewhere works and leaves both inputs as they were.
	out := filepath.Join(dir, "merged")
	mustRun(t, "merge", "--base", filepath.Join(dir, "link"), "--adapter", adapter, "--out", out)
	if !sameSnapshot(before, snapshotDir(t, base)) || !sameSnapshot(beforeAd, snapshotDir(t, adapter)) {
		t.Fatal("a merge changed its inputs")
	}
	if _, err := os.Stat(filepath.Join(out, lora.ConfigFile)); err == nil {
		t.Error("the merged folder holds an adapter config")
	}
}
