#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# test_sweep_slurm.sh — a sweep on a real one-node Slurm cluster (ctest label slurm):
#
#   test_sweep_slurm.sh MEFT_BINARY
#
# Starts munged, slurmctld and slurmd from Debian's packages (tests/slurm_cluster.sh; 2 CPUs),
# submits a 4-expansion toy grid with `meft sweep submit --slurm`, and while it runs requeues one
# task with `scontrol requeue` (as preemption does) and sends another the time-limit warning
# (SIGUSR1 to its batch script, as --signal does), each mid-run. It waits (bounded) for the sweep,
# then checks: `meft sweep status` shows 3 finished and the diverging expansion failed with its log's
# last lines; both interrupted tasks ran a second attempt that resumed their run from its checkpoint
# to the same final metrics as the same expansion run uninterrupted; `meft sweep gather` adds the
# three finished runs with their shards' metrics and a second gather adds nothing; `meft sweep list`
# shows the sweep; `meft sweep cancel` stops a running sweep (tasks cancelled, resumable) and `meft
# sweep resume` submits it again (a new job whose task resumes its run). Slurm is stopped again. Without root or the packages it skips (exit 77), saying why.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 MEFT_BINARY" >&2; exit 2; }
MEFT=$1
source "$(dirname "${BASH_SOURCE[0]}")/slurm_cluster.sh"
why=$(slurm_cluster_missing)
if [[ -n $why ]]; then echo "SKIPPED: no Slurm cluster for this test: $why"; exit 77; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meft_slurm_test.XXXXXX")
trap 'slurm_cluster_stop; rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/cli_helpers.sh"
chmod 755 "$TMP"

check "a one-node Slurm cluster starts"
slurm_cluster_start "$TMP/slurm" || fail "the Slurm cluster did not start"

# Expansions 1-3 train 1500 steps (a few seconds each, 1 CPU); expansion 4 diverges (learning rate
# 10, no clipping) and fails.
cat >"$TMP/grid.json" <<'JSON'
{"name": "slurmgrid", "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 64, "dev_examples": 16, "max_length": 16},
 "method": {"name": "meft1"},
 "training": {"max_steps": 1500, "batch_size": 8, "max_seq_length": 16, "max_grad_norm": 0,
              "checkpoint_every": 50, "learning_rate": [0.001, 0.002, 0.003, 10]}}
JSON
SW=$TMP/sweep
expect_rc 0 "--show-script prints the job array and writes nothing" -- \
    "$MEFT" sweep submit "$TMP/grid.json" --slurm --dir "$SW" --db "$TMP/main.sqlite" --time 00:30:00 --show-script
grep -q '^#SBATCH --array=1-4$' "$TMP/out" || fail "the script's array: $(grep SBATCH "$TMP/out")"
grep -q '^#SBATCH --requeue$' "$TMP/out" || fail "the script does not ask for requeueing"
[[ ! -e $SW ]] || fail "--show-script created the sweep folder"

expect_rc 0 "submit the grid to Slurm" -- \
    "$MEFT" sweep submit "$TMP/grid.json" --slurm --dir "$SW" --db "$TMP/main.sqlite" --time 00:30:00
job=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['slurm']['job_id'])" "$SW/sweep.json")
[[ $job =~ ^[0-9]+$ ]] || fail "sweep.json has no job id: $(cat "$SW/sweep.json")"
grep -q "Slurm job $job, 4 array tasks" "$TMP/out" || fail "submit's report: $(cat "$TMP/out")"
for f in sweep.sbatch experiment.json; do [[ -s $SW/$f ]] || fail "the sweep folder lacks $f"; done

# The step a task's run has reached (0 before it records one).
steps_of() { "$MEFT" runs --db "$SW/shards/$1.sqlite" list 2>/dev/null | awk -F'|' 'NR > 2 {gsub(/ /, "", $7); print $7; exit}'; }
wait_steps() {  # wait_steps TASK N: until task TASK's run has recorded N steps (bounded)
    local i
    for i in $(seq 600); do
        [[ $(steps_of "$1" || true) -ge $2 ]] 2>/dev/null && return 0
        sleep 0.1
    done
    fail "task $1 did not reach step $2 in 60 s: $(squeue -r 2>&1); $(tail -n 5 "$SW/logs/$1.log" 2>/dev/null)"
}

check "task 2 requeued mid-run (scontrol requeue, as preemption)"
wait_steps 2 200
scontrol requeue "${job}_2" || fail "scontrol requeue ${job}_2 failed"
check "task 1 given the time-limit warning mid-run (SIGUSR1 to its batch script)"
wait_steps 1 200
script_pid=""
for p in $(pgrep -f "$TMP/slurm/spool/.*slurm_script" || true); do
    env_of=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null || true)
    grep -qx "SLURM_ARRAY_TASK_ID=1" <<<"$env_of" && grep -qx "SLURM_ARRAY_JOB_ID=$job" <<<"$env_of" && script_pid=$p
done
[[ -n $script_pid ]] || fail "task 1's batch script was not found"
kill -USR1 "$script_pid"

check "the sweep ends (bounded: 240 s)"
for i in $(seq 240); do
    "$MEFT" sweep status "$SW" --json >"$TMP/status.json"
    python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['counts']; sys.exit(0 if not (c.get('queued') or c.get('running')) else 1)" \
        "$TMP/status.json" && break
    sleep 1
done
python3 - "$TMP/status.json" <<'PY' || fail "the sweep's final status: $(cat "$TMP/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
states = [e["state"] for e in s["expansions"]]
assert states == ["finished", "finished", "finished", "failed"], states
failed = s["expansions"][3]
assert "diverged" in failed["detail"] or "diverged" in failed["log_tail"], failed
assert failed["log_tail"].strip(), failed
PY
expect_rc 0 "meft sweep status (table)" -- "$MEFT" sweep status "$SW"
grep -q "^1 failed, 3 finished$" "$TMP/out" || fail "status does not count the failure: $(cat "$TMP/out")"
grep -q "expansion 4 (training.learning_rate=10) failed" "$TMP/out" || fail "status does not name the failed expansion: $(cat "$TMP/out")"
grep -q "logs/4.log, last lines:" "$TMP/out" || fail "status does not show the failed task's log: $(cat "$TMP/out")"

check "both interrupted tasks resumed from their checkpoints in a second attempt"
for t in 1 2; do
    grep -q "== expansion $t: job ${job}_$t on .*, attempt 2" "$SW/logs/$t.log" || fail "task $t ran no second attempt: $(cat "$SW/logs/$t.log")"
    grep -q "resuming it from its checkpoint" "$SW/logs/$t.log" || fail "task $t did not resume its run: $(grep -v '^|' "$SW/logs/$t.log")"
    [[ $("$MEFT" runs --db "$SW/shards/$t.sqlite" list | grep -c slurmgrid) -eq 1 ]] || fail "task $t's shard holds more than one run"
done
grep -q "time limit near; stopped at a checkpoint, requeueing" "$SW/logs/1.log" || fail "task 1 did not requeue itself: $(grep -v '^|' "$SW/logs/1.log")"

check "each resumed run ends with the metrics of the same expansion run uninterrupted"
for t in 1 2; do
    MEFT_THREADS=1 "$MEFT" run "$SW/experiment.json" --only $t --db "$TMP/ref$t.sqlite" --quiet >/dev/null 2>&1 || fail "reference run $t failed"
    "$MEFT" runs --db "$TMP/ref$t.sqlite" show 1 >"$TMP/ref$t.json"
    "$MEFT" runs --db "$SW/shards/$t.sqlite" show 1 >"$TMP/got$t.json"
    python3 - "$TMP/ref$t.json" "$TMP/got$t.json" <<'PY' || fail "task $t's resumed run differs from an uninterrupted one"
import json, sys
ref, got = (json.load(open(p)) for p in sys.argv[1:3])
keep = lambda m: {k: v for k, v in m.items() if k not in ("tokens_per_s",)}
assert keep(ref["final_metrics"]) == keep(got["final_metrics"]), (ref["final_metrics"], got["final_metrics"])
assert ref["steps_recorded"] == got["steps_recorded"] == 1500
assert ref["evaluations"] == got["evaluations"]
PY
done

expect_rc 0 "gather the sweep into its database" -- "$MEFT" sweep gather "$SW"
grep -q "gathered 3 runs from 4 shards into $TMP/main.sqlite; 0 already there, 1 left out" "$TMP/out" || fail "gather: $(cat "$TMP/out")"
check "the gathered runs carry their shards' metrics"
for t in 1 2 3; do
    "$MEFT" runs --db "$SW/shards/$t.sqlite" show 1 >"$TMP/shard$t.json"
    "$MEFT" runs --db "$TMP/main.sqlite" show $t >"$TMP/main$t.json"
    python3 - "$TMP/shard$t.json" "$TMP/main$t.json" <<'PY' || fail "gathered run $t differs from its shard's"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["uuid"] == b["uuid"] and a["final_metrics"] == b["final_metrics"] and a["config"] == b["config"]
assert a["steps_recorded"] == b["steps_recorded"] == 1500 and a["evaluations"] == b["evaluations"]
PY
done
expect_rc 0 "gather again" -- "$MEFT" sweep gather "$SW" --db "$TMP/main.sqlite"
grep -q "gathered 0 runs from 4 shards .*; 3 already there" "$TMP/out" || fail "a second gather added runs: $(cat "$TMP/out")"
expect_rc 0 "status marks the gathered runs" -- "$MEFT" sweep status "$SW"
[[ $(grep -c '| finished | 1500 steps | yes |' "$TMP/out") -eq 3 ]] || fail "status does not mark 3 gathered runs: $(cat "$TMP/out")"
expect_rc 0 "the database lists the sweep" -- "$MEFT" sweep list --db "$TMP/main.sqlite"
grep -q "| $SW | slurmgrid | slurm | $job | 4 |" "$TMP/out" || fail "sweep list: $(cat "$TMP/out")"

check "meft sweep cancel stops a running sweep"
sed 's/"max_steps": 1500/"max_steps": 1000000/; s/, 10\]/]/' "$TMP/grid.json" >"$TMP/long.json"
expect_rc 0 "submit a long sweep" -- "$MEFT" sweep submit "$TMP/long.json" --slurm --dir "$TMP/long" --db "$TMP/main.sqlite" --max-parallel 2
SW=$TMP/long
wait_steps 1 50
wait_steps 2 50
expect_rc 0 "cancel it" -- "$MEFT" sweep cancel "$SW"
for i in $(seq 120); do
    [[ -z $(squeue -h -j "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['slurm']['job_id'])" "$SW/sweep.json")" 2>/dev/null) ]] && break
    sleep 0.5
done
expect_rc 0 "status after cancelling" -- "$MEFT" sweep status "$SW" --json
python3 - "$TMP/out" <<'PY' || fail "the cancelled sweep's status: $(cat "$TMP/out")"
import json, sys
s = json.load(open(sys.argv[1]))
states = [e["state"] for e in s["expansions"]]
assert states == ["cancelled"] * 3, states
assert all(e["run_status"] in ("cancelled", "") for e in s["expansions"]), s["expansions"]
assert s["expansions"][0]["run_status"] == "cancelled" and s["expansions"][0]["steps"] >= 50
PY
old_job=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['slurm']['job_id'])" "$SW/sweep.json")
expect_rc 0 "meft sweep resume submits the script again" -- "$MEFT" sweep resume "$SW"
new_job=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['slurm']['job_id'])" "$SW/sweep.json")
[[ $new_job != "$old_job" ]] || fail "resume did not record a new job id ($new_job)"
grep -q "resubmitted $SW: Slurm job $new_job" "$TMP/out" || fail "resume's report: $(cat "$TMP/out")"
for i in $(seq 600); do grep -q "resuming it from its checkpoint" "$SW/logs/1.log" && break; sleep 0.1; done
grep -q "resuming it from its checkpoint" "$SW/logs/1.log" || fail "task 1 did not resume its run: $(grep -v '^|' "$SW/logs/1.log")"
expect_rc 0 "cancel it again" -- "$MEFT" sweep cancel "$SW"
slurm_cluster_stop
echo "PASS"
