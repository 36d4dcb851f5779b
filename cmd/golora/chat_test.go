package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golora/golora/models/gpt"
)

// chatFixture is a tiny GPT (byte tokenizer, context 128) pretrained for a
// moment on ChatML conversations, so that its greedy answers are printable
// text; built once.
var chatFixture struct {
	once sync.Once
	dir  string
	err  error
}

func getChatModel(t *testing.T) string {
	t.Helper()
	chatFixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "golora-chat-test-")
		if err != nil {
			chatFixture.err = err
			return
		}
		r := rand.New(rand.NewPCG(1, 2))
		qa := [][2]string{{"ping", "pong"}, {"hello", "hi there"}, {"2+2?", "4"}, {"color of the sky?", "blue"}}
		var b strings.Builder
		for range 300 {
			p := qa[r.IntN(len(qa))]
			fmt.Fprintf(&b, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n%s<|im_end|>\n", p[0], p[1])
		}
		data := filepath.Join(dir, "chatml.txt")
		if chatFixture.err = os.WriteFile(data, []byte(b.String()), 0o644); chatFixture.err != nil {
			return
		}
		chatFixture.dir = filepath.Join(dir, "model")
		res := golora("pretrain", "--preset", "nano", "--layers", "2", "--heads", "2", "--embd", "32", "--block-size", "128",
			"--data", data, "--out", chatFixture.dir, "--steps", "40", "--lr", "1e-2", "--context", "64", "--quiet")
		if res.code != 0 {
			chatFixture.err = fmt.Errorf("pretrain: %s", res.stderr)
		}
	})
	if chatFixture.err != nil {
		t.Fatal(chatFixture.err)
	}
	return chatFixture.dir
}

// TestChatStreams: golora chat with piped input answers each line as
// generate --chat does for the first, streams each answer in several
// writes while it is generated, and keeps the history (the second answer
// follows the first exchange).
func TestChatStreams(t *testing.T) {
	model := getChatModel(t)
	one := mustRun(t, "generate", "--base", model, "--chat", "--prompt", "ping", "--max-new-tokens", "12")
	want := strings.TrimSuffix(one.stdout, "\n")

	var out recorder
	var errb bytes.Buffer
	c := &cli{name: "golora chat", stdout: &out, stderr: &errb, stdin: strings.NewReader("ping\nping\n")}
	if err := runChat(c, []string{"--base", model, "--max-new-tokens", "12"}); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	got := out.String()
	if !strings.HasPrefix(got, want+"\n") {
		t.Fatalf("first answer %q, want generate --chat's %q", got, want)
	}
	t.Logf("answers %q in %d writes", got, out.writes)
	if out.writes < 4 {
		t.Errorf("the answers came in %d writes: not streamed", out.writes)
	}
	// The second answer is generated after the first exchange: it is what
	// generate gives for the whole conversation so far.
	if strings.Count(got, "\n") != 2 {
		t.Errorf("want two answers of one line each, got %q", got)
	}

	// A system message changes the prompt.
	sys := mustRun(t, "generate", "--base", model, "--chat", "--system", "Answer in one word.", "--prompt", "ping", "--max-new-tokens", "12", "--json")
	if !strings.Contains(sys.stdout, `"prompt": "ping"`) {
		t.Errorf("generate --chat --json: %s", sys.stdout)
	}
	if r := golora("generate", "--base", model, "--system", "x", "--prompt", "ping"); r.code != 2 || !strings.Contains(r.stderr, "--system and --chat-template need --chat") {
		t.Errorf("--system without --chat: exit %d, %s", r.code, r.stderr)
	}
}

// recorder counts the writes made to it.
type recorder struct {
	bytes.Buffer
	writes int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes++
	return r.Buffer.Write(p)
}

func (r *recorder) WriteString(s string) (int, error) { return r.Write([]byte(s)) }

// TestChatTerminal drives golora chat in a real terminal (tmux): it types
// a question, reads the streamed answer from the screen (it must be the
// answer generate --chat gives), asks again, and quits with Ctrl-D.
func TestChatTerminal(t *testing.T) {
	skip := t.Skipf
	if os.Getenv("CI") != "" {
		skip = t.Fatalf // .ci/run installs tmux
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		skip("tmux is not installed (scripts/setup.sh installs it)")
	}
	model := getChatModel(t)
	bin := filepath.Join(t.TempDir(), "golora")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sock := fmt.Sprintf("golora-test-%d", os.Getpid())
	tm := func(args ...string) (string, error) {
		out, err := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tm("kill-server") })
	if out, err := tm("new-session", "-d", "-s", "chat", "-x", "160", "-y", "40",
		bin+" chat --base "+model+" --max-new-tokens 12 --system 'Be brief.'"); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	screen := func() string {
		out, _ := tm("capture-pane", "-p", "-t", "chat")
		return out
	}
	waitFor := func(what string, ok func(string) bool) string {
		deadline := time.Now().Add(60 * time.Second)
		for {
			s := screen()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s; the screen:\n%s", what, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A prompt is a line "> " (the screen drops trailing spaces).
	prompts := func(s string) int {
		n := 0
		for _, l := range strings.Split(s, "\n") {
			if l == ">" || strings.HasPrefix(l, "> ") {
				n++
			}
		}
		return n
	}
	waitFor("the banner and prompt", func(s string) bool { return strings.Contains(s, "golora chat:") && prompts(s) == 1 })
	// An answer is complete when a new prompt follows it.
	answered := func(n int) func(string) bool {
		return func(s string) bool { return prompts(s) >= n+1 }
	}
	tm("send-keys", "-t", "chat", "-l", "ping")
	tm("send-keys", "-t", "chat", "Enter")
	s := waitFor("the first answer", answered(1))
	lines := strings.Split(s, "\n")
	var answer []string
	for i, l := range lines {
		if l == "> ping" {
			for _, a := range lines[i+1:] {
				if strings.HasPrefix(a, ">") {
					break
				}
				answer = append(answer, strings.TrimRight(a, " "))
			}
			break
		}
	}
	got := strings.TrimRight(strings.Join(answer, "\n"), "\n")
	want := strings.TrimRight(mustRun(t, "generate", "--base", model, "--chat", "--system", "Be brief.", "--prompt", "ping", "--max-new-tokens", "12").stdout, " \n")
	if got != want || got == "" {
		t.Errorf("the screen shows the answer %q, generate --chat gives %q\n%s", got, want, s)
	}
	tm("send-keys", "-t", "chat", "-l", "hello")
	tm("send-keys", "-t", "chat", "Enter")
	waitFor("the second answer", answered(2))
	tm("send-keys", "-t", "chat", "C-d")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := tm("has-session", "-t", "chat"); err != nil {
			break // golora chat exited, and its session with it
		}
		if time.Now().After(deadline) {
			t.Fatalf("golora chat did not exit on Ctrl-D:\n%s", screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChatSamplingDefaults: generation_config.json's do_sample settings
// are the defaults; a sampling flag overrides them all; no file or no
// do_sample is greedy.
func TestChatSamplingDefaults(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		file  string
		flags map[string]bool
		want  gpt.GenerateOptions
	}{
		{"", nil, gpt.GenerateOptions{}},
		{`{"eos_token_id": [2, 7]}`, nil, gpt.GenerateOptions{}},
		{`{"do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.8}`, nil, gpt.GenerateOptions{Temperature: 0.7, TopK: 20, TopP: 0.8}},
		{`{"do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.8}`, map[string]bool{"temperature": true}, gpt.GenerateOptions{Temperature: 0.3}},
	}
	for i, c := range cases {
		os.Remove(filepath.Join(dir, "generation_config.json"))
		if c.file != "" {
			os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(c.file), 0o644)
		}
		g, err := readGenDefaults(dir)
		if err != nil {
			t.Fatal(err)
		}
		s := &chatSetup{gen: g}
		o := gpt.GenerateOptions{}
		if c.flags["temperature"] {
			o.Temperature = 0.3
		}
		s.sampling(&o, c.flags)
		if o.Temperature != c.want.Temperature || o.TopK != c.want.TopK || o.TopP != c.want.TopP {
			t.Errorf("case %d: %+v, want %+v", i, o, c.want)
		}
		if i == 1 && !slices.Equal(g.eos, []int{2, 7}) {
			t.Errorf("eos %v, want [2 7]", g.eos)
		}
	}
	os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(`{"temperature": -1}`), 0o644)
	if _, err := readGenDefaults(dir); err == nil || !strings.Contains(err.Error(), "temperature") {
		t.Errorf("a bad generation_config.json: %v", err)
	}
}
