#!/usr/bin/env bash
# test_peft_export_cli.sh — the engine's PEFT adapters and merged checkpoints against an independent
# numpy re-implementation of what Hugging Face PEFT and transformers load from them
# (tests/reference/hf_reference.py, class PeftAdapter, written from PEFT's source).
#
# peft_export_fixture writes, per backbone × method case (BERT, RoBERTa, BART, OPT × LoRA on three
# sites and on all six, (IA)3; DoRA and VeRA on three sites and on all six on BERT and BART, one
# of each on OPT; prefix-tuning plain and through its MLP on BERT, RoBERTa, OPT; multiple-choice
# heads), a base folder, a PEFT adapter folder naming it, the merged checkpoint (the LoRA family,
# VeRA, (IA)3) and the engine's own float64 outputs with the method. For each case:
#   1. the reference loads base + adapter as PEFT would (the base found through the adapter's
#      base_model_name_or_path) and its outputs equal the engine's within 1e-9;
#   2. the base alone differs from them by more than 1e-3 (so the adapter carries the method);
#   3. the merged checkpoint, read as a plain transformers model, equals them within 1e-9.
#
# usage: test_peft_export_cli.sh PEFT_EXPORT_FIXTURE REFERENCE_DIR
# Needs numpy for /usr/bin/python3; without it the script exits 77 (ctest: skipped).
set -euo pipefail

FIXTURE=$1
REF=$2
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meft_peft_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=cli_helpers.sh
source "$(dirname "$0")/cli_helpers.sh"

if ! "$PY" -c 'import numpy' >/dev/null 2>&1; then
    echo "******************************************************************"
    echo "SKIPPED: numpy missing for $PY — PEFT adapters were not compared"
    echo "with the reference implementation (install python3-numpy)."
    echo "******************************************************************"
    exit 77
fi

expect_rc 0 "peft_export_fixture writes the cases" -- "$FIXTURE" "$TMP/cases"
n=0
summary=()
while read -r name key merged; do
    d="$TMP/cases/$name"
    expect_rc 0 "$name: numpy PEFT loads the base named by the adapter, then the adapter" -- \
        "$PY" "$REF/hf_reference.py" --adapter "$d/adapter" --data "$d/inputs.jsonl" --out "$d/peft.jsonl"
    check "$name: the engine's float64 outputs equal numpy(base + adapter) within 1e-9"
    "$PY" "$REF/compare_logits.py" "$d/expected.jsonl" "$d/peft.jsonl" --key "$key" --atol 1e-9 >"$d/cmp" ||
        { cat "$d/cmp"; fail "$name: the adapter as PEFT loads it is not the model the engine has"; }
    line="$name: adapter $(sed -n 's/.*max |diff| = \([^ ]*\).*/\1/p' "$d/cmp")"

    expect_rc 0 "$name: numpy on the base alone" -- \
        "$PY" "$REF/hf_reference.py" --model "$d/base" --data "$d/inputs.jsonl" --out "$d/base.jsonl"
    check "$name: the base alone is more than 1e-3 away (the adapter carries the method)"
    if "$PY" "$REF/compare_logits.py" "$d/expected.jsonl" "$d/base.jsonl" --key "$key" --atol 1e-3 >/dev/null; then
        fail "$name: the base model alone gives the method's outputs; the check would prove nothing"
    fi

    if [[ $merged == 1 ]]; then
        expect_rc 0 "$name: numpy on the merged checkpoint (plain transformers model)" -- \
            "$PY" "$REF/hf_reference.py" --model "$d/merged" --data "$d/inputs.jsonl" --out "$d/merged.jsonl"
        check "$name: the merged checkpoint's outputs equal the engine's within 1e-9"
        "$PY" "$REF/compare_logits.py" "$d/expected.jsonl" "$d/merged.jsonl" --key "$key" --atol 1e-9 >"$d/cmp" ||
            { cat "$d/cmp"; fail "$name: the merged checkpoint is not the model the engine has"; }
        line+=", merged $(sed -n 's/.*max |diff| = \([^ ]*\).*/\1/p' "$d/cmp")"
    fi
    summary+=("$line")
    n=$((n + 1))
done <"$TMP/cases/cases.txt"

[[ $n -ge 31 ]] || fail "only $n cases were checked (expected 31)"
printf '  %s\n' "${summary[@]}"
echo "OK: $n PEFT export cases agree with the numpy reference"
