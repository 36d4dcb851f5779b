package lora

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/nn"
	"github.com/golora/golora/safetensors"
)

// Load injects the adapter in folder dir into host as adapter "default" and
// makes it active (PEFT's PeftModel.from_pretrained). On error the host is
// left exactly as it was. Use NewModel, set KeyPrefix, then LoadAdapter for
// files whose keys have another prefix.
func Load(host nn.Host, dir string) (*Model, error) {
	m, err := NewModel(host)
	if err != nil {
		return nil, err
	}
	if err := m.LoadAdapter(dir, DefaultAdapter); err != nil {
		m.restoreTrainable()
		return nil, err
	}
	return m, nil
}

func (m *Model) restoreTrainable() {
	for p, on := range m.before {
		p.Trainable = on
	}
}

// LoadAdapter reads the PEFT adapter folder dir as adapter name (active if
// no adapter is). Everything is checked before anything changes: the
// config's fields, that the tensor keys are exactly the ones the config
// asks for on this host (no key missing, none unexpected), every tensor's
// dtype (F32, F64, F16 or BF16), shape (so its rank) and values (finite;
// zero outside the blocks of a fused layer in block form). The first
// problem is returned as one error naming the file and tensor, and the
// model is left exactly as it was.
//
// A PiSSA adapter is loaded as it is: its base must already be the
// residual W − s·A·B.
func (m *Model) LoadAdapter(dir, name string) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := m.checkNewName(name); err != nil {
		return err
	}
	if m.merged {
		return fmt.Errorf("lora: load %s: %w (unmerge first)", dir, ErrAlreadyMerged)
	}
	fail := func(err error) error { return fmt.Errorf("lora: load %s: %w", dir, err) }
	cfg, peft, sliced, err := readAdapterConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return fail(err)
	}
	plans, err := m.resolve(cfg)
	if err != nil {
		return fail(otherBase(fmt.Errorf("%s: %w", ConfigFile, err)))
	}
	if err := checkSlices(plans, sliced); err != nil {
		return fail(otherBase(fmt.Errorf("%s: %w", ConfigFile, err)))
	}
	extras, err := m.resolveExtras(cfg, plans)
	if err != nil {
		return fail(otherBase(fmt.Errorf("%s: %w", ConfigFile, err)))
	}
	layout := m.fileLayout(cfg, plans)
	if err := checkBlockForm(cfg, peft, layout, m.KeyPrefix); err != nil {
		return fail(fmt.Errorf("%s: %w", ConfigFile, err))
	}
	f, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		return fail(err)
	}
	want := map[string][]int{}
	for _, lt := range layout {
		want[lt.keyA], want[lt.keyB] = lt.shapeA, lt.shapeB
		if lt.keyM != "" {
			want[lt.keyM] = lt.shapeB[:1]
		}
	}
	for _, p := range extras {
		want[keyRoot+m.KeyPrefix+p.Name] = p.Shape()
	}
	names, stored, err := magnitudeSpellings(f.Names())
	if err != nil {
		return fail(fmt.Errorf("%s: %w", WeightsFile, err))
	}
	if err := checkKeys(names, want); err != nil {
		err = fmt.Errorf("%s: %w", WeightsFile, err)
		if hostMismatch(names, want) {
			err = otherBase(err)
		}
		return fail(err)
	}
	read := func(key string, rank int) ([]float64, error) {
		v, shape, err := f.Float64s(stored[key])
		if err != nil {
			return nil, err
		}
		if !slices.Equal(shape, want[key]) {
			hint := ""
			if w := want[key]; rank > 0 && len(shape) == 2 {
				r, o := 0, 1 // A [r, in]: the rank is dimension 0; B [out, r]: dimension 1
				if strings.HasSuffix(key, "B.weight") || strings.HasSuffix(key, "_B") {
					r, o = 1, 0
				}
				if shape[o] == w[o] && shape[r] != rank {
					hint = fmt.Sprintf(" (rank %d in the file, %d from %s)", shape[r], rank, ConfigFile)
				}
			}
			err := fmt.Errorf("%s: tensor %q has shape %v, want %v%s", WeightsFile, key, shape, want[key], hint)
			if hint == "" { // the file agrees with itself, not with this host
				err = otherBase(err)
			}
			return nil, err
		}
		for i, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("%s: tensor %q holds %v at element %d", WeightsFile, key, x, i)
			}
		}
		return v, nil
	}
	ads := make([]*Adapter, len(plans))
	for i, lt := range layout {
		a, err := read(lt.keyA, lt.fileRank)
		if err != nil {
			return fail(err)
		}
		b, err := read(lt.keyB, lt.fileRank)
		if err != nil {
			return fail(err)
		}
		ads[i] = lt.plan.newAdapter(name, cfg)
		if err := fromFile(ads[i], lt, a, b); err != nil {
			return fail(err)
		}
		if lt.keyM != "" {
			mv, err := read(lt.keyM, 0)
			if err != nil {
				return fail(err)
			}
			if err := ads[i].Magnitude.SetValues(mv); err != nil {
				return fail(err)
			}
		}
	}
	extraVals := map[*graph.Param][]float64{}
	for _, p := range extras {
		v, err := read(keyRoot+m.KeyPrefix+p.Name, 0)
		if err != nil {
			return fail(err)
		}
		extraVals[p] = v
	}
	return m.commit(name, cfg, plans, ads, nil, extras, extraVals)
}

// magnitudeSpellings maps each key of a weights file to the name it is
// checked under: DoRA's "….lora_magnitude_vector.weight" to PEFT's
// "….lora_magnitude_vector". stored maps every such name back to the key in
// the file. A file with both spellings for one layer is an error.
func magnitudeSpellings(keys []string) (names []string, stored map[string]string, err error) {
	stored = make(map[string]string, len(keys))
	for _, k := range keys {
		name := k
		if strings.HasSuffix(k, magnitudeKey+".weight") {
			name = strings.TrimSuffix(k, ".weight")
		}
		if prev, dup := stored[name]; dup {
			return nil, nil, fmt.Errorf("tensors %q and %q are the same magnitude vector", prev, k)
		}
		stored[name] = k
		names = append(names, name)
	}
	return names, stored, nil
}

// checkKeys reports the first missing key, else the first unexpected one
// (sorted), with how many more there are.
func checkKeys(have []string, want map[string][]int) error {
	var missing, extra []string
	got := map[string]bool{}
	for _, k := range have {
		got[k] = true
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	more := func(n int) string {
		if n > 1 {
			return fmt.Sprintf(" (and %d more)", n-1)
		}
		return ""
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tensor %q%s", missing[0], more(len(missing)))
	}
	if len(extra) > 0 {
		return fmt.Errorf("unexpected tensor %q%s: the config and this model ask for no such tensor", extra[0], more(len(extra)))
	}
	return nil
}

// fromFile sets ad's A and B from the file's A [R, in] and B [out, R],
// checking that a block-form B is zero outside its blocks.
func fromFile(ad *Adapter, lt layerTensors, a, b []float64) error {
	in, out, R, r := lt.shapeA[1], lt.shapeB[0], lt.fileRank, ad.Rank
	for j, s := range ad.Slices {
		av, bv := make([]float64, in*r), make([]float64, r*s.Width)
		for i := 0; i < in; i++ {
			for p := 0; p < r; p++ {
				av[i*r+p] = a[(j*r+p)*in+i]
			}
		}
		for c := 0; c < out; c++ {
			inside := c >= s.Offset && c < s.Offset+s.Width
			for p := 0; p < r; p++ {
				v := b[c*R+j*r+p]
				if inside {
					bv[p*s.Width+c-s.Offset] = v
				} else if v != 0 {
					return fmt.Errorf("%s: tensor %q is not in golora's block form: element [%d, %d] = %g lies outside the columns of part %q", WeightsFile, lt.keyB, c, j*r+p, v, s.Part)
				}
			}
		}
		if err := s.A.SetValues(av); err != nil {
			return err
		}
		if err := s.B.SetValues(bv); err != nil {
			return err
		}
	}
	return nil
}

// checkSlices checks that the golora key's record of the layers in block
// form (nil without the key) is what the targets select.
func checkSlices(plans []*layerPlan, sliced map[string][]string) error {
	n := 0
	for _, p := range plans {
		if p.parts != nil {
			n++
		}
		if sliced != nil && !slices.Equal(p.parts, sliced[p.path]) {
			return fmt.Errorf("golora key: slices of %s are %v, the targets select %v", p.path, sliced[p.path], p.parts)
		}
	}
	if sliced == nil && n > 0 {
		return errors.New("targets select parts of fused layers, which needs the golora key")
	}
	if len(sliced) != n {
		return fmt.Errorf("golora key: %d layers in block form, the targets select %d", len(sliced), n)
	}
	return nil
}

// checkBlockForm checks that the PEFT keys (r, lora_alpha and patterns)
// give every layer the rank and scale of its file form.
func checkBlockForm(cfg, peft Config, layout []layerTensors, prefix string) error {
	for _, lt := range layout {
		r, alpha := peft.rankAlpha(lt.plan.path, prefix)
		want := lt.plan.scale
		got := peft.Scale(r, alpha)
		if r != lt.fileRank || math.Abs(got-want) > 1e-12*math.Abs(want) {
			return fmt.Errorf("r = %d and lora_alpha = %v for %s disagree with the golora key (block rank %d, scale %v)", r, alpha, lt.plan.path, lt.fileRank, want)
		}
	}
	return nil
}
