#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Independent float64 numpy reference for BERT, RoBERTa, BART and OPT.

This file exists only for tests: it re-implements, from the published model
definition and without importing `transformers`, `safetensors` or `torch`, the
eval-mode forward pass of Hugging Face `BertForSequenceClassification`,
`RobertaForSequenceClassification`, `BertForMultipleChoice` and
`RobertaForMultipleChoice` (one score per input line), `BartForSequenceClassification`
and `OPTForCausalLM`.  Tests run it on a checkpoint directory and compare its
output with the C++ engine's (see compare_logits.py).

For OPT each output line is {"log_likelihood": sum over t >= 1 of
log p(token t | tokens < t), "tokens": the count}, over the unmasked tokens.

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


def read_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


class Model:
    def __init__(self, model_dir):
        cfg = read_config(model_dir)
        self.cfg = cfg
        self.kind = cfg.get("model_type", "bert")
        if self.kind not in ("bert", "roberta"):
            raise ValueError(f"unsupported model_type {self.kind!r}")
        # *ForMultipleChoice: the pooler and a one-output classifier (RoBERTa's too)
        self.multiple_choice = any(a.endswith("ForMultipleChoice") for a in cfg.get("architectures", []))
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
        if self.kind == "bert" or self.multiple_choice:
            logits = self.linear(np.tanh(self.linear(cls, p + "pooler.dense")), "classifier")
        else:
            logits = self.linear(np.tanh(self.linear(cls, "classifier.dense")), "classifier.out_proj")
        return logits, np.stack(states)


def attention(x, kv, w, prefix, heads, key_mask, causal):
    """BART / OPT attention: q_proj scaled by head_dim^-0.5, k_proj, v_proj, out_proj.
    key_mask: 1 for keys that may be attended (padding 0); causal: a query sees keys <= itself."""
    T, H = x.shape
    S = kv.shape[0]
    d = H // heads
    q = (w.linear(x, prefix + "q_proj") * d ** -0.5).reshape(T, heads, d).transpose(1, 0, 2)
    k = w.linear(kv, prefix + "k_proj").reshape(S, heads, d).transpose(1, 0, 2)
    v = w.linear(kv, prefix + "v_proj").reshape(S, heads, d).transpose(1, 0, 2)
    allowed = np.broadcast_to(np.asarray(key_mask, dtype=bool)[None, :], (T, S))
    if causal:
        allowed = allowed & np.tril(np.ones((T, S), dtype=bool))
    scores = q @ k.transpose(0, 2, 1) + np.where(allowed, 0.0, float(np.finfo(np.float32).min))[None]
    ctx = (softmax(scores) @ v).transpose(1, 0, 2).reshape(T, H)
    return w.linear(ctx, prefix + "out_proj")


class Weights:
    def __init__(self, model_dir):
        self.st = SafeTensors(model_dir)

    def w(self, name):
        if name not in self.st:
            raise KeyError(f"tensor {name} not found in checkpoint")
        return self.st.get(name)

    def linear(self, x, name):
        return x @ self.w(name + ".weight").T + self.w(name + ".bias")

    def ln(self, x, name, eps=1e-5):
        return layer_norm(x, self.w(name + ".weight"), self.w(name + ".bias"), eps)


class Bart(Weights):
    """BartForSequenceClassification (post-LN, learned positions offset 2, shared tokens); with
    "meft_head": "multiple_choice" the same head gives one score per line."""

    def __init__(self, model_dir):
        super().__init__(model_dir)
        cfg = read_config(model_dir)
        self.heads = cfg["encoder_attention_heads"]
        self.enc_layers, self.dec_layers = cfg["encoder_layers"], cfg["decoder_layers"]
        self.act = ACTIVATIONS[cfg.get("activation_function", "gelu")]
        self.pad, self.eos = cfg.get("pad_token_id", 1), cfg.get("eos_token_id", 2)
        self.start = cfg.get("decoder_start_token_id", 2)
        if cfg.get("scale_embedding", False):
            raise ValueError("scale_embedding is not supported here")

    def embed(self, ids, side):
        T = len(ids)
        x = self.w("model.shared.weight")[ids] + self.w(f"model.{side}.embed_positions.weight")[np.arange(T) + 2]
        return self.ln(x, f"model.{side}.layernorm_embedding")

    def ffn(self, x, l):
        return self.ln(x + self.linear(self.act(self.linear(x, l + "fc1")), l + "fc2"), l + "final_layer_norm")

    def forward(self, input_ids, token_type_ids, attention_mask):
        ids = np.asarray(input_ids, dtype=np.int64)
        mask = np.asarray(attention_mask)
        x = self.embed(ids, "encoder")
        for i in range(self.enc_layers):
            l = f"model.encoder.layers.{i}."
            x = self.ln(x + attention(x, x, self, l + "self_attn.", self.heads, mask, False), l + "self_attn_layer_norm")
            x = self.ffn(x, l)
        memory = x
        # shift_tokens_right; BartForSequenceClassification passes no decoder mask (causal only)
        dec_ids = np.concatenate([[self.start], ids[:-1]]).astype(np.int64)
        y = self.embed(dec_ids, "decoder")
        ones = np.ones(len(ids))
        for i in range(self.dec_layers):
            l = f"model.decoder.layers.{i}."
            y = self.ln(y + attention(y, y, self, l + "self_attn.", self.heads, ones, True), l + "self_attn_layer_norm")
            y = self.ln(y + attention(y, memory, self, l + "encoder_attn.", self.heads, mask, False),
                        l + "encoder_attn_layer_norm")
            y = self.ffn(y, l)
        eos = np.nonzero(ids == self.eos)[0]
        if len(eos) == 0:
            raise ValueError("no eos token in the input")
        h = y[eos[-1]]
        logits = self.linear(np.tanh(self.linear(h, "classification_head.dense")), "classification_head.out_proj")
        return logits, np.stack([memory, y])


class Opt(Weights):
    """OPTForCausalLM: pre-LN (or post-LN) decoder, positions 2 + index among real tokens,
    project_in / project_out, LM head tied to embed_tokens."""

    def __init__(self, model_dir):
        super().__init__(model_dir)
        cfg = read_config(model_dir)
        self.heads = cfg["num_attention_heads"]
        self.layers = cfg["num_hidden_layers"]
        self.pre = cfg.get("do_layer_norm_before", True)
        self.final_ln = self.pre and not cfg.get("_remove_final_layer_norm", False)
        self.act = ACTIVATIONS[cfg.get("activation_function", "relu")]

    def forward(self, input_ids, token_type_ids, attention_mask):
        ids = np.asarray(input_ids, dtype=np.int64)
        mask = np.asarray(attention_mask, dtype=np.int64)
        pos = np.cumsum(mask) * mask - 1 + 2
        table = self.w("model.decoder.embed_tokens.weight")
        x = table[ids]
        if "model.decoder.project_in.weight" in self.st:
            x = x @ self.w("model.decoder.project_in.weight").T
        x = x + self.w("model.decoder.embed_positions.weight")[pos]
        for i in range(self.layers):
            l = f"model.decoder.layers.{i}."
            h = self.ln(x, l + "self_attn_layer_norm") if self.pre else x
            x = x + attention(h, h, self, l + "self_attn.", self.heads, mask, True)
            if not self.pre:
                x = self.ln(x, l + "self_attn_layer_norm")
            h = self.ln(x, l + "final_layer_norm") if self.pre else x
            x = x + self.linear(self.act(self.linear(h, l + "fc1")), l + "fc2")
            if not self.pre:
                x = self.ln(x, l + "final_layer_norm")
        if self.final_ln:
            x = self.ln(x, "model.decoder.final_layer_norm")
        if "model.decoder.project_out.weight" in self.st:
            x = x @ self.w("model.decoder.project_out.weight").T
        logits = x @ table.T
        logp = logits - logits.max(axis=-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=-1, keepdims=True))
        real = np.nonzero(mask)[0]
        ll = sum(logp[real[j - 1], ids[real[j]]] for j in range(1, len(real)))
        return float(ll), len(real) - 1


def load(model_dir):
    kind = read_config(model_dir).get("model_type", "bert")
    return {"bart": Bart, "opt": Opt}.get(kind, Model)(model_dir)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="Hugging Face model directory")
    ap.add_argument("--data", required=True, help="input JSONL (input_ids, token_type_ids, attention_mask)")
    ap.add_argument("--out", required=True, help="output JSONL with one {\"logits\": [...]} per line")
    ap.add_argument("--hidden-states", help="optional .npz of per-layer hidden states, keyed by line number")
    args = ap.parse_args(argv)

    model = load(args.model)
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
            if isinstance(model, Opt):
                ll, tokens = model.forward(ids, tt, am)
                fout.write(json.dumps({"log_likelihood": ll, "tokens": tokens}) + "\n")
                continue
            logits, states = model.forward(ids, tt, am)
            fout.write(json.dumps({"logits": [float(v) for v in np.atleast_1d(logits)]}) + "\n")
            if args.hidden_states:
                hidden[str(len(hidden))] = states
    if args.hidden_states:
        np.savez(args.hidden_states, **hidden)


if __name__ == "__main__":
    main()
