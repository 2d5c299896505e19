#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# test_bad_inputs.sh — bad input against the `meft` command line, case by case (ctest, label cli):
#
#   test_bad_inputs.sh MEFT_BINARY [--table]
#
# Each case builds one bad input in a scratch folder, runs one meft command on it, and requires
# the exit status (2: a usage error CLI11 reports; 1: a failure while running) and a part of the
# message that names what is at fault (file, line, key, tensor) and, where there is one, what to
# change. Nothing may crash (a signal), and a refused `meft run` records no run. With --table it
# prints the Markdown table of docs/reliability.md: the case, the exit status and the exact
# first line of the message, with the scratch folder's path replaced by $TMP.
set -uo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: $0 MEFT_BINARY [--table]" >&2
    exit 2
fi
MEFT=$1
TABLE=${2:-}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meft_bad_inputs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export MEFT_DB=$TMP/runs.sqlite
cd "$TMP"
n=0
failures=0
rows=()

# case DESCRIPTION EXIT SUBSTRING -- COMMAND...
case_() {
    local what=$1 want=$2 part=$3
    shift 4
    n=$((n + 1))
    local runs_before=0
    [[ -f $MEFT_DB ]] && runs_before=$("$MEFT" runs list 2>/dev/null | tail -n +3 | grep -c '^|')
    local rc=0
    "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    local msg
    msg=$(grep -m 1 '^error: ' "$TMP/err")  # the message; else the first line that is not a notice
    [[ -z $msg ]] && msg=$(grep -v '^notice:\|^meft: backend auto' "$TMP/err" | head -n 1)
    [[ -z $msg ]] && msg=$(head -n 1 "$TMP/out")
    local bad=""
    if ((rc > 128)); then bad="killed by signal $((rc - 128))"; fi
    [[ -z $bad && $rc -ne $want ]] && bad="exit $rc, expected $want"
    [[ -z $bad && $(grep -F -c -- "$part" "$TMP/err" "$TMP/out" | awk -F: '{s += $2} END {print s}') -eq 0 ]] &&
        bad="the message lacks '$part'"
    if [[ -z $bad && $1 == "$MEFT" && $2 == run ]]; then
        local runs_after=0
        [[ -f $MEFT_DB ]] && runs_after=$("$MEFT" runs list 2>/dev/null | tail -n +3 | grep -c '^|')
        ((runs_after > runs_before)) && bad="a refused run was recorded"
    fi
    if [[ -n $bad ]]; then
        echo "FAIL $n: $what: $bad" >&2
        echo "  command: $*" >&2
        sed 's/^/  stderr: /' "$TMP/err" | head -5 >&2
        failures=$((failures + 1))
    elif [[ -z $TABLE ]]; then
        echo "ok $n: $what"
    fi
    msg=${msg//$TMP/\$TMP}
    msg=$(sed -E 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g' <<<"$msg")
    msg=$(sed -E 's/\([0-9.]+ GiB available of [0-9.]+ GiB\)/(… available of …)/; s|plugin [^)]*libmeft_cuda.so|plugin …/libmeft_cuda.so|' <<<"$msg")
    msg=${msg//|/\\|}
    rows+=("| $n | $what | $rc | \`${msg}\` |")
}

experiment() {  # experiment FILE JSON
    printf '%s\n' "$2" >"$1"
}
TOY='"backbone": {"arch": "bert", "preset": "tiny"}, "task": {"name": "toy", "train_examples": 32, "dev_examples": 8}'
TRAIN='"training": {"max_steps": 2, "batch_size": 8, "max_seq_length": 32}'

# ---- experiment files ----------------------------------------------------------------------------
case_ "experiment file missing" 2 "missing.json" -- "$MEFT" run missing.json
printf '{\n  "backbone": {"preset": "tiny"},\n  "training": {"batch_size": 8,, }\n}\n' >broken.json
case_ "experiment: invalid JSON" 1 "broken.json:3:" -- "$MEFT" run broken.json
experiment typo.json "{$TOY, \"training\": {\"lerning_rate\": 0.001}}"
case_ "experiment: unknown key" 1 "training.lerning_rate" -- "$MEFT" run typo.json
experiment type.json "{$TOY, \"training\": {\"batch_size\": \"eight\"}}"
case_ "experiment: wrong type" 1 "training.batch_size" -- "$MEFT" run type.json
experiment range.json "{$TOY, \"training\": {\"learning_rate\": 100}}"
case_ "experiment: value out of range" 1 "training.learning_rate" -- "$MEFT" run range.json
experiment both.json '{"backbone": {"arch": "bert", "preset": "tiny", "path": "x"}}'
case_ "backbone: both preset and path" 1 "exactly one of" -- "$MEFT" run both.json
experiment nopath.json '{"backbone": {"path": "no-such-model"}}'
case_ "backbone.path missing" 1 "no-such-model" -- "$MEFT" run nopath.json
experiment method.json "{$TOY, \"method\": {\"name\": \"lorra\"}, $TRAIN}"
case_ "unknown method" 1 "lorra" -- "$MEFT" run method.json
experiment targets.json "{$TOY, \"method\": {\"name\": \"lora\", \"lora\": {\"targets\": [\"qkv\"]}}, $TRAIN}"
case_ "LoRA target that is no site" 1 "qkv" -- "$MEFT" run targets.json
experiment task.json '{"backbone": {"arch": "bert", "preset": "tiny"}, "task": {"name": "sst3"}}'
case_ "unknown task" 1 "sst3" -- "$MEFT" run task.json
experiment nodata.json "{\"backbone\": {\"arch\": \"bert\", \"preset\": \"tiny\", \"tokenizer\": \"$TMP\"}, \"task\": {\"name\": \"sst2\", \"data_dir\": \"$TMP/none\"}}"
case_ "GLUE data_dir missing" 1 "none" -- "$MEFT" run nodata.json
experiment accum.json "{$TOY, \"training\": {\"batch_size\": 4, \"gradient_accumulation_steps\": 8}}"
case_ "gradient accumulation above the batch" 1 "gradient_accumulation_steps" -- "$MEFT" run accum.json
experiment meftck.json "{$TOY, \"method\": {\"name\": \"meft1\", \"gradient_checkpointing\": true}, $TRAIN}"
case_ "MEFT with gradient checkpointing" 1 "meftck.json: 'method.gradient_checkpointing'" -- "$MEFT" run meftck.json
experiment prefixl.json "{$TOY, \"method\": {\"name\": \"meft1\", \"meft\": {\"frozen_prefix\": 5}}, $TRAIN}"
case_ "MEFT frozen prefix of every layer" 1 "prefixl.json: method.meft.frozen_prefix" -- "$MEFT" run prefixl.json
experiment positions.json '{"backbone": {"arch": "roberta", "preset": "tiny"}, "task": {"name": "toy", "max_length": 600}, "training": {"max_seq_length": 600}}'
case_ "max_seq_length beyond the positions" 1 "set training.max_seq_length to at most 512" -- "$MEFT" run positions.json
experiment huge.json '{"backbone": {"arch": "bert", "preset": "large"}, "task": {"name": "toy", "max_length": 512}, "training": {"batch_size": 4096, "max_seq_length": 512}}'
case_ "a step that cannot fit in memory" 1 "cannot hold it" -- "$MEFT" run huge.json
experiment enc.json "{\"backbone\": {\"arch\": \"bert\", \"preset\": \"tiny\"}, \"task\": {\"name\": \"toy\", \"encoding\": \"latin1\"}}"
case_ "task.encoding on the toy task" 1 "encoding" -- "$MEFT" run enc.json
experiment es.json "{$TOY, \"training\": {\"max_steps\": 2, \"batch_size\": 8, \"max_seq_length\": 32, \"eval_every\": 1, \"early_stopping\": {\"metric\": \"f1\", \"patience\": 2}}}"
case_ "early stopping on a metric the task does not report" 1 "training.early_stopping.metric 'f1' is not a metric" -- "$MEFT" run es.json
experiment ok.json "{$TOY, $TRAIN}"
case_ "--set without '='" 1 "KEY.PATH=VALUE" -- "$MEFT" run ok.json --set training.max_steps
case_ "--set of an unknown key" 1 "training.max_stepz" -- "$MEFT" run ok.json --set training.max_stepz=3
case_ "--backend of an unknown name" 2 "--backend" -- "$MEFT" run ok.json --backend tpu
case_ "--backend cuda without a GPU" 1 'backend "cuda"' -- "$MEFT" run ok.json --backend cuda
case_ "plan: --set of an unknown key" 1 "training.batchsize" -- "$MEFT" plan ok.json --set training.batchsize=3
experiment sweep.json "{$TOY, \"training\": {\"learning_rate\": [0.001, 100], \"max_steps\": 2}}"
case_ "a sweep with one invalid expansion" 1 "training.learning_rate=100" -- "$MEFT" run sweep.json
experiment drop.json "{$TOY, \"training\": {\"dropout\": 1.5}}"
case_ "dropout outside [0, 1)" 1 "training.dropout" -- "$MEFT" run drop.json
experiment tags.json "{$TOY, \"tags\": \"paper\"}"
case_ "tags that are not a list" 1 "tags" -- "$MEFT" run tags.json
case_ "--db that is a folder" 1 "is a folder" -- "$MEFT" run ok.json --db "$TMP"
case_ "plan: --seq out of range" 2 "--seq" -- "$MEFT" plan ok.json --seq 1

# ---- training that fails ---------------------------------------------------------------------------
experiment diverge.json "{\"backbone\": {\"arch\": \"bert\", \"preset\": \"tiny\"}, \"task\": {\"name\": \"toy\", \"train_examples\": 64, \"dev_examples\": 8}, \"method\": {\"name\": \"meft1\"}, \"training\": {\"max_steps\": 40, \"batch_size\": 8, \"max_seq_length\": 32, \"learning_rate\": 10, \"max_grad_norm\": 0}}"
# (runs that fail while training are recorded, as failed: they go to a database of their own)
case_ "a diverging MEFT run (learning rate 10)" 1 "the run diverged" -- "$MEFT" run diverge.json --quiet --db failed.sqlite
"$MEFT" init-model --preset tiny --out nanmodel >/dev/null
/usr/bin/python3 - nanmodel/model.safetensors <<'PY'
import json, struct, sys
p = sys.argv[1]; d = bytearray(open(p, "rb").read()); n = struct.unpack("<Q", d[:8])[0]
i = json.loads(d[8:8 + n])["bert.encoder.layer.0.output.dense.weight"]
d[8 + n + i["data_offsets"][0]:8 + n + i["data_offsets"][0] + 4] = struct.pack("<f", float("inf"))
open(p, "wb").write(bytes(d))
PY
experiment nan.json "{\"backbone\": {\"path\": \"$TMP/nanmodel\"}, \"task\": {\"name\": \"toy\", \"train_examples\": 32, \"dev_examples\": 8}, $TRAIN}"
case_ "an infinite weight in the checkpoint" 1 "parameter 'bert.encoder.layer.0.output.dense.weight'" -- "$MEFT" run nan.json --quiet --db failed.sqlite

experiment outdir.json "{$TOY, $TRAIN, \"output\": {\"dir\": \"$TMP/ok.json/sub\", \"save_model\": true}}"
case_ "output.dir under a file" 1 "ok.json/sub" -- "$MEFT" run outdir.json --quiet --db failed.sqlite

# ---- model folders ---------------------------------------------------------------------------------
mkdir -p empty
case_ "predict: model folder without config.json" 1 "empty/config.json" -- "$MEFT" predict --model empty --data ok.json --out p.jsonl
mkdir -p badcfg && echo '{"model_type": "bert", "hidden_size": "wide"}' >badcfg/config.json
case_ "config.json: wrong type" 1 "hidden_size" -- "$MEFT" predict --model badcfg --data ok.json --out p.jsonl
mkdir -p gpt && echo '{"model_type": "gpt2"}' >gpt/config.json
case_ "config.json: an unsupported model_type" 1 "gpt2" -- "$MEFT" predict --model gpt --data ok.json --out p.jsonl
"$MEFT" init-model --preset tiny --out good >/dev/null
mkdir -p cut && cp good/config.json cut/ && head -c 5000 good/model.safetensors >cut/model.safetensors
echo '{"input_ids": [101, 1500, 102]}' >one.jsonl
case_ "safetensors: truncated file" 1 "model.safetensors" -- "$MEFT" predict --model cut --data one.jsonl --out p.jsonl
mkdir -p shape && cp good/model.safetensors shape/ && sed 's/"hidden_size": 128/"hidden_size": 64/' good/config.json >shape/config.json
case_ "config.json disagrees with the weights' shapes" 1 "has shape" -- "$MEFT" predict --model shape --data one.jsonl --out p.jsonl
mkdir -p noshard && cp good/config.json noshard/ &&
    echo '{"weight_map": {"bert.pooler.dense.bias": "model-00002-of-00002.safetensors"}}' >noshard/model.safetensors.index.json
case_ "sharded index naming a missing shard" 1 "model-00002-of-00002.safetensors" -- "$MEFT" predict --model noshard --data one.jsonl --out p.jsonl
"$MEFT" init-model --preset tiny --out extra >/dev/null
/usr/bin/python3 - extra/model.safetensors <<'PY'
import json, struct, sys
p = sys.argv[1]; d = open(p, "rb").read(); n = struct.unpack("<Q", d[:8])[0]
h = json.loads(d[8:8 + n]); body = d[8 + n:]
end = max(v["data_offsets"][1] for k, v in h.items() if k != "__metadata__")
h["cls.predictions.bias"] = {"dtype": "F32", "shape": [4], "data_offsets": [end, end + 16]}
hb = json.dumps(h).encode(); hb += b" " * ((8 - len(hb) % 8) % 8)
open(p, "wb").write(struct.pack("<Q", len(hb)) + hb + body[:end] + b"\0" * 16)
PY
case_ "predict: a tensor the model does not use" 1 "cls.predictions.bias" -- "$MEFT" predict --model extra --data one.jsonl --out p.jsonl
printf '{"input_ids": [101, 1500, 102]}\n{"input_ids": [101, oops]}\n' >badline.jsonl
case_ "predict: a JSON line that is not JSON" 1 "badline.jsonl:2" -- "$MEFT" predict --model good --data badline.jsonl --out p.jsonl
echo '{"input_ids": [101, 99999999, 102]}' >oov.jsonl
case_ "predict: a token id outside the vocabulary" 1 "oov.jsonl:1: token id 99999999" -- "$MEFT" predict --model good --data oov.jsonl --out p.jsonl
printf '{"text": "caf\xe9"}\n' >latin1.jsonl
case_ "predict: text that is not UTF-8" 1 "not valid UTF-8" -- "$MEFT" predict --model good --data latin1.jsonl --out p.jsonl
case_ "predict: neither --data nor --evaluate" 1 "exactly one of --data" -- "$MEFT" predict --model good
case_ "predict --evaluate on a model no run saved" 1 "meft" -- "$MEFT" predict --model good --evaluate
"$MEFT" init-model --preset tiny --labels 3 --out three >/dev/null
experiment zs.json "{\"backbone\": {\"path\": \"$TMP/three\"}, \"task\": {\"name\": \"toy\", \"num_labels\": 2}, \"training\": {\"zero_shot\": true, \"max_seq_length\": 32}}"
case_ "zero-shot with a head of other labels" 1 "has 3 labels and task toy has 2" -- "$MEFT" run zs.json
case_ "predict: --max-seq-length 1" 2 "--max-seq-length" -- "$MEFT" predict --model good --data one.jsonl --out p.jsonl --max-seq-length 1
case_ "plan: a backbone folder that does not exist" 1 "no-such-model" -- "$MEFT" plan nopath.json
case_ "init-model into a folder that holds a model" 1 "already holds a model" -- "$MEFT" init-model --preset tiny --out good
case_ "init-model: unknown preset" 2 "--preset" -- "$MEFT" init-model --preset huge --out x
case_ "init-model: labels 0" 2 "--labels" -- "$MEFT" init-model --labels 0 --out x

# ---- tokenizers and data ---------------------------------------------------------------------------
case_ "tokenize: tokenizer folder missing" 2 "--tokenizer" -- "$MEFT" tokenize --tokenizer no-such-dir --text hi
mkdir -p tok && printf '[PAD]\n[UNK]\n' >tok/vocab.txt && echo '{' >tok/tokenizer.json
case_ "tokenizer.json: invalid JSON" 1 "tokenizer.json" -- "$MEFT" tokenize --tokenizer tok --text hello
mkdir -p bpe && echo '{"a": 0, "b": "one"}' >bpe/vocab.json && printf '#version: 0.2\na b\n' >bpe/merges.txt
case_ "vocab.json: an id that is not a number" 1 "vocab.json" -- "$MEFT" tokenize --tokenizer bpe --text ab
mkdir -p glue && printf 'sentence\tlabel\ncaf\xe9 cr\xe8me\t1\n' >glue/dev.tsv && printf 'sentence\tlabel\nfine\t0\n' >glue/train.tsv
mkdir -p wp && printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfine\n' >wp/vocab.txt
case_ "GLUE TSV line that is not UTF-8" 1 "dev.tsv:2: byte 4: not valid UTF-8" -- "$MEFT" tokenize --tokenizer wp --data glue --task sst2 --split dev
printf 'sentence\tlabel\nfine\t0\textra\n' >glue/train.tsv
case_ "GLUE TSV row with too many columns" 1 "train.tsv:2" -- "$MEFT" tokenize --tokenizer wp --data glue --task sst2 --split train
printf 'sentence\tlabel\nfine\t7\n' >glue/train.tsv
case_ "GLUE label outside the task's labels" 1 "train.tsv:2" -- "$MEFT" tokenize --tokenizer wp --data glue --task sst2 --split train
case_ "tokenize: --text that is not UTF-8" 1 "--text: byte 4" -- "$MEFT" tokenize --tokenizer wp --text $'caf\xe9'
case_ "tokenize: --data without --task" 1 "--task" -- "$MEFT" tokenize --tokenizer wp --data glue
mkdir -p qa/ARC-Easy
printf '%s\n' '{"id": "q1", "question": {"stem": "Which?", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "A"}' \
    '{"id": "q2", "question": {"stem": "Which?", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "C"}' >qa/ARC-Easy/train.jsonl
cp qa/ARC-Easy/train.jsonl qa/ARC-Easy/dev.jsonl
experiment qa.json "{\"backbone\": {\"arch\": \"bert\", \"preset\": \"tiny\", \"tokenizer\": \"$TMP/wp\"}, \"task\": {\"name\": \"arc_easy\", \"data_dir\": \"$TMP/qa\"}, $TRAIN}"
case_ "QA answer key that is none of the choices" 1 "train.jsonl:2" -- "$MEFT" run qa.json
cp -r bpe bigvocab && /usr/bin/python3 -c 'import json; v = {("t%d" % i): i for i in range(39996)}; v.update({"<s>": 39995, "</s>": 39996, "<pad>": 39997, "<unk>": 39998, "<mask>": 39999}); json.dump(v, open("bigvocab/vocab.json", "w"))'
printf '#version: 0.2\n' >bigvocab/merges.txt
experiment bigvocab.json "{\"backbone\": {\"arch\": \"bert\", \"preset\": \"tiny\", \"tokenizer\": \"$TMP/bigvocab\"}, \"task\": {\"name\": \"sst2\", \"data_dir\": \"$TMP/glue\"}, $TRAIN}"
printf 'sentence\tlabel\nfine\t0\n' >glue/train.tsv
printf 'sentence\tlabel\nfine\t1\n' >glue/dev.tsv
case_ "a tokenizer larger than the model's vocabulary" 1 "the tokenizer has 40000 tokens" -- "$MEFT" run bigvocab.json

# ---- the database and stored runs --------------------------------------------------------------------
"$MEFT" run ok.json --quiet >/dev/null 2>&1
last=$("$MEFT" runs list | tail -n 1 | awk -F'|' '{print $2+0}')
case_ "runs show: a run that does not exist" 1 "no run 999" -- "$MEFT" runs show 999
case_ "resume a finished run" 1 "only cancelled, interrupted or failed runs resume" -- "$MEFT" resume "$last"
echo "not a database" >notadb.sqlite
case_ "runs list on a file that is not a database" 1 "notadb.sqlite" -- "$MEFT" runs --db notadb.sqlite list
case_ "runs export of an unknown format" 2 "--format" -- "$MEFT" runs export "$last" --format xlsx
case_ "export into a folder that holds a model" 1 "already holds a model" -- "$MEFT" export "$last" --out good
case_ "export --adapter of a full fine-tuning run" 1 "PEFT" -- "$MEFT" export "$last" --adapter --out adapter-full
case_ "export of a run that failed before its first checkpoint" 1 "has no checkpoint" -- "$MEFT" export 1 --db failed.sqlite --out failed-model
experiment cancel.json "{$TOY, \"training\": {\"max_steps\": 100000, \"batch_size\": 8, \"max_seq_length\": 32, \"checkpoint_every\": 2}}"
"$MEFT" run cancel.json --quiet >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do "$MEFT" runs list --status running 2>/dev/null | grep -q '|' && break; sleep 0.05; done
sleep 1
kill -INT $pid
wait $pid
cid=$("$MEFT" runs list --status cancelled | tail -n 1 | awk -F'|' '{print $2+0}')
ck=$("$MEFT" runs show "$cid" | sed -n 's/^  "uuid": "\([^"]*\)",\{0,1\}$/\1/p')
mv "checkpoints/$ck.safetensors" moved.safetensors
case_ "resume without the run's checkpoint" 1 "has no checkpoint" -- "$MEFT" resume "$cid"
"$MEFT" run cancel.json --db other.sqlite --quiet >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do "$MEFT" runs --db other.sqlite list --status running 2>/dev/null | grep -q '|' && break; sleep 0.05; done
sleep 1
kill -INT $pid
wait $pid
other=$("$MEFT" runs --db other.sqlite show 1 | sed -n 's/^  "uuid": "\([^"]*\)",\{0,1\}$/\1/p')
cp "checkpoints/$other.safetensors" "checkpoints/$ck.safetensors"
case_ "resume from another database's checkpoint" 1 "belongs to run $other" -- "$MEFT" resume "$cid"

if [[ $TABLE == --table ]]; then
    echo "| # | bad input | exit | message (first line) |"
    echo "|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
fi
if ((failures > 0)); then
    echo "FAIL: $failures of $n bad inputs were not handled as required" >&2
    exit 1
fi
echo "all $n bad inputs handled: each a clear message and the right exit status"
