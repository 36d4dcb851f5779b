package chat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Formats of JSONL data files.
const (
	// FormatChat is one conversation per line:
	// {"messages": [{"role": "system"|"user"|"assistant", "content": …}, …]},
	// the format of Hugging Face's and OpenAI's fine-tuning tools.
	FormatChat = "chat"
	// FormatPromptCompletion is one {"prompt": …, "completion": …} per
	// line: two strings (plain text, loss on the completion), or two lists
	// of messages (a conversation, loss on the completion's assistant
	// turns), as in Hugging Face TRL.
	FormatPromptCompletion = "prompt-completion"
)

// Record is one line of a JSONL data file.
type Record struct {
	Line int // 1-based line number in the file
	// Plain is true for a prompt-completion record of two strings: Prompt
	// and Completion hold them. Otherwise Conversation holds the messages.
	Plain              bool
	Prompt, Completion string
	Conversation       Conversation
}

// Data is what ReadJSONL read from one file.
type Data struct {
	Name    string // the file, for messages
	Format  string // FormatChat or FormatPromptCompletion
	Records []Record
	// Skipped counts the malformed lines left out with SkipBadLines, and
	// SkipErrors holds the first few of their errors (*LineError).
	Skipped    int
	SkipErrors []error
}

// LineError is a malformed line of a data file.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s line %d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// maxSkipErrors is how many errors of skipped lines Data keeps.
const maxSkipErrors = 5

// DetectFormat returns FormatChat when the first non-blank line of data is
// a JSON object with a "messages" key, FormatPromptCompletion when it has
// "prompt" and "completion", and "" otherwise (not JSONL of either kind).
func DetectFormat(data []byte) string {
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if line[0] != '{' || json.Unmarshal(line, &obj) != nil {
			return ""
		}
		if _, ok := obj["messages"]; ok {
			return FormatChat
		}
		_, p := obj["prompt"]
		_, c := obj["completion"]
		if p && c {
			return FormatPromptCompletion
		}
		return ""
	}
	return ""
}

// ReadOptions says how ReadJSONL reads a file. The zero value detects the
// format from the first line and fails on the first malformed line.
type ReadOptions struct {
	// Format is FormatChat, FormatPromptCompletion, or "" to detect it
	// from the first line (DetectFormat).
	Format string
	// SkipBadLines leaves malformed lines out (counting them in
	// Data.Skipped) instead of failing on the first one.
	SkipBadLines bool
}

// ReadJSONL reads JSON lines from r; name (the file) is used in errors.
// Blank lines are skipped. A line that is not a JSON object of the format,
// has a message with an unknown role or key, no messages, or no assistant
// turn to train on is an error naming the file and line (a *LineError),
// unless o.SkipBadLines is set. A file with no records is an error.
func ReadJSONL(r io.Reader, name string, o ReadOptions) (*Data, error) {
	br := bufio.NewReader(r)
	d := &Data{Name: name, Format: o.Format}
	switch o.Format {
	case "", FormatChat, FormatPromptCompletion:
	default:
		return nil, fmt.Errorf("chat: read %s: format %q, want %s or %s", name, o.Format, FormatChat, FormatPromptCompletion)
	}
	for line := 1; ; line++ {
		text, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("chat: read %s: %w", name, err)
		}
		if trimmed := strings.TrimSpace(text); trimmed != "" {
			if d.Format == "" {
				if d.Format = DetectFormat([]byte(trimmed)); d.Format == "" {
					return nil, &LineError{name, line, errors.New(`not a JSON object with "messages" or with "prompt" and "completion" (give --format to say which)`)}
				}
			}
			rec, perr := parseLine([]byte(trimmed), d.Format)
			switch {
			case perr == nil:
				rec.Line = line
				rec.Conversation.Line = line
				d.Records = append(d.Records, rec)
			case o.SkipBadLines:
				d.Skipped++
				if len(d.SkipErrors) < maxSkipErrors {
					d.SkipErrors = append(d.SkipErrors, &LineError{name, line, perr})
				}
			default:
				return nil, &LineError{name, line, perr}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if len(d.Records) == 0 {
		if d.Skipped > 0 {
			return nil, fmt.Errorf("chat: %s has no usable lines (%d skipped; first: %v)", name, d.Skipped, d.SkipErrors[0])
		}
		return nil, fmt.Errorf("chat: %s has no records", name)
	}
	return d, nil
}

// LoadJSONL is ReadJSONL on the file at path.
func LoadJSONL(path string, o ReadOptions) (*Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	defer f.Close()
	return ReadJSONL(f, path, o)
}

// parseLine reads one non-blank line of the given format.
func parseLine(line []byte, format string) (Record, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&obj); err != nil {
		return Record{}, fmt.Errorf("invalid JSON: %v", jsonReason(err))
	}
	if dec.More() {
		return Record{}, errors.New("invalid JSON: more than one value on the line")
	}
	if obj == nil {
		return Record{}, errors.New("want a JSON object, got null")
	}
	var rec Record
	switch format {
	case FormatChat:
		raw, ok := obj["messages"]
		if !ok {
			return rec, errors.New(`no "messages" key`)
		}
		msgs, err := parseMessages(raw, "messages")
		if err != nil {
			return rec, err
		}
		rec.Conversation = Conversation{Messages: msgs}
	case FormatPromptCompletion:
		p, okp := obj["prompt"]
		c, okc := obj["completion"]
		if !okp || !okc {
			return rec, errors.New(`want both "prompt" and "completion" keys`)
		}
		var ps, cs string
		if json.Unmarshal(p, &ps) == nil && json.Unmarshal(c, &cs) == nil {
			if strings.TrimSpace(cs) == "" {
				return rec, errors.New("empty completion")
			}
			return Record{Plain: true, Prompt: ps, Completion: cs}, nil
		}
		pm, err := parseMessages(p, "prompt")
		if err != nil {
			return rec, fmt.Errorf("%v (want two strings or two lists of messages)", err)
		}
		cm, err := parseMessages(c, "completion")
		if err != nil {
			return rec, fmt.Errorf("%v (want two strings or two lists of messages)", err)
		}
		for i := range pm {
			pm[i].NoLoss = true
		}
		rec.Conversation = Conversation{Messages: append(pm, cm...)}
	}
	if err := rec.Conversation.Validate(); err != nil {
		return rec, err
	}
	return rec, nil
}

// parseMessages reads a JSON list of {"role", "content"[, "weight"]}.
func parseMessages(raw json.RawMessage, key string) ([]Message, error) {
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("%q: want a list of messages: %v", key, jsonReason(err))
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%q is empty: the conversation has no messages", key)
	}
	msgs := make([]Message, len(list))
	for i, m := range list {
		where := fmt.Sprintf("%s message %d", key, i+1)
		if m == nil {
			return nil, fmt.Errorf("%s: want an object, got null", where)
		}
		for k := range m {
			switch k {
			case "role", "content", "weight":
			default:
				return nil, fmt.Errorf("%s: key %q is not supported (golora reads role, content and weight)", where, k)
			}
		}
		var role string
		if err := json.Unmarshal(m["role"], &role); err != nil || m["role"] == nil {
			return nil, fmt.Errorf("%s: want a string \"role\"", where)
		}
		switch role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return nil, fmt.Errorf("%s: unknown role %q, want system, user or assistant", where, role)
		}
		var content string
		if err := json.Unmarshal(m["content"], &content); err != nil || m["content"] == nil {
			return nil, fmt.Errorf("%s (%s): want a string \"content\"", where, role)
		}
		msgs[i] = Message{Role: role, Content: content}
		if w, ok := m["weight"]; ok {
			var weight float64
			if err := json.Unmarshal(w, &weight); err != nil || (weight != 0 && weight != 1) {
				return nil, fmt.Errorf("%s: \"weight\" %s, want 0 or 1", where, w)
			}
			if role != RoleAssistant {
				return nil, fmt.Errorf("%s: \"weight\" applies to assistant messages only", where)
			}
			msgs[i].NoLoss = weight == 0
		}
	}
	return msgs, nil
}

// jsonReason shortens encoding/json's errors to what a user can act on.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%q is a JSON %s, want %v", te.Field, te.Value, te.Type)
		}
		return fmt.Sprintf("got a JSON %s, want %v", te.Value, te.Type)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "the line ends inside a JSON value"
	}
	return err.Error()
}

// WriteJSONL writes conversations in FormatChat, one per line; an assistant
// message with NoLoss gets "weight": 0. ReadJSONL reads them back.
func WriteJSONL(w io.Writer, convs []Conversation) error {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
		Weight  *int   `json:"weight,omitempty"`
	}
	zero := 0
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, c := range convs {
		line := struct {
			Messages []msg `json:"messages"`
		}{make([]msg, len(c.Messages))}
		for i, m := range c.Messages {
			line.Messages[i] = msg{Role: m.Role, Content: m.Content}
			if m.NoLoss && m.Role == RoleAssistant {
				line.Messages[i].Weight = &zero
			}
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("chat: write JSONL: %w", err)
		}
	}
	return bw.Flush()
}

// NewData wraps conversations made in code (not read from a file) as Data
// for Formatter.Dataset; name stands for the file in messages.
func NewData(name string, convs []Conversation) *Data {
	d := &Data{Name: name, Format: FormatChat, Records: make([]Record, len(convs))}
	for i, c := range convs {
		d.Records[i] = Record{Line: i + 1, Conversation: c}
	}
	return d
}
