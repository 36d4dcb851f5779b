package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// object is one JSON object of a tokenizer file being read. Every key must
// be read by the code that knows its meaning; done reports any other key,
// so a setting golora does not implement is refused rather than ignored.
type object struct {
	path string // where it is in the file, for messages: "pre_tokenizer.pretokenizers[1]"
	m    map[string]json.RawMessage
	used map[string]bool
}

// parseObject reads raw as a JSON object; null gives a nil *object.
func parseObject(path string, raw json.RawMessage) (*object, error) {
	if isNull(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object: %w", path, err)
	}
	return &object{path: path, m: m, used: map[string]bool{}}, nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func (o *object) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %s", o.path, fmt.Sprintf(format, args...))
}

// has reports whether key is present and not null.
func (o *object) has(key string) bool {
	raw, ok := o.m[key]
	return ok && !isNull(raw)
}

// decode reads key into v (which keeps its value when key is absent or null).
func (o *object) decode(key string, v any) error {
	o.used[key] = true
	raw, ok := o.m[key]
	if !ok || isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return o.errorf("%s: %v", key, err)
	}
	return nil
}

func (o *object) str(key, def string) (string, error) {
	v := def
	err := o.decode(key, &v)
	return v, err
}

func (o *object) boolean(key string, def bool) (bool, error) {
	v := def
	err := o.decode(key, &v)
	return v, err
}

func (o *object) integer(key string, def int) (int, error) {
	v := def
	err := o.decode(key, &v)
	return v, err
}

// object reads key as a nested object (nil when absent or null).
func (o *object) object(key string) (*object, error) {
	o.used[key] = true
	raw, ok := o.m[key]
	if !ok {
		return nil, nil
	}
	return parseObject(o.path+"."+key, raw)
}

// list reads key as a list of raw values (nil when absent or null).
func (o *object) list(key string) ([]json.RawMessage, error) {
	var l []json.RawMessage
	err := o.decode(key, &l)
	return l, err
}

// objects reads key as a list of objects.
func (o *object) objects(key string) ([]*object, error) {
	l, err := o.list(key)
	if err != nil {
		return nil, err
	}
	out := make([]*object, len(l))
	for i, raw := range l {
		p := fmt.Sprintf("%s.%s[%d]", o.path, key, i)
		if out[i], err = parseObject(p, raw); err != nil {
			return nil, err
		}
		if out[i] == nil {
			return nil, fmt.Errorf("%s: null", p)
		}
	}
	return out, nil
}

// typ reads the "type" key.
func (o *object) typ() (string, error) {
	t, err := o.str("type", "")
	if err != nil {
		return "", err
	}
	if t == "" {
		return "", o.errorf("no \"type\"")
	}
	return t, nil
}

// ignore marks keys as read: settings that do not change token ids, text
// or offsets as golora computes them.
func (o *object) ignore(keys ...string) {
	for _, k := range keys {
		o.used[k] = true
	}
}

// done reports keys nobody read.
func (o *object) done() error {
	var extra []string
	for k := range o.m {
		if !o.used[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return o.errorf("unsupported setting %s (golora's tokenizer does not implement it)", strings.Join(quoteAll(extra), ", "))
	}
	return nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// unsupported is the error for a component type golora does not implement.
func unsupported(o *object, kind, typ string, supported ...string) error {
	return o.errorf("%s type %q is not supported (golora's tokenizer implements %s)", kind, typ, strings.Join(supported, ", "))
}

// objectField parses the object under key with parse.
func objectField[T any](o *object, key string, parse func(*object) (T, error)) (T, error) {
	c, err := o.object(key)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(c)
}

// objectList parses each object of the list under key with parse, in order
// (nil for an empty list).
func objectList[T any](o *object, key string, parse func(*object) (T, error)) ([]T, error) {
	list, err := o.objects(key)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, c := range list {
		x, err := parse(c)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}
