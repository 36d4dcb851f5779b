#!/usr/bin/env python3
"""Independent GPT-2 (PyTorch) that writes golora's GPT-2 parity references.

A short GPT-2 written from the paper and Hugging Face's checkpoint layout, with
LoRA on the q and v blocks of c_attn (PEFT's layout: A [r, in], B [out, r]). It
does not use transformers, safetensors or any golora code: the .safetensors
format is parsed and written below with struct, json and numpy. For each model
it computes, in float64, the logits of a batch of sequences without and with
LoRA, the masked, label-smoothed mean cross-entropy with LoRA, and the
gradients of that loss with respect to every LoRA A and B. The results go to
models/gpt/testdata/parity_<model>_ref.safetensors, which TestParityNano and
TestParityGPT2 (models/gpt/parity_test.go) compare with golora. The files are
committed: neither CI nor `go test` needs Python.

Models:

  nano  the "nano" preset (3 layers, 3 heads, d 48, vocab 257). Its weights are
        the folder models/gpt/testdata/parity_nano/ (config.json +
        model.safetensors), written by golora's Save from a seeded recipe;
        this script reads that file, so the test also checks that golora's
        checkpoints read correctly elsewhere.
  gpt2  GPT-2 small's shape (12 layers, 12 heads, d 768, vocab 50257, 124M
        parameters). Its weights are too large to commit, so both sides derive
        them from hash_weights below (a seeded integer hash, bit-identical in
        Go and numpy); only the reference outputs are stored (the logits at
        every 97th vocabulary column plus each row's log-sum-exp).

Regenerate (from the repository root; needs python3 with PyTorch >= 1.12 and
NumPy, e.g. Debian's python3-torch):

    GOLORA_WRITE_PARITY=1 go test ./models/gpt -run '^TestParityNanoModel$' -count=1
    python3 tools/gpt2_reference.py

The first step rewrites testdata/parity_nano/ (only needed when the recipe in
parity_test.go changes); the second writes both reference files. Pass --only
nano or --only gpt2 to write one.
"""

import argparse
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "gpt", "testdata")

# ---------------------------------------------------------------- safetensors

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64}


def read_safetensors(path):
    """Returns {name: numpy array} of a .safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    buf = data[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        dt = np.dtype(DTYPES[e["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(buf[b:end], dtype=dt).reshape(e["shape"]).copy()
    return out


def write_safetensors(path, tensors, metadata):
    """Writes {name: numpy array} (float64 or int64) atomically."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dt = {np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}[a.dtype]
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path) + ".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# ---------------------------------------------------------------- weights


def param_names(n_layer):
    """GPT-2's parameters in Hugging Face checkpoint order."""
    names = ["wte.weight", "wpe.weight"]
    for i in range(n_layer):
        for m in ["ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"]:
            names += [f"h.{i}.{m}.weight", f"h.{i}.{m}.bias"]
    return names + ["ln_f.weight", "ln_f.bias"]


def param_shapes(cfg):
    d, shapes = cfg["n_embd"], {}
    shapes["wte.weight"] = [cfg["vocab_size"], d]
    shapes["wpe.weight"] = [cfg["n_positions"], d]
    for i in range(cfg["n_layer"]):
        h = f"h.{i}."
        for ln in ["ln_1", "ln_2"]:
            shapes[h + ln + ".weight"] = shapes[h + ln + ".bias"] = [d]
        for m, (a, b) in {"attn.c_attn": (d, 3 * d), "attn.c_proj": (d, d), "mlp.c_fc": (d, 4 * d), "mlp.c_proj": (4 * d, d)}.items():
            shapes[h + m + ".weight"], shapes[h + m + ".bias"] = [a, b], [b]
    shapes["ln_f.weight"] = shapes["ln_f.bias"] = [d]
    return shapes


M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def fmix64(x):
    """MurmurHash3's 64-bit finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(33))
        x = x * np.uint64(0xFF51AFD7ED558CCD)
        x = x ^ (x >> np.uint64(33))
        x = x * np.uint64(0xC4CEB9FE1A85EC53)
        x = x ^ (x >> np.uint64(33))
    return x


def hash_uniform(k, n):
    """n values in [0, 1): u_j = fmix64(k·2^40 + j + 0x9E3779B97F4A7C15) / 2^64 (top 53 bits)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(k) << np.uint64(40)) + np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    return (fmix64(x) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def hash_weights(cfg):
    """GPT-2 small's parity weights: parameter k (checkpoint order) gets
    v = (2u − 1)·a + c with u = hash_uniform(k, size); (a, c) is (0.2, 1) for
    LayerNorm scales, (0.05, 0) for LayerNorm shifts, (0.02, 0) for the other
    biases and (0.04, 0) for the weight matrices and embeddings."""
    shapes, out = param_shapes(cfg), {}
    for k, name in enumerate(param_names(cfg["n_layer"])):
        is_ln = ".ln_" in name or name.startswith("ln_f")
        if is_ln and name.endswith(".weight"):
            a, c = 0.2, 1.0
        elif is_ln:
            a, c = 0.05, 0.0
        elif name.endswith(".bias"):
            a, c = 0.02, 0.0
        else:
            a, c = 0.04, 0.0
        n = int(np.prod(shapes[name]))
        u = hash_uniform(k, n)
        out[name] = ((2 * u - 1) * a + c).reshape(shapes[name])
    return out


# ---------------------------------------------------------------- the model


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * g + b


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gpt2_logits(W, cfg, ids, lora=None):
    """Logits [B, T, V] of GPT-2 for ids [B, T]. W maps Hugging Face names to
    tensors ([in, out] Conv1D weights). lora maps (layer, "q"|"v") to (A, B)
    in PEFT's layout, A [r, d], B [d, r], scaled by lora["scale"]."""
    B, T = ids.shape
    d, nh = cfg["n_embd"], cfg["n_head"]
    hd, eps = d // nh, cfg["layer_norm_epsilon"]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    x = W["wte.weight"][ids] + W["wpe.weight"][:T]  # [B, T, d]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]  # [B, T, 3d]
        q, k, v = qkv.split(d, dim=-1)
        if lora is not None:
            s = lora["scale"]
            A, Bm = lora[(i, "q")]
            q = q + s * (h @ A.T) @ Bm.T
            A, Bm = lora[(i, "v")]
            v = v + s * (h @ A.T) @ Bm.T
        q, k, v = (t.view(B, T, nh, hd).transpose(1, 2) for t in (q, k, v))  # [B, nh, T, hd]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = torch.softmax(att.masked_fill(~causal, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + y @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        m = gelu_tanh(h @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = x + m @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    x = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    return x @ W["wte.weight"].T  # tied head: [B, T, V]


def masked_loss(logits, targets, mask, smoothing):
    """Σ mask·ℓ / Σ mask with PyTorch's label-smoothed cross-entropy ℓ."""
    V = logits.shape[-1]
    nll = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none", label_smoothing=smoothing)
    m = mask.reshape(-1)
    return (nll * m).sum() / m.sum()


# ---------------------------------------------------------------- a case


def run_case(name, cfg, weights, batch, ctx, rank, alpha, cols, seed):
    rng = np.random.default_rng(seed)
    V, d = cfg["vocab_size"], cfg["n_embd"]
    ids = rng.integers(0, V, size=(batch, ctx))
    targets = np.concatenate([ids[:, 1:], rng.integers(0, V, size=(batch, 1))], axis=1)
    mask = (rng.random((batch, ctx)) < 0.8).astype(np.float64)
    mask[0, 0] = 1.0
    # LoRA A ~ U(±1/√d) as loralib's kaiming-uniform, B ~ U(±0.1): nonzero so
    # that every gradient is nontrivial.
    lora_np = {}
    for i in range(cfg["n_layer"]):
        for part in ("q", "v"):
            lora_np[(i, part)] = (rng.uniform(-1, 1, (rank, d)) / math.sqrt(d), rng.uniform(-0.1, 0.1, (d, rank)))
    smoothing, scale = 0.1, alpha / rank

    out = {"ids": ids.astype(np.int64), "targets": targets.astype(np.int64), "mask": mask}
    for (i, part), (A, Bm) in lora_np.items():
        out[f"h.{i}.attn.c_attn.{part}.lora_A"] = A
        out[f"h.{i}.attn.c_attn.{part}.lora_B"] = Bm

    def compute(dtype):
        W = {k: torch.from_numpy(v).to(dtype) for k, v in weights.items()}
        lora = {"scale": scale}
        for key, (A, Bm) in lora_np.items():
            lora[key] = (torch.tensor(A, dtype=dtype, requires_grad=True), torch.tensor(Bm, dtype=dtype, requires_grad=True))
        tids, ttg = torch.from_numpy(ids), torch.from_numpy(targets)
        with torch.no_grad():
            base = gpt2_logits(W, cfg, tids)
        logits = gpt2_logits(W, cfg, tids, lora)
        loss = masked_loss(logits, ttg, torch.from_numpy(mask).to(dtype), smoothing)
        loss.backward()
        grads = {}
        for (i, part) in lora_np:
            A, Bm = lora[(i, part)]
            grads[f"grad.h.{i}.attn.c_attn.{part}.lora_A"] = A.grad.double().numpy()
            grads[f"grad.h.{i}.attn.c_attn.{part}.lora_B"] = Bm.grad.double().numpy()
        return base.detach().double().numpy(), logits.detach().double().numpy(), loss.item(), grads

    base, logits, loss, grads = compute(torch.float64)
    flat = lambda a: a.reshape(batch * ctx, V)
    for key, val in (("logits_base", flat(base)), ("logits", flat(logits))):
        out[key] = val[:, ::cols]
        out[key + "_lse"] = torch.logsumexp(torch.from_numpy(val), dim=-1).numpy()
    out["loss"] = np.array(loss)
    out.update(grads)

    # The same in float32, for context: how far PyTorch's own float32 is from
    # its float64 (relative to each tensor's largest magnitude).
    base32, logits32, loss32, grads32 = compute(torch.float32)
    rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())
    worst = max(rel(grads32[k], grads[k]) for k in grads)
    print(f"{name}: loss {loss:.12f}; PyTorch float32 vs float64: logits {rel(logits32, logits):.2e}, "
          f"loss {abs(loss32 - loss) / abs(loss):.2e}, LoRA gradients {worst:.2e}")

    meta = {"model": name, "batch": str(batch), "ctx": str(ctx), "rank": str(rank), "alpha": repr(alpha),
            "smoothing": repr(smoothing), "columns_every": str(cols), "torch": torch.__version__}
    path = os.path.join(TESTDATA, f"parity_{name}_ref.safetensors")
    write_safetensors(path, out, meta)
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["nano", "gpt2"])
    args = ap.parse_args()
    torch.set_num_threads(1)

    if args.only in (None, "nano"):
        folder = os.path.join(TESTDATA, "parity_nano")
        with open(os.path.join(folder, "config.json")) as f:
            cfg = json.load(f)
        weights = {k: v.astype(np.float64) for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}
        if sorted(weights) != sorted(param_names(cfg["n_layer"])):
            sys.exit("parity_nano/model.safetensors does not hold exactly GPT-2's parameters")
        run_case("nano", cfg, weights, batch=3, ctx=16, rank=4, alpha=8.0, cols=1, seed=1)

    if args.only in (None, "gpt2"):
        cfg = {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024, "vocab_size": 50257, "layer_norm_epsilon": 1e-5}
        run_case("gpt2", cfg, hash_weights(cfg), batch=2, ctx=8, rank=2, alpha=4.0, cols=97, seed=2)


if __name__ == "__main__":
    main()
