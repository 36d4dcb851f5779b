#!/usr/bin/env python3
"""Golden losses for `golora eval` on Llama-family folders (cmd/golora's TestLlamaEvalParity).

For each architecture case of tools/llama_reference.py (llama with llama3
rope scaling in F32, qwen2 with q/k/v biases and a tied head in BF16, qwen3
with q/k norms in three shards and transformers v5's rope_parameters), this
writes a random Hugging Face model folder with golora's byte tokenizer (257
ids, "golora_tokenizer": "bytes"), so that `golora eval` reads a text file,
and the mean next-token cross-entropy of that text as golora eval scores it:
the text's bytes cut into windows of CONTEXT+1 tokens that overlap by one,
every target counted once. The model is llama_reference.py's own PyTorch
implementation (float64); nothing here uses golora, transformers or
safetensors.

Writes under cmd/golora/testdata/llama_eval/: one folder per case, text.txt
and losses.json. The files are committed: neither CI nor `go test` needs
Python. Regenerate (from the repository root; needs python3 with PyTorch and
NumPy, e.g. Debian's python3-torch):

    OMP_WAIT_POLICY=PASSIVE python3 tools/llama_eval_reference.py
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cmd", "golora", "testdata", "llama_eval")
CONTEXT = 16
TEXT = ("func main() {\n\tfmt.Println(\"héllo, 世界\")  // 42 — ok\n}\n"
        "    indented   runs\tof\twhitespace 1234567 and émojis 🙂 done.\n")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    ids = list(TEXT.encode("utf-8"))
    n = (len(ids) - 1) // CONTEXT
    windows = torch.tensor([ids[i * CONTEXT:i * CONTEXT + CONTEXT + 1] for i in range(n)])
    losses = {}
    for name, case in ref.CASES.items():
        cfg = dict(case, vocab=257, seed=case["seed"] + 100)
        rng = np.random.default_rng(cfg["seed"])
        W64 = {}
        for pname, shape in ref.param_shapes(cfg):
            if pname.endswith("norm.weight"):
                a = 1 + rng.uniform(-0.3, 0.3, shape)
            elif pname.endswith(".bias"):
                a = rng.normal(0, 0.1, shape)
            else:
                a = rng.normal(0, 0.25, shape)
            W64[pname] = ref.stored(a, cfg["dtype"])
        c = ref.hf_config(cfg)
        c.update(bos_token_id=256, eos_token_id=256, golora_tokenizer="bytes")
        files = {"config.json": ref.jdump(c)}
        enc = {k: ref.encode(v, cfg["dtype"]) for k, v in W64.items()}
        if cfg["shards"] == 0:
            files["model.safetensors"] = ref.st_bytes(enc, {"format": "pt"})
        else:
            names = [k for k, _ in ref.param_shapes(cfg)]
            s, weight_map, total = cfg["shards"], {}, 0
            for j in range(s):
                part = names[j * len(names) // s:(j + 1) * len(names) // s]
                fname = f"model-{j + 1:05d}-of-{s:05d}.safetensors"
                files[fname] = ref.st_bytes({k: enc[k] for k in part}, {"format": "pt"})
                for k in part:
                    weight_map[k] = fname
                    total += len(enc[k][2])
            files["model.safetensors.index.json"] = ref.jdump({"metadata": {"total_size": total}, "weight_map": weight_map})
        ref.replace_dir(os.path.join(OUT, name), files)
        W = {k: torch.from_numpy(v) for k, v in W64.items()}
        with torch.no_grad():
            logits = ref.logits_of(W, cfg, windows[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, 257), windows[:, 1:].reshape(-1)).item()
        losses[name] = loss
        print(f"{name}: loss {loss:.12f} over {n * CONTEXT} tokens")
    ref.write_atomic(os.path.join(OUT, "text.txt"), TEXT.encode("utf-8"))
    ref.write_atomic(os.path.join(OUT, "losses.json"),
                     ref.jdump({"context": CONTEXT, "tokens": n * CONTEXT, "loss": losses, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
