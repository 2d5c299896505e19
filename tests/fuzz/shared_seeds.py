#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
# shared_seeds.py — extra seed inputs for one fuzz target, cut from the real files in ../shared
# (GLUE and QA data, the BERT and RoBERTa tokenizers), written into a temporary corpus folder by
# run_fuzzers.sh; never into the repository. The files are cut down (a few rows, the first few
# hundred vocabulary entries and the merges among them) so that each seed stays small enough to
# fuzz quickly. Missing shared files are skipped silently.
#
#   python3 tests/fuzz/shared_seeds.py SHARED_DIR TARGET OUT_DIR
import json
import os
import sys

SEP = b"\xff"  # fuzz_support.h kSeparator


def read(path):
    with open(path, "rb") as f:
        return f.read()


def head(path, n):
    return b"".join(read(path).splitlines(keepends=True)[:n])


def small_vocab(vocab, keep):
    """The entries with id < keep (ids renumbered densely, in id order)."""
    kept = sorted((i, t) for t, i in vocab.items() if i < keep)
    return {t: n for n, (_, t) in enumerate(kept)}


def merges_within(merges, vocab):
    out = []
    for m in merges:
        left, right = m.split(" ", 1) if isinstance(m, str) else m
        if left in vocab and right in vocab and left + right in vocab:
            out.append(m)
    return out


def tokenizer_json_seed(folder, keep=400):
    tj = json.loads(read(os.path.join(folder, "tokenizer.json")))
    model = tj["model"]
    vocab = small_vocab(model["vocab"], keep)
    added = {a["content"]: a for a in tj.get("added_tokens", [])}
    for content, a in added.items():  # keep the special tokens, renumbered after the vocabulary
        if content not in vocab:
            vocab[content] = len(vocab)
        a["id"] = vocab[content]
    model["vocab"] = vocab
    if "merges" in model:
        model["merges"] = merges_within(model["merges"], vocab)
    pp = tj.get("post_processor") or {}
    for key in ("sep", "cls"):
        if key in pp:
            pp[key][1] = vocab[pp[key][0]]
    for spec in (pp.get("special_tokens") or {}).values():
        spec["ids"] = [vocab[t] for t in spec["tokens"]]
    if tj.get("padding"):
        tj["padding"]["pad_id"] = vocab.get(tj["padding"].get("pad_token"), 0)
    parts = [json.dumps(tj, ensure_ascii=False).encode()]
    for extra in ("tokenizer_config.json", "config.json"):
        p = os.path.join(folder, extra)
        parts.append(read(p) if os.path.exists(p) else b"{}")
    parts.append("The quick brown fox didn't jump: naïve café, 東京!".encode())
    return SEP.join(parts)


def seeds(shared, target):
    models, glue, qa = (os.path.join(shared, d) for d in ("models", "data/glue", "data/qa"))
    bert, roberta = os.path.join(models, "bert-tiny-tokenizer"), os.path.join(models, "roberta-base-tokenizer")
    if target == "model_config":
        for folder in (bert, roberta):
            yield os.path.basename(folder), read(os.path.join(folder, "config.json"))
    elif target == "tokenizer_json":
        for folder in (bert, roberta):
            yield os.path.basename(folder), tokenizer_json_seed(folder)
    elif target == "vocab_merges":
        yield "bert-vocab", b"\x06" + head(os.path.join(bert, "vocab.txt"), 400) + SEP + b"Hello, world!"
        vocab = small_vocab(json.loads(read(os.path.join(roberta, "vocab.json"))), 400)
        for special in ("<s>", "<pad>", "</s>", "<unk>", "<mask>"):
            vocab.setdefault(special, len(vocab))
        lines = read(os.path.join(roberta, "merges.txt")).decode().splitlines()
        merges = [lines[0]] + merges_within(lines[1:], vocab)
        yield "roberta-vocab-merges", (b"\x01" + json.dumps(vocab, ensure_ascii=False).encode() + SEP +
                                       "\n".join(merges).encode() + b"\n" + SEP + b"Hello there, world!")
    elif target == "glue_tsv":
        for index, name in ((0, "CoLA"), (1, "SST-2"), (2, "MRPC"), (3, "STS-B"), (7, "RTE")):
            folder = os.path.join(glue, name)
            yield name, bytes([index]) + head(os.path.join(folder, "train.tsv"), 12) + SEP + head(os.path.join(folder, "dev.tsv"), 12)
    elif target == "qa_jsonl":
        arc_e, arc_c = os.path.join(qa, "ARC-Easy"), os.path.join(qa, "ARC-Challenge")
        yield "ARC-Easy", b"\x00" + head(os.path.join(arc_e, "train.jsonl"), 4) + SEP + head(os.path.join(arc_e, "dev.jsonl"), 4)
        yield "ARC-Challenge", b"\x01" + head(os.path.join(arc_c, "train.jsonl"), 4) + SEP + head(os.path.join(arc_c, "test.jsonl"), 4)
        obqa = os.path.join(qa, "OpenBookQA", "Main")
        yield "OpenBookQA", b"\x03" + head(os.path.join(obqa, "train.tsv"), 6) + SEP + head(os.path.join(obqa, "dev.tsv"), 6)
        piqa = os.path.join(qa, "PIQA")
        items, labels = head(os.path.join(piqa, "valid.jsonl"), 4), head(os.path.join(piqa, "valid-labels.lst"), 4)
        yield "PIQA", b"\x04" + SEP.join([items, labels, items, labels])
    elif target == "predict_jsonl":
        rows = head(os.path.join(glue, "RTE", "dev.tsv"), 6).decode().splitlines()[1:]
        lines = [json.dumps({"text": r.split("\t")[1], "text_pair": r.split("\t")[2], "label": 0}) for r in rows]
        yield "RTE-text", b"\x09" + "\n".join(lines).encode() + b"\n"


def main():
    shared, target, out = sys.argv[1:4]
    os.makedirs(out, exist_ok=True)
    made = 0
    try:
        for name, data in seeds(shared, target):
            with open(os.path.join(out, "shared-" + name), "wb") as f:
                f.write(data)
            made += 1
    except (OSError, KeyError, ValueError, IndexError):
        pass  # shared/ is absent or laid out differently: the committed seeds still run
    print(made)


if __name__ == "__main__":
    main()
