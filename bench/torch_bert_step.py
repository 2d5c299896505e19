#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""PyTorch CPU baseline: time full BERT-style fine-tuning steps.

Builds a BERT-shaped sequence-classification model in plain torch (embeddings,
post-LN encoder with separate q/k/v projections, exact GELU, dropout 0.1,
softmax attention with an additive padding mask, tanh pooler, classifier,
cross-entropy) and times forward + backward + AdamW step with every parameter
trainable, in float32.  Prints a markdown table, one row per configuration.

    torch_bert_step.py --preset base --batch 8 --seq 128 [--steps 5] [--warmup 1] [--threads N]
    torch_bert_step.py --config tiny:8:128 --config base:8:128 --threads 2 [--bf16]
"""
import argparse
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {
    # layers, hidden, heads, intermediate, vocab, max positions
    "tiny": dict(layers=2, hidden=128, heads=2, inter=512, vocab=30522, max_pos=512),
    "toy": dict(layers=4, hidden=128, heads=4, inter=512, vocab=30522, max_pos=512),
    "base": dict(layers=12, hidden=768, heads=12, inter=3072, vocab=30522, max_pos=512),
}
TYPE_VOCAB, NUM_LABELS, DROPOUT, LN_EPS = 2, 2, 0.1, 1e-12


class Layer(nn.Module):
    def __init__(self, hidden, heads, inter):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_ln = nn.LayerNorm(hidden, eps=LN_EPS)
        self.inter = nn.Linear(hidden, inter)
        self.out = nn.Linear(inter, hidden)
        self.out_ln = nn.LayerNorm(hidden, eps=LN_EPS)
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x, mask_add):
        B, T, H = x.shape
        split = lambda t: t.view(B, T, self.heads, self.head_dim).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_add
        probs = self.drop(torch.softmax(scores, dim=-1))
        ctx = (probs @ v).transpose(1, 2).reshape(B, T, H)
        x = self.attn_ln(x + self.drop(self.attn_out(ctx)))
        return self.out_ln(x + self.drop(self.out(F.gelu(self.inter(x)))))


class BertClassifier(nn.Module):
    def __init__(self, layers, hidden, heads, inter, vocab, max_pos):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_pos, hidden)
        self.token_type = nn.Embedding(TYPE_VOCAB, hidden)
        self.emb_ln = nn.LayerNorm(hidden, eps=LN_EPS)
        self.drop = nn.Dropout(DROPOUT)
        self.layers = nn.ModuleList(Layer(hidden, heads, inter) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)
        self.classifier = nn.Linear(hidden, NUM_LABELS)
        for m in self.modules():  # BERT-style init
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids, types, mask):
        T = ids.shape[1]
        pos = torch.arange(T, device=ids.device)[None]
        x = self.drop(self.emb_ln(self.word(ids) + self.pos(pos) + self.token_type(types)))
        mask_add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, mask_add)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return self.classifier(self.drop(pooled))


def bench(preset, batch, seq, steps, warmup, threads, bf16):
    torch.manual_seed(0)
    cfg = PRESETS[preset]
    if seq > cfg["max_pos"]:
        raise SystemExit(f"--seq {seq} exceeds max positions {cfg['max_pos']}")
    model = BertClassifier(**cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg["vocab"], (batch, seq), generator=g)
    types = torch.zeros(batch, seq, dtype=torch.long)
    types[:, seq // 2:] = 1
    mask = torch.ones(batch, seq, dtype=torch.long)  # padding mask applied, no padding
    labels = torch.randint(0, NUM_LABELS, (batch,), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        # --bf16: CPU autocast, the linear layers' matmuls in bf16 (their outputs too) over
        # float32 master weights; the loss and its gradient in float32.
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(ids, types, mask)
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    ms = (time.perf_counter() - t0) * 1000.0 / steps
    tok_s = batch * seq / (ms / 1000.0)
    print(f"| {preset} | {batch} | {seq} | {threads} | {'bf16 autocast' if bf16 else 'float32'} | {ms:.1f} | {tok_s:.0f} |",
          flush=True)


def main():
    ap = argparse.ArgumentParser(description="Time PyTorch BERT fine-tuning steps on CPU.")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--config", action="append", metavar="PRESET:BATCH:SEQ",
                    help="repeatable; overrides --preset/--batch/--seq")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps (default 1)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    ap.add_argument("--bf16", action="store_true",
                    help="also time each config under CPU autocast to bfloat16 (after its float32 row)")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--steps and --threads must be >= 1, --warmup >= 0")

    configs = []
    for c in args.config or [f"{args.preset}:{args.batch}:{args.seq}"]:
        try:
            p, b, s = c.split(":")
            configs.append((p, int(b), int(s)))
        except ValueError:
            ap.error(f"bad --config {c!r}; expected PRESET:BATCH:SEQ")
        if p not in PRESETS:
            ap.error(f"unknown preset {p!r}; choose from {', '.join(sorted(PRESETS))}")

    torch.set_num_threads(args.threads)
    print(f"<!-- torch {torch.__version__}, float32, forward+backward+AdamW, "
          f"steps={args.steps} warmup={args.warmup} -->")
    print("| preset | batch | seq | threads | precision | ms/step | tokens/s |")
    print("|---|---|---|---|---|---|---|")
    for p, b, s in configs:
        for bf16 in ([False, True] if args.bf16 else [False]):
            bench(p, b, s, args.steps, args.warmup, args.threads, bf16)


if __name__ == "__main__":
    main()
