package lora_test

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/nn/lora"
)

// tinyGPT is a small GPT-like nn.Host for the tests (models/gpt is not
// imported): a token embedding "wte", blocks "h.{i}" of pre-LayerNorm
// attention with a fused c_attn (q | k | v) and an MLP, a final "ln_f", and
// an LM head tied to wte's base table. It has no dropout of its own, so the
// only random numbers a graph draws are LoRA dropout's.
type tinyGPT struct {
	dt               graph.DType
	vocab, d, heads  int
	wteBase          *nn.Embedding
	wte              nn.Layer
	ln1, ln2         []*nn.LayerNorm
	attn             []*nn.CausalSelfAttention
	mlp              []*nn.MLP
	lnF              *nn.LayerNorm
	head             *graph.Param // untied LM head [vocab, d]; nil: tied to wteBase
	setLayerFailsFor string       // SetLayer refuses this path (tests of rollback)
}

// untie gives the model its own LM head, a copy of the embedding table.
func (m *tinyGPT) untie() *tinyGPT {
	m.head = m.wteBase.Weight.Clone()
	m.head.Name = "lm_head.weight"
	return m
}

func newTiny(dt graph.DType, layers int, seed uint64) *tinyGPT {
	const vocab, d, heads = 11, 8, 2
	m := &tinyGPT{dt: dt, vocab: vocab, d: d, heads: heads}
	m.wteBase = nn.NewEmbedding("wte", dt, vocab, d)
	m.wte = m.wteBase
	rng := graph.NewRand(seed)
	m.wteBase.Init(rng, 0.5)
	for i := 0; i < layers; i++ {
		p := "h." + strconv.Itoa(i)
		m.ln1 = append(m.ln1, nn.NewLayerNorm(p+".ln_1", dt, d, 1e-5))
		m.ln2 = append(m.ln2, nn.NewLayerNorm(p+".ln_2", dt, d, 1e-5))
		a := nn.NewCausalSelfAttention(p+".attn", dt, d, heads, 0, 0)
		a.CAttn.(*nn.Linear).Init(rng, 0.4)
		a.CProj.(*nn.Linear).Init(rng, 0.4)
		mlp := nn.NewMLP(p+".mlp", dt, d, 4*d, 0)
		mlp.CFc.(*nn.Linear).Init(rng, 0.4)
		mlp.CProj.(*nn.Linear).Init(rng, 0.4)
		m.attn, m.mlp = append(m.attn, a), append(m.mlp, mlp)
	}
	m.lnF = nn.NewLayerNorm("ln_f", dt, d, 1e-5)
	// Biases and LayerNorm parameters get non-trivial values too.
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, ".bias") {
			graph.InitNormal(p, rng, 0.1)
		}
	}
	return m
}

func (m *tinyGPT) Layers() []nn.NamedLayer {
	out := []nn.NamedLayer{{Path: "wte", Layer: m.wte}}
	for i := range m.attn {
		p := "h." + strconv.Itoa(i)
		out = append(out,
			nn.NamedLayer{Path: p + ".attn.c_attn", Layer: m.attn[i].CAttn},
			nn.NamedLayer{Path: p + ".attn.c_proj", Layer: m.attn[i].CProj},
			nn.NamedLayer{Path: p + ".mlp.c_fc", Layer: m.mlp[i].CFc},
			nn.NamedLayer{Path: p + ".mlp.c_proj", Layer: m.mlp[i].CProj})
	}
	return out
}

func (m *tinyGPT) SetLayer(path string, l nn.Layer) error {
	if path == m.setLayerFailsFor && path != "" {
		return fmt.Errorf("tiny: refusing %s", path)
	}
	if path == "wte" {
		m.wte = l
		return nil
	}
	var i int
	var rest string
	if _, err := fmt.Sscanf(path, "h.%d.%s", &i, &rest); err != nil || i < 0 || i >= len(m.attn) {
		return fmt.Errorf("tiny: no layer %q", path)
	}
	switch rest {
	case "attn.c_attn":
		m.attn[i].CAttn = l
	case "attn.c_proj":
		m.attn[i].CProj = l
	case "mlp.c_fc":
		m.mlp[i].CFc = l
	case "mlp.c_proj":
		m.mlp[i].CProj = l
	default:
		return fmt.Errorf("tiny: no layer %q", path)
	}
	return nil
}

// Params collects through the layers, so a LoRA wrapper's A and B appear.
func (m *tinyGPT) Params() []*graph.Param {
	ps := m.wte.Params()
	for i := range m.attn {
		ps = append(ps, nn.Collect(m.ln1[i], m.attn[i], m.ln2[i], m.mlp[i])...)
	}
	ps = append(ps, m.lnF.Params()...)
	if m.head != nil {
		ps = append(ps, m.head)
	}
	return ps
}

// logits adds the forward pass for batch sequences of ids (a [batch·T]
// integer node): → [batch·T, vocab].
func (m *tinyGPT) logits(b *graph.Builder, ids *graph.Node, batch int) *graph.Node {
	x := m.wte.Forward(ids) // [B·T, d]
	for i := range m.attn {
		x = graph.Add(x, m.attn[i].Forward(m.ln1[i].Forward(x), batch))
		x = graph.Add(x, m.mlp[i].Forward(m.ln2[i].Forward(x)))
	}
	x = m.lnF.Forward(x)
	if m.head != nil {
		return graph.LinearT(x, b.Param(m.head), nil)
	}
	return graph.LinearT(x, b.Param(m.wteBase.Weight), nil) // tied head
}

// tokens is a fixed batch: 2 sequences of 5 tokens, and next-token targets.
var (
	tokIDs     = []int{1, 4, 2, 9, 3, 7, 7, 0, 5, 10}
	tokTargets = []int{4, 2, 9, 3, 6, 7, 0, 5, 10, 1}
)

const tokBatch = 2

// lossGraph builds the mean next-token cross-entropy over the fixed batch.
func (m *tinyGPT) lossGraph(b *graph.Builder) (loss, logits *graph.Node) {
	ids := b.IntConstant("ids", tokIDs, len(tokIDs))
	logits = m.logits(b, ids, tokBatch)
	targets := b.IntConstant("targets", tokTargets, len(tokTargets))
	return graph.SoftmaxCrossEntropy(logits, targets, nil, 0), logits
}

// forward runs the model on the fixed batch and returns the logits;
// training switches dropout on.
func forward(t testing.TB, m *tinyGPT, training bool) []float64 {
	t.Helper()
	out, err := m.forward(training)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (m *tinyGPT) forward(training bool) ([]float64, error) {
	b := graph.NewBuilder(m.dt, 7)
	ids := b.IntConstant("ids", tokIDs, len(tokIDs))
	out := m.logits(b, ids, tokBatch)
	prog, err := b.Compile(nil, out)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	prog.SetTraining(training)
	if err := prog.Forward(); err != nil {
		return nil, err
	}
	o, err := prog.Output(out)
	if err != nil {
		return nil, err
	}
	return o.Values(), nil
}

// train runs steps of plain SGD on the model's trainable parameters (with
// LoRA dropout on) and returns the program's trainable set.
func train(t testing.TB, m *tinyGPT, steps int, lr float64) []*graph.Param {
	t.Helper()
	ps, err := m.train(steps, lr)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func (m *tinyGPT) train(steps int, lr float64) ([]*graph.Param, error) {
	b := graph.NewBuilder(m.dt, 3)
	loss, _ := m.lossGraph(b)
	prog, err := b.Compile(loss)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	for s := 0; s < steps; s++ {
		if err := prog.Run(); err != nil {
			return nil, err
		}
		for _, p := range prog.Trainable() {
			g, ok := prog.Grad(p)
			if !ok {
				return nil, fmt.Errorf("no gradient for trainable %s", p.Name)
			}
			v := p.Values()
			for i := range v {
				v[i] -= lr * g.At(i)
			}
			if err := p.SetValues(v); err != nil {
				return nil, err
			}
		}
	}
	return prog.Trainable(), nil
}

// snapshot is a deep copy of parameter values and flags, to prove that an
// operation changed nothing.
type snapshot map[*graph.Param]struct {
	vals      []float64
	trainable bool
}

func snap(ps []*graph.Param) snapshot {
	s := snapshot{}
	for _, p := range ps {
		s[p] = struct {
			vals      []float64
			trainable bool
		}{p.Values(), p.Trainable}
	}
	return s
}

// diff returns a description of the first parameter that differs, or "".
func (s snapshot) diff(ps []*graph.Param) string {
	if len(ps) != len(s) {
		return fmt.Sprintf("%d parameters, had %d", len(ps), len(s))
	}
	for _, p := range ps {
		old, ok := s[p]
		if !ok {
			return "new parameter " + p.Name
		}
		if old.trainable != p.Trainable {
			return fmt.Sprintf("%s: trainable %v, was %v", p.Name, p.Trainable, old.trainable)
		}
		for i, v := range p.Values() {
			if math.Float64bits(v) != math.Float64bits(old.vals[i]) {
				return fmt.Sprintf("%s[%d] = %v, was %v", p.Name, i, v, old.vals[i])
			}
		}
	}
	return ""
}

// layersOf records the host's layer objects, to prove nothing was swapped.
func layersOf(h nn.Host) map[string]nn.Layer {
	out := map[string]nn.Layer{}
	for _, nl := range h.Layers() {
		out[nl.Path] = nl.Layer
	}
	return out
}

func sameLayers(a, b map[string]nn.Layer) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// maxRel is max|got−want| / max(1, max|want|).
func maxRel(got, want []float64) float64 {
	var e, w float64
	for i := range got {
		e = math.Max(e, math.Abs(got[i]-want[i]))
		w = math.Max(w, math.Abs(want[i]))
	}
	return e / math.Max(1, w)
}

func bitEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// mustInject injects cfg into a new tiny model.
func mustInject(t testing.TB, dt graph.DType, cfg lora.Config) (*tinyGPT, *lora.Model) {
	t.Helper()
	h := newTiny(dt, 2, 1).untie()
	m, err := lora.Inject(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.MergeEmbeddings = true // the head is untied
	return h, m
}

var dtypes = []graph.DType{graph.Float64, graph.Float32}

// mergeTol is the merged-vs-unmerged tolerance: one rounding of W per
// merge, amplified by a small network (relative to the logits' scale).
func mergeTol(dt graph.DType) float64 {
	if dt == graph.Float32 {
		return 1e-5
	}
	return 1e-12
}
