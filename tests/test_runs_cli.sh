#!/usr/bin/env bash
# meft run and meft runs against the experiment database: runs are recorded; a bad experiment
# records nothing; Ctrl-C marks a run cancelled; kill -9 leaves a consistent database whose run
# reads "interrupted" when it is next opened.
# Usage: test_runs_cli.sh MEFT
set -euo pipefail
MEFT="$1"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DB="$TMP/runs.sqlite"
fail() { echo "FAIL: $*" >&2; exit 1; }
count_runs() { "$MEFT" runs --db "$DB" list | tail -n +3 | grep -c '^|' || true; }
status_of() { "$MEFT" runs --db "$DB" list | awk -F'|' -v id="$1" '$2+0 == id {gsub(/ /, "", $4); print $4}'; }

experiment() {  # experiment NAME MAX_STEPS
    cat >"$TMP/$1.json" <<JSON
{"name": "$1", "tags": ["test", "cli"], "notes": "from test_runs_cli",
 "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 400, "dev_examples": 50},
 "training": {"max_steps": $2, "batch_size": 8, "max_seq_length": 32}}
JSON
}

echo "check: a run is recorded with its steps and final metrics"
experiment quick 5
"$MEFT" run "$TMP/quick.json" --db "$DB" --quiet >/dev/null
[[ "$(status_of 1)" == finished ]] || fail "run 1 is '$(status_of 1)', expected finished"
"$MEFT" runs --db "$DB" show 1 >"$TMP/show.json"
grep -q '"steps_recorded": 5' "$TMP/show.json" || fail "run 1 does not have 5 recorded steps"
grep -q '"accuracy"' "$TMP/show.json" || fail "run 1 has no accuracy"
[[ $("$MEFT" runs --db "$DB" list --tag cli | tail -n +3 | wc -l) -eq 1 ]] || fail "tag filter"
/usr/bin/python3 - "$DB" <<'PY' || fail "run 1 lacks planned and measured per-layer memory"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
kinds = dict(con.execute("select kind, count(*) from layer_memory where run_id = 1 group by kind").fetchall())
assert kinds.get("measured", 0) == kinds.get("planned", 0) == 4, kinds   # embeddings, 2 layers, head
PY

echo "check: an invalid experiment is rejected before any run row exists"
echo '{"backbone": {"preset": "tiny"}, "training": {"lerning_rate": 1}}' >"$TMP/bad.json"
set +e; "$MEFT" run "$TMP/bad.json" --db "$DB" --quiet >/dev/null 2>&1; rc=$?; set -e
[[ $rc -eq 1 ]] || fail "bad experiment exited $rc, expected 1"
[[ $(count_runs) -eq 1 ]] || fail "a bad experiment created a run row"

echo "check: Ctrl-C stops after the current step and marks the run cancelled"
experiment long 100000
"$MEFT" run "$TMP/long.json" --db "$DB" --quiet >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [[ "$(status_of 2)" == running ]] && break; sleep 0.1; done
sleep 1
kill -INT "$pid"
wait "$pid" || fail "meft run exited non-zero after Ctrl-C"
[[ "$(status_of 2)" == cancelled ]] || fail "run 2 is '$(status_of 2)', expected cancelled"

echo "check: kill -9 leaves a consistent database and an interrupted run"
"$MEFT" run "$TMP/long.json" --db "$DB" --quiet >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [[ "$(status_of 3)" == running ]] && break; sleep 0.1; done
sleep 1.5
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[[ "$(status_of 3)" == interrupted ]] || fail "run 3 is '$(status_of 3)', expected interrupted"
/usr/bin/python3 - "$DB" <<'PY' || fail "integrity check failed"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
n = con.execute("select count(*) from steps where run_id = 3").fetchone()[0]
assert n > 0, "no committed steps of the killed run"
steps = [r[0] for r in con.execute("select step from steps where run_id = 3 order by step")]
assert steps == list(range(1, n + 1)), "committed steps have gaps"
PY

echo "check: runs delete"
"$MEFT" runs --db "$DB" delete 2 2>/dev/null
[[ $(count_runs) -eq 2 ]] || fail "delete left $(count_runs) runs"

echo "check: a seed list runs once per seed and reports mean ± std"
cat >"$TMP/sweep.json" <<JSON
{"name": "sweep", "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 100, "dev_examples": 20},
 "training": {"max_steps": 2, "batch_size": 8, "max_seq_length": 32, "seed": [1, 2]}}
JSON
out=$("$MEFT" run "$TMP/sweep.json" --db "$DB" --quiet 2>/dev/null)
[[ "$out" == *"| (all) | 2 | accuracy | "*"±"* ]] || fail "no mean ± std over the two seeds: $out"
[[ $(count_runs) -eq 4 ]] || fail "the sweep recorded $(( $(count_runs) - 2 )) runs, expected 2"
n=$("$MEFT" runs --db "$DB" list --filter "config.training.seed = 2 and experiment = sweep" | tail -n +3 | grep -c '^|' || true)
[[ $n -eq 1 ]] || fail "--filter on a config key found $n runs, expected 1"
set +e; "$MEFT" runs --db "$DB" list --filter "bogus > 1" >/dev/null 2>"$TMP/err"; rc=$?; set -e
[[ $rc -eq 1 ]] && grep -q "unknown key 'bogus'" "$TMP/err" || fail "a bad --filter was not named (rc $rc)"

echo "check: runs compare shows the differing config keys; runs export pools seeds"
read -r s1 s2 < <("$MEFT" runs --db "$DB" list | tail -2 | awk -F'|' '{printf "%d ", $2} END {print ""}')
"$MEFT" runs --db "$DB" compare "$s1" "$s2" | grep -q '^| training.seed | 1 | 2 |' || fail "compare does not show the seeds"
"$MEFT" runs --db "$DB" export "$s1" "$s2" --format csv | grep -q '^full,,toy,accuracy,2,' || fail "export did not pool the two seeds"
"$MEFT" runs --db "$DB" export "$s1" "$s2" --format latex | grep -q 'textbf' || fail "latex export lacks the best mark"
set +e; "$MEFT" runs --db "$DB" export 99 >/dev/null 2>&1; rc=$?; set -e
[[ $rc -eq 1 ]] || fail "export of a missing run exited $rc, expected 1"

echo "check: runs that differ in more than the seed are separate rows, labelled, and one run shows no ± 0.0"
cat >"$TMP/rates.json" <<JSON
{"name": "rates", "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 100, "dev_examples": 20},
 "training": {"max_steps": 2, "batch_size": 8, "max_seq_length": 32, "seed": 1, "learning_rate": [0.001, 0.002]}}
JSON
out=$("$MEFT" run "$TMP/rates.json" --db "$DB" --quiet 2>/dev/null)
[[ "$out" == *"| training.learning_rate=0.001 | 1 | accuracy | "* && "$out" == *"| training.learning_rate=0.002 | 1 | accuracy | "* ]] ||
    fail "the sweep summary does not label the two learning rates: $out"
! grep -q '^| training.learning_rate=.*±' <<<"$out" || fail "the sweep summary shows a spread for single runs: $out"
read -r r1 r2 < <("$MEFT" runs --db "$DB" list | grep '| rates ' | awk -F'|' '{printf "%d ", $2} END {print ""}')
csv=$("$MEFT" runs --db "$DB" export "$r1" "$r2" --format csv)
[[ $(grep -c '^full,training.learning_rate=0.00[12],toy,accuracy,1,[0-9.]*,,' <<<"$csv") -eq 2 ]] ||
    fail "export did not give one labelled row per learning rate with an empty std: $csv"
md=$("$MEFT" runs --db "$DB" export "$r1" "$r2" --format markdown)
[[ "$md" == *"| full (training.learning_rate=0.001) | "* && "$md" != *"±"* ]] || fail "markdown export: $md"

echo "check: a cancelled run resumes from its checkpoint and finishes"
cat >"$TMP/resumable.json" <<JSON
{"name": "resumable", "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 200, "dev_examples": 20},
 "training": {"max_steps": 300, "batch_size": 8, "max_seq_length": 32, "checkpoint_every": 5}}
JSON
"$MEFT" run "$TMP/resumable.json" --db "$DB" --quiet >/dev/null 2>&1 &
pid=$!
rid=$(( $(count_runs) + 0 ))
for _ in $(seq 100); do "$MEFT" runs --db "$DB" list --status running | grep -q resumable && break; sleep 0.1; done
sleep 1
kill -INT "$pid"
wait "$pid" || true
rid=$("$MEFT" runs --db "$DB" list | grep resumable | awk -F'|' '{print $2+0}')
[[ "$(status_of "$rid")" == cancelled ]] || fail "run $rid is '$(status_of "$rid")', expected cancelled"
uuid=$("$MEFT" runs --db "$DB" show "$rid" | sed -n 's/^  "uuid": "\([^"]*\)",\{0,1\}$/\1/p')
[[ -n $uuid && -f "$TMP/checkpoints/$uuid.safetensors" ]] || fail "no checkpoint named by run $rid's UUID ($uuid)"
"$MEFT" resume "$rid" --db "$DB" --quiet >/dev/null 2>&1 || fail "meft resume failed"
[[ "$(status_of "$rid")" == finished ]] || fail "resumed run $rid is '$(status_of "$rid")', expected finished"
"$MEFT" runs --db "$DB" show "$rid" | grep -q '"steps_recorded": 300' || fail "the resumed run does not have 300 steps"
set +e; "$MEFT" resume "$rid" --db "$DB" >/dev/null 2>&1; rc=$?; set -e
[[ $rc -eq 1 ]] || fail "resuming a finished run exited $rc, expected 1"

echo "check: --dry-run lists every expansion and records nothing; --set overrides before sweeps"
before=$(count_runs)
out=$("$MEFT" run "$TMP/sweep.json" --db "$DB" --dry-run --set 'training.seed=[1,2,3]' --set training.learning_rate=0.002)
[[ "$out" == *"3 runs; every one validated, nothing recorded"* ]] || fail "dry run did not list 3 runs: $out"
[[ "$out" == *"| 3 | training.seed=3 | full | toy | 0.002 |"* ]] || fail "dry run row lacks the overrides: $out"
[[ $(count_runs) -eq $before ]] || fail "a dry run recorded runs"
set +e; "$MEFT" run "$TMP/sweep.json" --db "$DB" --dry-run --set training.batch_size=0 >/dev/null 2>"$TMP/err"; rc=$?; set -e
[[ $rc -eq 1 ]] && grep -q "'training.batch_size'" "$TMP/err" || fail "a bad override was not named (rc $rc): $(cat "$TMP/err")"
set +e; "$MEFT" run "$TMP/sweep.json" --db "$DB" --backend cuda >/dev/null 2>"$TMP/err"; rc=$?; set -e
if [[ $rc -ne 0 ]]; then
    grep -q 'backend "cuda" cannot be used' "$TMP/err" || fail "--backend cuda failed without a reason: $(cat "$TMP/err")"
    [[ $(count_runs) -eq $before ]] || fail "an unusable backend recorded runs"
fi

echo "check: a NaN loss fails the run with the step and the tensor"
"$MEFT" init-model --preset tiny --out "$TMP/nan_model" >/dev/null
/usr/bin/python3 - "$TMP/nan_model/model.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
info = json.loads(data[8:8 + n])["bert.encoder.layer.1.attention.output.dense.weight"]
at = 8 + n + info["data_offsets"][0] + 4 * 7
data[at:at + 4] = struct.pack("<f", float("nan"))
open(path, "wb").write(bytes(data))
PY
cat >"$TMP/nan.json" <<JSON
{"name": "nan", "backbone": {"arch": "bert", "path": "$TMP/nan_model"},
 "task": {"name": "toy", "train_examples": 100, "dev_examples": 20},
 "training": {"max_steps": 5, "batch_size": 8, "max_seq_length": 32}}
JSON
set +e; "$MEFT" run "$TMP/nan.json" --db "$DB" --quiet >/dev/null 2>"$TMP/err"; rc=$?; set -e
[[ $rc -eq 1 ]] || fail "a diverging run exited $rc, expected 1"
grep -q "step 1: the loss is nan; first non-finite tensor: parameter 'bert.encoder.layer.1.attention.output.dense.weight'" "$TMP/err" || fail "no tensor named: $(cat "$TMP/err")"
nid=$("$MEFT" runs --db "$DB" list | grep '| nan ' | awk -F'|' '{print $2+0}')
[[ "$(status_of "$nid")" == failed ]] || fail "the diverging run is '$(status_of "$nid")', expected failed"

echo "check: a read-only database (file and folder) is listed, shown, compared and exported"
# As root, file permissions do not bind: the read-only commands run as nobody (setpriv).
as_reader() { if [[ $(id -u) -eq 0 ]]; then setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; else "$@"; fi; }
RO=$(mktemp -d "${TMPDIR:-/tmp}/meft_ro.XXXXXX")
cp "$DB" "$RO/runs.sqlite"  # the database was closed cleanly: no -wal file to copy
[[ ! -e $DB-wal ]] || cp "$DB-wal" "$RO/runs.sqlite-wal"
chmod 0444 "$RO/runs.sqlite"
chmod 0555 "$RO"
ro_ids=$("$MEFT" runs --db "$DB" list --status finished | tail -n +3 | awk -F'|' '{print $2+0}' | head -2 | tr '\n' ' ')
set +e
as_reader "$MEFT" runs --db "$RO/runs.sqlite" list >"$TMP/ro_list" 2>"$TMP/err"; rc_list=$?
as_reader "$MEFT" runs --db "$RO/runs.sqlite" show $ro_ids >/dev/null 2>>"$TMP/err"; rc_show=$?
as_reader "$MEFT" runs --db "$RO/runs.sqlite" compare $ro_ids >/dev/null 2>>"$TMP/err"; rc_compare=$?
as_reader "$MEFT" runs --db "$RO/runs.sqlite" export $ro_ids --format csv >/dev/null 2>>"$TMP/err"; rc_export=$?
as_reader "$MEFT" runs --db "$RO/runs.sqlite" delete ${ro_ids%% *} >/dev/null 2>"$TMP/ro_delete"; rc_delete=$?
set -e
chmod 0755 "$RO"; rm -rf "$RO"
[[ $rc_list -eq 0 && $rc_show -eq 0 && $rc_compare -eq 0 && $rc_export -eq 0 ]] ||
    fail "read-only database: list $rc_list, show $rc_show, compare $rc_compare, export $rc_export: $(cat "$TMP/err")"
[[ $(tail -n +3 "$TMP/ro_list" | grep -c '^|') -eq $(count_runs) ]] || fail "the read-only listing lacks runs: $(cat "$TMP/ro_list")"
[[ $rc_delete -eq 1 ]] || fail "deleting from a read-only database exited $rc_delete, expected 1"
grep -q "runs.sqlite" "$TMP/ro_delete" || fail "the refused delete does not name the database: $(cat "$TMP/ro_delete")"

echo "OK: all runs CLI checks passed"
