package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/golora/golora/chat"
	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/models/llama"
)

// chatSetup is what chat mode needs of a model: its template, the tokens
// that end an answer, and the sampling defaults of its folder.
type chatSetup struct {
	f        *chat.Formatter
	tok      gpt.Tokenizer
	stops    []int  // end-of-turn token, end of text, generation_config.json's eos ids
	stopText string // the end-of-turn text when it is not one token (GPT-2 with ChatML)
	gen      genDefaults
}

// newChatSetup reads the template (--chat-template or the model's) and the
// generation defaults of the folder base.
func newChatSetup(base string, tok gpt.Tokenizer, templatePath string) (*chatSetup, error) {
	f, err := newFormatter(tok, templatePath)
	if err != nil {
		return nil, err
	}
	s := &chatSetup{f: f, tok: tok}
	text, id := f.EndOfTurn()
	if id >= 0 {
		s.stops = append(s.stops, id)
	} else {
		s.stopText = text
	}
	s.stops = append(s.stops, tok.EOT())
	if ht := gpt.FileTokenizerOf(tok); ht != nil && ht.EOS() >= 0 {
		s.stops = append(s.stops, ht.EOS())
	}
	if s.gen, err = readGenDefaults(base); err != nil {
		return nil, err
	}
	for _, id := range s.gen.eos {
		if id >= 0 && id < tok.VocabSize() {
			s.stops = append(s.stops, id)
		}
	}
	slices.Sort(s.stops)
	s.stops = slices.Compact(s.stops)
	return s, nil
}

// readGenDefaults reads dir's generation_config.json with package llama's
// reader (the file is the same for every architecture): the decoding
// transformers' generate would use, and the settings golora does not apply.
// A folder without the file decodes greedily.
func readGenDefaults(dir string) (genDefaults, error) {
	if _, err := os.Stat(filepath.Join(dir, llama.GenerationConfigFile)); errors.Is(err, fs.ErrNotExist) {
		return genDefaults{}, nil
	}
	g, err := llama.ReadGenerationConfig(dir)
	if err != nil {
		return genDefaults{}, fmt.Errorf("--base %s: %w", dir, err)
	}
	o, ignored := g.Options()
	return genDefaults{opts: o, eos: g.EOS, ignored: ignored}, nil
}

// genDefaults are the decoding settings of a folder's generation_config.json.
type genDefaults struct {
	opts    gpt.GenerateOptions // sampling (or beams) as transformers would decode
	eos     []int
	ignored []string // settings golora does not implement
}

// sampling fills the decoding options that no flag set from the folder's
// generation_config.json (greedy when it has none or no do_sample).
func (s *chatSetup) sampling(o *gpt.GenerateOptions, setByFlag map[string]bool) {
	if setByFlag["temperature"] || setByFlag["top-k"] || setByFlag["top-p"] || setByFlag["beams"] {
		return
	}
	d := s.gen.opts
	if d.Beams == 0 && d.Temperature > 0 {
		o.Temperature, o.TopK, o.TopP = d.Temperature, d.TopK, d.TopP
	}
}

// describe says how answers are decoded, for the banner.
func describeDecoding(o gpt.GenerateOptions) string {
	if o.Temperature == 0 {
		return "greedy decoding"
	}
	s := fmt.Sprintf("sampling at temperature %g", o.Temperature)
	if o.TopK > 0 {
		s += fmt.Sprintf(", top-k %d", o.TopK)
	}
	if o.TopP > 0 {
		s += fmt.Sprintf(", top-p %g", o.TopP)
	}
	return s
}

// streamer turns generated ids into text as they come: it writes every
// complete character at once, holds back a tail that could begin the
// end-of-turn text, and reports when that text is complete.
type streamer struct {
	tok      gpt.Tokenizer
	stopText string
	w        io.Writer
	ids      []int
	written  int // bytes of the decoded text already written
	text     string
	stopped  bool
	err      error
}

// add takes one id and returns false when the answer has ended (its
// end-of-turn text is complete, or writing failed).
func (s *streamer) add(id int) bool {
	s.ids = append(s.ids, id)
	text := s.tok.Decode(s.ids)
	end := len(text)
	if s.stopText != "" {
		if i := strings.Index(text[s.written:], s.stopText); i >= 0 {
			end, s.stopped = s.written+i, true
		} else {
			// Hold back the longest tail that is a prefix of the stop text.
			for k := min(len(s.stopText)-1, len(text)-s.written); k > 0; k-- {
				if strings.HasSuffix(text, s.stopText[:k]) {
					end = len(text) - k
					break
				}
			}
		}
	}
	for end > s.written && !utf8.ValidString(text[s.written:end]) {
		end-- // an incomplete character waits for its next token
	}
	if end > s.written {
		if _, err := io.WriteString(s.w, text[s.written:end]); err != nil {
			s.err = err
			return false
		}
		s.written = end
	}
	s.text = text[:s.written]
	return !s.stopped
}

// finish writes what is held back (when the answer ended without the stop
// text) and returns the answer.
func (s *streamer) finish() string {
	if !s.stopped && s.err == nil {
		text := strings.ToValidUTF8(s.tok.Decode(s.ids), "\uFFFD")
		if len(text) > s.written {
			io.WriteString(s.w, text[s.written:])
		}
		s.text = text
	}
	return s.text
}

// chatModel is what a session needs of a model: *gpt.Model and
// *llama.Model both are.
type chatModel interface {
	Generate(prompts [][]int, opts gpt.GenerateOptions) ([]gpt.Generation, error)
	ContextSize() int
}

// session is a conversation with the model.
type session struct {
	m       chatModel
	setup   *chatSetup
	system  string
	history []chat.Message
	opts    gpt.GenerateOptions // MaxNewTokens and sampling; OnToken and StopTokens are set per answer
	turn    uint64
}

// prompt returns the ids of the system message and the history with the
// generation prompt, dropping the oldest exchanges until they leave room
// for MaxNewTokens new tokens in the context. It returns how many
// exchanges it dropped.
func (s *session) prompt() ([]int, int, error) {
	dropped := 0
	for {
		var msgs []chat.Message
		if s.system != "" {
			msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: s.system})
		}
		msgs = append(msgs, s.history...)
		ids, err := s.setup.f.Prompt(msgs)
		if err != nil {
			return nil, dropped, err
		}
		if len(ids)+s.opts.MaxNewTokens <= s.m.ContextSize() || len(s.history) <= 1 {
			return ids, dropped, nil // a last question too long for the context is cropped by Generate
		}
		// Drop the oldest user message and everything up to the next one.
		i := 1
		for i < len(s.history) && s.history[i].Role != chat.RoleUser {
			i++
		}
		if i >= len(s.history) {
			return ids, dropped, nil
		}
		s.history = s.history[i:]
		dropped++
	}
}

// reply adds the user's message, streams the model's answer to w and
// keeps it in the history. interrupted, when it turns true, ends the
// answer early.
func (s *session) reply(user string, w io.Writer, interrupted *atomic.Bool) (string, int, error) {
	s.history = append(s.history, chat.Message{Role: chat.RoleUser, Content: user})
	ids, dropped, err := s.prompt()
	if err != nil {
		s.history = s.history[:len(s.history)-1]
		return "", 0, err
	}
	st := &streamer{tok: s.setup.tok, stopText: s.setup.stopText, w: w}
	o := s.opts
	o.StopTokens = s.setup.stops
	o.Seed = s.opts.Seed + s.turn // each answer its own sample
	o.OnToken = func(_, id int) bool { return st.add(id) && !(interrupted != nil && interrupted.Load()) }
	s.turn++
	if _, err := s.m.Generate([][]int{ids}, o); err != nil {
		return "", dropped, err
	}
	if st.err != nil {
		return "", dropped, st.err
	}
	answer := st.finish()
	s.history = append(s.history, chat.Message{Role: chat.RoleAssistant, Content: answer})
	return answer, dropped, nil
}

func runChat(c *cli, args []string) error {
	f := newFlags(c, "--base MODEL_DIR [--adapter ADAPTER_DIR] [--system TEXT]",
		"Talks with the model in the terminal: each line you type is a user message, rendered with\nthe earlier turns in the model's chat template (or --chat-template, or ChatML), and the\nanswer streams as it is generated, ending at the template's end-of-turn token. The history\nstays within the model's context: the oldest exchanges are dropped when it fills.\nDecoding follows the folder's generation_config.json unless --temperature, --top-k or\n--top-p say otherwise. Type /reset to start over, /exit or Ctrl-D to quit; Ctrl-C stops an\nanswer.",
		`golora chat --base SmolLM2-135M-Instruct --adapter go-doc-adapter --system "Answer in one sentence."`)
	var base, adapter, system, tmpl string
	var maxNew, topK int
	var temperature, topP float64
	var seed uint64
	f.StringVar(&base, "base", "", "`MODEL_DIR`: base model folder")
	f.StringVar(&adapter, "adapter", "", "`ADAPTER_DIR`: adapter folder to apply")
	f.StringVar(&system, "system", "", "system message `TEXT` at the start of the conversation")
	f.StringVar(&tmpl, "chat-template", "", "Jinja chat template `FILE` (or a tokenizer_config.json) instead of the model's")
	f.IntVar(&maxNew, "max-new-tokens", 0, "most tokens of one answer (0: 256, or half the context if smaller)")
	f.Float64Var(&temperature, "temperature", 0, "sample from softmax(logits / T) when > 0; 0 is greedy (default: generation_config.json)")
	f.IntVar(&topK, "top-k", 0, "sample only among the K most likely tokens")
	f.Float64Var(&topP, "top-p", 0, "sample only among the most likely tokens whose probability reaches P")
	f.Uint64Var(&seed, "seed", 1, "seed of the sampler")
	if err := f.parseNone(args); err != nil {
		return err
	}
	setByFlag := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { setByFlag[fl.Name] = true })
	if err := need("base", base); err != nil {
		return err
	}
	m, tok, err := loadBase("base", base)
	if err != nil {
		return err
	}
	if _, err := loadAdapter(m, adapter); err != nil {
		return err
	}
	setup, err := newChatSetup(base, tok, tmpl)
	if err != nil {
		return err
	}
	bs := m.ContextSize()
	if maxNew == 0 {
		maxNew = min(256, max(1, bs/2))
	}
	if maxNew < 0 || maxNew >= bs {
		return usagef("--max-new-tokens %d: want 1 … %d (less than the model's context)", maxNew, bs-1)
	}
	o := gpt.GenerateOptions{MaxNewTokens: maxNew, Temperature: temperature, TopK: topK, TopP: topP, Seed: seed}
	setup.sampling(&o, setByFlag)
	if err := checkSampling(o); err != nil {
		return err
	}
	for _, ig := range setup.gen.ignored {
		fmt.Fprintf(c.stderr, "note: generation_config.json sets %s, which golora does not apply\n", ig)
	}
	s := &session{m: m, setup: setup, system: system, opts: o}
	tty := isTerminal(c.stdout) && isInputTerminal(c.stdin)
	if tty {
		fmt.Fprintf(c.stdout, "golora chat: %s", base)
		if adapter != "" {
			fmt.Fprintf(c.stdout, " + %s", adapter)
		}
		fmt.Fprintf(c.stdout, ", template %s, %s. /reset starts over, /exit or Ctrl-D quits.\n", setup.f.Template().Name(), describeDecoding(o))
	}
	var interrupted atomic.Bool
	sig := make(chan os.Signal, 1)
	in := bufio.NewReader(c.stdin)
	for {
		if tty {
			fmt.Fprint(c.stdout, "> ")
		}
		line, rerr := in.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		switch strings.TrimSpace(line) {
		case "":
		case "/exit", "/quit":
			return nil
		case "/reset":
			s.history = nil
			fmt.Fprintln(c.stdout, "(history cleared)")
		default:
			interrupted.Store(false)
			signal.Notify(sig, os.Interrupt)
			done := make(chan struct{})
			go func() {
				select {
				case <-sig:
					interrupted.Store(true)
				case <-done:
				}
			}()
			_, dropped, err := s.reply(line, c.stdout, &interrupted)
			close(done)
			signal.Stop(sig)
			fmt.Fprintln(c.stdout)
			if err != nil {
				return err
			}
			if dropped > 0 {
				fmt.Fprintf(c.stderr, "(the %d oldest exchanges no longer fit the context and were dropped)\n", dropped)
			}
			if interrupted.Load() {
				fmt.Fprintln(c.stderr, "(answer stopped)")
			}
		}
		if rerr != nil {
			if tty {
				fmt.Fprintln(c.stdout)
			}
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}

// checkSampling checks sampling options set by flags or the folder.
func checkSampling(o gpt.GenerateOptions) error {
	switch {
	case !(o.Temperature >= 0) || o.Temperature > 1e6:
		return usagef("--temperature %v: want 0 (greedy) or a finite value > 0", o.Temperature)
	case o.TopK < 0:
		return usagef("--top-k %d: want ≥ 0", o.TopK)
	case !(o.TopP >= 0 && o.TopP <= 1):
		return usagef("--top-p %v: want in [0, 1]", o.TopP)
	case (o.TopK > 0 || o.TopP > 0) && o.Temperature == 0:
		return usagef("--top-k and --top-p need sampling: set --temperature > 0")
	}
	return nil
}

// isInputTerminal reports whether r is a terminal.
func isInputTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// chatTurn is generate --chat: the prompt ids of one user message (after
// the system message), with the end-of-turn stop tokens and the folder's
// decoding defaults set in o unless flags of f set them.
func chatTurn(f *flags, base string, tok gpt.Tokenizer, templatePath, system, user string, o *gpt.GenerateOptions) ([]int, *chatSetup, error) {
	cs, err := newChatSetup(base, tok, templatePath)
	if err != nil {
		return nil, nil, err
	}
	setByFlag := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { setByFlag[fl.Name] = true })
	cs.sampling(o, setByFlag)
	if err := checkSampling(*o); err != nil {
		return nil, nil, err
	}
	o.StopTokens = cs.stops
	var msgs []chat.Message
	if system != "" {
		msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: system})
	}
	msgs = append(msgs, chat.Message{Role: chat.RoleUser, Content: user})
	ids, err := cs.f.Prompt(msgs)
	if err != nil {
		return nil, nil, err
	}
	if cs.stopText != "" && o.Beams == 0 {
		// Stop as soon as the end-of-turn text is complete.
		st := &streamer{tok: tok, stopText: cs.stopText, w: io.Discard}
		o.OnToken = func(_, id int) bool { return st.add(id) }
	}
	return ids, cs, nil
}
