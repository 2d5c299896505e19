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

# A small RTE task whose text says "café crème brûlée"; $1 $2 $3 are é, è, û in the file's encoding.
cafe_tsv() {  # cafe_tsv E_ACUTE E_GRAVE U_CIRCUMFLEX FILE
    {
        printf 'index\tsentence1\tsentence2\tlabel\n'
        for i in 0 1 2 3 4 5 6 7; do
            label=entailment; (( i % 2 )) && label=not_entailment
            printf '%d\tThe caf%b serves cr%bme br%bl%be number %d.\tA caf%b sells dessert.\t%s\n' \
                "$i" "$1" "$2" "$3" "$1" "$i" "$1" "$label"
        done
    } >"$4"
}
mkdir -p "$TMP/latin1/RTE" "$TMP/utf8/RTE"
for split in train dev; do
    cafe_tsv '\xe9' '\xe8' '\xfb' "$TMP/latin1/RTE/$split.tsv"
    cafe_tsv '\xc3\xa9' '\xc3\xa8' '\xc3\xbb' "$TMP/utf8/RTE/$split.tsv"
done
UTF8_ERR='not valid UTF-8 (e9 20: e9 starts a 3-byte sequence, but 20 is not a continuation byte (80..bf))'

echo "check: meft run on a Latin-1 file exits 1 naming file, line and byte, and records no run"
cat >"$TMP/latin1.json" <<JSON
{"backbone": {"arch": "bert", "preset": "tiny", "tokenizer": "$BERT_TOK"},
 "task": {"name": "rte", "data_dir": "$TMP/latin1/RTE"},
 "training": {"max_steps": 1, "batch_size": 4, "max_seq_length": 32}}
JSON
set +e
err=$("$MEFT" run "$TMP/latin1.json" --db "$TMP/enc.sqlite" --quiet 2>&1 >/dev/null); rc=$?
set -e
want="$TMP/latin1/RTE/train.tsv:2: byte 10: $UTF8_ERR; the file may be Latin-1 — set task.encoding to \"latin-1\" to read it as such"
[[ $rc -eq 1 && "$err" == *"$want"* ]] || fail "expected exit 1 and '$want', got $rc: $err"
n=$("$MEFT" runs --db "$TMP/enc.sqlite" list | tail -n +3 | grep -c '^|' || true)
[[ $n -eq 0 ]] || fail "a run on a file that is not UTF-8 recorded $n run(s)"

echo "check: with task.encoding latin-1 the same file runs, and the run records its encoding"
"$MEFT" run "$TMP/latin1.json" --db "$TMP/enc.sqlite" --quiet --set task.encoding=latin-1 >/dev/null 2>&1 ||
    fail "meft run with task.encoding latin-1 failed"
"$MEFT" runs --db "$TMP/enc.sqlite" show 1 | grep -q '"encoding": "latin-1"' || fail "run 1 does not record task.encoding"

echo "check: meft tokenize reads --data and --text as UTF-8, or as Latin-1 with --encoding latin-1"
set +e
err=$("$MEFT" tokenize --tokenizer "$BERT_TOK" --data "$TMP/latin1/RTE/dev.tsv" --task rte 2>&1 >/dev/null); rc=$?
set -e
want="$TMP/latin1/RTE/dev.tsv:2: byte 10: $UTF8_ERR; the file may be Latin-1 — pass --encoding latin-1 to read it as such"
[[ $rc -eq 1 && "$err" == *"$want"* ]] || fail "tokenize --data: expected exit 1 and '$want', got $rc: $err"
"$MEFT" tokenize --tokenizer "$BERT_TOK" --data "$TMP/utf8/RTE/dev.tsv" --task rte >"$TMP/ids-utf8.jsonl"
"$MEFT" tokenize --tokenizer "$BERT_TOK" --data "$TMP/latin1/RTE/dev.tsv" --task rte --encoding latin-1 >"$TMP/ids-latin1.jsonl"
[[ $(wc -l <"$TMP/ids-utf8.jsonl") -eq 8 ]] || fail "tokenize --data gave $(wc -l <"$TMP/ids-utf8.jsonl") lines, expected 8"
cmp -s "$TMP/ids-utf8.jsonl" "$TMP/ids-latin1.jsonl" || fail "the Latin-1 file read as Latin-1 gave other ids than the UTF-8 file"
set +e
err=$("$MEFT" tokenize --tokenizer "$BERT_TOK" --text "$(printf 'caf\xe9 cr\xe8me')" 2>&1 >/dev/null); rc=$?
set -e
want="--text: byte 4: $UTF8_ERR; the text may be Latin-1 — pass --encoding latin-1 to read it as such"
[[ $rc -eq 1 && "$err" == *"$want"* ]] || fail "tokenize --text: expected exit 1 and '$want', got $rc: $err"
a=$("$MEFT" tokenize --tokenizer "$BERT_TOK" --text "$(printf 'caf\xc3\xa9 cr\xc3\xa8me')" --pair "$(printf 'br\xc3\xbbl\xc3\xa9e')")
b=$("$MEFT" tokenize --tokenizer "$BERT_TOK" --text "$(printf 'caf\xe9 cr\xe8me')" --pair "$(printf 'br\xfbl\xe9e')" --encoding latin-1)
[[ "$a" == "$b" ]] || fail "tokenize --text: Latin-1 read as Latin-1 gave $b, UTF-8 gave $a"

echo "check: meft predict checks its JSON lines the same way"
printf '{"text": "caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e"}\n' >"$TMP/cafe-utf8.jsonl"
printf '{"text": "caf\xe9 cr\xe8me br\xfbl\xe9e"}\n' >"$TMP/cafe-latin1.jsonl"
set +e
err=$("$MEFT" predict --model "$TMP/m" --data "$TMP/cafe-latin1.jsonl" --out "$TMP/x.jsonl" 2>&1 >/dev/null); rc=$?
set -e
want="$TMP/cafe-latin1.jsonl:1: byte 14: $UTF8_ERR; the file may be Latin-1 — pass --encoding latin-1 to read it as such"
[[ $rc -eq 1 && "$err" == *"$want"* ]] || fail "predict: expected exit 1 and '$want', got $rc: $err"
"$MEFT" predict --model "$TMP/m" --data "$TMP/cafe-utf8.jsonl" --out "$TMP/p-utf8.jsonl" 2>/dev/null
"$MEFT" predict --model "$TMP/m" --data "$TMP/cafe-latin1.jsonl" --out "$TMP/p-latin1.jsonl" --encoding latin-1 2>/dev/null
cmp -s "$TMP/p-utf8.jsonl" "$TMP/p-latin1.jsonl" || fail "predict: the Latin-1 lines read as Latin-1 scored differently"

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
