#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""PyTorch + transformers baseline for meft-bench: time fine-tuning steps of BERT on a GPU (or CPU).

Builds a randomly initialised transformers BertForSequenceClassification from a BertConfig equal
to the engine's preset (base = BERT-base: hidden 768, 12 layers, 12 heads, intermediate 3072,
vocabulary 30522, 512 positions, 2 token types, dropout 0.1, LayerNorm eps 1e-12, exact GELU,
2 labels), applies a method, and times one optimizer step = zero_grad + forward + cross-entropy
(mean over the batch) + backward + clip_grad_norm_(1.0) + AdamW (lr 2e-5, betas 0.9/0.999,
eps 1e-8, weight decay 0.01 except biases and LayerNorm weights) -- the same step and the same
hyper-parameters as `meft-bench`. Prints a markdown table with meft-bench's columns, in its order.

Methods, each at the engine's defaults (engine/peft/method.h, lora.cpp, adapter.cpp):
  full           every parameter trains
  lora           LoRA r=8, alpha=16 (scale 2), dropout 0.1 on the branch input, on query and value;
                 A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0; trains LoRA + classifier (pooler frozen)
  houlsby        sequential bottleneck adapter (r=64) after the attention output's dropout and after
                 the FFN output's dropout, each with its own skip: h = d + A(d) before the residual
                 LayerNorm; A(x) = W_up Dropout(GELU(W_down x + b_down)) + b_up, weights N(0, 0.02^2),
                 biases 0; trains adapters + every LayerNorm + classifier
  pfeiffer       as houlsby, after the FFN only
  checkpointing  full fine-tuning with model.gradient_checkpointing_enable()
  NAME+checkpointing  a method above with gradient checkpointing
LoRA and the adapters are written here as nn.Module wrappers (no peft package).

Columns: ms/step is the mean over the timed steps (CUDA events around each step on a GPU; the
host clock on CPU); tokens/s counts B*T; activation MiB = torch.cuda.memory_allocated() right
after the forward (loss computed) minus right before it, in the last timed step -- what autograd
keeps for backward, *not* backward's own buffers, which meft-bench's activation column includes;
total MiB = torch.cuda.max_memory_allocated() over the timed steps (reset after warm-up):
weights + gradients + AdamW state + activations + temporaries, through the caching allocator;
device used MiB = total - free from torch.cuda.mem_get_info() after the last timed step (CUDA
context and the allocator's cache included). forward / backward / zero+clip+AdamW ms split the
step with CUDA events (no extra synchronisation). On CPU the memory columns read n/a.

    torch_gpu_step.py --device cuda --configs base:32:128,base:32:512 \\
        --methods full,lora,houlsby,pfeiffer,checkpointing --steps 10 --warmup 3
    torch_gpu_step.py --device cpu --configs toy:2:16 --steps 2 --warmup 1     # smoke check

Exit status: 0 on success, 1 when a step fails, 2 for bad arguments or a missing torch,
transformers or CUDA device.
"""
import argparse
import contextlib
import datetime
import gc
import math
import os
import platform
import sys
import time

# The engine's presets (engine/model/config.cpp): layers, hidden, heads, intermediate; every
# preset keeps BERT's vocabulary, positions and token types.
PRESETS = {
    "toy": dict(layers=4, hidden=128, heads=4, inter=512),
    "tiny": dict(layers=2, hidden=128, heads=2, inter=512),
    "base": dict(layers=12, hidden=768, heads=12, inter=3072),
}
VOCAB, MAX_POS, TYPE_VOCAB, LN_EPS, DROPOUT, INIT_STD, NUM_LABELS = 30522, 512, 2, 1e-12, 0.1, 0.02, 2
LORA = dict(r=8, alpha=16.0, dropout=0.1, targets=("query", "value"))  # LoraSettings defaults
ADAPTER = dict(bottleneck=64, init_std=0.02)                          # AdapterSettings defaults
ADAMW = dict(lr=2e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)  # meft-bench: AdamWConfig{}, lr 2e-5
CLIP = 1.0
BASE_METHODS = ("full", "lora", "houlsby", "pfeiffer")
METHOD_HELP = "full, lora, houlsby, pfeiffer, checkpointing, or NAME+checkpointing"


def die(msg, code=2):
    print(f"torch_gpu_step.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - depends on the machine
    die(f"PyTorch is not importable with {sys.executable} ({e}); install torch or run with the python "
        "that has it")


def import_transformers():
    try:
        import transformers
        from transformers import BertConfig, BertForSequenceClassification
    except ImportError as e:
        die(f"Hugging Face transformers is not importable with {sys.executable} ({e}). This baseline needs "
            "torch and transformers (pip install transformers); nothing was measured.")
    try:
        transformers.logging.set_verbosity_error()
    except Exception:
        pass
    return transformers, BertConfig, BertForSequenceClassification


# ---- methods as module edits ------------------------------------------------------------------

class LoRALinear(nn.Module):
    """base(x) + (alpha / r) * B(A(Dropout(x))), the engine's lora_forward (and HF PEFT's layout)."""

    def __init__(self, base, r, alpha, dropout):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        bound = 1.0 / math.sqrt(base.in_features)
        nn.init.uniform_(self.lora_A.weight, -bound, bound)
        nn.init.zeros_(self.lora_B.weight)
        self.scale = alpha / r
        self.drop = nn.Dropout(dropout)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.base(x) + self.lora_B(self.lora_A(self.drop(x))) * self.scale


class Adapter(nn.Module):
    """A(x) = W_up Dropout(GELU(W_down x + b_down)) + b_up (engine/peft/adapter.h)."""

    def __init__(self, hidden, bottleneck, init_std, dropout):
        super().__init__()
        self.down = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(bottleneck, hidden)
        for lin in (self.down, self.up):
            nn.init.normal_(lin.weight, std=init_std)
            nn.init.zeros_(lin.bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.up(self.drop(F.gelu(self.down(x))))


class DropoutThenAdapter(nn.Module):
    """Replaces the output block's dropout: d = Dropout(dense(x)); returns d + A(d), so the block's
    LayerNorm(h + input) becomes LayerNorm(d + A(d) + input) -- the engine's sequential adapter."""

    def __init__(self, dropout, adapter):
        super().__init__()
        self.dropout = dropout
        self.adapter = adapter
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        d = self.dropout(x)
        return d + self.adapter(d)


def layout_error(what):
    raise RuntimeError(f"this transformers version lays BERT out differently ({what}); the hand-written "
                       "LoRA/adapter edits in bench/torch_gpu_step.py need updating")


def encoder_layers(model):
    try:
        return list(model.bert.encoder.layer)
    except AttributeError:
        layout_error("no model.bert.encoder.layer")


def apply_method(model, base_method, hidden):
    """Edits the model in place; returns the wrappers whose calls prove the edit is on the path."""
    for p in model.parameters():
        p.requires_grad_(base_method == "full")
    wrappers = []
    train_layernorms = base_method in ("houlsby", "pfeiffer")
    if base_method == "lora":
        for layer in encoder_layers(model):
            attn = getattr(layer.attention, "self", None)
            for site in LORA["targets"]:
                lin = getattr(attn, site, None)
                if not isinstance(lin, nn.Linear):
                    layout_error(f"attention.self.{site} is not an nn.Linear")
                w = LoRALinear(lin, LORA["r"], LORA["alpha"], LORA["dropout"])
                setattr(attn, site, w)
                wrappers.append(w)
    elif base_method in ("houlsby", "pfeiffer"):
        for layer in encoder_layers(model):
            blocks = [layer.attention.output, layer.output] if base_method == "houlsby" else [layer.output]
            for block in blocks:
                if not isinstance(getattr(block, "dropout", None), nn.Dropout):
                    layout_error("an output block has no nn.Dropout named dropout")
                a = Adapter(hidden, ADAPTER["bottleneck"], ADAPTER["init_std"], DROPOUT)
                w = DropoutThenAdapter(block.dropout, a)
                block.dropout = w
                wrappers.append(w)
    if base_method != "full":
        # Added parameters train; of the backbone the classifier (not the pooler), and for the
        # adapter methods every LayerNorm (MethodConfig::backbone_trainable).
        for p in model.classifier.parameters():
            p.requires_grad_(True)
        for w in wrappers:
            for name, p in w.named_parameters():
                if not name.startswith("base.") and not name.startswith("dropout."):
                    p.requires_grad_(True)
        if train_layernorms:
            for m in model.modules():
                if isinstance(m, nn.LayerNorm):
                    for p in m.parameters():
                        p.requires_grad_(True)
    return wrappers


def adamw_groups(model):
    """Weight decay except for biases and LayerNorm weights (the engine's ParameterStore rule)."""
    ln_params = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters()}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith("bias") or id(p) in ln_params else decay).append(p)
    return [{"params": decay, "weight_decay": ADAMW["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]


# ---- one configuration --------------------------------------------------------------------------

def build_model(tf, preset, attn, dtype, device):
    _, BertConfig, BertForSequenceClassification = tf
    p = PRESETS[preset]
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=p["hidden"], num_hidden_layers=p["layers"],
                     num_attention_heads=p["heads"], intermediate_size=p["inter"], hidden_act="gelu",
                     hidden_dropout_prob=DROPOUT, attention_probs_dropout_prob=DROPOUT,
                     max_position_embeddings=MAX_POS, type_vocab_size=TYPE_VOCAB, initializer_range=INIT_STD,
                     layer_norm_eps=LN_EPS, pad_token_id=0, classifier_dropout=None, num_labels=NUM_LABELS)
    # Initialise on the device where torch allows it (torch >= 2.0): BERT-base's CPU init takes seconds.
    where = device if hasattr(device, "__enter__") else contextlib.nullcontext()
    with where:
        try:
            model = BertForSequenceClassification._from_config(cfg, attn_implementation=attn)
        except (TypeError, ValueError, AttributeError, ImportError):
            if attn != "eager":
                raise
            model = BertForSequenceClassification(cfg)  # transformers before attn_implementation: eager only
    used = getattr(model.config, "_attn_implementation", None) or "eager"
    return model.to(device=device, dtype=dtype).train(), used


def random_batch(B, T, device):
    """meft-bench's batch: ids in [1000, 20000), token type 0, full attention mask, labels 0/1."""
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(1000, 20000, (B, T), generator=g)
    labels = torch.randint(0, NUM_LABELS, (B,), generator=g)
    types = torch.zeros(B, T, dtype=torch.long)
    mask = torch.ones(B, T, dtype=torch.long)
    return ids.to(device), types.to(device), mask.to(device), labels.to(device)


def bench_one(tf, preset, B, T, method, args, device, dtype):
    base_method, checkpointing = parse_method(method)
    torch.manual_seed(0)
    model, attn_used = build_model(tf, preset, args.attn, dtype, device)
    wrappers = apply_method(model, base_method, PRESETS[preset]["hidden"])
    if checkpointing:
        try:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        except TypeError:  # transformers before gradient_checkpointing_kwargs
            model.gradient_checkpointing_enable()
    params = sum(p.numel() for p in model.parameters())
    trainable_params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in trainable_params)
    opt = torch.optim.AdamW(adamw_groups(model), lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"])
    ids, types, mask, labels = random_batch(B, T, device)
    cuda = device.type == "cuda"
    mem = {}

    def step(timed_events=None, measure=False):
        ev = timed_events
        if ev: ev[0].record()
        opt.zero_grad(set_to_none=True)
        if ev: ev[1].record()
        if measure and cuda: mem["before"] = torch.cuda.memory_allocated()
        logits = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
        loss = F.cross_entropy(logits.float(), labels)
        if measure and cuda: mem["after"] = torch.cuda.memory_allocated()
        if ev: ev[2].record()
        loss.backward()
        if ev: ev[3].record()
        torch.nn.utils.clip_grad_norm_(trainable_params, CLIP)
        opt.step()
        if ev: ev[4].record()

    def host_step():
        t = [time.perf_counter()]
        opt.zero_grad(set_to_none=True)
        t.append(time.perf_counter())
        logits = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
        loss = F.cross_entropy(logits.float(), labels)
        t.append(time.perf_counter())
        loss.backward()
        t.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(trainable_params, CLIP)
        opt.step()
        t.append(time.perf_counter())
        return [(t[i + 1] - t[i]) * 1000.0 for i in range(4)]  # zero, forward, backward, update

    for w in wrappers:
        w.calls = 0
    for s in range(args.warmup):
        step() if cuda else host_step()
        if s == 0:
            check_wrappers(wrappers, method)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        events = [[torch.cuda.Event(enable_timing=True) for _ in range(5)] for _ in range(args.steps)]
        for s in range(args.steps):
            step(events[s], measure=(s == args.steps - 1))
        torch.cuda.synchronize()
        parts = [[ev[i].elapsed_time(ev[i + 1]) for i in range(4)] for ev in events]
        peak = torch.cuda.max_memory_allocated()
        free, total = torch.cuda.mem_get_info()
        act = mem["after"] - mem["before"]
        used = total - free
    else:
        parts = [host_step() for _ in range(args.steps)]
        peak = act = used = None
    if args.warmup == 0:
        check_wrappers(wrappers, method)
    n = len(parts)
    zero, fwd, bwd, upd = (sum(p[i] for p in parts) / n for i in range(4))
    r = dict(params=params, trainable=trainable, step_ms=zero + fwd + bwd + upd, forward_ms=fwd,
             backward_ms=bwd, update_ms=zero + upd, act=act, peak=peak, used=used, attn=attn_used)
    del opt, model, wrappers, trainable_params, ids, types, mask, labels
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return r


def check_wrappers(wrappers, method):
    """Every LoRA/adapter wrapper must have run in the first forward, or the edit is not on the path."""
    idle = sum(1 for w in wrappers if w.calls == 0)
    if idle:
        raise RuntimeError(f"{method}: {idle} of {len(wrappers)} inserted modules were never called: this "
                           "transformers version computes BERT differently; bench/torch_gpu_step.py needs updating")


def parse_method(m):
    if m == "checkpointing":
        return "full", True
    if m.endswith("+checkpointing"):
        base = m[: -len("+checkpointing")]
        if base in BASE_METHODS:
            return base, True
    if m in BASE_METHODS:
        return m, False
    raise ValueError(m)


def set_tf32(on):
    """TF32 for float32 GEMMs: torch's fp32_precision settings where they exist (torch >= 2.9, which
    deprecates the old ones), else torch.backends.cuda.matmul.allow_tf32 -- never both."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        matmul.fp32_precision = "tf32" if on else "ieee"
        conv = getattr(torch.backends.cudnn, "conv", None)
        if conv is not None and hasattr(conv, "fp32_precision"):
            conv.fp32_precision = "tf32" if on else "ieee"
    else:
        matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


def split_list(values):
    out = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def mib(x):
    return "n/a" if x is None else f"{x / (1024.0 * 1024.0):.1f}"


def main():
    ap = argparse.ArgumentParser(description="Time transformers BERT fine-tuning steps (PyTorch eager) with "
                                             "meft-bench's step, methods and table.")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--configs", "--config", action="append", metavar="PRESET:BATCH:SEQ[,...]",
                    help="repeatable or comma-separated (default: base:32:128,base:32:512)")
    ap.add_argument("--methods", "--method", action="append", metavar="NAME[,...]",
                    help=f"repeatable or comma-separated: {METHOD_HELP} (default: full)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps (default 3)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--tf32", choices=("off", "on"), default="off",
                    help="TF32 for float32 GEMMs: torch.backends.cuda.matmul.fp32_precision tf32/ieee, or "
                         "allow_tf32 on torch before 2.9 (default off: exact float32 GEMMs, as the engine's "
                         "default)")
    ap.add_argument("--attn", choices=("eager", "sdpa"), default="eager",
                    help="transformers attention: eager (softmax probabilities materialised and kept, as "
                         "the engine does; default) or sdpa (torch's fused scaled_dot_product_attention)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    ap.add_argument("--no-phases", action="store_true", help="leave out the forward/backward/update columns")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.threads < 0:
        ap.error("--steps must be >= 1, --warmup and --threads >= 0")

    configs = []
    for c in split_list(args.configs) or ["base:32:128", "base:32:512"]:
        try:
            p, b, s = c.split(":")
            b, s = int(b), int(s)
        except ValueError:
            ap.error(f"bad config {c!r}; expected PRESET:BATCH:SEQ")
        if p not in PRESETS:
            ap.error(f"unknown preset {p!r} in {c!r}; choose from {', '.join(sorted(PRESETS))}")
        if b < 1 or s < 1 or s > MAX_POS:
            ap.error(f"{c!r}: BATCH must be >= 1 and SEQ in [1, {MAX_POS}]")
        configs.append((p, b, s))
    methods = split_list(args.methods) or ["full"]
    for m in methods:
        try:
            parse_method(m)
        except ValueError:
            ap.error(f"unknown method {m!r}; expected {METHOD_HELP}")

    tf = import_transformers()
    if args.device == "cuda":
        if not torch.cuda.is_available():
            die("--device cuda: torch sees no CUDA device (torch.cuda.is_available() is False); "
                "use --device cpu for a smoke check")
        device = torch.device("cuda")
        set_tf32(args.tf32 == "on")
        where = f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}"
    else:
        device = torch.device("cpu")
        if args.threads:
            torch.set_num_threads(args.threads)
        where = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    dtype = torch.float64 if args.dtype == "float64" else torch.float32

    cuda = device.type == "cuda"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    cmd = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    # The attention implementation actually used is only known once a model exists: the first
    # row's is printed in the header through this lazy line.
    header_printed = False
    head = ("| preset | batch | seq | method | trainable | parameters | ms/step | tokens/s | activation MiB | total MiB"
            + (" | device used MiB" if cuda else "")
            + ("" if args.no_phases else " | forward ms | backward ms | zero+clip+AdamW ms") + " |")
    sep = "|---" * (10 + (1 if cuda else 0) + (0 if args.no_phases else 3)) + "|"
    failed = False
    for p, b, s in configs:
        for m in methods:
            try:
                r = bench_one(tf, p, b, s, m, args, device, dtype)
            except Exception as e:  # noqa: BLE001 - reported, then the exit status says so
                oom = getattr(torch.cuda, "OutOfMemoryError", None)
                first = (str(e).splitlines() or [type(e).__name__])[0]
                if oom is not None and isinstance(e, oom):
                    print(f"torch_gpu_step.py: {p}:{b}:{s} {m}: out of memory ({first}); row left out",
                          file=sys.stderr, flush=True)
                    failed = True
                    gc.collect()
                    if cuda:
                        torch.cuda.empty_cache()
                    continue
                print(f"torch_gpu_step.py: {p}:{b}:{s} {m}: {type(e).__name__}: {first}", file=sys.stderr, flush=True)
                return 1
            if not header_printed:
                print(f"<!-- torch_gpu_step: {where}; {now}; {cmd} -->")
                print(f"<!-- backend: torch {torch.__version__} ({device.type}) + transformers {tf[0].__version__}, "
                      f"BertForSequenceClassification, attention {r['attn']}, {args.dtype}, tf32 {args.tf32}, "
                      f"forward+backward+clip+AdamW, steps={args.steps} warmup={args.warmup} -->")
                print(head)
                print(sep, flush=True)
                header_printed = True
            tok_s = b * s / (r["step_ms"] / 1000.0)
            row = (f"| {p} | {b} | {s} | {m} | {r['trainable']} | {r['params']} | {r['step_ms']:.1f} | {tok_s:.0f} | "
                   f"{mib(r['act'])} | {mib(r['peak'])}")
            if cuda:
                row += f" | {r['used'] / (1024.0 * 1024.0):.0f}"
            if not args.no_phases:
                row += f" | {r['forward_ms']:.1f} | {r['backward_ms']:.1f} | {r['update_ms']:.1f}"
            print(row + " |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
