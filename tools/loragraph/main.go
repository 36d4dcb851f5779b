// Command loragraph draws the graphs LoRA layers build, from the graphs
// themselves: it builds one adapted layer per picture with nn/lora, takes
// the builder's Graphviz description (graph.Builder.Dot, which Gorgonia
// writes) and, when Graphviz's dot is installed (Debian: apt-get install
// graphviz), renders it as SVG. docs/img/lora-graph-*.svg come from
//
//	go run ./tools/loragraph -out docs/img
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
)

// host is an nn.Host with one projection.
type host struct{ layer nn.Layer }

func (h *host) Params() []*graph.Param { return h.layer.Params() }
func (h *host) Layers() []nn.NamedLayer {
	return []nn.NamedLayer{{Path: "h.0.attn.c_attn", Layer: h.layer}}
}
func (h *host) SetLayer(path string, l nn.Layer) error {
	if path != "h.0.attn.c_attn" {
		return fmt.Errorf("no layer %q", path)
	}
	h.layer = l
	return nil
}

// layerDot builds the forward graph of a [4 → 12] projection (q | k | v of
// width 4) adapted by cfg, for 3 rows of input, and returns its DOT.
func layerDot(cfg lora.Config) (string, error) {
	h := &host{layer: nn.NewLinear("h.0.attn.c_attn", graph.Float32, 4, 12, true)}
	m, err := lora.Inject(h, cfg)
	if err != nil {
		return "", err
	}
	b := graph.NewBuilder(graph.Float32, 1)
	y := m.Layer("h.0.attn.c_attn").Forward(b.Input("x", 3, 4))
	if err := y.Err(); err != nil {
		return "", err
	}
	return b.Dot(), nil
}

func main() {
	out := flag.String("out", "docs/img", "folder for the .dot and .svg files")
	flag.Parse()
	pictures := []struct {
		name string
		cfg  lora.Config
	}{
		// The paper's GPT-2 setting: q and v of the fused c_attn, LoRA dropout.
		{"lora-graph-qv", lora.Config{R: 2, Alpha: 4, Dropout: 0.1, Targets: []string{"c_attn[q,v]"}}},
		// DoRA on the whole layer, no dropout: g ⊙ (x·W + s·(x·A)·B) + b.
		{"lora-graph-dora", lora.Config{R: 2, Alpha: 4, DoRA: true, Targets: []string{"c_attn"}}},
	}
	for _, p := range pictures {
		dot, err := layerDot(p.cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "loragraph: %s: %v\n", p.name, err)
			os.Exit(1)
		}
		path := filepath.Join(*out, p.name+".dot")
		if err := os.WriteFile(path, []byte(dot), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "loragraph:", err)
			os.Exit(1)
		}
		if _, err := exec.LookPath("dot"); err != nil {
			fmt.Printf("wrote %s (install Graphviz to render it)\n", path)
			continue
		}
		cmd := exec.Command("dot", "-Tsvg", "-o", filepath.Join(*out, p.name+".svg"), path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr // dot warns about Gorgonia's port names; only failures matter
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "loragraph: dot %s: %v\n%s", path, err, stderr.String())
			os.Exit(1)
		}
		fmt.Printf("wrote %s and %s.svg\n", path, p.name)
	}
}
