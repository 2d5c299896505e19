#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# meft run on a model folder whose files are damaged: exit status 1 (not a crash), an error that
# names the file, and no run or experiment row in the database — meft run loads the model before
# it records anything. The same model folder intact runs and is recorded.
# Usage: test_bad_checkpoint_cli.sh MEFT
set -euo pipefail
MEFT="$1"
PY=$(command -v python3 || true)
[[ -n "$PY" ]] || { echo "SKIPPED: python3 not found (needed to read the database)"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DB="$TMP/runs.sqlite"
fail() { echo "FAIL: $*" >&2; exit 1; }

# "RUNS EXPERIMENTS": the row counts in $DB ("0 0" when meft never created it).
rows() {
    "$PY" - "$DB" <<'PY'
import os, sqlite3, sys
if not os.path.exists(sys.argv[1]):
    print("0 0")
    sys.exit(0)
con = sqlite3.connect(sys.argv[1])
tables = {r[0] for r in con.execute("select name from sqlite_master where type = 'table'")}
count = lambda t: con.execute(f"select count(*) from {t}").fetchone()[0] if t in tables else 0
print(count("runs"), count("experiments"))
PY
}

experiment() {  # experiment NAME MODEL_DIR
    cat >"$TMP/$1.json" <<JSON
{"name": "$1", "backbone": {"arch": "bert", "path": "$2"},
 "task": {"name": "toy", "train_examples": 64, "dev_examples": 16},
 "training": {"max_steps": 2, "batch_size": 8, "max_seq_length": 16}}
JSON
}

# expect_rejected NAME MODEL_DIR FILE: meft run exits 1 naming FILE, and records nothing new.
expect_rejected() {
    local before after rc
    before=$(rows)
    experiment "$1" "$2"
    set +e
    "$MEFT" run "$TMP/$1.json" --db "$DB" --quiet >/dev/null 2>"$TMP/$1.err"
    rc=$?
    set -e
    [[ $rc -eq 1 ]] || fail "$1: meft run exited $rc, expected 1: $(cat "$TMP/$1.err")"
    grep -qF "$3" "$TMP/$1.err" || fail "$1: the error does not name $3: $(cat "$TMP/$1.err")"
    after=$(rows)
    [[ "$after" == "$before" ]] || fail "$1: rows (runs experiments) went from $before to $after"
    echo "  $1: $(head -c 300 "$TMP/$1.err")"
}

# A small model (2 layers x 128, a 2100-token vocabulary: enough for the toy task).
seq 0 2099 | sed 's/^/tok/' >"$TMP/vocab.txt"
"$MEFT" init-model --arch bert --preset tiny --vocab "$TMP/vocab.txt" --labels 2 --out "$TMP/good" >/dev/null
WEIGHTS="$TMP/good/model.safetensors"
size=$(stat -c %s "$WEIGHTS")
hlen=$("$PY" -c 'import struct, sys; print(struct.unpack("<Q", open(sys.argv[1], "rb").read(8))[0])' "$WEIGHTS")

echo "check: a truncated model.safetensors is an error naming it, and records no run"
for cut in 0 5 $((8 + hlen / 2)) $((8 + hlen + 100)) $((size - 1)); do
    d="$TMP/cut$cut"
    mkdir -p "$d"
    cp "$TMP/good/config.json" "$d/"
    head -c "$cut" "$WEIGHTS" >"$d/model.safetensors"
    expect_rejected "cut$cut" "$d" "$d/model.safetensors"
done
[[ "$(rows)" == "0 0" ]] || fail "rows after the truncated checkpoints: $(rows), expected 0 0"

echo "check: a damaged config.json and a missing shard are errors naming the file"
d="$TMP/badconfig"
mkdir -p "$d"
cp "$WEIGHTS" "$d/"
sed 's/"hidden_size": 128/"hidden_size": "128"/' "$TMP/good/config.json" >"$d/config.json"
grep -q '"hidden_size": "128"' "$d/config.json" || fail "could not damage config.json"
expect_rejected badconfig "$d" "$d/config.json"
d="$TMP/noshard"
mkdir -p "$d"
cp "$TMP/good/config.json" "$d/"
echo '{"weight_map": {"bert.pooler.dense.bias": "model-00002-of-00002.safetensors"}}' >"$d/model.safetensors.index.json"
expect_rejected noshard "$d" "$d/model.safetensors.index.json"

echo "check: the intact model runs and is recorded; a damaged one afterwards adds nothing"
experiment intact "$TMP/good"
"$MEFT" run "$TMP/intact.json" --db "$DB" --quiet >/dev/null 2>"$TMP/intact.err" || fail "intact model: $(cat "$TMP/intact.err")"
[[ "$(rows)" == "1 1" ]] || fail "rows after the intact run: $(rows), expected 1 1"
expect_rejected cut_again "$TMP/cut$((size - 1))" "model.safetensors"
[[ $("$MEFT" runs --db "$DB" list | grep -c 'intact') -eq 1 ]] || fail "meft runs list does not show exactly the intact run"
echo "PASS"
