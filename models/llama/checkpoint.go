package llama

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/golora/golora/graph"
	"github.com/golora/golora/internal/atomicfile"
	"github.com/golora/golora/safetensors"
)

// weightSet locates a checkpoint's tensors: one model.safetensors, or the
// shards listed in model.safetensors.index.json.
type weightSet struct {
	dir   string
	files []string          // file names, in order
	where map[string]string // tensor key → file name
	index string            // the index file's path, "" for one file
	open  *safetensors.File // the single file, already read
}

// openWeights finds dir's weight files and lists their tensors (reading
// the index, or the single file).
func openWeights(dir string) (*weightSet, error) {
	ws := &weightSet{dir: dir, where: map[string]string{}}
	indexPath := filepath.Join(dir, WeightsIndexFile)
	raw, err := readSmall(indexPath)
	switch {
	case err == nil:
		ws.index = indexPath
		return ws, ws.readIndex(raw)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	path := filepath.Join(dir, WeightsFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			hint := ""
			if _, berr := os.Stat(filepath.Join(dir, "pytorch_model.bin")); berr == nil {
				hint = " (the folder has only pytorch_model.bin: convert it to safetensors first)"
			}
			return nil, fmt.Errorf("neither %s nor %s in %s%s", WeightsFile, WeightsIndexFile, dir, hint)
		}
		return nil, err
	}
	ws.open = f
	ws.files = []string{WeightsFile}
	for _, k := range f.Names() {
		ws.where[k] = WeightsFile
	}
	return ws, nil
}

// readIndex parses model.safetensors.index.json: {"metadata": …,
// "weight_map": {key: file}}. Files must be plain names in the folder.
func (ws *weightSet) readIndex(raw []byte) error {
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("%s: not a shard index: %w", ws.index, err)
	}
	if len(idx.WeightMap) == 0 {
		return fmt.Errorf("%s: no weight_map", ws.index)
	}
	seen := map[string]bool{}
	for key, file := range idx.WeightMap {
		if file == "" || filepath.Base(file) != file || file == "." || file == ".." || !strings.HasSuffix(file, ".safetensors") {
			return fmt.Errorf("%s: tensor %q is mapped to %q, not a .safetensors file in the folder", ws.index, key, file)
		}
		ws.where[key] = file
		if !seen[file] {
			seen[file] = true
			ws.files = append(ws.files, file)
		}
	}
	sort.Strings(ws.files)
	for _, file := range ws.files {
		if _, err := os.Stat(filepath.Join(ws.dir, file)); err != nil {
			return fmt.Errorf("%s lists shard %s: %w", ws.index, file, err)
		}
	}
	return nil
}

// bytes is the total size of the weight files.
func (ws *weightSet) bytes() (int64, error) {
	var n int64
	for _, f := range ws.files {
		st, err := os.Stat(filepath.Join(ws.dir, f))
		if err != nil {
			return 0, err
		}
		n += st.Size()
	}
	return n, nil
}

// has reports whether the checkpoint has tensor key.
func (ws *weightSet) has(key string) bool { _, ok := ws.where[key]; return ok }

// ignoredKey matches tensors of some checkpoints that are buffers, not
// parameters: the rotary inverse frequencies of older conversions.
func ignoredKey(key string) bool { return strings.HasSuffix(key, "rotary_emb.inv_freq") }

// Load reads a Hugging Face model folder (config.json, model.safetensors or
// the shards of model.safetensors.index.json, generation_config.json and
// the tokenizer files when present) into a new model of dtype dt. See
// ReadConfig for the config and LoadTokenizer for the tokenizer.
//
// The checkpoint must hold exactly the parameters of BaseParams under their
// Hugging Face names (Linear weights [out, in], transposed here), in F32,
// F64, F16 or BF16 (converted to dt), with finite values. Buffers of older
// conversions ("….rotary_emb.inv_freq") are skipped; a tied model may hold
// lm_head.weight only if it equals model.embed_tokens.weight. Qwen2's q, k,
// v biases are used when the checkpoint has them (its config does not say).
// A missing, extra or misshapen tensor, a shard that does not hold what the
// index says, or a config that does not match the tensors is an error
// naming the file and the tensor; on any error no model is returned.
func Load(dir string, dt graph.DType) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	ws, err := openWeights(dir)
	if err != nil {
		return nil, fmt.Errorf("llama: load: %w", err)
	}
	if cfg.Arch == ArchQwen2 {
		cfg.QKVBias = ws.has("model.layers.0.self_attn.q_proj.bias")
	}
	// Allocate nothing a config asks for beyond what the files can hold
	// (two bytes a parameter at least, BF16 or F16).
	if size, err := ws.bytes(); err != nil {
		return nil, fmt.Errorf("llama: load: %w", err)
	} else if need := 2 * int64(cfg.NumParams()); need > size {
		return nil, fmt.Errorf("llama: load %s: %s describes %d parameters (%d bytes at two a parameter), but the weight files hold %d bytes", dir, ConfigFile, cfg.NumParams(), need, size)
	}
	m, err := New(cfg, dt)
	if err != nil {
		return nil, fmt.Errorf("llama: load %s: %w", dir, err)
	}
	gen, err := readGenerationIfAny(dir)
	if err != nil {
		return nil, err
	}
	if err := m.SetGeneration(gen); err != nil {
		return nil, fmt.Errorf("llama: load %s: %s: %w", dir, GenerationConfigFile, err)
	}
	if cfg.Tokenizer == TokenizerHF {
		if m.hfFiles, m.hfTok, err = loadFileTokenizer(dir, cfg, gen); err != nil {
			return nil, err
		}
	}
	if err := m.loadWeights(ws); err != nil {
		return nil, err
	}
	return m, nil
}

// loadWeights checks the checkpoint's key set against BaseParams, then
// reads file by file.
func (m *Model) loadWeights(ws *weightSet) error {
	where := ws.index
	if where == "" {
		where = filepath.Join(ws.dir, WeightsFile)
	}
	c := m.cfg
	hint := fmt.Sprintf("%s describes %s with %d layers, hidden_size %d, %d/%d heads of width %d, intermediate_size %d, vocab_size %d, tie_word_embeddings %v",
		ConfigFile, c.Arch, c.NumLayers, c.Hidden, c.Heads, c.KVHeads, c.HeadDim, c.Intermediate, c.VocabSize, c.TieEmbeddings)
	params := map[string]*graph.Param{}
	for _, p := range m.BaseParams() {
		params[p.Name] = p
	}
	tiedHead := ""
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range ws.where {
			if !yield(k) {
				return
			}
		}
	})
	for _, key := range keys {
		switch {
		case ignoredKey(key):
		case key == "lm_head.weight" && c.TieEmbeddings:
			tiedHead = key
		case params[key] == nil:
			return fmt.Errorf("llama: load %s: unexpected tensor %q: not a parameter of the model (%s)", where, key, hint)
		}
	}
	for _, p := range m.BaseParams() {
		if !ws.has(p.Name) {
			return fmt.Errorf("llama: load %s: missing tensor %q (%s)", where, p.Name, hint)
		}
	}
	transposed := m.linearWeights()
	for _, file := range ws.files {
		f := ws.open
		path := filepath.Join(ws.dir, file)
		if f == nil {
			var err error
			if f, err = safetensors.ReadFile(path); err != nil {
				return fmt.Errorf("llama: load: %w", err)
			}
		}
		names := f.Names()
		for _, key := range names {
			if ws.where[key] != file {
				return fmt.Errorf("llama: load %s: shard holds tensor %q, which %s maps to %q", path, key, WeightsIndexFile, ws.where[key])
			}
		}
		for key, wf := range ws.where {
			if wf == file && !slices.Contains(names, key) {
				return fmt.Errorf("llama: load %s: %s maps tensor %q to this shard, which does not hold it", path, WeightsIndexFile, key)
			}
		}
		for _, key := range names {
			p := params[key]
			if p == nil {
				continue
			}
			if err := loadParam(f, key, p, transposed[p]); err != nil {
				return fmt.Errorf("llama: load %s: tensor %q: %w (%s)", path, key, err, hint)
			}
		}
	}
	if tiedHead != "" {
		if err := m.checkTiedHead(ws, tiedHead); err != nil {
			return fmt.Errorf("llama: load %s: %w", where, err)
		}
	}
	return nil
}

// loadParam copies tensor key of f into p, transposing a Linear weight from
// the file's [out, in], and rejects non-finite values.
func loadParam(f *safetensors.File, key string, p *graph.Param, transpose bool) error {
	t, _ := f.Tensor(key)
	want := p.Shape()
	if transpose {
		want = []int{want[1], want[0]}
	}
	if !slices.Equal(t.Shape, want) {
		layout := ""
		if transpose {
			layout = " ([out, in])"
		}
		return fmt.Errorf("shape %v, want %v%s", t.Shape, want, layout)
	}
	if !transpose {
		if err := graph.LoadParam(f, key, p); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "safetensors: "))
		}
	} else if p.DType() == graph.Float64 {
		v, _, err := f.Float64s(key)
		if err != nil {
			return err
		}
		transposeInto(p.Float64s(), v, want[0], want[1])
	} else {
		v, _, err := f.Float32s(key)
		if err != nil {
			return err
		}
		transposeInto(p.Float32s(), v, want[0], want[1])
	}
	if i := firstNonFinite(p); i >= 0 {
		return fmt.Errorf("element %d is %v", i, p.Values()[i])
	}
	return nil
}

// transposeInto writes the transpose of src, a row-major [rows, cols]
// matrix, into dst [cols, rows].
func transposeInto[T float32 | float64](dst, src []T, rows, cols int) {
	for i := range rows {
		row := src[i*cols : (i+1)*cols]
		for j, v := range row {
			dst[j*rows+i] = v
		}
	}
}

// firstNonFinite returns the index of the first NaN or ±Inf in p, or −1.
func firstNonFinite(p *graph.Param) int {
	if d := p.Float32s(); d != nil {
		for i, v := range d {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return i
			}
		}
		return -1
	}
	for i, v := range p.Float64s() {
		if !finite(v) {
			return i
		}
	}
	return -1
}

// checkTiedHead accepts an lm_head.weight in a tied checkpoint only when it
// equals model.embed_tokens.weight (after conversion to the model's dtype).
func (m *Model) checkTiedHead(ws *weightSet, key string) error {
	f := ws.open
	if f == nil {
		var err error
		if f, err = safetensors.ReadFile(filepath.Join(ws.dir, ws.where[key])); err != nil {
			return err
		}
	}
	head := m.Embed.Weight.Clone()
	head.Name = key
	if err := loadParam(f, key, head, false); err != nil {
		return fmt.Errorf("tensor %q: %w (tie_word_embeddings is true, so it must equal model.embed_tokens.weight)", key, err)
	}
	a, b := head.Values(), m.Embed.Weight.Values()
	for i := range a {
		if a[i] != b[i] {
			return fmt.Errorf("tensor %q differs from model.embed_tokens.weight at element %d (%v vs %v), but config.json has tie_word_embeddings true: set it to false to load a separate head",
				key, i, a[i], b[i])
		}
	}
	return nil
}

// SaveOptions tunes SaveWith. The zero value writes the model's own dtype
// in shards of at most 5 GB (transformers' default).
type SaveOptions struct {
	// DType of the written tensors: "" (the parameters' own, F32 or F64),
	// "F32", "F64" or "BF16" (rounded to nearest even, what Hugging Face
	// checkpoints usually hold).
	DType string
	// MaxShardBytes splits the weights into shards
	// model-00001-of-0000N.safetensors of at most this many bytes of
	// tensor data, listed in model.safetensors.index.json, when they do
	// not fit one file; a tensor larger than the limit gets a shard of its
	// own. 0 means 5 GB.
	MaxShardBytes int64
	// Files are extra files written into the folder with the model
	// (tokenizer.json, tokenizer_config.json, …), by name.
	Files map[string][]byte
}

// defaultShardBytes is transformers' max_shard_size default, 5 GB.
const defaultShardBytes = 5_000_000_000

// Save writes the model to dir as a Hugging Face folder in its own dtype
// (see SaveWith).
func (m *Model) Save(dir string) error { return m.SaveWith(dir, SaveOptions{}) }

// SaveWith writes the model to dir as a Hugging Face folder: config.json
// (classic layout; golora_tokenizer for "bytes" and "none"),
// generation_config.json (the one loaded or set, else one with the config's
// ids when it has any), the tokenizer files of an "hf" tokenizer as they
// were read (tokenizer.json, tokenizer_config.json, …), and
// the BaseParams under their Hugging Face names with Linear weights
// [out, in], in model.safetensors or in shards with an index (see
// SaveOptions). Load(dir) gives back the same model (bit for bit when the
// dtype is the model's); transformers reads the folder as the
// *ForCausalLM of Config.Arch.
//
// The folder is replaced atomically (atomicfile.ReplaceDir): a reader sees
// the old complete folder or the new one. So that nothing else is deleted,
// SaveWith refuses a dir holding files other than those it writes. It also
// refuses a model whose layers SetLayer replaced (LoRA wrappers): merge and
// unwrap them first, or save the adapter with package lora.
func (m *Model) SaveWith(dir string, o SaveOptions) error {
	fail := func(err error) error { return fmt.Errorf("llama: save %s: %w", dir, err) }
	if r := m.replaced(); len(r) > 0 {
		return fail(fmt.Errorf("layers %s are replaced by wrappers (LoRA?): restore the base layers (merging first to keep the change) or save the adapter separately", strings.Join(r, ", ")))
	}
	dt := o.DType
	if dt == "" {
		dt = "F32"
		if m.dtype == graph.Float64 {
			dt = "F64"
		}
	}
	torchDType := map[string]string{"F32": "float32", "F64": "float64", "BF16": "bfloat16"}[dt]
	if torchDType == "" {
		return fail(fmt.Errorf("dtype %q, want F32, F64 or BF16", o.DType))
	}
	if o.MaxShardBytes < 0 {
		return fail(fmt.Errorf("MaxShardBytes %d, want ≥ 0", o.MaxShardBytes))
	}
	shardBytes := o.MaxShardBytes
	if shardBytes == 0 {
		shardBytes = defaultShardBytes
	}
	files := map[string][]byte{}
	if m.cfg.Tokenizer == TokenizerHF {
		if m.hfFiles == nil {
			return fail(errors.New(`the model's tokenizer is "hf" but it has no tokenizer files: load it from its folder or call SetTokenizer`))
		}
		for _, f := range m.hfFiles.Files() {
			files[f.Name] = f.Data
		}
	}
	for name, data := range o.Files {
		if _, tok := files[name]; name == "" || filepath.Base(name) != name || m.writes(name) || tok {
			return fail(fmt.Errorf("extra file %q: want a plain file name other than the model's own files and its tokenizer's", name))
		}
		files[name] = data
	}
	if err := m.checkReplaceable(dir, files); err != nil {
		return fail(err)
	}
	config, err := marshalConfig(m.cfg, torchDType)
	if err != nil {
		return fail(err)
	}
	gen := m.gen
	if gen == nil && (m.cfg.BOS >= 0 || len(m.cfg.EOS) > 0) {
		g := NewGenerationConfig(m.cfg.EOS...)
		g.BOS = m.cfg.BOS
		gen = &g
	}
	var genJSON []byte
	if gen != nil {
		if genJSON, err = gen.marshal(); err != nil {
			return fail(err)
		}
	}
	transposed := m.linearWeights()
	var tensors []safetensors.Tensor
	for _, p := range m.BaseParams() {
		tensors = append(tensors, fileTensor(p, transposed[p], dt))
	}
	shards := splitShards(tensors, shardBytes)
	err = atomicfile.ReplaceDir(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, ConfigFile), config, 0o644); err != nil {
			return err
		}
		if genJSON != nil {
			if err := os.WriteFile(filepath.Join(tmp, GenerationConfigFile), genJSON, 0o644); err != nil {
				return err
			}
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
				return err
			}
		}
		meta := safetensors.WithChecksums(map[string]string{"format": "pt"})
		if len(shards) == 1 {
			return safetensors.WriteFile(filepath.Join(tmp, WeightsFile), shards[0], meta)
		}
		weightMap, total := map[string]string{}, int64(0)
		for i, sh := range shards {
			name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
			for _, t := range sh {
				weightMap[t.Name] = name
				total += int64(len(t.Data))
			}
			if err := safetensors.WriteFile(filepath.Join(tmp, name), sh, meta); err != nil {
				return err
			}
		}
		index, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, WeightsIndexFile), append(index, '\n'), 0o644)
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// writes reports whether name is one of the files Save may write.
func (m *Model) writes(name string) bool {
	switch name {
	case ConfigFile, GenerationConfigFile, WeightsFile, WeightsIndexFile:
		return true
	}
	return strings.HasPrefix(name, "model-") && strings.HasSuffix(name, ".safetensors")
}

// checkReplaceable refuses a folder that holds files Save would delete.
func (m *Model) checkReplaceable(dir string, extra map[string][]byte) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var other []string
	for _, e := range entries {
		if n := e.Name(); !m.writes(n) && extra[n] == nil {
			other = append(other, n)
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("the folder also holds %s, which saving would delete: save to a new folder (or pass them in SaveOptions.Files)", strings.Join(other, ", "))
	}
	return nil
}

// fileTensor is p in the checkpoint's layout ([out, in] for a Linear
// weight) and dtype dt.
func fileTensor(p *graph.Param, transpose bool, dt string) safetensors.Tensor {
	shape := p.Shape()
	var v64 []float64
	var v32 []float32
	if p.DType() == graph.Float64 {
		v64 = p.Float64s()
	} else {
		v32 = p.Float32s()
	}
	if transpose {
		rows, cols := shape[0], shape[1]
		shape = []int{cols, rows}
		if v64 != nil {
			t := make([]float64, len(v64))
			transposeInto(t, v64, rows, cols)
			v64 = t
		} else {
			t := make([]float32, len(v32))
			transposeInto(t, v32, rows, cols)
			v32 = t
		}
	}
	switch dt {
	case "F64":
		if v64 == nil {
			v64 = make([]float64, len(v32))
			for i, x := range v32 {
				v64[i] = float64(x)
			}
		}
		return safetensors.FromFloat64s(p.Name, shape, v64)
	case "F32":
		if v32 == nil {
			v32 = make([]float32, len(v64))
			for i, x := range v64 {
				v32[i] = float32(x)
			}
		}
		return safetensors.FromFloat32s(p.Name, shape, v32)
	}
	n := len(v32) + len(v64)
	data := make([]byte, 2*n)
	for i := range n {
		var x float32
		if v64 != nil {
			x = float32(v64[i])
		} else {
			x = v32[i]
		}
		binary.LittleEndian.PutUint16(data[2*i:], bf16(x))
	}
	return safetensors.Tensor{Name: p.Name, DType: "BF16", Shape: shape, Data: data}
}

// bf16 rounds x to bfloat16 (the top 16 bits of a float32), to nearest,
// ties to even; NaN stays a (quiet) NaN.
func bf16(x float32) uint16 {
	b := math.Float32bits(x)
	if x != x {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// splitShards groups tensors, in order, into shards of at most limit bytes
// of data (a larger tensor alone in its shard).
func splitShards(tensors []safetensors.Tensor, limit int64) [][]safetensors.Tensor {
	var out [][]safetensors.Tensor
	var cur []safetensors.Tensor
	var size int64
	for _, t := range tensors {
		n := int64(len(t.Data))
		if len(cur) > 0 && size+n > limit {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, t)
		size += n
	}
	return append(out, cur)
}
