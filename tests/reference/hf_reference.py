#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Independent float64 numpy reference for BERT/RoBERTa sequence classification.

This file exists only for tests: it re-implements, from the published model
definition and without importing `transformers`, `safetensors` or `torch`, the
eval-mode forward pass of Hugging Face `BertForSequenceClassification` and
`RobertaForSequenceClassification`.  Tests run it on a checkpoint directory and
compare its logits with those produced by the C++ engine (see
compare_logits.py).

    hf_reference.py --model DIR --data IN.jsonl --out OUT.jsonl [--hidden-states OUT.npz]

DIR holds config.json and model.safetensors (or model.safetensors.index.json
plus shards).  Each input line is {"input_ids": [...], "token_type_ids": [...],
"attention_mask": [...]} (the last two optional: zeros / ones by default); each
output line is {"logits": [...]}.  With --hidden-states, an .npz is written
whose entry "<line>" is an array [num_layers + 1, T, hidden] holding the
embedding output and every layer's output (like output_hidden_states=True).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
           "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
           "U8": np.uint8, "BOOL": np.bool_}


class SafeTensors:
    """Lazy reader for one or more .safetensors files (raw format, own parser)."""

    def __init__(self, model_dir):
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                weight_map = json.load(f)["weight_map"]
            files = sorted(set(weight_map.values()))
        else:
            files = ["model.safetensors"]
        self.entries = {}  # name -> (path, data_start, header entry)
        for name in files:
            path = os.path.join(model_dir, name)
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n).decode("utf-8"))
            for key, info in header.items():
                if key != "__metadata__":
                    self.entries[key] = (path, 8 + n, info)

    def __contains__(self, name):
        return name in self.entries

    def get(self, name):
        path, start, info = self.entries[name]
        begin, end = info["data_offsets"]
        dtype = np.dtype("<u2" if info["dtype"] == "BF16" else _DTYPES[info["dtype"]]).newbyteorder("<")
        count = (end - begin) // dtype.itemsize
        if count != int(np.prod(info["shape"], dtype=np.int64)) or count * dtype.itemsize != end - begin:
            raise ValueError(f"{path}: tensor {name}: data_offsets do not match shape/dtype")
        if count == 0:
            return np.zeros(info["shape"], dtype=np.float64)
        arr = np.memmap(path, dtype=dtype, mode="r", offset=start + begin, shape=(count,))
        if info["dtype"] == "BF16":  # bfloat16 = upper 16 bits of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.astype(np.float64).reshape(info["shape"])


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):  # exact GELU: x * Phi(x)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ACTIVATIONS = {
    "gelu": gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
}


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Model:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        self.cfg = cfg
        self.kind = cfg.get("model_type", "bert")
        if self.kind not in ("bert", "roberta"):
            raise ValueError(f"unsupported model_type {self.kind!r}")
        self.heads = cfg["num_attention_heads"]
        self.layers = cfg["num_hidden_layers"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        self.pad = cfg.get("pad_token_id", 1 if self.kind == "roberta" else 0)
        self.max_pos = cfg["max_position_embeddings"]
        act = cfg.get("hidden_act", "gelu")
        if act not in ACTIVATIONS:
            raise ValueError(f"unsupported hidden_act {act!r}")
        self.act = ACTIVATIONS[act]
        self.st = SafeTensors(model_dir)

    def w(self, name):
        """Tensor by transformers name; tolerates a missing base-model prefix
        and the legacy LayerNorm gamma/beta spelling."""
        cands = [name]
        prefix = self.kind + "."
        if name.startswith(prefix):
            cands.append(name[len(prefix):])
        for c in list(cands):
            if c.endswith("LayerNorm.weight"):
                cands.append(c[:-len("weight")] + "gamma")
            if c.endswith("LayerNorm.bias"):
                cands.append(c[:-len("bias")] + "beta")
        for c in cands:
            if c in self.st:
                return self.st.get(c)
        raise KeyError(f"tensor {name} not found in checkpoint")

    def linear(self, x, name):
        return x @ self.w(name + ".weight").T + self.w(name + ".bias")

    def forward(self, input_ids, token_type_ids, attention_mask):
        p = self.kind + "."
        ids = np.asarray(input_ids, dtype=np.int64)
        T = ids.shape[0]
        if self.kind == "roberta":
            keep = (ids != self.pad).astype(np.int64)
            pos = np.cumsum(keep) * keep + self.pad
        else:
            pos = np.arange(T)
        if pos.max(initial=0) >= self.max_pos:
            raise ValueError(f"sequence of length {T} exceeds max_position_embeddings")
        e = p + "embeddings."
        x = (self.w(e + "word_embeddings.weight")[ids]
             + self.w(e + "position_embeddings.weight")[pos]
             + self.w(e + "token_type_embeddings.weight")[np.asarray(token_type_ids, dtype=np.int64)])
        x = layer_norm(x, self.w(e + "LayerNorm.weight"), self.w(e + "LayerNorm.bias"), self.eps)
        states = [x]

        H = x.shape[-1]
        d = H // self.heads
        # Additive key mask, as transformers builds it: (1 - mask) * finfo(float32).min
        neg = (1.0 - np.asarray(attention_mask, dtype=np.float64)) * float(np.finfo(np.float32).min)
        for i in range(self.layers):
            l = f"{p}encoder.layer.{i}."
            q, k, v = (self.linear(x, l + "attention.self." + n).reshape(T, self.heads, d).transpose(1, 0, 2)
                       for n in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d) + neg[None, None, :]
            ctx = (softmax(scores) @ v).transpose(1, 0, 2).reshape(T, H)
            x = layer_norm(x + self.linear(ctx, l + "attention.output.dense"),
                           self.w(l + "attention.output.LayerNorm.weight"),
                           self.w(l + "attention.output.LayerNorm.bias"), self.eps)
            inter = self.act(self.linear(x, l + "intermediate.dense"))
            x = layer_norm(x + self.linear(inter, l + "output.dense"),
                           self.w(l + "output.LayerNorm.weight"),
                           self.w(l + "output.LayerNorm.bias"), self.eps)
            states.append(x)

        cls = x[0]
        if self.kind == "bert":
            logits = self.linear(np.tanh(self.linear(cls, "bert.pooler.dense")), "classifier")
        else:
            logits = self.linear(np.tanh(self.linear(cls, "classifier.dense")), "classifier.out_proj")
        return logits, np.stack(states)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="Hugging Face model directory")
    ap.add_argument("--data", required=True, help="input JSONL (input_ids, token_type_ids, attention_mask)")
    ap.add_argument("--out", required=True, help="output JSONL with one {\"logits\": [...]} per line")
    ap.add_argument("--hidden-states", help="optional .npz of per-layer hidden states, keyed by line number")
    args = ap.parse_args(argv)

    model = Model(args.model)
    hidden = {}
    with open(args.data) as fin, open(args.out, "w") as fout:
        for n, line in enumerate(fin):
            if not line.strip():
                continue
            rec = json.loads(line)
            ids = rec["input_ids"]
            tt = rec.get("token_type_ids") or [0] * len(ids)
            am = rec.get("attention_mask") or [1] * len(ids)
            if not (len(ids) == len(tt) == len(am)) or not ids:
                sys.exit(f"{args.data}:{n + 1}: empty input or mismatched field lengths")
            logits, states = model.forward(ids, tt, am)
            fout.write(json.dumps({"logits": [float(v) for v in logits]}) + "\n")
            if args.hidden_states:
                hidden[str(len(hidden))] = states
    if args.hidden_states:
        np.savez(args.hidden_states, **hidden)


if __name__ == "__main__":
    main()
