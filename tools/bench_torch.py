#!/usr/bin/env python3
"""PyTorch twin of golora's benchmarks (benchmarks/bench_test.go).

The same models: GPT-2 shapes and, for smollm2-135M, a Llama (below). The GPT-2-shaped models are written here in a few lines of plain PyTorch
(no transformers, no peft): pre-LayerNorm blocks, c_attn [d, 3d] holding
q | k | v, tanh GELU, an LM head tied to the token embedding, no dropout,
float32 on the CPU. LoRA (r 8, alpha 16) is ours too: on the q and v blocks
of every c_attn, y_q += s*(x@A_q)@B_q, y_v += s*(x@A_v)@B_v, s = alpha/r, with
the base weights frozen.

smollm2-135M is a Llama-family decoder written here too (no transformers):
RMSNorm (x * rsqrt(mean(x^2) + 1e-5) * w), rotate-half RoPE (theta 100000),
grouped-query attention (9 query heads reading 3 key/value heads, repeated),
a SwiGLU MLP down(silu(gate(x)) * up(x)), Linear weights [out, in] without
biases, an LM head tied to the embedding. Its LoRA (r 8, alpha 16) is on
every linear layer of the blocks (q, k, v, o, gate, up, down: PEFT's
all-linear), A [r, in], B [out, r], y += s*(x@A^T)@B^T. Same optimizer
settings as the GPT twin.

Rows it measures, one per --mode:

  lora, full       training tokens/s: random tokens, mean cross-entropy,
                   AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-6, weight decay
                   0.01 on matrices), gradient clipping at norm 1 -- the
                   settings of golora's trainers.DefaultConfig
  base, unmerged,  latency of one batch-1 forward pass of a whole context
  merged           under torch.no_grad(): no adapter, an adapter with random
                   B, the same adapter merged into W
  latency          the three latencies again, the three models built in one
                   process and run in turn (as golora's BenchmarkLatency), so
                   that drift over time does not bias their comparison

Each row reports the mean time of its timed steps (or the median of its
timed passes, as golora bench does) and the
process's peak RSS (ru_maxrss), so run one row per process to compare memory
(scripts/bench-compare.sh does). Output is one JSON object per row, one per
line.

  python3 tools/bench_torch.py --config tiny --mode lora --threads 2
"""

import argparse
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name: (layers, d, heads, context, batch, vocab), as golora bench
CONFIGS = {
    "tiny": (2, 64, 4, 64, 16, 96),
    "small": (4, 128, 4, 128, 16, 96),
    "gpt2-124M": (12, 768, 12, 256, 4, 50257),
    "smollm2-135M": (30, 576, 9, 256, 4, 49152),
}
# Llama shapes: name -> (key/value heads, FFN width)
LLAMA = {"smollm2-135M": (3, 1536)}
STEPS = {"tiny": (3, 20), "small": (2, 10), "gpt2-124M": (1, 3), "smollm2-135M": (1, 3)}  # warm-up, timed
PASSES = {"tiny": (3, 50), "small": (3, 20), "gpt2-124M": (1, 5), "smollm2-135M": (1, 5)}


class CAttn(nn.Module):
    """c_attn: x [N, d] -> q, k, v [N, d] each, with optional LoRA on q, v."""

    def __init__(self, d, r=0, alpha=0.0):
        super().__init__()
        self.d = d
        self.weight = nn.Parameter(torch.randn(d, 3 * d) * 0.02)  # [in, out], GPT-2's layout
        self.bias = nn.Parameter(torch.zeros(3 * d))
        self.r = r
        if r:
            self.scale = alpha / r
            self.a_q = nn.Parameter(torch.randn(d, r) / math.sqrt(d))
            self.b_q = nn.Parameter(torch.zeros(r, d))
            self.a_v = nn.Parameter(torch.randn(d, r) / math.sqrt(d))
            self.b_v = nn.Parameter(torch.zeros(r, d))

    def forward(self, x):
        q, k, v = torch.addmm(self.bias, x, self.weight).split(self.d, dim=1)
        if self.r:
            q = q + self.scale * ((x @ self.a_q) @ self.b_q)
            v = v + self.scale * ((x @ self.a_v) @ self.b_v)
        return q, k, v

    @torch.no_grad()
    def merge(self):
        """W[:, q] += s*A_q@B_q and W[:, v] += s*A_v@B_v; drops the LoRA path."""
        d = self.d
        self.weight[:, :d] += self.scale * (self.a_q @ self.b_q)
        self.weight[:, 2 * d:] += self.scale * (self.a_v @ self.b_v)
        self.r = 0


class Block(nn.Module):
    def __init__(self, d, heads, r, alpha):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = CAttn(d, r, alpha)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def attn(self, x, batch):
        n, d = x.shape
        t, h = n // batch, self.heads
        q, k, v = self.c_attn(x)  # [B*T, d] each
        q, k, v = (z.view(batch, t, h, d // h).transpose(1, 2) for z in (q, k, v))  # [B, h, T, hd]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h))  # [B, h, T, T]
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(n, d)  # heads merged: [B*T, d]
        return self.c_proj(y)

    def forward(self, x, batch):
        x = x + self.attn(self.ln_1(x), batch)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, layers, d, heads, context, vocab, r=0, alpha=0.0):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(vocab, d) * 0.02)
        self.wpe = nn.Parameter(torch.randn(context, d) * 0.02)
        self.h = nn.ModuleList(Block(d, heads, r, alpha) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)

    def forward(self, ids):  # ids [B, T] -> logits [B*T, V]
        b, t = ids.shape
        x = (self.wte[ids] + self.wpe[:t]).reshape(b * t, -1)
        for blk in self.h:
            x = blk(x, b)
        return F.linear(self.ln_f(x), self.wte)  # tied head: x @ wte^T


class LoRALinear(nn.Module):
    """A Linear without bias, weight [out, in], with optional LoRA: y = x@W^T + s*(x@A^T)@B^T."""

    def __init__(self, i, o, r=0, alpha=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) * 0.02)
        self.r = r
        if r:
            self.scale = alpha / r
            self.a_w = nn.Parameter(torch.randn(r, i) / math.sqrt(i))
            self.b_w = nn.Parameter(torch.zeros(o, r))

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.r:
            y = y + self.scale * F.linear(F.linear(x, self.a_w), self.b_w)
        return y

    @torch.no_grad()
    def randomize(self):
        if self.r:
            self.b_w.normal_(0, 0.02)

    @torch.no_grad()
    def merge(self):
        """W += s*B@A; drops the LoRA path."""
        if self.r:
            self.weight += self.scale * (self.b_w @ self.a_w)
            self.r = 0


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class LlamaBlock(nn.Module):
    def __init__(self, d, heads, kv, ffn, r, alpha):
        super().__init__()
        self.heads, self.kv, self.hd = heads, kv, d // heads
        lin = lambda i, o: LoRALinear(i, o, r, alpha)
        self.input_layernorm = RMSNorm(d)
        self.q_proj, self.k_proj = lin(d, heads * self.hd), lin(d, kv * self.hd)
        self.v_proj, self.o_proj = lin(d, kv * self.hd), lin(heads * self.hd, d)
        self.post_attention_layernorm = RMSNorm(d)
        self.gate_proj, self.up_proj, self.down_proj = lin(d, ffn), lin(d, ffn), lin(ffn, d)

    def attn(self, x, batch, cos, sin):
        n = x.shape[0]
        t, h, kv, hd = n // batch, self.heads, self.kv, self.hd
        q = self.q_proj(x).view(batch, t, h, hd).transpose(1, 2)  # [B, h, T, hd]
        k = self.k_proj(x).view(batch, t, kv, hd).transpose(1, 2)  # [B, kv, T, hd]
        v = self.v_proj(x).view(batch, t, kv, hd).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        k = k.repeat_interleave(h // kv, dim=1)  # query head j reads kv head j // (h/kv)
        v = v.repeat_interleave(h // kv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(n, h * hd)
        return self.o_proj(y)

    def forward(self, x, batch, cos, sin):
        x = x + self.attn(self.input_layernorm(x), batch, cos, sin)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


def rotate(x, cos, sin):
    """Rotate-half RoPE on x [..., T, hd] with cos, sin [T, hd/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Llama(nn.Module):
    def __init__(self, layers, d, heads, kv, ffn, vocab, theta=100000.0, r=0, alpha=0.0):
        super().__init__()
        self.embed_tokens = nn.Parameter(torch.randn(vocab, d) * 0.02)
        self.layers = nn.ModuleList(LlamaBlock(d, heads, kv, ffn, r, alpha) for _ in range(layers))
        self.norm = RMSNorm(d)
        hd = d // heads
        self.inv_freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)

    def forward(self, ids):  # ids [B, T] -> logits [B*T, V]
        b, t = ids.shape
        ang = torch.arange(t, dtype=torch.float64)[:, None] * self.inv_freq[None, :]
        cos, sin = ang.cos().float(), ang.sin().float()
        x = self.embed_tokens[ids].reshape(b * t, -1)
        for blk in self.layers:
            x = blk(x, b, cos, sin)
        return F.linear(self.norm(x), self.embed_tokens)  # tied head


def build(name, lora):
    layers, d, heads, ctx, _, vocab = CONFIGS[name]
    torch.manual_seed(1)
    r, alpha = (8, 16.0) if lora else (0, 0.0)
    if name in LLAMA:
        kv, ffn = LLAMA[name]
        return Llama(layers, d, heads, kv, ffn, vocab, r=r, alpha=alpha)
    return GPT(layers, d, heads, ctx, vocab, r=r, alpha=alpha)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def train(name, lora, warmup, steps):
    _, _, _, ctx, batch, vocab = CONFIGS[name]
    model = build(name, lora)
    if lora:
        for n, p in model.named_parameters():
            p.requires_grad = ".a_" in n or ".b_" in n  # GPT's a_q, b_v, …; Llama's a_w, b_w
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.01},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), eps=1e-6)
    gen = torch.Generator().manual_seed(2)
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        toks = torch.randint(vocab, (batch, ctx + 1), generator=gen)
        logits = model(toks[:, :-1])
        loss = F.cross_entropy(logits, toks[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    dt = (time.perf_counter() - t0) / steps
    return {"ms_per_step": 1000 * dt, "tokens_per_sec": batch * ctx / dt,
            "trainable_params": sum(p.numel() for p in params)}


@torch.no_grad()
def latency(name, warmup, passes):
    """base, unmerged and merged latencies, one pass of each in turn."""
    models = {}
    for mode in ("base", "unmerged", "merged"):
        models[mode] = prepare(name, mode)
    _, _, _, ctx, _, vocab = CONFIGS[name]
    ids = torch.randint(vocab, (1, ctx), generator=torch.Generator().manual_seed(3))
    for _ in range(warmup):
        for m in models.values():
            m(ids)
    times = {mode: [] for mode in models}
    for _ in range(passes):
        for mode, m in models.items():
            t0 = time.perf_counter()
            m(ids)
            times[mode].append(1000 * (time.perf_counter() - t0))
    return {mode: statistics.median(t) for mode, t in times.items()}


def prepare(name, mode):
    """The model of an inference row: no adapter, an adapter with random B,
    or that adapter merged into W."""
    model = build(name, mode != "base").eval()
    if name in LLAMA:
        lins = [m for m in model.modules() if isinstance(m, LoRALinear)]
        if mode != "base":
            for m in lins:  # B starts at zero: give the adapter an effect
                m.randomize()
        if mode == "merged":
            for m in lins:
                m.merge()
        return model
    if mode != "base":
        for blk in model.h:  # B starts at zero: give the adapter an effect
            blk.c_attn.b_q.normal_(0, 0.02)
            blk.c_attn.b_v.normal_(0, 0.02)
    if mode == "merged":
        for blk in model.h:
            blk.c_attn.merge()
    return model


@torch.no_grad()
def infer(name, mode, warmup, passes):
    _, _, _, ctx, _, vocab = CONFIGS[name]
    model = prepare(name, mode)
    ids = torch.randint(vocab, (1, ctx), generator=torch.Generator().manual_seed(3))
    for _ in range(warmup):
        model(ids)
    times = []
    for _ in range(passes):
        t0 = time.perf_counter()
        model(ids)
        times.append(1000 * (time.perf_counter() - t0))
    return {"ms_per_pass": statistics.median(times)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", choices=sorted(CONFIGS), help="repeatable; default all")
    ap.add_argument("--mode", action="append", choices=["lora", "full", "base", "unmerged", "merged", "latency"],
                    help="repeatable; default lora, full, base, unmerged, merged; latency times the last three "
                         "interleaved in one process and prints three rows")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads")
    ap.add_argument("--steps", type=int, default=0, help="timed steps or passes (0: per config)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.config or list(CONFIGS):
        for mode in args.mode or ["lora", "full", "base", "unmerged", "merged"]:
            row = {"config": name, "mode": mode, "threads": args.threads, "torch": torch.__version__}
            if mode == "latency":
                warm, passes = PASSES[name]
                for m, ms in latency(name, warm, args.steps or passes).items():
                    print(json.dumps(dict(row, mode=m, ms_per_pass=ms, peak_rss_mib=peak_rss_mib())), flush=True)
                continue
            if mode in ("lora", "full"):
                warm, steps = STEPS[name]
                row.update(train(name, mode == "lora", warm, args.steps or steps))
            else:
                warm, passes = PASSES[name]
                row.update(infer(name, mode, warm, args.steps or passes))
            row["peak_rss_mib"] = peak_rss_mib()
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
