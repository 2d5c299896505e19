#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# test_sweep_gather.sh — a sweep's expansions run one per shard database, gathered into one
# (ctest label cli):
#
#   test_sweep_gather.sh MEFT_BINARY
#
# `meft run --only N` runs expansion N alone (out of range: exit 1 naming the count); each of a
# 2-expansion toy grid goes to its own shard; `meft sweep gather SWEEP_DIR --db MAIN` adds both
# runs with their metrics equal to the shards'; a second gather adds nothing; a folder without
# shards is an error naming it. `meft sweep submit --local 2` runs a grid's expansions as child
# processes into shards and gathers them; a diverging expansion fails the sweep (exit 1) naming it
# with its log's last lines while the other is gathered; a used sweep folder and a submit without
# --slurm or --local are refused. `meft sweep status` of a finished local sweep shows each expansion
# finished and gathered; the sweep is listed in its database. A local sweep stopped by Ctrl-C
# mid-run reports the stopped expansion, and `meft sweep resume` finishes it (its one run resumed).
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 MEFT_BINARY" >&2; exit 2; }
MEFT=$1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meft_gather_test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/cli_helpers.sh"

cat >"$TMP/grid.json" <<'JSON'
{"name": "grid", "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 64, "dev_examples": 16, "max_length": 16},
 "method": {"name": "lora"},
 "training": {"max_steps": 4, "batch_size": 8, "max_seq_length": 16, "learning_rate": [1e-3, 2e-3]}}
JSON
mkdir -p "$TMP/sweep/shards"

expect_rc 1 "--only past the grid" -- "$MEFT" run "$TMP/grid.json" --only 3 --db "$TMP/x.sqlite" --quiet
grep -q -- "--only 3: .*grid.json expands into 2 runs (1..2" "$TMP/err" || fail "the --only error does not name the grid's size: $(cat "$TMP/err")"
[[ ! -e "$TMP/x.sqlite" ]] || fail "a refused --only created a database"

for i in 1 2; do
    expect_rc 0 "expansion $i into its own shard" -- "$MEFT" run "$TMP/grid.json" --only $i --db "$TMP/sweep/shards/$i.sqlite" --quiet
done
check "each shard holds one run, with its expansion's learning rate"
for i in 1 2; do
    "$MEFT" runs --db "$TMP/sweep/shards/$i.sqlite" show 1 >"$TMP/show$i.json"
    lr=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['config']['training']['learning_rate'])" "$TMP/show$i.json")
    want=$([[ $i -eq 1 ]] && echo 0.001 || echo 0.002)
    [[ "$lr" == "$want" ]] || fail "shard $i ran learning rate $lr, expected $want"
done

expect_rc 0 "gather the sweep" -- "$MEFT" sweep gather "$TMP/sweep" --db "$TMP/main.sqlite"
grep -q "gathered 2 runs from 2 shards" "$TMP/out" || fail "gather did not report 2 runs: $(cat "$TMP/out")"
check "the gathered runs' metrics are the shards'"
for i in 1 2; do
    "$MEFT" runs --db "$TMP/main.sqlite" show $i >"$TMP/main$i.json"
    python3 - "$TMP/show$i.json" "$TMP/main$i.json" <<'PY' || fail "run $i differs after gathering"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["uuid"] == b["uuid"], (a["uuid"], b["uuid"])
assert a["final_metrics"] == b["final_metrics"]
assert a["config"] == b["config"]
assert a["steps_recorded"] == b["steps_recorded"] == 4
assert a["evaluations"] == b["evaluations"]
PY
done
expect_rc 0 "gather again" -- "$MEFT" sweep gather "$TMP/sweep" --db "$TMP/main.sqlite"
grep -q "gathered 0 runs from 2 shards .*; 2 already there" "$TMP/out" || fail "a second gather added runs: $(cat "$TMP/out")"
mkdir -p "$TMP/empty"
expect_rc 1 "a folder without shards" -- "$MEFT" sweep gather "$TMP/empty" --db "$TMP/main.sqlite"
grep -q "no .sqlite shards" "$TMP/err" || fail "the empty folder's error: $(cat "$TMP/err")"

expect_rc 0 "submit --local 2" -- "$MEFT" sweep submit "$TMP/grid.json" --local 2 --dir "$TMP/sw" --db "$TMP/local.sqlite"
grep -q "gathered 2 runs from 2 shards" "$TMP/out" || fail "submit did not gather 2 runs: $(cat "$TMP/out")"
for f in sweep.json shards/1.sqlite shards/2.sqlite logs/1.log logs/2.log; do
    [[ -s "$TMP/sw/$f" ]] || fail "the sweep folder lacks $f"
done
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['expansions'] == 2 and j['local']['parallel'] == 2 and j['mode'] == 'local', j" "$TMP/sw/sweep.json" \
    || fail "sweep.json does not record the grid"
expect_rc 0 "status of the local sweep" -- "$MEFT" sweep status "$TMP/sw"
[[ $(grep -c '| finished | 4 steps | yes |' "$TMP/out") -eq 2 ]] || fail "local sweep status: $(cat "$TMP/out")"
expect_rc 0 "the database lists the local sweep" -- "$MEFT" sweep list --db "$TMP/local.sqlite"
grep -q "| $TMP/sw | grid | local |  | 2 |" "$TMP/out" || fail "sweep list: $(cat "$TMP/out")"
expect_rc 1 "the same sweep folder again" -- "$MEFT" sweep submit "$TMP/grid.json" --local 2 --dir "$TMP/sw" --db "$TMP/local.sqlite"
grep -q "already holds a sweep" "$TMP/err" || fail "a used sweep folder: $(cat "$TMP/err")"
expect_rc 1 "submit without --local" -- "$MEFT" sweep submit "$TMP/grid.json" --dir "$TMP/sw3"
grep -q "say where the tasks run: --slurm (a Slurm job array) or --local N" "$TMP/err" || fail "submit without a place: $(cat "$TMP/err")"

check "a local sweep stopped mid-run resumes: each expansion's one run finishes"
sed 's/"max_steps": 4/"max_steps": 3000, "checkpoint_every": 100/' "$TMP/grid.json" >"$TMP/long.json"
"$MEFT" sweep submit "$TMP/long.json" --local 2 --dir "$TMP/sr" --db "$TMP/resume.sqlite" >"$TMP/sr.out" 2>"$TMP/sr.err" &
submit=$!
for _ in $(seq 300); do
    [[ $("$MEFT" runs --db "$TMP/sr/shards/2.sqlite" list 2>/dev/null | awk -F'|' 'NR > 2 {gsub(/ /, "", $7); print $7; exit}') -ge 100 ]] 2>/dev/null && break
    sleep 0.1
done
kill -INT "$submit"
rc=0; wait "$submit" || rc=$?
[[ $rc -eq 1 ]] || fail "a stopped local sweep exited $rc, expected 1: $(cat "$TMP/sr.err")"
grep -q "stopped 2/2: training.learning_rate=0.002 — at step [0-9]*, resumable (meft sweep resume)" "$TMP/sr.err" ||
    fail "the stopped expansion is not reported as stopped: $(cat "$TMP/sr.err")"
expect_rc 0 "status of the stopped sweep" -- "$MEFT" sweep status "$TMP/sr"
grep -q "| 2 | training.learning_rate=0.002 | cancelled | stopped after step [0-9]* (resumable) |" "$TMP/out" ||
    fail "status of the stopped sweep: $(cat "$TMP/out")"
expect_rc 0 "resume it" -- "$MEFT" sweep resume "$TMP/sr"
grep -q "resuming it from its checkpoint" "$TMP/sr/logs/2.log" || fail "expansion 2 did not resume: $(cat "$TMP/sr/logs/2.log")"
for i in 1 2; do
    [[ $("$MEFT" runs --db "$TMP/sr/shards/$i.sqlite" list | grep -c '| finished .* | 3000 ') -eq 1 ]] ||
        fail "shard $i does not hold one finished 3000-step run: $("$MEFT" runs --db "$TMP/sr/shards/$i.sqlite" list)"
done
grep -q "gathered .* from 2 shards into $TMP/resume.sqlite" "$TMP/out" || fail "resume did not gather: $(cat "$TMP/out")"
[[ $("$MEFT" runs --db "$TMP/resume.sqlite" list | grep -c '| finished ') -eq 2 ]] || fail "the database lacks the two runs"
expect_rc 1 "resume a sweep that is not a folder" -- "$MEFT" sweep resume "$TMP/nowhere"
grep -q "not a sweep folder" "$TMP/err" || fail "resume of a missing sweep: $(cat "$TMP/err")"

cat >"$TMP/bad.json" <<'JSON'
{"name": "bad", "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 64, "dev_examples": 16, "max_length": 16},
 "method": {"name": ["lora", "meft1"]},
 "training": {"max_steps": 8, "batch_size": 8, "max_seq_length": 16, "learning_rate": 10, "max_grad_norm": 0}}
JSON
expect_rc 1 "a sweep with a diverging expansion" -- "$MEFT" sweep submit "$TMP/bad.json" --local 2 --dir "$TMP/swb" --db "$TMP/bad.sqlite"
grep -q "FAILED 2/2: method.name=meft1" "$TMP/err" || fail "the failed expansion is not named: $(cat "$TMP/err")"
grep -q "the run diverged" "$TMP/err" || fail "the failed expansion's log lines are not shown: $(cat "$TMP/err")"
grep -q "gathered 1 run from 2 shards" "$TMP/out" || fail "the finished expansion was not gathered: $(cat "$TMP/out")"
echo "PASS"
