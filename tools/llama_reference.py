#!/usr/bin/env python3
"""Independent Llama-family decoders (PyTorch) that write golora's parity references.

Short implementations of Hugging Face's llama (with llama3 rope scaling), qwen2
(q/k/v biases) and qwen3 (per-head q_norm/k_norm, head_dim other than
hidden/heads) written from the architectures' maths, with LoRA in PEFT's layout
on every linear layer (A [r, in], B [out, r]; fan_in_fan_out false) and, for
qwen3, on the token embedding and the separate lm_head too. It does not use
transformers, peft, safetensors or any golora code: the .safetensors format is
written below with struct, json and numpy (BF16 by torch's own rounding).

For each case the script writes, under models/llama/testdata/:

  parity_<case>/          a Hugging Face model folder: config.json,
                          generation_config.json, and the weights as
                            llama3  one model.safetensors in F32
                            qwen2   one model.safetensors in BF16
                            qwen3   three F32 shards listed in
                                    model.safetensors.index.json (config in
                                    transformers v5's rope_parameters layout)
  parity_<case>_adapter/  a PEFT adapter folder: adapter_config.json and
                          adapter_model.safetensors with PEFT's keys
                          (base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight …)
  parity_<case>_ref.safetensors
                          float64 results: the batch (ids, targets, mask), the
                          logits without LoRA, with LoRA, and with the adapter
                          merged into the weights by PEFT's rule
                          (W + s·B·A; for the embedding E + s·(B·A)ᵀ), the
                          masked, label-smoothed mean cross-entropy with LoRA,
                          and its gradients with respect to every LoRA A and B.

models/llama/parity_test.go loads the folders and the adapter with golora and
compares. The files are committed: neither CI nor `go test` needs Python.

Regenerate (from the repository root; needs python3 with PyTorch >= 1.12 and
NumPy, e.g. Debian's python3-torch):

    OMP_WAIT_POLICY=PASSIVE python3 tools/llama_reference.py

--only CASE writes one case; --inv-freq prints the llama3 inverse frequencies
that graph/rope_test.go pins (θ 500000, factor 8, low 1, high 4, original
context 8192, head width 128).
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "llama", "testdata")

# ---------------------------------------------------------------- files


def st_bytes(tensors, metadata):
    """A .safetensors file for {name: (dtype, shape, raw bytes)}, tensors laid out by name."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        dt, shape, raw = tensors[name]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_atomic(path, data):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path) + ".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def encode(a, dtype):
    """(dtype, shape, bytes) of a float64 array stored as F32, F64 or BF16 (torch's rounding to nearest even)."""
    if dtype == "F64":
        return "F64", a.shape, np.ascontiguousarray(a, dtype="<f8").tobytes()
    if dtype == "F32":
        return "F32", a.shape, np.ascontiguousarray(a, dtype="<f4").tobytes()
    bits = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16).view(torch.int16)
    return "BF16", a.shape, bits.numpy().astype("<i2").tobytes()


def stored(a, dtype):
    """The float64 values a tensor has once stored in dtype."""
    if dtype == "BF16":
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16).double().numpy()
    if dtype == "F32":
        return a.astype(np.float32).astype(np.float64)
    return a


def replace_dir(path, files):
    """Replaces folder path by one holding files {name: bytes}."""
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path) + ".tmp-")
    for name, data in files.items():
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(tmp, name), 0o644)
    os.chmod(tmp, 0o755)
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)


def jdump(obj):
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


# ---------------------------------------------------------------- the models


def inv_freq(cfg):
    """RoPE inverse frequencies theta^(-2i/hd), with the linear or llama3 rule (float64)."""
    hd, theta, rope = cfg["head_dim"], cfg["theta"], cfg["rope"]
    f = np.array([theta ** (-2.0 * i / hd) for i in range(hd // 2)])
    kind = rope.get("rope_type", "default")
    if kind == "linear":
        f = f / rope["factor"]
    elif kind == "llama3":
        L, low, high, factor = rope["original_max_position_embeddings"], rope["low_freq_factor"], rope["high_freq_factor"], rope["factor"]
        out = []
        for v in f:
            wave = 2 * math.pi / v
            if wave < L / high:
                out.append(v)
            elif wave > L / low:
                out.append(v / factor)
            else:
                s = (L / wave - low) / (high - low)
                out.append((1 - s) * v / factor + s * v)
        f = np.array(out)
    return f


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate(x, cos, sin):
    """Rotate-half RoPE on x [..., T, hd] with cos, sin [T, hd/2]."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def linear(W, lora, name, x):
    """x·Wᵀ + b for the Hugging Face Linear `name` ([out, in]), plus s·(x·Aᵀ)·Bᵀ when LoRA adapts it."""
    y = x @ W[name + ".weight"].T
    if name + ".bias" in W:
        y = y + W[name + ".bias"]
    if lora is not None and name in lora["ab"]:
        A, B = lora["ab"][name]
        y = y + lora["scale"] * (x @ A.T) @ B.T
    return y


def logits_of(W, cfg, ids, lora=None):
    """Logits [B, T, V] for ids [B, T]."""
    Bsz, T = ids.shape
    H, KV, hd, eps = cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["eps"]
    ang = torch.arange(T, dtype=torch.float64)[:, None] * torch.from_numpy(inv_freq(cfg))[None, :]
    cos, sin = ang.cos().to(W["model.norm.weight"].dtype), ang.sin().to(W["model.norm.weight"].dtype)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    x = W["model.embed_tokens.weight"][ids]  # [B, T, d]
    if lora is not None and "model.embed_tokens" in lora["ab"]:
        A, B = lora["ab"]["model.embed_tokens"]  # A [r, V], B [d, r]
        x = x + lora["scale"] * A.T[ids] @ B.T
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = linear(W, lora, p + "self_attn.q_proj", h).view(Bsz, T, H, hd)
        k = linear(W, lora, p + "self_attn.k_proj", h).view(Bsz, T, KV, hd)
        v = linear(W, lora, p + "self_attn.v_proj", h).view(Bsz, T, KV, hd)
        if cfg["qk_norm"]:
            q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, heads, T, hd]
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k = k.repeat_interleave(H // KV, dim=1)  # query head j reads kv head j // (H/KV)
        v = v.repeat_interleave(H // KV, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = torch.softmax(att.masked_fill(~causal, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(Bsz, T, H * hd)
        x = x + linear(W, lora, p + "self_attn.o_proj", y)
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        m = F.silu(linear(W, lora, p + "mlp.gate_proj", h)) * linear(W, lora, p + "mlp.up_proj", h)
        x = x + linear(W, lora, p + "mlp.down_proj", m)
    x = rms_norm(x, W["model.norm.weight"], eps)
    if "lm_head.weight" in W:
        return linear(W, lora, "lm_head", x)
    return x @ W["model.embed_tokens.weight"].T


def merged_weights(W, lora):
    """PEFT's merge: W + s·B·A for a Linear, E + s·(B·A)ᵀ for the embedding."""
    out = dict(W)
    for name, (A, B) in lora["ab"].items():
        delta = lora["scale"] * (B @ A)
        if name == "model.embed_tokens":
            out[name + ".weight"] = W[name + ".weight"] + delta.T
        else:
            out[name + ".weight"] = W[name + ".weight"] + delta
    return out


def masked_loss(logits, targets, mask, smoothing):
    V = logits.shape[-1]
    nll = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none", label_smoothing=smoothing)
    m = mask.reshape(-1)
    return (nll * m).sum() / m.sum()


# ---------------------------------------------------------------- cases


def param_shapes(cfg):
    """Hugging Face names and shapes ([out, in] Linear weights), in model order."""
    d, f, V = cfg["hidden"], cfg["intermediate"], cfg["vocab"]
    q, kv = cfg["heads"] * cfg["head_dim"], cfg["kv_heads"] * cfg["head_dim"]
    out = [("model.embed_tokens.weight", (V, d))]
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        out.append((p + "input_layernorm.weight", (d,)))
        for name, shape in (("q_proj", (q, d)), ("k_proj", (kv, d)), ("v_proj", (kv, d)), ("o_proj", (d, q))):
            out.append((p + "self_attn." + name + ".weight", shape))
            if cfg["qkv_bias"] and name != "o_proj":
                out.append((p + "self_attn." + name + ".bias", (shape[0],)))
        if cfg["qk_norm"]:
            out += [(p + "self_attn.q_norm.weight", (cfg["head_dim"],)), (p + "self_attn.k_norm.weight", (cfg["head_dim"],))]
        out.append((p + "post_attention_layernorm.weight", (d,)))
        out += [(p + "mlp.gate_proj.weight", (f, d)), (p + "mlp.up_proj.weight", (f, d)), (p + "mlp.down_proj.weight", (d, f))]
    out.append(("model.norm.weight", (d,)))
    if not cfg["tied"]:
        out.append(("lm_head.weight", (V, d)))
    return out


def lora_targets(cfg):
    """Module names LoRA adapts: every linear layer of the blocks, plus the extra modules of the case."""
    names = []
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        names += [p + "self_attn." + n for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
        names += [p + "mlp." + n for n in ("gate_proj", "up_proj", "down_proj")]
    return names + cfg["lora_extra"]


CASES = {
    # llama with GQA, Llama 3.1's rope rule (θ 10000 and an original context
    # of 64 put one frequency below, one inside and two above the band), a
    # separate head; F32.
    "llama3": dict(model_type="llama", layers=2, hidden=32, intermediate=64, heads=4, kv_heads=2, head_dim=8, vocab=97,
                   eps=1e-5, theta=10000.0, rope={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                   tied=False, qkv_bias=False, qk_norm=False, dtype="F32", shards=0, v5=False, lora_extra=[],
                   eos=[2, 3], seed=1),
    # qwen2: q/k/v biases (not announced by its config), one kv head, tied
    # head; BF16 like published checkpoints.
    "qwen2": dict(model_type="qwen2", layers=2, hidden=32, intermediate=64, heads=4, kv_heads=1, head_dim=8, vocab=97,
                  eps=1e-6, theta=1000000.0, rope={}, tied=True, qkv_bias=True, qk_norm=False, dtype="BF16", shards=0,
                  v5=False, lora_extra=[], eos=[2], seed=2),
    # qwen3: per-head q/k norms, head_dim 12 ≠ 32/4, linear rope scaling in
    # transformers v5's rope_parameters, a separate head; three F32 shards;
    # LoRA also on the embedding and lm_head.
    "qwen3": dict(model_type="qwen3", layers=2, hidden=32, intermediate=48, heads=4, kv_heads=2, head_dim=12, vocab=97,
                  eps=1e-6, theta=1000000.0, rope={"rope_type": "linear", "factor": 2.0}, tied=False, qkv_bias=False,
                  qk_norm=True, dtype="F32", shards=3, v5=True, lora_extra=["model.embed_tokens", "lm_head"],
                  eos=[2, 5], seed=3),
}

BATCH, CTX, RANK, ALPHA, SMOOTHING = 2, 12, 2, 4.0, 0.1


def hf_config(cfg):
    c = {"architectures": [{"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[cfg["model_type"]]],
         "model_type": cfg["model_type"], "num_hidden_layers": cfg["layers"], "hidden_size": cfg["hidden"],
         "intermediate_size": cfg["intermediate"], "num_attention_heads": cfg["heads"], "num_key_value_heads": cfg["kv_heads"],
         "head_dim": cfg["head_dim"], "vocab_size": cfg["vocab"], "max_position_embeddings": 256, "rms_norm_eps": cfg["eps"],
         "hidden_act": "silu", "tie_word_embeddings": cfg["tied"], "attention_dropout": 0.0, "bos_token_id": 1,
         "eos_token_id": cfg["eos"][0], "torch_dtype": {"F32": "float32", "BF16": "bfloat16"}[cfg["dtype"]]}
    if cfg["model_type"] in ("llama", "qwen3"):
        c["attention_bias"] = False
    if cfg["model_type"] == "qwen2":
        c.update(use_sliding_window=False, sliding_window=4096, max_window_layers=2)
    if cfg["v5"]:
        c["rope_parameters"] = dict(cfg["rope"], rope_theta=cfg["theta"]) if cfg["rope"] else {"rope_type": "default", "rope_theta": cfg["theta"]}
    else:
        c["rope_theta"] = cfg["theta"]
        c["rope_scaling"] = cfg["rope"] or None
    return c


def run_case(name, cfg):
    rng = np.random.default_rng(cfg["seed"])
    cfg = dict(cfg)
    # Weights: N(0, 0.25²) (so attention and SiLU are far from linear),
    # RMSNorm weights 1 ± 0.3, biases N(0, 0.1²); rounded to the stored dtype.
    W64 = {}
    for pname, shape in param_shapes(cfg):
        if pname.endswith("norm.weight"):
            a = 1 + rng.uniform(-0.3, 0.3, shape)
        elif pname.endswith(".bias"):
            a = rng.normal(0, 0.1, shape)
        else:
            a = rng.normal(0, 0.25, shape)
        W64[pname] = stored(a, cfg["dtype"])

    # The model folder.
    files = {"config.json": jdump(hf_config(cfg)),
             "generation_config.json": jdump({"bos_token_id": 1, "eos_token_id": cfg["eos"] if len(cfg["eos"]) > 1 else cfg["eos"][0],
                                              "do_sample": False})}
    enc = {k: encode(v, cfg["dtype"]) for k, v in W64.items()}
    if cfg["shards"] == 0:
        files["model.safetensors"] = st_bytes(enc, {"format": "pt"})
    else:
        names = [n for n, _ in param_shapes(cfg)]
        n = cfg["shards"]
        weight_map, total = {}, 0
        for s in range(n):
            part = names[s * len(names) // n:(s + 1) * len(names) // n]
            fname = f"model-{s + 1:05d}-of-{n:05d}.safetensors"
            files[fname] = st_bytes({k: enc[k] for k in part}, {"format": "pt"})
            for k in part:
                weight_map[k] = fname
                total += len(enc[k][2])
        files["model.safetensors.index.json"] = jdump({"metadata": {"total_size": total}, "weight_map": weight_map})
    replace_dir(os.path.join(TESTDATA, f"parity_{name}"), files)

    # The batch and the adapter: A ~ U(±1/√in) as PEFT's kaiming-uniform,
    # B ~ U(±0.1) (nonzero, so every gradient is nontrivial); the
    # embedding's A [r, V] ~ U(±0.5), B [d, r] ~ U(±0.1).
    V = cfg["vocab"]
    ids = rng.integers(0, V, size=(BATCH, CTX))
    targets = np.concatenate([ids[:, 1:], rng.integers(0, V, size=(BATCH, 1))], axis=1)
    mask = (rng.random((BATCH, CTX)) < 0.8).astype(np.float64)
    mask[0, 0] = 1.0
    shapes = dict(param_shapes(cfg))
    ab_np = {}
    for t in lora_targets(cfg):
        if t == "model.embed_tokens":
            ab_np[t] = (rng.uniform(-0.5, 0.5, (RANK, V)), rng.uniform(-0.1, 0.1, (cfg["hidden"], RANK)))
        else:
            out_f, in_f = shapes[t + ".weight"]
            ab_np[t] = (rng.uniform(-1, 1, (RANK, in_f)) / math.sqrt(in_f), rng.uniform(-0.1, 0.1, (out_f, RANK)))
    adapter = {}
    for t, (A, B) in ab_np.items():
        if t == "model.embed_tokens":
            adapter[f"base_model.model.{t}.lora_embedding_A"] = encode(A, "F32")
            adapter[f"base_model.model.{t}.lora_embedding_B"] = encode(B, "F32")
        else:
            adapter[f"base_model.model.{t}.lora_A.weight"] = encode(A, "F32")
            adapter[f"base_model.model.{t}.lora_B.weight"] = encode(B, "F32")
    ab_np = {t: (stored(A, "F32"), stored(B, "F32")) for t, (A, B) in ab_np.items()}
    target_modules = "all-linear" if not cfg["lora_extra"] else ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens", "lm_head"]
    adapter_cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": f"parity_{name}", "r": RANK,
                   "lora_alpha": ALPHA, "lora_dropout": 0.0, "target_modules": target_modules, "bias": "none",
                   "fan_in_fan_out": False, "use_rslora": False, "init_lora_weights": True, "modules_to_save": None,
                   "inference_mode": True}
    replace_dir(os.path.join(TESTDATA, f"parity_{name}_adapter"),
                {"adapter_config.json": jdump(adapter_cfg), "adapter_model.safetensors": st_bytes(adapter, {"format": "pt"})})

    scale = ALPHA / RANK

    def compute(dtype):
        W = {k: torch.from_numpy(v).to(dtype) for k, v in W64.items()}
        lora = {"scale": scale, "ab": {t: (torch.tensor(A, dtype=dtype, requires_grad=True), torch.tensor(B, dtype=dtype, requires_grad=True))
                                        for t, (A, B) in ab_np.items()}}
        tids, ttg = torch.from_numpy(ids), torch.from_numpy(targets)
        with torch.no_grad():
            base = logits_of(W, cfg, tids)
            merged = logits_of(merged_weights(W, lora), cfg, tids)
            merged_loss = masked_loss(merged, ttg, torch.from_numpy(mask).to(dtype), SMOOTHING)
        logits = logits_of(W, cfg, tids, lora)
        loss = masked_loss(logits, ttg, torch.from_numpy(mask).to(dtype), SMOOTHING)
        loss.backward()
        grads = {}
        for t, (A, B) in lora["ab"].items():
            a, b = ("lora_embedding_A", "lora_embedding_B") if t == "model.embed_tokens" else ("lora_A", "lora_B")
            grads[f"grad.{t}.{a}"] = A.grad.double().numpy()
            grads[f"grad.{t}.{b}"] = B.grad.double().numpy()
        return (base.double().numpy(), logits.detach().double().numpy(), merged.double().numpy(), loss.item(),
                merged_loss.item(), grads)

    base, logits, merged, loss, merged_loss, grads = compute(torch.float64)
    flat = lambda a: a.reshape(BATCH * CTX, V)
    out = {"ids": ids.astype(np.int64), "targets": targets.astype(np.int64), "mask": mask,
           "logits_base": flat(base), "logits": flat(logits), "logits_merged": flat(merged),
           "loss": np.array(loss), "loss_merged": np.array(merged_loss)}
    out.update(grads)
    b32, l32, m32, loss32, _, g32 = compute(torch.float32)
    rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())
    print(f"{name}: loss {loss:.12f} (merged {merged_loss:.12f}); PyTorch float32 vs float64: logits {rel(l32, logits):.2e}, "
          f"loss {abs(loss32 - loss) / abs(loss):.2e}, LoRA gradients {max(rel(g32[k], grads[k]) for k in grads):.2e}")

    tensors = {}
    for k, v in out.items():
        v = np.asarray(v)
        if v.dtype == np.int64:
            tensors[k] = ("I64", v.shape, np.ascontiguousarray(v, dtype="<i8").tobytes())
        else:
            tensors[k] = encode(v, "F64")
    meta = {"case": name, "batch": str(BATCH), "ctx": str(CTX), "rank": str(RANK), "alpha": repr(ALPHA),
            "smoothing": repr(SMOOTHING), "torch": torch.__version__}
    path = os.path.join(TESTDATA, f"parity_{name}_ref.safetensors")
    write_atomic(path, st_bytes(tensors, meta))
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes) and the folders parity_{name}, parity_{name}_adapter")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=sorted(CASES))
    ap.add_argument("--inv-freq", action="store_true", help="print Llama 3.1's inverse frequencies and exit")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.inv_freq:
        f = inv_freq({"head_dim": 128, "theta": 500000.0, "rope": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})
        for i, v in enumerate(f):
            print(i, repr(float(v)))
        return
    os.makedirs(TESTDATA, exist_ok=True)
    for name, cfg in CASES.items():
        if args.only in (None, name):
            run_case(name, cfg)


if __name__ == "__main__":
    sys.exit(main())
