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
log p(token t | tokens < t), "tokens": the count, "token_log_probs": each
log p(token t | tokens < t) in order}, over the unmasked tokens.

    hf_reference.py --model DIR --data IN.jsonl --out OUT.jsonl [--hidden-states OUT.npz]
    hf_reference.py [--model DIR] --adapter ADAPTER_DIR --data IN.jsonl --out OUT.jsonl

With --adapter, the model is the base model with a Hugging Face PEFT adapter
(adapter_config.json + adapter_model.safetensors: LoRA, IA3 or prefix-tuning)
loaded the way PeftModel.from_pretrained loads it (class PeftAdapter below,
written from PEFT's source without importing it); the base model is --model or,
without it, the adapter's base_model_name_or_path.

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
import re
import struct
import sys

import numpy as np

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
           "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
           "U8": np.uint8, "BOOL": np.bool_}


class SafeTensors:
    """Lazy reader for one or more .safetensors files (raw format, own parser)."""

    def __init__(self, model_dir, files=None):
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if files is not None:
            pass
        elif os.path.exists(index):
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

    def names(self):
        return list(self.entries)

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


def _module_names(tensor_names):
    """The model's module names (named_modules()) as its tensors' dotted prefixes."""
    out = set()
    for name in tensor_names:
        parts = name.split(".")
        for k in range(1, len(parts)):
            out.add(".".join(parts[:k]))
    return out


class PeftAdapter:
    """Hugging Face PEFT's loading of an adapter folder onto a base model
    (PeftModel.from_pretrained, inference), re-implemented from PEFT's source
    (huggingface/peft, src/peft/...) without importing it.

    Where it acts is decided by module name, as in PEFT:
      - target_modules (tuners/tuners_utils.py check_target_module_exists): a string
        is re.fullmatch'ed against the module name, a list entry matches the name
        itself or a dotted suffix; a module inside one named by modules_to_save
        (re.match(rf"(^|.*\\.){m}($|\\..*)", key)) is never a target;
      - feedforward_modules (tuners/ia3/model.py _check_target_module_feedforward):
        a string is re.fullmatch'ed, a list entry is a plain suffix;
      - modules_to_save (utils/other.py _set_trainable): every module whose name
        ends with an entry is replaced by the adapter's copy (ModulesToSaveWrapper).

    adapter_model.safetensors (utils/save_and_load.py get_peft_model_state_dict,
    the adapter name removed) holds, under "base_model.model." (LoRA, IA3) or
    "base_model." (prompt learning, whose PeftModel keeps the transformers model
    itself as base_model):
      LORA  <module>.lora_A.weight [r, in], <module>.lora_B.weight [out, r]; the
            module computes W x + b + scaling * B (A x) with scaling = lora_alpha / r
            (lora_alpha / sqrt(r) with use_rslora) (tuners/lora/layer.py Linear.forward);
            With use_dora, <module>.lora_magnitude_vector [out] m as well: the module
            computes W x + b + (g - 1) * (W x) + g * scaling * B (A x) with
            g = m / ||W + scaling * B A|| row by row (tuners/lora/dora.py
            DoraLinearLayer.forward, evaluation: no dropout);
      VERA  base_model.vera_A [r, in_max], base_model.vera_B [out_max, r] (shared, saved with
            save_projection) and <module>.vera_lambda_b [out], .vera_lambda_d [r]: the module
            computes W x + b + lambda_b * (B[:out] (lambda_d * (A[:, :in] x)))
            (tuners/vera/layer.py Linear.forward);
      IA3   <module>.ia3_l: (out, 1) multiplies the module's output, bias included;
            (1, in) on a feedforward module multiplies its input (tuners/ia3/layer.py);
      PREFIX_TUNING  prompt_embeddings [P, num_layers*2*token_dim]: from_pretrained
            loads in inference mode, where PrefixEncoder is this table itself
            (tuners/prefix_tuning/model.py); peft_model.py get_prompt views it as
            [P, num_layers*2, heads, head_dim], permutes and splits it so that layer
            l's past key is entry 2l and its value 2l+1; PeftModelForSequenceClassification
            / PeftModelForCausalLM.forward prepend P ones to the attention mask and
            pass past_key_values, which transformers prepends to every layer's
            self-attention keys and values, placing the tokens at positions after
            the P cached ones (past_key_values_length);
      <module>.<tensor> for each module_to_save.
    Anything PEFT would ignore or reject (a tensor no module takes, a missing one,
    options this class does not implement) is an error here, so a file that only
    looks right cannot pass.
    """

    def __init__(self, adapter_dir, base_shapes, base_cfg):
        """base_shapes: the base checkpoint's tensor names -> shapes; base_cfg: its config.json."""
        with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
            self.cfg = cfg = json.load(f)
        self.type = cfg.get("peft_type")
        if self.type not in ("LORA", "VERA", "IA3", "PREFIX_TUNING"):
            raise ValueError(f"{adapter_dir}: peft_type {self.type!r} is not implemented here")
        self.st = SafeTensors(adapter_dir, files=["adapter_model.safetensors"])
        unused = set(self.st.names())
        prefix = "base_model." if self.type == "PREFIX_TUNING" else "base_model.model."
        modules = _module_names(base_shapes)

        def take(key):
            if key not in unused:
                raise ValueError(f"{adapter_dir}: adapter tensor {key} is missing")
            unused.discard(key)
            return self.st.get(key)

        # modules_to_save: the adapter's copy replaces each matching module
        self.modules_to_save = cfg.get("modules_to_save") or []
        self.saved = {}
        for module in sorted(modules):
            if any(module.endswith(m) for m in self.modules_to_save):
                for name in base_shapes:
                    if name.startswith(module + ".") and name not in self.saved:
                        self.saved[name] = take(prefix + name)

        self.lora, self.ia3, self.vera, self.past = {}, {}, {}, None
        self.prefix_len = 0
        if self.type == "VERA":
            if not cfg.get("save_projection"):
                raise ValueError(f"{adapter_dir}: VeRA without save_projection (projections drawn from "
                                 "projection_prng_key by torch) is not implemented here")
            vera_A, vera_B = take("base_model.vera_A"), take("base_model.vera_B")
        if self.type in ("LORA", "IA3", "VERA"):
            for key, allowed in (("fan_in_fan_out", (False,)), ("exclude_modules", (None, [])),
                                 ("layers_to_transform", (None, [])), ("layers_pattern", (None, [], ""))):
                if cfg.get(key, allowed[0]) not in allowed:
                    raise ValueError(f"{adapter_dir}: {key}={cfg[key]!r} is not implemented here")
            for module in sorted(modules):
                if not self._is_target(module):
                    continue
                w = module + ".weight"
                if w not in base_shapes or len(base_shapes[w]) != 2:
                    raise ValueError(f"{adapter_dir}: target {module} is not a linear layer (PEFT refuses it)")
                out_f, in_f = base_shapes[w]
                if self.type == "LORA":
                    A, B = take(prefix + module + ".lora_A.weight"), take(prefix + module + ".lora_B.weight")
                    r = cfg["r"]
                    if A.shape != (r, in_f) or B.shape != (out_f, r):
                        raise ValueError(f"{module}: lora_A {A.shape} / lora_B {B.shape} do not fit r={r}, {w} {(out_f, in_f)}")
                    scaling = cfg["lora_alpha"] / (math.sqrt(r) if cfg.get("use_rslora") else r)
                    m = None
                    if cfg.get("use_dora"):
                        m = take(prefix + module + ".lora_magnitude_vector")
                        if m.shape != (out_f,):
                            raise ValueError(f"{module}: lora_magnitude_vector {m.shape}, expected {(out_f,)}")
                    self.lora[module] = (A, B, scaling, m)
                elif self.type == "VERA":
                    r = cfg["r"]
                    if vera_A.shape[0] != r or vera_B.shape[1] != r or vera_A.shape[1] < in_f or vera_B.shape[0] < out_f:
                        raise ValueError(f"{module}: vera_A {vera_A.shape} / vera_B {vera_B.shape} do not cover r={r}, "
                                         f"{w} {(out_f, in_f)}")
                    lb, ld = take(prefix + module + ".vera_lambda_b"), take(prefix + module + ".vera_lambda_d")
                    if lb.shape != (out_f,) or ld.shape != (r,):
                        raise ValueError(f"{module}: vera_lambda_b {lb.shape} / vera_lambda_d {ld.shape}, "
                                         f"expected {(out_f,)} / {(r,)}")
                    self.vera[module] = (vera_A[:, :in_f], vera_B[:out_f, :], lb, ld)
                else:
                    ff = self._is_feedforward(module)
                    l = take(prefix + module + ".ia3_l")
                    if l.shape != ((1, in_f) if ff else (out_f, 1)):
                        raise ValueError(f"{module}: ia3_l has shape {l.shape}, expected {(1, in_f) if ff else (out_f, 1)}")
                    self.ia3[module] = (l.reshape(-1), ff)
            if self.type == "LORA":
                for key, allowed in (("bias", ("none",)), ("lora_bias", (False,)),
                                     ("rank_pattern", ({}, None)), ("alpha_pattern", ({}, None)),
                                     ("target_parameters", (None,)), ("layer_replication", (None,)),
                                     ("trainable_token_indices", (None,))):
                    if cfg.get(key, allowed[0]) not in allowed:
                        raise ValueError(f"{adapter_dir}: {key}={cfg[key]!r} is not implemented here")
            if self.type == "VERA" and cfg.get("bias", "none") != "none":
                raise ValueError(f"{adapter_dir}: bias={cfg['bias']!r} is not implemented here")
            if not (self.lora or self.ia3 or self.vera):
                raise ValueError(f"{adapter_dir}: target_modules {cfg.get('target_modules')!r} match no module")
        else:
            if cfg.get("task_type") not in ("SEQ_CLS", "CAUSAL_LM"):
                raise ValueError(f"{adapter_dir}: prefix-tuning through task_type {cfg.get('task_type')!r} "
                                 "is not implemented here (only SEQ_CLS and CAUSAL_LM inject past_key_values)")
            if base_cfg.get("model_type") == "bart":
                raise ValueError(f"{adapter_dir}: prefix-tuning on BART is not implemented here (PEFT's SEQ_CLS "
                                 "path hands past_key_values to BART's decoder alone)")
            if cfg.get("num_transformer_submodules", 1) != 1:
                raise ValueError(f"{adapter_dir}: num_transformer_submodules must be 1")
            P, L = cfg["num_virtual_tokens"], cfg["num_layers"]
            heads, C = cfg["num_attention_heads"], cfg["token_dim"]
            table = take("prompt_embeddings")
            if table.shape != (P, L * 2 * C):
                raise ValueError(f"prompt_embeddings has shape {table.shape}, expected {(P, L * 2 * C)}")
            # get_prompt: view [P, L*2, heads, head_dim] -> permute -> [L*2, heads, P, head_dim]
            kv = table.reshape(P, L * 2, heads, C // heads).transpose(1, 2, 0, 3)
            self.past = [(kv[2 * l], kv[2 * l + 1]) for l in range(L)]
            self.prefix_len = P
        if unused:
            raise ValueError(f"{adapter_dir}: adapter tensors no module takes: {sorted(unused)}")

    def _is_target(self, key):
        for m in self.modules_to_save:
            if re.match(rf"(^|.*\.){m}($|\..*)", key):
                return False
        t = self.cfg.get("target_modules")
        if isinstance(t, str):
            return re.fullmatch(t, key) is not None
        return key in t or any(key.endswith("." + k) for k in t)

    def _is_feedforward(self, key):
        f = self.cfg.get("feedforward_modules") or []
        if isinstance(f, str):
            return re.fullmatch(f, key) is not None
        return any(key.endswith(k) for k in f)

    def linear(self, x, name, W, b):
        """The module `name` (weight W, bias b) applied to x, with its adapter."""
        if name in self.ia3:
            l, ff = self.ia3[name]
            return (x * l) @ W.T + b if ff else (x @ W.T + b) * l
        out = x @ W.T + b
        if name in self.lora:
            A, B, scaling, m = self.lora[name]
            lora = (x @ A.T) @ B.T * scaling
            if m is None:
                return out + lora
            g = m / np.linalg.norm(W + scaling * (B @ A), axis=1)
            return out + (g - 1) * (x @ W.T) + g * lora
        if name in self.vera:
            A, B, lb, ld = self.vera[name]
            return out + lb * (((x @ A.T) * ld) @ B.T)
        return out


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
        self.peft = None  # a PeftAdapter, set by load()

    def w(self, name):
        """Tensor by transformers name; tolerates a missing base-model prefix
        and the legacy LayerNorm gamma/beta spelling."""
        if self.peft is not None and name in self.peft.saved:
            return self.peft.saved[name]
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
        W, b = self.w(name + ".weight"), self.w(name + ".bias")
        return x @ W.T + b if self.peft is None else self.peft.linear(x, name, W, b)

    def forward(self, input_ids, token_type_ids, attention_mask):
        p = self.kind + "."
        ids = np.asarray(input_ids, dtype=np.int64)
        T = ids.shape[0]
        # Prefix-tuning: P cached keys/values before the tokens, which take positions after them
        # (BertEmbeddings: position_ids[past_key_values_length:]; RoBERTa's
        # create_position_ids_from_input_ids adds past_key_values_length to the count).
        P = self.peft.prefix_len if self.peft is not None else 0
        if self.kind == "roberta":
            keep = (ids != self.pad).astype(np.int64)
            pos = (np.cumsum(keep) + P) * keep + self.pad
        else:
            pos = np.arange(T) + P
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
        # Additive key mask, as transformers builds it: (1 - mask) * finfo(float32).min; PEFT
        # prepends P ones for the prefix
        mask = np.concatenate([np.ones(P), np.asarray(attention_mask, dtype=np.float64)])
        neg = (1.0 - mask) * float(np.finfo(np.float32).min)
        for i in range(self.layers):
            l = f"{p}encoder.layer.{i}."
            q, k, v = (self.linear(x, l + "attention.self." + n).reshape(T, self.heads, d).transpose(1, 0, 2)
                       for n in ("query", "key", "value"))
            if P:  # BertSelfAttention: torch.cat([past_key_value[0], key_layer], dim=2)
                k = np.concatenate([self.peft.past[i][0], k], axis=1)
                v = np.concatenate([self.peft.past[i][1], v], axis=1)
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


def attention(x, kv, w, prefix, heads, key_mask, causal, past=None):
    """BART / OPT attention: q_proj scaled by head_dim^-0.5, k_proj, v_proj, out_proj.
    key_mask: 1 for keys that may be attended (padding 0), past ones included; causal: a query
    sees keys <= itself; past: cached (keys, values) [heads, P, head_dim] before kv's, which every
    query sees (the query at t sits at P + t)."""
    T, H = x.shape
    d = H // heads
    q = (w.linear(x, prefix + "q_proj") * d ** -0.5).reshape(T, heads, d).transpose(1, 0, 2)
    k = w.linear(kv, prefix + "k_proj").reshape(kv.shape[0], heads, d).transpose(1, 0, 2)
    v = w.linear(kv, prefix + "v_proj").reshape(kv.shape[0], heads, d).transpose(1, 0, 2)
    P = 0
    if past is not None:
        P = past[0].shape[1]
        k, v = np.concatenate([past[0], k], axis=1), np.concatenate([past[1], v], axis=1)
    S = k.shape[1]
    allowed = np.broadcast_to(np.asarray(key_mask, dtype=bool)[None, :], (T, S))
    if causal:
        allowed = allowed & np.tril(np.ones((T, S), dtype=bool), k=P)
    scores = q @ k.transpose(0, 2, 1) + np.where(allowed, 0.0, float(np.finfo(np.float32).min))[None]
    ctx = (softmax(scores) @ v).transpose(1, 0, 2).reshape(T, H)
    return w.linear(ctx, prefix + "out_proj")


class Weights:
    def __init__(self, model_dir):
        self.st = SafeTensors(model_dir)
        self.peft = None  # a PeftAdapter, set by load()

    def w(self, name):
        if self.peft is not None and name in self.peft.saved:
            return self.peft.saved[name]
        if name not in self.st:
            raise KeyError(f"tensor {name} not found in checkpoint")
        return self.st.get(name)

    def linear(self, x, name):
        W, b = self.w(name + ".weight"), self.w(name + ".bias")
        return x @ W.T + b if self.peft is None else self.peft.linear(x, name, W, b)

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
        # Prefix-tuning: PeftModelForCausalLM prepends P ones to the mask; OPT's positions are
        # cumsum(mask) * mask - 1 over it, cut after the P cached ones (past_key_values_length).
        P = self.peft.prefix_len if self.peft is not None else 0
        full = np.concatenate([np.ones(P, dtype=np.int64), mask])
        pos = (np.cumsum(full) * full - 1)[P:] + 2
        table = self.w("model.decoder.embed_tokens.weight")
        x = table[ids]
        if "model.decoder.project_in.weight" in self.st:
            x = x @ self.w("model.decoder.project_in.weight").T
        x = x + self.w("model.decoder.embed_positions.weight")[pos]
        for i in range(self.layers):
            l = f"model.decoder.layers.{i}."
            h = self.ln(x, l + "self_attn_layer_norm") if self.pre else x
            past = self.peft.past[i] if P else None
            x = x + attention(h, h, self, l + "self_attn.", self.heads, full, True, past)
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
        lps = [float(logp[real[j - 1], ids[real[j]]]) for j in range(1, len(real))]
        return float(sum(lps)), len(real) - 1, lps


def load(model_dir, adapter_dir=None):
    cfg = read_config(model_dir)
    model = {"bart": Bart, "opt": Opt}.get(cfg.get("model_type", "bert"), Model)(model_dir)
    if adapter_dir is not None:
        shapes = {name: tuple(info["shape"]) for name, (_, _, info) in model.st.entries.items()}
        model.peft = PeftAdapter(adapter_dir, shapes, cfg)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="Hugging Face model directory (with --adapter: the base model; "
                    "default: the adapter's base_model_name_or_path)")
    ap.add_argument("--adapter", help="Hugging Face PEFT adapter directory (adapter_config.json, "
                    "adapter_model.safetensors) to load onto the model")
    ap.add_argument("--data", required=True, help="input JSONL (input_ids, token_type_ids, attention_mask)")
    ap.add_argument("--out", required=True, help="output JSONL with one {\"logits\": [...]} per line")
    ap.add_argument("--hidden-states", help="optional .npz of per-layer hidden states, keyed by line number")
    args = ap.parse_args(argv)

    model_dir = args.model
    if model_dir is None:
        if args.adapter is None:
            ap.error("--model is required without --adapter")
        with open(os.path.join(args.adapter, "adapter_config.json")) as f:
            model_dir = json.load(f)["base_model_name_or_path"]
    model = load(model_dir, args.adapter)
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
                ll, tokens, lps = model.forward(ids, tt, am)
                fout.write(json.dumps({"log_likelihood": ll, "tokens": tokens, "token_log_probs": lps}) + "\n")
                continue
            logits, states = model.forward(ids, tt, am)
            fout.write(json.dumps({"logits": [float(v) for v in np.atleast_1d(logits)]}) + "\n")
            if args.hidden_states:
                hidden[str(len(hidden))] = states
    if args.hidden_states:
        np.savez(args.hidden_states, **hidden)


if __name__ == "__main__":
    main()
