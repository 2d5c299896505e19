#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Compare the "logits" arrays of two JSONL files line by line.

    compare_logits.py A.jsonl B.jsonl [--atol 1e-4] [--key logits]

--key names another field to compare (a number or an array of numbers), such as
a causal LM's "log_likelihood".

Prints the maximum absolute difference and the line where it occurs.  Exits 0
when every |a - b| <= atol, 1 when a difference exceeds atol or when the files
disagree in line count or logits length (or hold non-finite values), and 2 on
unreadable input.
"""
import argparse
import json
import math
import sys


def load(path, key):
    rows = []
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                rec = json.loads(line)
                value = rec.get(key) if isinstance(rec, dict) else None
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = [value]
                if not isinstance(value, list):
                    raise ValueError(f"line {n}: no \"{key}\" number or array")
                rows.append([float(v) for v in value])
    except (OSError, ValueError, TypeError) as e:
        print(f"compare_logits: {path}: {e}", file=sys.stderr)
        sys.exit(2)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compare logits of two JSONL files line by line.")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    ap.add_argument("--key", default="logits", help="the field to compare (default logits)")
    args = ap.parse_args(argv)

    a, b = load(args.a, args.key), load(args.b, args.key)
    if len(a) != len(b):
        print(f"FAIL: line count differs: {args.a} has {len(a)}, {args.b} has {len(b)}")
        return 1
    if not a:
        print("FAIL: no logits lines to compare")
        return 1
    worst, worst_line, worst_idx = -1.0, 0, 0
    for n, (ra, rb) in enumerate(zip(a, b), 1):
        if len(ra) != len(rb):
            print(f"FAIL: line {n}: logits length differs ({len(ra)} vs {len(rb)})")
            return 1
        for i, (x, y) in enumerate(zip(ra, rb)):
            d = abs(x - y)
            if not math.isfinite(d):
                print(f"FAIL: line {n}: non-finite value at index {i} ({x} vs {y})")
                return 1
            if d > worst:
                worst, worst_line, worst_idx = d, n, i
    print(f"compared {len(a)} lines: max |diff| = {worst:.3e} at line {worst_line} index {worst_idx}")
    print(f"  worst line {worst_line}: A = {a[worst_line - 1]}")
    print(f"  worst line {worst_line}: B = {b[worst_line - 1]}")
    if worst > args.atol:
        print(f"FAIL: max |diff| {worst:.3e} > atol {args.atol:g}")
        return 1
    print(f"OK: within atol {args.atol:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
