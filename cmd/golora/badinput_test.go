package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/golora/golora/models/gpt"
	"github.com/golora/golora/nn/lora"
	"github.com/golora/golora/safetensors"
)

// updateReliability rewrites the bad-input table of docs/reliability.md from
// the cases below and what the command printed for each.
var updateReliability = flag.Bool("update-reliability", false, "rewrite the bad-input table of docs/reliability.md")

// badInput is one case of the trial: a command line (run in a folder of
// fixtures, so paths are short and messages stable), the exit code and the
// words its one line of error must contain. env runs it as a separate
// process with those variables.
type badInput struct {
	group, name string
	args        string
	code        int
	wants       []string
	env         []string
}

const (
	ftArgs = "finetune --base base --data prose.txt --steps 1 --context 16 --quiet"
	ptArgs = "pretrain --data code.txt --steps 1 --context 16 --quiet --layers 1 --embd 16 --heads 2"
)

// badInputs are the bad inputs tried: every flag's range, missing, empty,
// foreign and damaged files and folders, outputs that would overwrite
// inputs, resumes of other runs, requests beyond memory. docs/reliability.md
// lists them with what the user sees.
func badInputs() []badInput {
	ft := func(s string) string { return ftArgs + " --out o " + s }
	pt := func(s string) string { return ptArgs + " --out o " + s }
	resume := "finetune --base base --data prose.txt --context 16 --quiet --out o --resume ck.safetensors "
	return []badInput{
		// The command line.
		{"command line", "no command", "", 2, []string{"LoRA for GPT-2 and Llama-family models"}, nil},
		{"command line", "unknown command", "frobnicate", 2, []string{`unknown command "frobnicate"`}, nil},
		{"command line", "a flag instead of a command", "--verbose", 2, []string{`unknown command "--verbose"`}, nil},
		{"command line", "unknown flag", ft("--rnak 4"), 2, []string{"-rnak", "see golora finetune --help"}, nil},
		{"command line", "flag without its value", ft("--rank"), 2, []string{"flag needs an argument: -rank"}, nil},
		{"command line", "word for a number", ft("--rank four"), 2, []string{`"four"`, "-rank"}, nil},
		{"command line", "stray argument", ft("extra"), 2, []string{`unexpected argument "extra"`}, nil},
		{"command line", "missing --base", "finetune --data prose.txt --out o", 2, []string{"--base is required"}, nil},
		{"command line", "missing --data", "finetune --base base --out o", 2, []string{"--data is required"}, nil},
		{"command line", "missing --out", "finetune --base base --data prose.txt", 2, []string{"--out is required"}, nil},
		{"command line", "eval without --data", "eval --base base", 2, []string{"--data is required"}, nil},
		{"command line", "generate without --prompt", "generate --base base", 2, []string{"--prompt is required"}, nil},
		{"command line", "generate with an empty prompt", "generate --base base --prompt ''", 2, []string{"--prompt is required"}, nil},
		{"command line", "inspect without a path", "inspect", 2, []string{"want one PATH, got 0"}, nil},
		{"command line", "inspect with two paths", "inspect base adapter", 2, []string{"want one PATH, got 2"}, nil},
		{"command line", "analyze without an adapter", "analyze", 2, []string{"--adapter: give one or two"}, nil},
		{"command line", "analyze with three adapters", "analyze --adapter adapter --adapter adapter --adapter adapter", 2, []string{"got 3"}, nil},
		{"command line", "tokenize without a model", "tokenize --text x", 2, []string{"--base is required (or --tokenizer)"}, nil},
		{"command line", "tokenize with two tokenizers", "tokenize --base base --tokenizer bytes --text x", 2, []string{"not both"}, nil},
		{"command line", "unknown tokenizer", "tokenize --tokenizer sentencepiece --text x", 2, []string{`--tokenizer "sentencepiece"`}, nil},
		{"command line", "bench: unknown configuration", "bench --configs huge", 2, []string{`--configs "huge"`}, nil},
		{"command line", "bench: negative steps", "bench --steps -1", 2, []string{"--steps -1"}, nil},
		{"command line", "bench: 100,000 threads", "bench --threads 100000", 2, []string{"--threads 100000: want at most"}, nil},
		{"command line", "tokenize with /dev/zero as tokenizer", "tokenize --tokenizer /dev/zero --text x", 1, []string{"/dev/zero: not a regular file"}, nil},
		{"command line", "tokenize with a named pipe as tokenizer", "tokenize --tokenizer fifo --text x", 1, []string{"fifo: not a regular file"}, nil},
		{"command line", "tokenize with a text file as tokenizer", "tokenize --tokenizer prose.txt --text x", 1, []string{"prose.txt", "not a tokenizer.json"}, nil},

		// Numbers out of range.
		{"training numbers", "--steps -1", ft("--steps -1"), 2, []string{"--steps -1: want ≥ 0"}, nil},
		{"training numbers", "--steps beyond int", ft("--steps 99999999999999999999"), 2, []string{"-steps", "out of range"}, nil},
		{"training numbers", "--steps beyond any run", ft("--steps 3000000000"), 2, []string{"--steps 3000000000: want at most 2147483647"}, nil},
		{"training numbers", "--epochs 0 and --steps 0", ft("--steps 0 --epochs 0"), 2, []string{"--epochs 0: want ≥ 1 when --steps is 0"}, nil},
		{"training numbers", "--epochs at the int limit", ft("--steps 0 --epochs 9223372036854775807"), 2, []string{"--epochs 9223372036854775807", "give fewer --epochs"}, nil},
		{"training numbers", "--batch 0", ft("--batch 0"), 2, []string{"--batch 0: want ≥ 1"}, nil},
		{"training numbers", "--batch -3", ft("--batch -3"), 2, []string{"--batch -3"}, nil},
		{"training numbers", "--batch beyond memory", ft("--batch 100000000"), 2, []string{"--batch 100000000 × --context 16", "needs about", "lower --batch or --context"}, nil},
		{"training numbers", "--batch at the int limit", ft("--batch 9223372036854775807"), 2, []string{"needs about 8.00 EiB"}, nil},
		{"training numbers", "--context -1", ft("--context -1"), 2, []string{"--context -1: want 0 … 32"}, nil},
		{"training numbers", "--context beyond the model", ft("--context 100000"), 2, []string{"--context 100000"}, nil},
		{"training numbers", "--accumulate 0", ft("--accumulate 0"), 2, []string{"--accumulate 0"}, nil},
		{"training numbers", "--accumulate beyond memory", ft("--accumulate 100000000000"), 2, []string{"--accumulate 100000000000", "needs about"}, nil},
		{"training numbers", "--lr NaN", ft("--lr NaN"), 2, []string{"--lr NaN: want a finite value"}, nil},
		{"training numbers", "--lr Inf", ft("--lr Inf"), 2, []string{"--lr +Inf"}, nil},
		{"training numbers", "--lr -1", ft("--lr -1"), 2, []string{"--lr -1"}, nil},
		{"training numbers", "--min-lr above --lr", ft("--lr 0.001 --min-lr 0.1"), 2, []string{"--min-lr 0.1: want ≤ the learning rate 0.001"}, nil},
		{"training numbers", "--min-lr NaN", ft("--min-lr NaN"), 2, []string{"--min-lr NaN"}, nil},
		{"training numbers", "unknown --schedule", ft("--schedule step"), 2, []string{"--schedule step: want constant, linear or cosine"}, nil},
		{"training numbers", "--warmup -1", ft("--warmup -1"), 2, []string{"--warmup -1"}, nil},
		{"training numbers", "--warmup longer than the run", ft("--warmup 999999999"), 0, nil, nil},
		{"training numbers", "--weight-decay -1", ft("--weight-decay -1"), 2, []string{"--weight-decay -1"}, nil},
		{"training numbers", "--max-grad-norm NaN", ft("--max-grad-norm NaN"), 2, []string{"--max-grad-norm NaN"}, nil},
		{"training numbers", "--label-smoothing 1", ft("--label-smoothing 1"), 2, []string{"--label-smoothing 1: want in [0, 1)"}, nil},
		{"training numbers", "--valid-fraction 1", ft("--valid-fraction 1"), 2, []string{"--valid-fraction 1"}, nil},
		{"training numbers", "--valid-fraction -0.1", ft("--valid-fraction -0.1"), 2, []string{"--valid-fraction -0.1"}, nil},
		{"training numbers", "--valid-fraction NaN", ft("--valid-fraction NaN"), 2, []string{"--valid-fraction NaN"}, nil},
		{"training numbers", "--valid-tokens -1", ft("--valid-tokens -1"), 2, []string{"--valid-tokens -1"}, nil},
		{"training numbers", "--eval-every -1", ft("--eval-every -1"), 2, []string{"--eval-every -1"}, nil},
		{"training numbers", "--checkpoint-every without --checkpoint", ft("--checkpoint-every 5"), 2, []string{"--checkpoint-every needs --checkpoint"}, nil},
		{"training numbers", "--checkpoint-every -1", ft("--checkpoint-every -1 --checkpoint c.st"), 2, []string{"--checkpoint-every -1"}, nil},
		{"training numbers", "--seed -1", ft("--seed -1"), 2, []string{`"-1"`, "-seed"}, nil},
		{"training numbers", "--seed beyond uint64", ft("--seed 99999999999999999999999"), 2, []string{"-seed", "out of range"}, nil},
		{"training numbers", "unknown --format", ft("--format csv"), 2, []string{`--format "csv"`}, nil},

		// LoRA flags.
		{"LoRA flags", "--rank 0", ft("--rank 0"), 2, []string{"--rank 0: want ≥ 1"}, nil},
		{"LoRA flags", "--rank -2", ft("--rank -2"), 2, []string{"--rank -2"}, nil},
		{"LoRA flags", "--rank above a layer's width", ft("--rank 17"), 2, []string{"--rank 17: above the model's width 16", "--force"}, nil},
		{"LoRA flags", "--rank above the width of wte with --force", ft("--rank 17 --targets wte --force"), 0, nil, nil},
		{"LoRA flags", "--rank beyond memory with --force", ft("--rank 1000000000000 --force"), 2, []string{"--rank 1000000000000", "needs about", "lower --rank"}, nil},
		{"LoRA flags", "--alpha 0", ft("--alpha 0"), 2, []string{"--alpha 0: want a finite value > 0"}, nil},
		{"LoRA flags", "--alpha NaN", ft("--alpha NaN"), 2, []string{"--alpha NaN"}, nil},
		{"LoRA flags", "--alpha -1", ft("--alpha -1"), 2, []string{"--alpha -1"}, nil},
		{"LoRA flags", "--alpha Inf", ft("--alpha Inf"), 2, []string{"--alpha +Inf"}, nil},
		{"LoRA flags", "--lora-dropout 1", ft("--lora-dropout 1"), 2, []string{"--lora-dropout 1"}, nil},
		{"LoRA flags", "--lora-dropout NaN", ft("--lora-dropout NaN"), 2, []string{"--lora-dropout NaN"}, nil},
		{"LoRA flags", "empty --targets", ft("--targets ''"), 2, []string{"name at least one layer"}, nil},
		{"LoRA flags", "--targets of commas", ft("--targets ,,"), 2, []string{"name at least one layer"}, nil},
		{"LoRA flags", "unknown target", ft("--targets q,frobnicate"), 1, []string{"--targets q,frobnicate", `"frobnicate" matches no layer`}, nil},
		{"LoRA flags", "a regular expression as a target", ft("--targets '.*'"), 1, []string{`".*" matches no layer`}, nil},
		{"LoRA flags", "a target twice", ft("--targets q,q"), 0, nil, nil},
		{"LoRA flags", "unknown --bias", ft("--bias some"), 2, []string{`--bias "some"`}, nil},
		{"LoRA flags", "unknown --init", ft("--init xavier"), 2, []string{`--init "xavier"`}, nil},
		{"LoRA flags", "--dora with --full", ft("--dora --full"), 2, []string{"--dora", "does not apply to --full"}, nil},
		{"LoRA flags", "--dora with --rank above the width", ft("--dora --rank 17"), 2, []string{"--rank 17: above the model's width 16"}, nil},
		{"LoRA flags", "--loraplus-lr-ratio NaN", ft("--loraplus-lr-ratio NaN"), 2, []string{"--loraplus-lr-ratio NaN"}, nil},
		{"LoRA flags", "--loraplus-lr-ratio -1", ft("--loraplus-lr-ratio -1"), 2, []string{"--loraplus-lr-ratio -1"}, nil},
		{"LoRA flags", "--loraplus-lr-ratio Inf", ft("--loraplus-lr-ratio Inf"), 2, []string{"--loraplus-lr-ratio +Inf"}, nil},
		{"LoRA flags", "--loraplus-lr-ratio 1e308 (B's rate overflows the weights)", ft("--loraplus-lr-ratio 1e308"), 1, []string{"non-finite"}, nil},
		{"LoRA flags", "--loraplus-lr-ratio with --full", ft("--loraplus-lr-ratio 16 --full"), 2, []string{"does not apply to --full"}, nil},
		{"LoRA flags", "more than half the parameters trainable", ft("--targets all-linear,wte --rank 16"), 0, []string{"warning: the adapter trains 5", "lower --rank"}, nil},

		// Model shapes.
		{"model shape", "unknown --preset", pt("--preset huge"), 2, []string{`--preset "huge"`}, nil},
		{"model shape", "unknown --arch", pt("--arch gpt3"), 2, []string{`--arch "gpt3": want one of gpt2, llama, mistral, qwen2, qwen3`}, nil},
		{"model shape", "a GPT-2 preset with --arch llama", pt("--arch llama --preset mini"), 2, []string{`--preset "mini": with --arch llama want nano or micro`}, nil},
		{"model shape", "the benchmark-only Llama preset", pt("--preset smollm2-135M"), 2, []string{"without a tokenizer to read --data"}, nil},
		{"model shape", "--dropout on a Llama", pt("--arch qwen3 --dropout 0.1"), 2, []string{"Llama-family models have no dropout"}, nil},
		{"model shape", "Llama: --heads not dividing --embd", pt("--arch llama --heads 3"), 2, []string{"--embd 16 is not divisible by --heads 3"}, nil},
		{"model shape", "Llama: an odd head width", pt("--arch llama --heads 16"), 2, []string{"--embd 16 / --heads 16 = 1: rotary embeddings need an even head width"}, nil},
		{"model shape", "--layers -1", pt("--layers -1"), 2, []string{"--layers -1"}, nil},
		{"model shape", "--heads that do not divide --embd", pt("--heads 3"), 2, []string{"--embd 16 is not divisible by --heads 3"}, nil},
		{"model shape", "--heads that do not divide the preset's width", "pretrain --data code.txt --out o --heads 5 --quiet", 2, []string{"--embd 48 (preset nano's) is not divisible by --heads 5"}, nil},
		{"model shape", "--embd beyond memory", pt("--embd 100000000"), 2, []string{"width 100000000", "needs about", "choose a smaller model"}, nil},
		{"model shape", "--layers beyond memory", pt("--layers 1000000000"), 2, []string{"1000000000 layers", "needs about"}, nil},
		{"model shape", "--block-size beyond memory", pt("--block-size 1000000000000"), 2, []string{"context 1000000000000", "needs about"}, nil},
		{"model shape", "--dropout 1", pt("--dropout 1"), 2, []string{"--dropout 1"}, nil},
		{"model shape", "--dropout NaN", pt("--dropout NaN"), 2, []string{"--dropout NaN"}, nil},

		// Data files.
		{"data files", "missing --data file", ft("--data nope.txt"), 1, []string{"--data nope.txt: no such file"}, nil},
		{"data files", "empty --data file", ft("--data empty.txt"), 1, []string{"--data empty.txt: the file is empty"}, nil},
		{"data files", "blank --data file", ft("--data blank.txt"), 1, []string{"blank.txt is empty"}, nil},
		{"data files", "text shorter than one window", ft("--data short.txt"), 1, []string{"short.txt", "shorter than one window of 17"}, nil},
		{"data files", "a folder as --data", ft("--data somedir"), 1, []string{"--data somedir: is a folder"}, nil},
		{"data files", "/dev/zero as --data", ft("--data /dev/zero"), 1, []string{"--data /dev/zero: not a regular file"}, nil},
		{"data files", "a named pipe as --data", ft("--data fifo"), 1, []string{"--data fifo: not a regular file"}, nil},
		{"data files", "binary --data", ft("--data binary.bin"), 0, nil, nil},
		{"data files", "invalid UTF-8 and NUL bytes in --data", ft("--data badutf8.txt"), 0, nil, nil},
		{"data files", "one 2 MB line of --data", ft("--data longline.txt"), 0, nil, nil},
		{"data files", "a completions line without ||", ft("--data badcompl.txt --format completions"), 1, []string{"badcompl.txt line 2", `no "||"`}, nil},
		{"data files", "--format completions on plain text", ft("--format completions"), 1, []string{"prose.txt line 1"}, nil},
		{"data files", "missing --valid file", ft("--valid nope.txt"), 1, []string{"--valid nope.txt"}, nil},
		{"data files", "empty --valid file", ft("--valid empty.txt"), 1, []string{"--valid empty.txt: the file is empty"}, nil},

		// Model and adapter folders.
		{"folders", "missing --base", "finetune --base nobase --data prose.txt --out o", 1, []string{"--base nobase: no such file"}, nil},
		{"folders", "a file as --base", "finetune --base prose.txt --data prose.txt --out o", 1, []string{"--base prose.txt: not a folder"}, nil},
		{"folders", "an empty folder as --base", "finetune --base somedir --data prose.txt --out o", 1, []string{"no config.json in the folder"}, nil},
		{"folders", "an adapter as --base", "finetune --base adapter --data prose.txt --out o", 1, []string{"--base adapter: no config.json"}, nil},
		{"folders", "config.json is not JSON", "eval --base bad-notjson --data prose.txt", 1, []string{"bad-notjson/config.json", "not a model config"}, nil},
		{"folders", "config.json: n_head 0", "eval --base bad-nhead0 --data prose.txt", 1, []string{"n_head 0: want > 0"}, nil},
		{"folders", "config.json: n_head does not divide n_embd", "eval --base bad-nhead3 --data prose.txt", 1, []string{"n_embd 16 is not divisible by n_head 3"}, nil},
		{"folders", "config.json: no n_embd", "eval --base bad-noembd --data prose.txt", 1, []string{"no n_embd"}, nil},
		{"folders", "config.json: model_type llama on GPT-2 keys", "eval --base bad-llama --data prose.txt", 1, []string{"bad-llama/config.json", "num_hidden_layers"}, nil},
		{"folders", "config.json: an unknown model_type", "eval --base bad-falcon --data prose.txt", 1, []string{`model_type "falcon": golora reads gpt2, llama, mistral, qwen2, qwen3`}, nil},
		{"folders", "Llama config.json: rope_scaling yarn", "eval --base bad-yarn --data prose.txt", 1, []string{"rope_scaling", `"yarn" is not supported`}, nil},
		{"folders", "Mistral: --context beyond sliding_window", "eval --base bad-window --data prose.txt --context 16", 2, []string{"--context 16: want 0 … 8", "sliding_window 8"}, nil},
		{"folders", "Llama model.safetensors: a tensor missing", "eval --base bad-lmissing --data prose.txt", 1, []string{`missing tensor "model.layers.1.input_layernorm.weight"`}, nil},
		{"folders", "Llama model.safetensors: a misshapen tensor", "eval --base bad-lshape --data prose.txt", 1, []string{`tensor "model.layers.0.mlp.down_proj.weight": shape [16 40], want [16 48]`}, nil},
		{"folders", "config.json: a billion layers", "eval --base bad-hugelayers --data prose.txt", 1, []string{"n_layer 1000000000", "the config does not match the weights"}, nil},
		{"folders", "config.json: a vocabulary of 10¹²", "eval --base bad-hugevocab --data prose.txt", 1, []string{"vocab_size 1000000000000", "does not match the weights"}, nil},
		{"folders", "config.json of 1 MiB", "eval --base hugecfg --data prose.txt", 1, []string{"more than a config can need"}, nil},
		{"folders", "config.json is a folder", "eval --base cfgdir --data prose.txt", 1, []string{"cfgdir/config.json: is a directory"}, nil},
		{"folders", "model.safetensors missing", "eval --base noweights --data prose.txt", 1, []string{"no model.safetensors in the folder"}, nil},
		{"folders", "model.safetensors truncated", "eval --base trunc --data prose.txt", 1, []string{"trunc/model.safetensors", "out of range"}, nil},
		{"folders", "model.safetensors with a NaN", "eval --base nanbase --data prose.txt", 1, []string{`tensor "wte.weight": element 0 is NaN`}, nil},
		{"folders", "model.safetensors with a flipped byte", "eval --base flipbase --data prose.txt", 1, []string{`tensor "h.0.mlp.c_fc.weight"`, "checksum mismatch"}, nil},
		{"folders", "adapter_config.json is not JSON", "eval --base base --adapter bad-adcfg --data prose.txt", 1, []string{"adapter_config.json: not a valid config"}, nil},
		{"folders", "adapter r 0", "eval --base base --adapter bad-r0 --data prose.txt", 1, []string{"r = 0, want ≥ 1"}, nil},
		{"folders", "adapter r 10⁹", "eval --base base --adapter bad-hugr --data prose.txt", 1, []string{"2000000000 from adapter_config.json"}, nil},
		{"folders", "use_dora set without magnitude vectors", "eval --base base --adapter bad-dora --data prose.txt", 1, []string{"--adapter bad-dora: ", `missing tensor "base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector"`}, nil},
		{"folders", "adapter_model.safetensors missing", "eval --base base --adapter bad-noweights --data prose.txt", 1, []string{"no adapter_model.safetensors"}, nil},
		{"folders", "adapter with a flipped byte", "eval --base base --adapter flipadapter --data prose.txt", 1, []string{"flipadapter", "checksum mismatch"}, nil},
		{"folders", "missing --adapter", "eval --base base --adapter nope --data prose.txt", 1, []string{"--adapter nope: no such file"}, nil},
		{"folders", "a model as --adapter", "eval --base base --adapter base --data prose.txt", 1, []string{"--adapter base: no adapter_config.json"}, nil},

		// Adapters and checkpoints of another base.
		{"another base", "eval: adapter of another width", "eval --base other --adapter adapter --data prose.txt", 1, []string{"--adapter adapter was made for another base", "(its config names "}, nil},
		{"another base", "eval: adapter of another depth", "eval --base deeper --adapter adapter --data prose.txt", 1, []string{"was made for another base", "slices of h.2.attn.c_attn"}, nil},
		{"another base", "generate: adapter of another base", "generate --base other --adapter adapter --prompt x", 1, []string{"was made for another base"}, nil},
		{"another base", "merge: adapter of another base", "merge --base other --adapter adapter --out m", 1, []string{"was made for another base"}, nil},
		{"another base", "analyze: adapter of another base", "analyze --adapter adapter --base other", 1, []string{"was made for another base"}, nil},
		{"another base", "wte adapter of another vocabulary", "eval --base other --adapter ad-wte --data prose.txt", 1, []string{"--adapter ad-wte was made for another base", "lora_embedding"}, nil},
		{"another base", "resume on another base", "finetune --base other --data prose.txt --context 16 --quiet --out o --resume ck.safetensors --steps 4 --force", 1, []string{"--resume ck.safetensors was made for another base or other adapter flags"}, nil},
		{"another base", "resume with other --targets", resume + "--steps 4 --targets c_proj", 1, []string{"was made for another base or other adapter flags", "not a trainable parameter"}, nil},
		{"another base", "resume a LoRA checkpoint with --full", "finetune --full --base base --data prose.txt --context 16 --quiet --out o --resume ck.safetensors --steps 4", 1, []string{"other adapter flags (--targets, --rank, --full)"}, nil},

		// Resuming.
		{"resume", "--steps below the steps done", resume + "--steps 1", 2, []string{"--steps 1: the checkpoint ck.safetensors has already done 2 steps", "--force"}, nil},
		{"resume", "another --seed", resume + "--steps 4 --seed 9", 2, []string{"--seed 9: the checkpoint's run used --seed 1"}, nil},
		{"resume", "other --data", "finetune --base base --data code.txt --context 16 --quiet --out o --resume ck.safetensors --steps 4", 2, []string{"--data code.txt: the checkpoint was trained on other data"}, nil},
		{"resume", "another --context", "finetune --base base --data prose.txt --context 8 --quiet --out o --resume ck.safetensors --steps 4", 2, []string{"--context 8: the checkpoint's run used --context 16"}, nil},
		{"resume", "another --batch", resume + "--steps 4 --batch 2", 2, []string{"--batch 2: the checkpoint's run used --batch 8"}, nil},
		{"resume", "--steps below with --force", resume + "--steps 1 --force", 0, nil, nil},
		{"resume", "missing checkpoint", resume + "--steps 4 --resume nope.st", 1, []string{"--resume nope.st: no such file"}, nil},
		{"resume", "a text file as checkpoint", resume + "--steps 4 --resume prose.txt", 1, []string{"prose.txt: not a safetensors file"}, nil},
		{"resume", "a model file as checkpoint", resume + "--steps 4 --resume base/model.safetensors", 1, []string{`format "pt", want "golora.trainer/1"`}, nil},
		{"resume", "a folder as checkpoint", resume + "--steps 4 --resume somedir", 1, []string{"--resume somedir: is a folder"}, nil},
		{"resume", "checkpoint with 1,000 flipped bytes", resume + "--steps 4 --resume ck-bad.safetensors", 1, []string{"ck-bad.safetensors", "checksum mismatch"}, nil},
		{"resume", "truncated checkpoint", resume + "--steps 4 --resume ck-trunc.safetensors", 1, []string{"ck-trunc.safetensors", "out of range"}, nil},

		// Outputs that would overwrite inputs.
		{"outputs", "merge into its own base", "merge --base base --adapter adapter --out base", 2, []string{"--out base is the --base folder base"}, nil},
		{"outputs", "merge into ./base/", "merge --base base --adapter adapter --out ./base/", 2, []string{"--out ./base/ is the --base folder"}, nil},
		{"outputs", "merge into a link to the base", "merge --base base --adapter adapter --out baselink", 2, []string{"--out baselink is the --base folder"}, nil},
		{"outputs", "merge inside the base", "merge --base base --adapter adapter --out base/m", 2, []string{"lies inside the --base folder"}, nil},
		{"outputs", "merge into the adapter", "merge --base base --adapter adapter --out adapter", 2, []string{"--out adapter is the --adapter folder"}, nil},
		{"outputs", "merge into the folder holding the base", "merge --base base --adapter adapter --out .", 2, []string{"--out . holds the --base folder base"}, nil},
		{"outputs", "merge of a wte adapter", "merge --base base --adapter ad-wte --out m", 1, []string{"adapts the token embedding wte", "output head shares"}, nil},
		{"outputs", "finetune --out the base", ft("--out base"), 2, []string{"--out base is the --base folder"}, nil},
		{"outputs", "finetune --out inside the base", ft("--out base/x"), 2, []string{"lies inside the --base folder"}, nil},
		{"outputs", "finetune --out the data file", ft("--out prose.txt"), 2, []string{"--out prose.txt is the --data file"}, nil},
		{"outputs", "--out folder holding other files", ft("--out somedir2"), 1, []string{`the folder holds "notes.txt"; refusing`}, nil},
		{"outputs", "--checkpoint the data file", ft("--checkpoint prose.txt"), 2, []string{"--checkpoint prose.txt is the --data file"}, nil},
		{"outputs", "--metrics the data file", ft("--metrics prose.txt"), 2, []string{"--metrics prose.txt is the --data file"}, nil},
		{"outputs", "--checkpoint inside --out", ft("--checkpoint o/c.st"), 2, []string{"put it outside --out o"}, nil},
		{"outputs", "--checkpoint is a folder", ft("--checkpoint somedir"), 2, []string{"--checkpoint somedir: is a folder"}, nil},
		{"outputs", "--checkpoint and --metrics the same file", ft("--checkpoint c.x --metrics c.x"), 2, []string{"--checkpoint and --metrics are the same path"}, nil},
		{"outputs", "--checkpoint in a missing folder", ft("--checkpoint nodir/sub/c.st"), 2, []string{"the folder nodir/sub does not exist"}, nil},
		{"outputs", "pretrain --metrics the data file", pt("--metrics code.txt"), 2, []string{"--metrics code.txt is the --data file"}, nil},
		{"outputs", "demo --out a file", "demo --out prose.txt --quiet", 1, []string{"--out prose.txt"}, nil},
		{"outputs", "demo --out inside --goroot", "demo --goroot somedir --out somedir/x --quiet", 2, []string{"lies inside the --goroot folder"}, nil},
		{"outputs", "demo: missing --goroot", "demo --goroot nope --out d --quiet", 1, []string{"--goroot nope"}, nil},

		// eval.
		{"eval", "--batch 0", "eval --base base --data prose.txt --batch 0", 2, []string{"--batch 0"}, nil},
		{"eval", "--batch beyond memory", "eval --base base --data prose.txt --batch 10000000000", 2, []string{"--batch 10000000000 × --context 32", "needs about"}, nil},
		{"eval", "--batch beyond memory on a Llama", "eval --base lbase --data prose.txt --batch 10000000000", 2, []string{"a Llama model of 1 layers × width 16", "--batch 10000000000 × --context 32", "needs about"}, nil},
		{"LoRA flags", "Llama: --batch beyond memory", "finetune --base lbase --data prose.txt --out o --quiet --batch 100000000 --context 16", 2, []string{"training a Llama model", "needs about", "lower --batch or --context"}, nil},
		{"model shape", "Llama: --embd beyond memory", pt("--arch llama --embd 400000 --heads 2"), 2, []string{"a Llama model of 1 layers × width 400000", "needs about"}, nil},
		{"eval", "--context beyond the model", "eval --base base --data prose.txt --context 100000", 2, []string{"--context 100000"}, nil},
		{"eval", "unknown --split", "eval --base base --data prose.txt --split test", 2, []string{`--split "test"`}, nil},
		{"eval", "--split valid with --valid-fraction 0", "eval --base base --data prose.txt --split valid --valid-fraction 0", 2, []string{"--valid-fraction 0: want in (0, 1)"}, nil},
		{"eval", "--split of too few examples", "eval --base base --data compl3.txt --split valid --valid-fraction 0.9", 1, []string{"3 examples cannot give 0.9"}, nil},
		{"eval", "/dev/zero as --data", "eval --base base --data /dev/zero", 1, []string{"not a regular file"}, nil},

		// generate.
		{"generate", "--beams 100000", "generate --base base --prompt x --beams 100000", 2, []string{"--beams 100000: want at most 257"}, nil},
		{"generate", "--beams -1", "generate --base base --prompt x --beams -1", 2, []string{"--beams -1"}, nil},
		{"generate", "--beams beyond memory", "generate --base base --prompt x --beams 200", 2, []string{"--beams 200", "needs about", "lower --beams or --max-new-tokens"}, []string{"GOLORA_MEMORY_LIMIT=1MiB"}},
		{"generate", "--beams with --temperature", "generate --base base --prompt x --beams 2 --temperature 1", 2, []string{"beam search is deterministic"}, nil},
		{"generate", "--max-new-tokens -1", "generate --base base --prompt x --max-new-tokens -1", 2, []string{"--max-new-tokens -1"}, nil},
		{"generate", "--max-new-tokens beyond the context", "generate --base base --prompt x --max-new-tokens 1000000", 2, []string{"--max-new-tokens 1000000: want at most 32"}, nil},
		{"generate", "--temperature NaN", "generate --base base --prompt x --temperature NaN", 2, []string{"--temperature NaN"}, nil},
		{"generate", "--temperature -1", "generate --base base --prompt x --temperature -1", 2, []string{"--temperature -1"}, nil},
		{"generate", "--temperature 1e308", "generate --base base --prompt x --temperature 1e308 --max-new-tokens 4", 0, nil, nil},
		{"generate", "--temperature 1e-300", "generate --base base --prompt x --temperature 1e-300 --max-new-tokens 4", 0, nil, nil},
		{"generate", "--top-k without sampling", "generate --base base --prompt x --top-k 5", 2, []string{"need sampling"}, nil},
		{"generate", "--top-k -1", "generate --base base --prompt x --temperature 1 --top-k -1", 2, []string{"--top-k -1"}, nil},
		{"generate", "--top-k beyond the vocabulary", "generate --base base --prompt x --temperature 1 --top-k 1000000000 --max-new-tokens 4", 0, nil, nil},
		{"generate", "--top-p 2", "generate --base base --prompt x --temperature 1 --top-p 2", 2, []string{"--top-p 2"}, nil},
		{"generate", "--top-p NaN", "generate --base base --prompt x --temperature 1 --top-p NaN", 2, []string{"--top-p NaN"}, nil},
		{"generate", "--length-penalty without beams", "generate --base base --prompt x --length-penalty 1", 2, []string{"--length-penalty 1: needs --beams"}, nil},
		{"generate", "--length-penalty Inf", "generate --base base --prompt x --beams 2 --length-penalty Inf", 2, []string{"--length-penalty +Inf"}, nil},
		{"generate", "--no-repeat-ngram -1", "generate --base base --prompt x --no-repeat-ngram -1", 2, []string{"--no-repeat-ngram -1"}, nil},
		{"generate", "--no-repeat-ngram 10⁹", "generate --base base --prompt x --no-repeat-ngram 1000000000 --max-new-tokens 4", 0, nil, nil},
		{"generate", "a prompt of 5,000 characters", "generate --base base --prompt " + strings.Repeat("y", 5000) + " --max-new-tokens 4", 0, nil, nil},
		{"generate", "a prompt of invalid UTF-8", "generate --base base --prompt $'\\xff\\xfe' --max-new-tokens 4", 0, nil, nil},

		// chat data and chat.
		{"chat", "chat: missing --base", "chat --base nope", 1, []string{"--base nope: no such file"}, nil},
		{"chat", "chat: --max-new-tokens beyond the context", "chat --base base --max-new-tokens 100000", 2, []string{"--max-new-tokens 100000"}, nil},
		{"chat", "chat: --temperature NaN", "chat --base base --temperature NaN", 2, []string{"--temperature NaN"}, nil},
		{"chat", "chat: /dev/zero as --chat-template", "chat --base base --chat-template /dev/zero", 1, []string{"--chat-template /dev/zero: not a regular file"}, nil},
		{"chat", "chat: a text file as --chat-template", "chat --base base --chat-template prose.txt", 1, []string{"prose.txt"}, nil},
		{"chat", "finetune: /dev/zero as --chat-template", "finetune --base base --data chat.jsonl --steps 1 --context 16 --quiet --out o --chat-template /dev/zero", 1, []string{"--chat-template /dev/zero: not a regular file"}, nil},
		{"chat", "finetune: --chat-template with plain text", ft("--chat-template prose.txt"), 2, []string{"--chat-template applies to chat and prompt-completion data"}, nil},
		{"chat", "tokenize: /dev/zero as --chat", "tokenize --base base --chat /dev/zero", 1, []string{"--chat /dev/zero: not a regular file"}, nil},
		{"chat", "tokenize: a named pipe as --chat", "tokenize --base base --chat fifo", 1, []string{"--chat fifo: not a regular file"}, nil},
		{"chat", "tokenize: missing --chat file", "tokenize --base base --chat nope.jsonl", 1, []string{"--chat nope.jsonl: no such file"}, nil},
		{"chat", "godoc-qa without --out", "godoc-qa", 2, []string{"--out is required"}, nil},
		{"chat", "godoc-qa: --out and --text the same file", "godoc-qa --out q.jsonl --text ./q.jsonl", 2, []string{"--out and --text are the same path"}, nil},
		{"chat", "godoc-qa: --out a folder", "godoc-qa --out somedir", 2, []string{"--out somedir: is a folder"}, nil},
		{"chat", "godoc-qa: --max -1", "godoc-qa --out q.jsonl --max -1", 2, []string{"--max -1"}, nil},
		{"chat", "godoc-qa: unknown package", "godoc-qa --out q.jsonl --packages nope/pkg", 1, []string{"--packages", "nope/pkg"}, nil},

		// inspect and analyze.
		{"inspect", "missing path", "inspect nope", 1, []string{"nope: no such file"}, nil},
		{"inspect", "a text file", "inspect prose.txt", 1, []string{"prose.txt: not a safetensors file"}, nil},
		{"inspect", "a binary file", "inspect binary.bin", 1, []string{"not a safetensors file"}, nil},
		{"inspect", "an empty file", "inspect empty.txt", 1, []string{"not a safetensors file"}, nil},
		{"inspect", "/dev/zero", "inspect /dev/zero", 1, []string{"/dev/zero: not a regular file"}, nil},
		{"inspect", "a named pipe", "inspect fifo", 1, []string{"fifo: not a regular file"}, nil},
		{"inspect", "a folder of other things", "inspect somedir", 1, []string{"not a model folder"}, nil},
		{"inspect", "a checkpoint with flipped bytes", "inspect ck-bad.safetensors", 1, []string{"checksum mismatch", `tensor "`}, nil},
		{"inspect", "a truncated model", "inspect trunc", 1, []string{"out of range"}, nil},
		{"analyze", "missing adapter", "analyze --adapter nope", 1, []string{"--adapter nope"}, nil},
		{"analyze", "a model as the adapter", "analyze --adapter base", 1, []string{"no adapter_config.json"}, nil},
		{"analyze", "--top 0", "analyze --adapter adapter --top 0", 2, []string{"--top 0"}, nil},
	}
}

// badInputFixtures builds the folder the cases run in.
func badInputFixtures(t *testing.T, f *fixture) string {
	t.Helper()
	w := t.TempDir()
	p := func(n string) string { return filepath.Join(w, n) }
	write := func(name string, b []byte) {
		if err := os.MkdirAll(filepath.Dir(p(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p(name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyTree(t, f.base, p("base"))
	copyTree(t, f.otherBase, p("other"))
	copyTree(t, f.adapter, p("adapter"))
	for _, name := range []string{"prose.txt", "code.txt"} {
		src := map[string]string{"prose.txt": f.prose, "code.txt": f.code}[name]
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		write(name, b)
	}
	write("empty.txt", nil)
	write("blank.txt", []byte("\n  \n"))
	write("short.txt", []byte("hi"))
	write("compl3.txt", []byte("a||b\nc||d\ne||f\n"))
	write("chat.jsonl", []byte(strings.Repeat(`{"messages": [{"role": "user", "content": "What does strings.Contains do?"}, {"role": "assistant", "content": "It reports whether substr is within s."}]}`+"\n", 8)))
	write("badcompl.txt", []byte("a||b\nno separator\n"))
	bin := make([]byte, 3000)
	for i := range bin {
		bin[i] = byte(i * 7919 >> 3)
	}
	write("binary.bin", bin)
	write("badutf8.txt", []byte(strings.Repeat("\xff\xfe bad utf8 \x00 nul ", 100)))
	write("longline.txt", []byte(strings.Repeat("x", 2<<20)))
	write("somedir2/notes.txt", []byte("keep me"))
	if err := os.Mkdir(p("somedir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("base", p("baselink")); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if r := golora(args...); r.code != 0 {
			t.Fatalf("fixture %v: %s", args, r.stderr)
		}
	}
	run("finetune", "--base", p("base"), "--data", p("prose.txt"), "--out", p("ad-wte"), "--targets", "wte", "--rank", "4", "--steps", "1", "--context", "16", "--quiet")
	run("finetune", "--base", p("base"), "--data", p("prose.txt"), "--out", p("ad-ck"), "--steps", "2", "--context", "16", "--quiet", "--checkpoint", p("ck.safetensors"))
	run(append(append([]string{"pretrain"}, tinyModel(16)...), "--layers", "3", "--data", p("code.txt"), "--out", p("deeper"), "--steps", "1")...)
	ck, _ := os.ReadFile(p("ck.safetensors"))
	bad := slices.Clone(ck)
	n := int(binary.LittleEndian.Uint64(bad))
	for i := 8 + n + 100; i < min(8+n+1100, len(bad)); i++ {
		bad[i] ^= 0xff
	}
	write("ck-bad.safetensors", bad)
	write("ck-trunc.safetensors", ck[:len(ck)*2/3])
	// Model folders with one thing wrong.
	model := func(name string, edit func(c map[string]any), weights func(b []byte) []byte) {
		cfg, _ := os.ReadFile(filepath.Join(f.base, gpt.ConfigFile))
		var c map[string]any
		if err := json.Unmarshal(cfg, &c); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(c)
		}
		js, _ := json.Marshal(c)
		write(filepath.Join(name, gpt.ConfigFile), js)
		if weights != nil {
			b, _ := os.ReadFile(filepath.Join(f.base, gpt.WeightsFile))
			write(filepath.Join(name, gpt.WeightsFile), weights(b))
		}
	}
	same := func(b []byte) []byte { return b }
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	model("trunc", nil, func(b []byte) []byte { return b[:len(b)/2] })
	model("noweights", nil, nil)
	model("bad-nhead0", set("n_head", 0), same)
	model("bad-nhead3", set("n_head", 3), same)
	model("bad-noembd", func(c map[string]any) { delete(c, "n_embd") }, same)
	model("bad-llama", set("model_type", "llama"), same)
	// Llama-family folders with one thing wrong.
	run("pretrain", "--arch", "llama", "--layers", "1", "--embd", "16", "--heads", "2", "--block-size", "32", "--data", p("code.txt"), "--out", p("lbase"), "--steps", "1", "--context", "16", "--quiet")
	llamaModel := func(name string, edit func(c map[string]any)) {
		cfg, _ := os.ReadFile(p("lbase/config.json"))
		var c map[string]any
		if err := json.Unmarshal(cfg, &c); err != nil {
			t.Fatal(err)
		}
		edit(c)
		js, _ := json.Marshal(c)
		write(filepath.Join(name, "config.json"), js)
		b, _ := os.ReadFile(p("lbase/model.safetensors"))
		write(filepath.Join(name, "model.safetensors"), b)
	}
	llamaModel("bad-falcon", set("model_type", "falcon"))
	llamaModel("bad-yarn", set("rope_scaling", map[string]any{"rope_type": "yarn", "factor": 4.0}))
	llamaModel("bad-window", func(c map[string]any) { c["model_type"], c["sliding_window"] = "mistral", 8 })
	llamaModel("bad-lmissing", set("num_hidden_layers", 2))
	llamaModel("bad-lshape", set("intermediate_size", 48))
	model("bad-hugelayers", set("n_layer", 1000000000), same)
	model("bad-hugevocab", set("vocab_size", 1000000000000), same)
	model("bad-notjson", nil, same)
	write("bad-notjson/config.json", []byte(`{"n_layer": 2,`))
	model("hugecfg", nil, same)
	write("hugecfg/config.json", []byte(`{"pad": "`+strings.Repeat("x", 1<<20)+`"}`))
	model("cfgdir", nil, same)
	os.Remove(p("cfgdir/config.json"))
	os.Mkdir(p("cfgdir/config.json"), 0o755)
	model("nanbase", nil, func(b []byte) []byte {
		return withTensorEdit(t, b, "wte.weight", 0, math.Float32bits(float32(math.NaN())))
	})
	model("flipbase", nil, func(b []byte) []byte { return flipInTensor(t, b, "h.0.mlp.c_fc.weight") })
	// Adapter folders with one thing wrong.
	adapter := func(name string, edit func(c map[string]any), raw string, weights bool) {
		cfg, _ := os.ReadFile(filepath.Join(f.adapter, lora.ConfigFile))
		var c map[string]any
		if err := json.Unmarshal(cfg, &c); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(c)
		}
		js, _ := json.Marshal(c)
		if raw != "" {
			js = []byte(raw)
		}
		write(filepath.Join(name, lora.ConfigFile), js)
		if weights {
			b, _ := os.ReadFile(filepath.Join(f.adapter, lora.WeightsFile))
			write(filepath.Join(name, lora.WeightsFile), b)
		}
	}
	adapter("bad-adcfg", nil, `{"peft_type": "LORA",`, true)
	adapter("bad-r0", set("r", 0), "", true)
	adapter("bad-hugr", func(c map[string]any) { c["r"] = 2000000000; c["golora"].(map[string]any)["r"] = 1000000000 }, "", true)
	adapter("bad-dora", set("use_dora", true), "", true)
	adapter("bad-noweights", nil, "", false)
	adapter("flipadapter", nil, "", false)
	b, _ := os.ReadFile(filepath.Join(f.adapter, lora.WeightsFile))
	write("flipadapter/"+lora.WeightsFile, flipInTensor(t, b, "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight"))
	return w
}

// tensorOffset returns where tensor name's data starts in the file b.
func tensorOffset(t *testing.T, b []byte, name string) int {
	t.Helper()
	n := int(binary.LittleEndian.Uint64(b))
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	var e struct {
		Offsets []int `json:"data_offsets"`
	}
	if err := json.Unmarshal(h[name], &e); err != nil || len(e.Offsets) != 2 {
		t.Fatalf("no tensor %s: %v", name, err)
	}
	return 8 + n + e.Offsets[0]
}

// flipInTensor flips one byte in the middle of tensor name's data.
func flipInTensor(t *testing.T, b []byte, name string) []byte {
	b = slices.Clone(b)
	b[tensorOffset(t, b, name)+9] ^= 0x20
	return b
}

// withTensorEdit sets float32 element i of tensor name to the given bits
// and drops the checksums, as a file written by another tool would be.
func withTensorEdit(t *testing.T, b []byte, name string, i int, bits uint32) []byte {
	t.Helper()
	sf, err := safetensors.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, n := range sf.Names() {
		tt, _ := sf.Tensor(n)
		tt.Data = slices.Clone(tt.Data)
		if n == name {
			binary.LittleEndian.PutUint32(tt.Data[4*i:], bits)
		}
		ts = append(ts, tt)
	}
	md := map[string]string{"format": "pt"}
	var out strings.Builder
	if err := safetensors.Write(&out, ts, md); err != nil {
		t.Fatal(err)
	}
	return []byte(out.String())
}

// shellArgs splits a case's command line as a POSIX shell would for the
// quoting the cases use: '…', $'\xHH…' and plain words.
func shellArgs(s string) []string {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		switch {
		case strings.HasPrefix(s, "$'"):
			end := strings.Index(s[2:], "'") + 2
			word := s[2:end]
			var b []byte
			for i := 0; i < len(word); i++ {
				if word[i] == '\\' && i+3 < len(word) && word[i+1] == 'x' {
					var v byte
					fmt.Sscanf(word[i+2:i+4], "%02x", &v)
					b = append(b, v)
					i += 3
					continue
				}
				b = append(b, word[i])
			}
			out = append(out, string(b))
			s = s[end+1:]
		case strings.HasPrefix(s, "'"):
			end := strings.Index(s[1:], "'") + 1
			out = append(out, s[1:end])
			s = s[end+1:]
		default:
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			out = append(out, s[:end])
			s = s[end:]
		}
	}
	return out
}

// TestBadInputTable runs every bad input: each gets its exit code, one
// line on stderr containing the expected words, no output on stdout and no
// crash, and leaves the fixtures as they were. With -update-reliability it
// rewrites the table in docs/reliability.md from what the commands printed;
// without, it checks that the page lists exactly these cases.
func TestBadInputTable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fixtures use a named pipe and symbolic links")
	}
	f := getFixture(t)
	docPath, err := filepath.Abs(filepath.Join("..", "..", "docs", "reliability.md"))
	if err != nil {
		t.Fatal(err)
	}
	w := badInputFixtures(t, f)
	t.Chdir(w)
	protected := map[string]map[string][]byte{}
	for _, d := range []string{"base", "adapter", "other", "somedir2"} {
		protected[d] = snapshotDir(t, d)
	}
	var rows []string
	seen := map[string]bool{}
	for _, c := range badInputs() {
		key := c.group + ": " + c.name
		if seen[key] {
			t.Fatalf("two cases named %q", key)
		}
		seen[key] = true
		var r result
		t.Run(strings.ReplaceAll(key, " ", "_"), func(t *testing.T) {
			args := shellArgs(c.args)
			if c.env != nil {
				r = process(t, c.env, args...)
			} else {
				r = golora(args...)
			}
			noCrash(t, r)
			for _, o := range []string{"o", "m", "d", "q.jsonl"} {
				os.RemoveAll(o)
			}
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, c.code, r.stderr)
			}
			if c.code == 0 { // an odd but valid input: wants are on stderr
				for _, want := range c.wants {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("stderr %q lacks %q", r.stderr, want)
					}
				}
				return
			}
			line := strings.TrimSuffix(r.stderr, "\n")
			if c.args == "" {
				line = strings.Split(line, "\n")[0]
			} else if line == "" || strings.Contains(line, "\n") {
				t.Errorf("stderr %q, want one line", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q on failure", r.stdout)
			}
			for _, want := range c.wants {
				if !strings.Contains(line, want) {
					t.Errorf("%q lacks %q", line, want)
				}
			}
		})
		rows = append(rows, reliabilityRow(c, r, strings.NewReplacer(w+string(filepath.Separator), "", f.dir+string(filepath.Separator), "")))
	}
	for d, snap := range protected {
		if !sameSnapshot(snap, snapshotDir(t, d)) {
			t.Errorf("the folder %s changed", d)
		}
	}
	if t.Failed() {
		return
	}
	if *updateReliability {
		if err := writeReliabilityTable(docPath, rows); err != nil {
			t.Fatal(err)
		}
		return
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/golora -run TestBadInputTable -update-reliability)", err)
	}
	for key := range seen {
		if !strings.Contains(string(doc), "| "+mdEscape(key)+" |") {
			t.Errorf("docs/reliability.md does not list %q: run go test ./cmd/golora -run TestBadInputTable -update-reliability", key)
		}
	}
	if got, want := strings.Count(string(doc), "| `TestBadInputTable` |"), len(seen); got != want {
		t.Errorf("docs/reliability.md lists %d cases pinned by TestBadInputTable, the test has %d: run with -update-reliability", got, want)
	}
}

// availableRE hides the machine-dependent memory figure of a message.
var availableRE = regexp.MustCompile(`than the [0-9.]+ [KMGTPE]?i?B available`)

// reliabilityRow is the table row of a case: the case, the command, the
// exit code and what the user saw, with the fixtures' folders (paths)
// left out.
func reliabilityRow(c badInput, r result, paths *strings.Replacer) string {
	seen := paths.Replace(strings.TrimSpace(r.stderr))
	if c.args == "" {
		seen = strings.Split(seen, "\n")[0] + " …"
	}
	if c.code == 0 {
		seen = "runs (exit 0)"
		if w := strings.TrimSpace(r.stderr); strings.Contains(w, "warning") {
			seen = "runs, with " + w
		}
	}
	seen = availableRE.ReplaceAllString(seen, "than the … available")
	args := c.args
	if len(args) > 90 {
		args = args[:60] + "…" + args[len(args)-25:]
	}
	cmd := "golora " + args
	if c.env != nil {
		cmd = strings.Join(c.env, " ") + " " + cmd
	}
	return fmt.Sprintf("| %s | `%s` | %d | %s | `TestBadInputTable` |", mdEscape(c.group+": "+c.name), mdEscape(strings.TrimSpace(cmd)), r.code, mdEscape(seen))
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Markers around the generated table in docs/reliability.md.
const (
	tableBegin = "<!-- bad-input table: generated by go test ./cmd/golora -run TestBadInputTable -update-reliability -->"
	tableEnd   = "<!-- end of the bad-input table -->"
)

func writeReliabilityTable(path string, rows []string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(doc)
	i, j := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the table markers", path)
	}
	table := "| case | command | exit | what the user sees | pinned by |\n|---|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	s = s[:i+len(tableBegin)] + "\n" + table + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
