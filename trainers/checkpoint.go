package trainers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/safetensors"
)

// CheckpointFormat is the "format" metadata value of a trainer checkpoint:
// one .safetensors file with the tensors
//
//	param/<name>   every trainable parameter, in its dtype
//	adam.m/<name>  AdamW's first moment of it
//	adam.v/<name>  AdamW's second moment of it
//
// and a second metadata entry, "golora.trainer", holding the JSON of
// CheckpointMeta.
const CheckpointFormat = "golora.trainer/1"

const (
	metaKey     = "golora.trainer"
	paramPrefix = "param/"
	adamMPrefix = "adam.m/"
	adamVPrefix = "adam.v/"
)

// CheckpointMeta is the run state a checkpoint stores besides tensors.
type CheckpointMeta struct {
	Step          int      `json:"step"`           // optimizer steps done
	OptimizerStep int      `json:"optimizer_step"` // AdamW's t
	Data          Position `json:"data"`           // training data position (its RNG state base64 in JSON)
	DropoutRNG    []byte   `json:"dropout_rng"`    // Program.RNGState for the next step (base64 in JSON)
	DType         string   `json:"dtype"`          // "float32" or "float64"
	Params        []string `json:"params"`         // trainable parameter names, model order
	// BestValidLoss and BestStep are the best validation so far (BestStep 0: none).
	BestValidLoss float64 `json:"best_valid_loss"`
	BestStep      int     `json:"best_step"`
	Config        Config  `json:"config"` // the run's configuration
}

// SaveCheckpoint writes the trainer's state to path atomically (temporary
// file + rename): a crash or an error while writing leaves any previous
// file at path intact.
func (t *Trainer) SaveCheckpoint(path string) error {
	return t.writeCheckpoint(path, nil)
}

// writeCheckpoint is SaveCheckpoint with an optional wrapper around the
// file writer (tests use it to fail a write halfway).
func (t *Trainer) writeCheckpoint(path string, wrap func(io.Writer) io.Writer) error {
	meta := CheckpointMeta{
		Step:          t.step,
		OptimizerStep: t.opt.StepCount(),
		Data:          t.pos,
		DropoutRNG:    t.dropState,
		DType:         t.dtype.String(),
		BestStep:      t.bestStep,
		Config:        t.cfg,
	}
	if t.bestStep > 0 {
		meta.BestValidLoss = t.bestLoss
	}
	tensors := make([]safetensors.Tensor, 0, 3*len(t.trainable))
	for _, p := range t.trainable {
		meta.Params = append(meta.Params, p.Name)
		tensors = append(tensors, graph.ParamTensor(paramPrefix+p.Name, p))
		if s, ok := t.opt.state[p.Name]; ok {
			tensors = append(tensors,
				graph.ParamTensor(adamMPrefix+p.Name, s.m),
				graph.ParamTensor(adamVPrefix+p.Name, s.v))
		}
	}
	js, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("trainers: checkpoint %s: encode metadata: %w", path, err)
	}
	md := safetensors.WithChecksums(map[string]string{"format": CheckpointFormat, metaKey: string(js)})
	err = atomicfile.WriteFile(path, func(w io.Writer) error {
		if wrap != nil {
			w = wrap(w)
		}
		return safetensors.Write(w, tensors, md)
	})
	if err != nil {
		return fmt.Errorf("trainers: checkpoint %s: %w", path, err)
	}
	return nil
}

// openCheckpoint reads a checkpoint file and its metadata.
func openCheckpoint(path string) (*safetensors.File, CheckpointMeta, error) {
	var meta CheckpointMeta
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, meta, fmt.Errorf("trainers: checkpoint: %w", err)
	}
	if got := f.Metadata["format"]; got != CheckpointFormat {
		return nil, meta, fmt.Errorf("trainers: checkpoint %s: format %q, want %q (not a golora trainer checkpoint?)", path, got, CheckpointFormat)
	}
	dec := json.NewDecoder(strings.NewReader(f.Metadata[metaKey]))
	if err := dec.Decode(&meta); err != nil {
		return nil, meta, fmt.Errorf("trainers: checkpoint %s: metadata %s: %w", path, metaKey, err)
	}
	return f, meta, nil
}

// ReadCheckpointMeta returns the run state stored in a checkpoint, e.g. to
// see its step or reuse its Config.
func ReadCheckpointMeta(path string) (CheckpointMeta, error) {
	_, meta, err := openCheckpoint(path)
	return meta, err
}

// Resume restores a checkpoint written by a trainer of the same model: the
// trainable parameters' values, AdamW's moments and step count, the step,
// the data position, the dropout RNG state and the best validation loss. The
// next Train continues the run exactly (same losses and parameters as a run
// never stopped), given the same training data. The checkpoint must hold
// exactly the parameters that are trainable here, in the model's dtype.
// Nothing is changed when it returns an error. The Trainer's own Config is
// kept (the checkpoint's is in ReadCheckpointMeta).
func (t *Trainer) Resume(path string) error {
	f, meta, err := openCheckpoint(path)
	if err != nil {
		return err
	}
	if meta.DType != t.dtype.String() {
		return fmt.Errorf("trainers: resume %s: checkpoint is %s, model is %s", path, meta.DType, t.dtype)
	}
	if meta.Step < 0 || meta.OptimizerStep < 0 {
		return fmt.Errorf("trainers: resume %s: negative step %d / optimizer step %d", path, meta.Step, meta.OptimizerStep)
	}
	want := map[string]bool{}
	for _, p := range t.trainable {
		want[p.Name] = true
	}
	for _, n := range f.Names() {
		var name string
		switch {
		case strings.HasPrefix(n, paramPrefix):
			name = strings.TrimPrefix(n, paramPrefix)
		case strings.HasPrefix(n, adamMPrefix):
			name = strings.TrimPrefix(n, adamMPrefix)
		case strings.HasPrefix(n, adamVPrefix):
			name = strings.TrimPrefix(n, adamVPrefix)
		default:
			return fmt.Errorf("trainers: resume %s: unexpected tensor %q", path, n)
		}
		if !want[name] {
			return fmt.Errorf("trainers: resume %s: %w: it holds %q, but %s is not a trainable parameter of the model", path, ErrOtherModel, n, name)
		}
	}
	values := make([]*graph.Param, len(t.trainable))
	state := map[string]*moments{}
	for i, p := range t.trainable {
		values[i] = p.Clone()
		if err := graph.LoadParam(f, paramPrefix+p.Name, values[i]); err != nil {
			return fmt.Errorf("trainers: resume %s: %w: trainable parameter %s: %w", path, ErrOtherModel, p.Name, err)
		}
		m := graph.NewParam(adamMPrefix+p.Name, p.DType(), p.Shape()...)
		v := graph.NewParam(adamVPrefix+p.Name, p.DType(), p.Shape()...)
		errM := graph.LoadParam(f, adamMPrefix+p.Name, m)
		errV := graph.LoadParam(f, adamVPrefix+p.Name, v)
		switch {
		case errors.Is(errM, safetensors.ErrNotFound) && errors.Is(errV, safetensors.ErrNotFound):
			if meta.OptimizerStep > 0 {
				return fmt.Errorf("trainers: resume %s: no optimizer state for %s after %d steps", path, p.Name, meta.OptimizerStep)
			}
		case errM != nil:
			return fmt.Errorf("trainers: resume: %w", errM)
		case errV != nil:
			return fmt.Errorf("trainers: resume: %w", errV)
		default:
			state[p.Name] = &moments{m: m, v: v}
		}
	}
	probe := rand.NewPCG(0, 0) // only to check the saved states decode
	if len(meta.DropoutRNG) > 0 {
		if err := probe.UnmarshalBinary(meta.DropoutRNG); err != nil {
			return fmt.Errorf("trainers: resume %s: dropout RNG state: %w", path, err)
		}
	}
	if meta.Data.Len != 0 {
		if err := probe.UnmarshalBinary(meta.Data.RNG); err != nil {
			return fmt.Errorf("trainers: resume %s: data RNG state: %w", path, err)
		}
	}
	best := math.Inf(1)
	if meta.BestStep > 0 {
		best = meta.BestValidLoss
	}
	// Everything is read and checked: apply it.
	for i, p := range t.trainable {
		if err := p.CopyFrom(values[i]); err != nil {
			return fmt.Errorf("trainers: resume: %w", err)
		}
	}
	t.opt.setState(meta.OptimizerStep, state)
	t.step = meta.Step
	t.pos = meta.Data
	t.dropState = nil
	if len(meta.DropoutRNG) > 0 {
		t.dropState = append([]byte(nil), meta.DropoutRNG...)
	}
	t.bestLoss, t.bestStep = best, meta.BestStep
	return nil
}

// LoadParams copies every "param/<name>" tensor of a checkpoint (or of any
// .safetensors file with that layout) into the parameter of that name among
// params, e.g. to use the best checkpoint for inference. Every such tensor
// must have a parameter of matching shape; parameters the file lacks are left
// alone. Nothing is changed when it returns an error.
func LoadParams(path string, params []*graph.Param) error {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return fmt.Errorf("trainers: load params: %w", err)
	}
	byName := map[string]*graph.Param{}
	for _, p := range params {
		if p != nil {
			byName[p.Name] = p
		}
	}
	var names []string
	for _, n := range f.Names() {
		if strings.HasPrefix(n, paramPrefix) {
			names = append(names, strings.TrimPrefix(n, paramPrefix))
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("trainers: load params %s: no %q tensors", path, paramPrefix+"<name>")
	}
	sort.Strings(names)
	tmp := make([]*graph.Param, len(names))
	for i, name := range names {
		p, ok := byName[name]
		if !ok {
			return fmt.Errorf("trainers: load params %s: no parameter named %s", path, name)
		}
		tmp[i] = p.Clone()
		if err := graph.LoadParam(f, paramPrefix+name, tmp[i]); err != nil {
			return fmt.Errorf("trainers: load params: %w", err)
		}
	}
	for i, name := range names {
		if err := byName[name].CopyFrom(tmp[i]); err != nil {
			return fmt.Errorf("trainers: load params: %w", err)
		}
	}
	return nil
}
