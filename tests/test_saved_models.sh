#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# test_saved_models.sh — a saved model is the model that was trained (ctest, label cli):
#
#   test_saved_models.sh MEFT_BINARY SHARED_DIR
#
# 1. For every method on BERT (DoRA and VeRA included), and for full, LoRA, Houlsby, prefix and MEFT1 on RoBERTa and BART, a
#    run with output.save_model: the model folder's config.json has a "meft" section naming the
#    method, and `meft predict --model DIR --evaluate` prints exactly the run's own dev metrics
#    (dev loss and every metric, bit for bit) — the "fine-tuned" model no longer predicts like its base.
# 2. `meft export RUN --out DIR` writes the same model from the run's checkpoint: same metrics.
# 3. With ../shared: an OPT causal LM on ARC-Easy (full, LoRA, MEFT1) and a BERT multiple-choice head
#    (LoRA) reproduce their dev acc the same way, and the tokenizer files are copied beside the weights.
# 4. Refusals: predict on a checkpoint with tensors the model does not use (exit 1, naming them;
#    --allow-unused predicts); init-model and export into a folder that holds a model (exit 1;
#    --force replaces it); fine-tuning a saved LoRA model with another method names both.
set -euo pipefail
if [[ $# -ne 2 ]]; then
    echo "usage: $0 MEFT_BINARY SHARED_DIR" >&2
    exit 2
fi
MEFT=$1
SHARED=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meft_saved_models.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export MEFT_DB=$TMP/runs.sqlite
source "$(dirname "${BASH_SOURCE[0]}")/cli_helpers.sh"

# The run's dev metrics as recorded (final_metrics minus what is not a dev metric), sorted JSON.
run_metrics() {
    "$MEFT" runs show "$1" | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)["final_metrics"]
keep = {k: v for k, v in m.items() if k == "dev_loss" or not (k.startswith("best_") or k in (
    "train_loss_first", "train_loss_last", "steps", "early_stopped", "starting_point_deviation", "activation_peak_bytes",
    "activation_peak_step", "activation_peak_batch", "resident_bytes", "tokens_per_s", "trainable_parameters",
    "all_parameters", "steps_per_epoch"))}
print(json.dumps(keep, sort_keys=True))'
}
sorted_json() { /usr/bin/python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))' "$1"; }
last_run() { "$MEFT" runs list | awk -F'|' 'NR > 2 {id = $2 + 0} END {print id}'; }

# run_and_predict NAME ARCH METHOD_JSON [TASK_JSON] [TRAINING_EXTRA]
run_and_predict() {
    local name=$1 arch=$2 method=$3
    local task=${4:-'{"name": "toy", "num_labels": 2, "train_examples": 64, "dev_examples": 40, "min_length": 4, "max_length": 20, "seed": 3}'}
    local extra=${5:-}
    local tokenizer=${6:-}
    cat >"$TMP/$name.json" <<EOF
{
  "name": "$name",
  "backbone": {"arch": "$arch", "preset": "tiny", "seed": 1 $tokenizer},
  "task": $task,
  "method": $method,
  "training": {"learning_rate": 0.002, "batch_size": 8, "max_steps": 6, "max_seq_length": 64, "eval_batch_size": 16, "seed": 5 $extra},
  "output": {"dir": "$TMP/$name", "save_model": true}
}
EOF
    expect_rc 0 "run $name" -- "$MEFT" run "$TMP/$name.json" --quiet
    local id
    id=$(last_run)
    grep -q '"meft"' "$TMP/$name/model/config.json" || fail "$name: config.json has no meft section"
    local want
    want=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["meft"]["method"]["name"])' "$TMP/$name/model/config.json")
    [[ $want == $(echo "$method" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])') ]] ||
        fail "$name: the meft section names method '$want'"
    expect_rc 0 "predict --evaluate on $name's saved model" -- \
        "$MEFT" predict --model "$TMP/$name/model" --evaluate --out "$TMP/$name.eval.json"
    local recorded predicted
    recorded=$(run_metrics "$id")
    predicted=$(sorted_json "$TMP/$name.eval.json")
    [[ $recorded == "$predicted" ]] || fail "$name: the saved model's dev metrics $predicted differ from the run's $recorded"
    echo "  $name: $predicted"
    LAST_ID=$id
}

check "every method on BERT: the saved model gives the run's dev metrics exactly"
for m in full bitfit lora rslora lora_fa dora vera houlsby pfeiffer parallel prefix ia3 meft1 meft2 meft3; do
    run_and_predict "bert-$m" bert "{\"name\": \"$m\"}"
done
run_and_predict bert-prefix-reparam bert '{"name": "prefix", "prefix": {"reparameterize": true, "hidden": 32}}'
run_and_predict bert-houlsby-checkpointing bert '{"name": "houlsby", "gradient_checkpointing": true}'
for arch in roberta bart; do
    for m in full lora houlsby prefix meft1; do run_and_predict "$arch-$m" "$arch" "{\"name\": \"$m\"}"; done
done

check "LoRA's run also wrote a merged checkpoint and a PEFT adapter that load as the trained model"
for f in merged/config.json merged/model.safetensors adapter/adapter_config.json adapter/adapter_model.safetensors \
         base/config.json base/model.safetensors; do
    [[ -f $TMP/bert-lora/$f ]] || fail "bert-lora: no $f"
done
if grep -q '"meft"' "$TMP/bert-lora/merged/config.json"; then fail "the merged checkpoint's config.json has a meft section"; fi
[[ ! -e $TMP/bert-houlsby/adapter && ! -e $TMP/bert-houlsby/merged ]] || fail "houlsby wrote a PEFT adapter or a merged model"
printf '%s\n' '{"input_ids": [101, 1500, 2500, 1200, 102]}' \
    '{"input_ids": [101, 1700, 102, 0, 0], "attention_mask": [1, 1, 1, 0, 0]}' \
    '{"input_ids": [101, 2999, 1001, 1002, 1003, 1004, 102], "token_type_ids": [0, 0, 0, 0, 1, 1, 1]}' >"$TMP/inputs.jsonl"
expect_rc 0 "predict with the saved LoRA model (float64)" -- \
    "$MEFT" predict --model "$TMP/bert-lora/model" --data "$TMP/inputs.jsonl" --out "$TMP/lora.jsonl" --float64
REF=$(cd "$(dirname "${BASH_SOURCE[0]}")/reference" && pwd)
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    expect_rc 0 "numpy: base + PEFT adapter, as PEFT loads them" -- \
        /usr/bin/python3 "$REF/hf_reference.py" --adapter "$TMP/bert-lora/adapter" --data "$TMP/inputs.jsonl" --out "$TMP/peft.jsonl"
    expect_rc 0 "the adapter reproduces the trained model" -- \
        /usr/bin/python3 "$REF/compare_logits.py" "$TMP/lora.jsonl" "$TMP/peft.jsonl" --atol 1e-9
    expect_rc 0 "numpy: the merged checkpoint as a plain model" -- \
        /usr/bin/python3 "$REF/hf_reference.py" --model "$TMP/bert-lora/merged" --data "$TMP/inputs.jsonl" --out "$TMP/merged.jsonl"
    expect_rc 0 "the merged checkpoint reproduces the trained model (float32 file)" -- \
        /usr/bin/python3 "$REF/compare_logits.py" "$TMP/lora.jsonl" "$TMP/merged.jsonl" --atol 1e-5
else
    echo "SKIPPED (numpy missing for /usr/bin/python3): adapter and merged checkpoint not compared"
fi

check "meft export writes the same model from a run's checkpoint"
expect_rc 0 "export the last run" -- "$MEFT" export "$LAST_ID" --out "$TMP/exported"
expect_rc 0 "predict --evaluate on the exported model" -- "$MEFT" predict --model "$TMP/exported" --evaluate --out "$TMP/exported.json"
[[ $(sorted_json "$TMP/exported.json") == "$(sorted_json "$TMP/bart-meft1.eval.json")" ]] ||
    fail "the exported model's metrics differ from the saved model's"
expect_rc 1 "export into a folder holding a model" -- "$MEFT" export "$LAST_ID" --out "$TMP/exported"
grep -q "already holds a model" "$TMP/err" || fail "export did not say the folder holds a model: $(cat "$TMP/err")"
expect_rc 0 "export --force" -- "$MEFT" export "$LAST_ID" --out "$TMP/exported" --force
lora_id=$("$MEFT" runs list | grep '| bert-lora ' | awk -F'|' '{print $2+0}')
houlsby_id=$("$MEFT" runs list | grep '| bert-houlsby ' | awk -F'|' '{print $2+0}')
expect_rc 0 "export --adapter of the LoRA run" -- "$MEFT" export "$lora_id" --adapter --out "$TMP/exported-adapter"
cmp -s "$TMP/exported-adapter/adapter_model.safetensors" "$TMP/bert-lora/adapter/adapter_model.safetensors" ||
    fail "the exported adapter differs from the one the run wrote"
expect_rc 0 "export --merged of the LoRA run" -- "$MEFT" export "$lora_id" --merged --out "$TMP/exported-merged"
cmp -s "$TMP/exported-merged/model.safetensors" "$TMP/bert-lora/merged/model.safetensors" ||
    fail "the exported merged checkpoint differs from the one the run wrote"
expect_rc 1 "export --adapter of a Houlsby run" -- "$MEFT" export "$houlsby_id" --adapter --out "$TMP/no-adapter"
grep -qi "peft" "$TMP/err" || fail "the refusal does not say PEFT has no layout for it: $(cat "$TMP/err")"

check "refusals"
# The LoRA model's folder loaded as a plain model (no meft section): its lora tensors are unused.
mkdir -p "$TMP/stripped"
cp "$TMP/bert-lora/model/model.safetensors" "$TMP/stripped/"
/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c.pop("meft"); json.dump(c, open(sys.argv[2], "w"))' \
    "$TMP/bert-lora/model/config.json" "$TMP/stripped/config.json"
echo '{"input_ids": [101, 1500, 2500, 102]}' >"$TMP/one.jsonl"
expect_rc 1 "predict on a checkpoint with unused tensors" -- \
    "$MEFT" predict --model "$TMP/stripped" --data "$TMP/one.jsonl" --out "$TMP/p.jsonl"
grep -q "tensors this model does not use: .*lora_A" "$TMP/err" || fail "the unused tensors are not named: $(cat "$TMP/err")"
grep -q -- "--allow-unused" "$TMP/err" || fail "the message does not offer --allow-unused"
expect_rc 0 "predict --allow-unused" -- \
    "$MEFT" predict --model "$TMP/stripped" --data "$TMP/one.jsonl" --out "$TMP/p.jsonl" --allow-unused
expect_rc 0 "init-model into a new folder" -- "$MEFT" init-model --preset tiny --out "$TMP/init"
expect_rc 1 "init-model into a folder holding a model" -- "$MEFT" init-model --preset tiny --out "$TMP/init"
grep -q "already holds a model" "$TMP/err" || fail "init-model did not refuse: $(cat "$TMP/err")"
expect_rc 0 "init-model --force" -- "$MEFT" init-model --preset tiny --out "$TMP/init" --force
cat >"$TMP/other-method.json" <<EOF
{"name": "again", "backbone": {"path": "$TMP/bert-lora/model"}, "task": {"name": "toy", "train_examples": 16, "dev_examples": 8},
 "method": {"name": "houlsby"}, "training": {"max_steps": 1, "batch_size": 8, "max_seq_length": 32}}
EOF
expect_rc 1 "fine-tune a saved LoRA model with another method" -- "$MEFT" run "$TMP/other-method.json" --quiet
grep -q 'fine-tuned with {"name":"lora"}' "$TMP/err" || fail "the saved method is not named: $(cat "$TMP/err")"
grep -q "merged/" "$TMP/err" || fail "the merged checkpoint is not offered: $(cat "$TMP/err")"
sed -i 's/"houlsby"/"lora"/' "$TMP/other-method.json"
expect_rc 0 "fine-tune a saved LoRA model with LoRA again" -- "$MEFT" run "$TMP/other-method.json" --quiet

# ---- 3. real data: OPT as a causal LM, a BERT multiple-choice head, tokenizer files -------------
ARC=$SHARED/data/qa
BERT_TOK=$SHARED/models/bert-tiny-tokenizer
ROBERTA_TOK=$SHARED/models/roberta-base-tokenizer
if [[ ! -d $ARC || ! -d $BERT_TOK ]]; then
    echo "******************************************************************"
    echo "SKIPPED: $ARC or $BERT_TOK not found — the OPT and multiple-choice"
    echo "saved-model checks did not run (parts 1, 2 and 4 passed)."
    echo "******************************************************************"
    exit 77
fi
ARC_TASK="{\"name\": \"arc_easy\", \"data_dir\": \"$ARC\", \"max_train_examples\": 32, \"max_dev_examples\": 24}"
run_and_predict bert-mc-lora bert '{"name": "lora"}' "$ARC_TASK" "" ", \"tokenizer\": \"$BERT_TOK\""
[[ -f $TMP/bert-mc-lora/model/vocab.txt ]] || fail "the tokenizer's vocab.txt was not copied beside the weights"
if [[ -d $ROBERTA_TOK ]]; then
    for m in full lora meft1; do
        run_and_predict "opt-$m" opt "{\"name\": \"$m\"}" "$ARC_TASK" "" ", \"tokenizer\": \"$ROBERTA_TOK\""
    done
    [[ -f $TMP/opt-lora/model/merges.txt ]] || fail "the tokenizer's merges.txt was not copied beside the weights"
else
    echo "SKIPPED (OPT part): $ROBERTA_TOK not found"
fi
echo "all saved-model checks passed"
