#!/usr/bin/env python3
"""Independent DoRA (PyTorch) that writes golora's DoRA parity reference.

DoRA (Liu et al. 2024, arXiv 2402.09353) as PEFT computes it, written here from
the paper and PEFT's documented behaviour (not PEFT's code), on the "nano"
GPT-2 of tools/gpt2_reference.py (whose model, safetensors and loss helpers it
reuses). For a layer with PyTorch-layout weight W [out, in] (GPT-2 stores
[in, out]: transposed first), LoRA factors A [r, in], B [out, r], scale s and
magnitude m [out]:

    n = ||W + s·B·A||  over the inputs (dim 1), detached from the graph
    g = m / n
    y = x·Wᵀ + b + (g − 1) ⊙ x·Wᵀ + g ⊙ s·(x·Aᵀ)·Bᵀ      (no LoRA dropout)

that is y = g ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ) + b. An embedding E [V, d] with PEFT's
lora_embedding_A [r, V] and lora_embedding_B [d, r] uses the norm of each of
the d columns of E + s·Aᵀ·Bᵀ over the vocabulary: y = g ⊙ (E[ids] + s·Aᵀ[ids]·Bᵀ).

The adapter: r = 2, α = 5 (s = 2.5) on the token embedding wte, on every
mlp.c_fc, and on the q and v blocks of every attn.c_attn. golora writes a
q,v adapter as one update of the whole c_attn in block form (A = [A_q; A_v]
[2r, d], B [3d, 2r] with B_q in rows 0…d and columns 0…r, B_v in rows 2d…3d
and columns r…2r, zero elsewhere), and DoRA on that layer as PEFT computes it
on such a file: one magnitude per column of c_attn, k's included. The
compact A_q, B_q, A_v, B_v are the parameters here, so their gradients are
golora's.

The reference holds the batch, every parameter in the compact form and in
PEFT's file layout (the tensors an adapter_model.safetensors of this adapter
holds), the logits, the masked label-smoothed loss and the gradients of the
loss with respect to every A, B and magnitude, all in float64. It is written
to models/gpt/testdata/parity_dora_ref.safetensors, which TestParityDoRA
(models/gpt/parity_dora_test.go) compares with golora. The file is
committed: neither CI nor `go test` needs Python.

Regenerate (from the repository root; needs python3 with PyTorch and NumPy,
e.g. Debian's python3-torch):

    OMP_WAIT_POLICY=PASSIVE python3 tools/dora_reference.py
"""

import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_reference import TESTDATA, gelu_tanh, layer_norm, masked_loss, param_names, read_safetensors, write_safetensors  # noqa: E402

RANK, ALPHA, SMOOTHING = 2, 5.0, 0.1
ROOT = "base_model.model.transformer."


def dora_linear(x, W, b, A, Bm, m, s):
    """PEFT's DoRA on a GPT-2 Conv1D layer: W [in, out] (golora's and
    Hugging Face's layout), A [r, in], B [out, r], m [out]; x [..., in]."""
    w = W.T  # [out, in], PyTorch's layout
    n = torch.linalg.norm(w + s * (Bm @ A).detach(), dim=1).detach()  # [out]
    g = m / n
    base = x @ W  # x·Wᵀ in PyTorch's layout, without the bias
    return base + b + (g - 1) * base + g * ((x @ A.T) @ Bm.T) * s


def dora_embedding(ids, E, A, Bm, m, s):
    """PEFT's DoRA on an embedding: E [V, d], A [r, V], B [d, r], m [d]."""
    delta = (A.T @ Bm.T).detach()  # [V, d]
    n = torch.linalg.norm((E + s * delta).T, dim=1).detach()  # [d], over the vocabulary
    g = m / n
    return g * E[ids] + g * (A.T[ids] @ Bm.T) * s


def block_form(Aq, Bq, Av, Bv, d):
    """The whole-c_attn update of q and v: A [2r, d] and B [3d, 2r]."""
    r = Aq.shape[0]
    A = torch.cat([Aq, Av], dim=0)
    B = torch.zeros(3 * d, 2 * r, dtype=Aq.dtype)
    B = B.index_put((torch.arange(d).repeat_interleave(r), torch.arange(r).repeat(d)), Bq.reshape(-1))
    B = B.index_put((torch.arange(2 * d, 3 * d).repeat_interleave(r), torch.arange(r, 2 * r).repeat(d)), Bv.reshape(-1))
    return A, B


def logits_of(W, cfg, ids, P, s):
    """Logits [B, T, V] of the nano GPT-2 with the DoRA adapter P."""
    Bsz, T = ids.shape
    d, nh = cfg["n_embd"], cfg["n_head"]
    hd, eps = d // nh, cfg["layer_norm_epsilon"]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    x = dora_embedding(ids, W["wte.weight"], P["wte.A"], P["wte.B"], P["wte.m"], s) + W["wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        A, Bm = block_form(P[p + "q.A"], P[p + "q.B"], P[p + "v.A"], P[p + "v.B"], d)
        qkv = dora_linear(h, W[p + "attn.c_attn.weight"], W[p + "attn.c_attn.bias"], A, Bm, P[p + "attn.m"], s)
        q, k, v = (t.view(Bsz, T, nh, hd).transpose(1, 2) for t in qkv.split(d, dim=-1))
        att = torch.softmax(((q @ k.transpose(-2, -1)) / math.sqrt(hd)).masked_fill(~causal, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(Bsz, T, d)
        x = x + y @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        f = dora_linear(h, W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"], P[p + "fc.A"], P[p + "fc.B"], P[p + "fc.m"], s)
        x = x + gelu_tanh(f) @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    x = layer_norm(x, W["ln_f.weight"], W["ln_f.bias"], eps)
    return x @ W["wte.weight"].T  # the head is tied to the base table


def main():
    torch.set_num_threads(1)
    folder = os.path.join(TESTDATA, "parity_nano")
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    W = {k: torch.from_numpy(v.astype(np.float64)) for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}
    if sorted(W) != sorted(param_names(cfg["n_layer"])):
        sys.exit("parity_nano/model.safetensors does not hold exactly GPT-2's parameters")
    rng = np.random.default_rng(7)
    V, d, L = cfg["vocab_size"], cfg["n_embd"], cfg["n_layer"]
    batch, ctx, s = 3, 16, ALPHA / RANK
    ids = rng.integers(0, V, size=(batch, ctx))
    targets = np.concatenate([ids[:, 1:], rng.integers(0, V, size=(batch, 1))], axis=1)
    mask = (rng.random((batch, ctx)) < 0.8).astype(np.float64)
    mask[0, 0] = 1.0

    # Random A, B (B nonzero, so that every gradient is nontrivial), then
    # m = ||W + s·B·A|| · U(0.8, 1.2), so that g differs from 1.
    u = lambda lo, hi, shape: torch.from_numpy(rng.uniform(lo, hi, shape))
    P = {"wte.A": u(-0.3, 0.3, (RANK, V)), "wte.B": u(-0.3, 0.3, (d, RANK))}
    for i in range(L):
        p = f"h.{i}."
        for part in ("q", "v"):
            P[p + part + ".A"], P[p + part + ".B"] = u(-1, 1, (RANK, d)) / math.sqrt(d), u(-0.1, 0.1, (d, RANK))
        P[p + "fc.A"], P[p + "fc.B"] = u(-1, 1, (RANK, d)) / math.sqrt(d), u(-0.1, 0.1, (4 * d, RANK))
    with torch.no_grad():
        E = W["wte.weight"]
        P["wte.m"] = torch.linalg.norm((E + s * (P["wte.A"].T @ P["wte.B"].T)).T, dim=1) * u(0.8, 1.2, d)
        for i in range(L):
            p = f"h.{i}."
            A, Bm = block_form(P[p + "q.A"], P[p + "q.B"], P[p + "v.A"], P[p + "v.B"], d)
            P[p + "attn.m"] = torch.linalg.norm(W[p + "attn.c_attn.weight"].T + s * Bm @ A, dim=1) * u(0.8, 1.2, 3 * d)
            P[p + "fc.m"] = torch.linalg.norm(W[p + "mlp.c_fc.weight"].T + s * P[p + "fc.B"] @ P[p + "fc.A"], dim=1) * u(0.8, 1.2, 4 * d)
    for v in P.values():
        v.requires_grad_(True)

    logits = logits_of(W, cfg, torch.from_numpy(ids), P, s)
    loss = masked_loss(logits, torch.from_numpy(targets), torch.from_numpy(mask), SMOOTHING)
    loss.backward()

    out = {"ids": ids.astype(np.int64), "targets": targets.astype(np.int64), "mask": mask,
           "logits": logits.detach().reshape(batch * ctx, V).numpy(), "loss": np.array(loss.item())}
    for k, v in P.items():
        out["param." + k] = v.detach().numpy()
        out["grad." + k] = v.grad.numpy()
    # PEFT's file layout of the same adapter.
    out[ROOT + "wte.lora_embedding_A"] = P["wte.A"].detach().numpy()
    out[ROOT + "wte.lora_embedding_B"] = P["wte.B"].detach().numpy()
    out[ROOT + "wte.lora_magnitude_vector"] = P["wte.m"].detach().numpy()
    for i in range(L):
        p = f"h.{i}."
        A, Bm = block_form(P[p + "q.A"], P[p + "q.B"], P[p + "v.A"], P[p + "v.B"], d)
        out[ROOT + p + "attn.c_attn.lora_A.weight"] = A.detach().numpy()
        out[ROOT + p + "attn.c_attn.lora_B.weight"] = Bm.detach().numpy()
        out[ROOT + p + "attn.c_attn.lora_magnitude_vector"] = P[p + "attn.m"].detach().numpy()
        out[ROOT + p + "mlp.c_fc.lora_A.weight"] = P[p + "fc.A"].detach().numpy()
        out[ROOT + p + "mlp.c_fc.lora_B.weight"] = P[p + "fc.B"].detach().numpy()
        out[ROOT + p + "mlp.c_fc.lora_magnitude_vector"] = P[p + "fc.m"].detach().numpy()

    meta = {"model": "nano", "batch": str(batch), "ctx": str(ctx), "rank": str(RANK), "alpha": repr(ALPHA),
            "smoothing": repr(SMOOTHING), "torch": torch.__version__}
    path = os.path.join(TESTDATA, "parity_dora_ref.safetensors")
    write_safetensors(path, out, meta)
    print(f"DoRA nano: loss {loss.item():.12f}; wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
