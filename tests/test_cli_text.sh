#!/usr/bin/env bash
# CLI checks with real text: meft tokenize, predict on text lines, run on GLUE tasks.
# Usage: test_cli_text.sh MEFT SHARED_DIR    (exit 77 = skipped: shared data missing)
set -euo pipefail
MEFT="$1"
SHARED="$2"
if [[ ! -d "$SHARED/data/glue" || ! -d "$SHARED/models/bert-tiny-tokenizer" ]]; then
    echo "*** SKIPPED: $SHARED (GLUE data and tokenizers) missing ***"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
BERT_TOK="$SHARED/models/bert-tiny-tokenizer"
REF="$(cd "$(dirname "$0")" && pwd)/reference"

echo "check: tokenize a text"
out=$("$MEFT" tokenize --tokenizer "$BERT_TOK" --text "Hello world")
[[ "$out" == *'"input_ids":[101,7592,2088,102]'* ]] || fail "unexpected ids: $out"

echo "check: tokenize a pair with RoBERTa's format"
out=$("$MEFT" tokenize --tokenizer "$SHARED/models/roberta-base-tokenizer" --text "Hello" --pair "world")
[[ "$out" == *'"input_ids":[0,31414,2,2,8331,2]'* ]] || fail "unexpected RoBERTa pair ids: $out"

echo "check: tokenize a GLUE split"
n=$("$MEFT" tokenize --tokenizer "$BERT_TOK" --data "$SHARED/data/glue/SST-2/dev.tsv" --task sst2 | wc -l)
[[ "$n" -eq 872 ]] || fail "SST-2 dev gave $n lines, expected 872"

echo "check: predict on text lines with the tokenizer beside the model"
"$MEFT" init-model --arch bert --preset tiny --out "$TMP/m" --vocab "$BERT_TOK/vocab.txt" >/dev/null
printf '%s\n' '{"text": "a fine film"}' '{"text": "it is bad", "text_pair": "really bad"}' >"$TMP/text.jsonl"
"$MEFT" predict --model "$TMP/m" --data "$TMP/text.jsonl" --out "$TMP/pred.jsonl" 2>/dev/null
[[ $(wc -l <"$TMP/pred.jsonl") -eq 2 ]] || fail "predict on text wrote the wrong number of lines"

echo "check: text lines without a tokenizer are an error naming the line"
"$MEFT" init-model --arch bert --preset tiny --out "$TMP/bare" >/dev/null
set +e
err=$("$MEFT" predict --model "$TMP/bare" --data "$TMP/text.jsonl" --out "$TMP/x.jsonl" 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$err" == *"text.jsonl:1"*"tokenizer"* ]] || fail "expected exit 1 naming line 1 and the tokenizer, got $rc: $err"

echo "check: meft run on RTE, STS-B and MRPC reports each task's metrics"
for spec in "rte RTE accuracy" "stsb STS-B pearson" "mrpc MRPC f1"; do
    set -- $spec
    cat >"$TMP/$1.json" <<JSON
{"backbone": {"arch": "bert", "preset": "tiny", "tokenizer": "$BERT_TOK"},
 "task": {"name": "$1", "data_dir": "$SHARED/data/glue/$2", "max_train_examples": 64, "max_dev_examples": 32},
 "training": {"max_steps": 2, "batch_size": 16, "max_seq_length": 64}}
JSON
    out=$("$MEFT" run "$TMP/$1.json" --quiet)
    [[ "$out" == *"dev $3"* ]] || fail "$1: the results table lacks 'dev $3': $out"
done

if [[ -d "$SHARED/data/qa/ARC-Easy" ]]; then
    echo "check: meft run and plan on ARC-Easy with a multiple-choice head (bert, roberta, bart)"
    for spec in "bert $BERT_TOK BertForMultipleChoice" "roberta $SHARED/models/roberta-base-tokenizer RobertaForMultipleChoice" \
                "bart $SHARED/models/roberta-base-tokenizer BartForSequenceClassification"; do
        set -- $spec
        cat >"$TMP/arc-$1.json" <<JSON
{"backbone": {"arch": "$1", "preset": "tiny", "tokenizer": "$2"},
 "task": {"name": "arc_easy", "data_dir": "$SHARED/data/qa", "max_train_examples": 48, "max_dev_examples": 20},
 "training": {"max_steps": 2, "batch_size": 8, "gradient_accumulation_steps": 2, "max_seq_length": 64},
 "output": {"dir": "$TMP/arc-$1", "save_model": true}}
JSON
        out=$("$MEFT" run "$TMP/arc-$1.json" --quiet)
        [[ "$out" == *"arc_easy (multiple choice)"* && "$out" == *"dev acc "* ]] ||
            fail "$1: the results table lacks the multiple-choice task or 'dev acc': $out"
        grep -q "\"$3\"" "$TMP/arc-$1/model/config.json" || fail "$1: the saved config.json is not a $3"
        plan=$("$MEFT" plan "$TMP/arc-$1.json")
        [[ "$plan" == *"batch 40 (8 questions x 5 choices) x seq 64"* ]] || fail "$1: the plan does not count pairs: $plan"
        # the trained multiple-choice model's pair scores against the independent numpy reference
        if /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then
            : >"$TMP/pairs-$1.jsonl"
            for choice in "carbon dioxide" "oxygen" "nitrogen gas from the soil"; do
                "$MEFT" tokenize --tokenizer "$2" --text "Which gas do plants take in from the air?" --pair "$choice" \
                    >>"$TMP/pairs-$1.jsonl"
            done
            "$MEFT" predict --model "$TMP/arc-$1/model" --data "$TMP/pairs-$1.jsonl" --out "$TMP/scores-$1.jsonl" \
                --float64 2>/dev/null
            /usr/bin/python3 "$REF/hf_reference.py" --model "$TMP/arc-$1/model" --data "$TMP/pairs-$1.jsonl" \
                --out "$TMP/ref-$1.jsonl"
            /usr/bin/python3 "$REF/compare_logits.py" "$TMP/scores-$1.jsonl" "$TMP/ref-$1.jsonl" --atol 1e-9 >/dev/null ||
                fail "$1: multiple-choice scores differ from the numpy reference"
        else
            echo "*** SKIPPED: numpy missing: the $1 multiple-choice scores were not compared with the reference ***"
        fi
    done
else
    echo "*** SKIPPED: the multiple-choice checks ($SHARED/data/qa/ARC-Easy missing) ***"
fi

echo "check: an unknown task is an error naming the key"
echo '{"backbone": {"preset": "tiny"}, "task": {"name": "glu"}}' >"$TMP/bad.json"
set +e
err=$("$MEFT" run "$TMP/bad.json" 2>&1); rc=$?
set -e
[[ $rc -eq 1 && "$err" == *"task.name"* ]] || fail "expected exit 1 naming task.name, got $rc: $err"

echo "OK: all text CLI checks passed"
