#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# test_backend_cli.sh — `--backend` on the command line, with a fake CUDA plugin (ctest, label cli):
#
#   test_backend_cli.sh MEFT FAKE_PLUGIN QUICKSTART_JSON
#
# 1. without a usable plugin, `meft run --backend cuda` exits 1 naming the reason and records no
#    run; `meft plan` and `meft predict` refuse cuda the same way;
# 2. with MEFT_CUDA_PLUGIN=FAKE_PLUGIN, `meft run quickstart --backend cuda` trains and records the
#    run with backend fake-cuda in its environment;
# 3. with MEFT_FAKE_CUDA_FREE_BYTES small, the run is refused before anything is recorded, naming
#    the planned and available bytes;
# 4. a plugin that finds no device: auto trains on the CPU and says why;
# 5. `meft plan --backend` checks the fake device's (or this computer's) free memory;
# 6. `meft predict --backend cuda` uses the plugin (same logits as the CPU); `meft resume --backend
#    cuda` refuses without a plugin and, on the plugin, when its memory is short (the run stays cancelled).
set -euo pipefail
if [[ $# -ne 3 ]]; then
    echo "usage: $0 MEFT FAKE_PLUGIN QUICKSTART_JSON" >&2
    exit 2
fi
MEFT=$1
FAKE=$2
QUICKSTART=$3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meft_backend_cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
DB="$TMP/runs.sqlite"
NONE="$TMP/no-plugin/libmeft_cuda.so"

# fail, check, expect_rc
source "$(dirname "${BASH_SOURCE[0]}")/cli_helpers.sh"
expect_in() {  # expect_in FILE TEXT
    grep -qF -- "$2" "$1" || fail "'$2' not in $1: $(cat "$1")"
}
count_runs() { "$MEFT" runs --db "$DB" list | tail -n +3 | grep -c '^|' || true; }
status_of() { "$MEFT" runs --db "$DB" list | awk -F'|' -v id="$1" '$2+0 == id {gsub(/ /, "", $4); print $4}'; }
env_backend_of() {
    "$MEFT" runs --db "$DB" show "$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["environment"]["backend"])'
}
QUICK=(--set training.max_steps=4 --set training.eval_every=4 --quiet --db "$DB")

[[ -x $MEFT ]] || fail "meft binary '$MEFT' is not executable"
[[ -f $FAKE ]] || fail "fake plugin '$FAKE' not found"

# ---- 1. no usable plugin ----------------------------------------------------------------------
export MEFT_CUDA_PLUGIN=$NONE
expect_rc 1 "run --backend cuda without a plugin" -- "$MEFT" run "$QUICKSTART" --backend cuda "${QUICK[@]}"
expect_in "$TMP/err" 'backend "cuda" cannot be used: MEFT_CUDA_PLUGIN is set to '"$NONE"
[[ ! -e $DB || $(count_runs) -eq 0 ]] || fail "a run that cannot get its backend created a run row"
expect_rc 1 "plan --backend cuda without a plugin" -- "$MEFT" plan "$QUICKSTART" --backend cuda
expect_in "$TMP/err" 'backend "cuda" cannot be used'
expect_rc 0 "plan --backend cpu checks this computer's memory" -- "$MEFT" plan "$QUICKSTART" --backend cpu
expect_in "$TMP/out" "fits: "
expect_in "$TMP/out" "free on this computer"
expect_in "$TMP/out" "takes from the backend: "
expect_rc 0 "plan --set overrides a key as run does" -- \
    "$MEFT" plan "$QUICKSTART" --backend cpu --set method.name=meft1 --set training.batch_size=4
expect_in "$TMP/out" "method: meft1"
expect_in "$TMP/out" "batch 4 x seq"
expect_rc 2 "run --backend gpu is a usage error" -- "$MEFT" run "$QUICKSTART" --backend gpu
# bf16 GEMMs on a CPU without AVX512_BF16 (oneDNN told to hide them): refused, nothing recorded.
expect_rc 1 "run with bf16 GEMMs on a CPU without AVX512_BF16" -- \
    env DNNL_MAX_CPU_ISA=AVX512_CORE "$MEFT" run "$QUICKSTART" --backend cpu --set training.gemm_precision=bf16 "${QUICK[@]}"
expect_in "$TMP/err" 'bf16 GEMMs (gemm precision "bf16") on the CPU backend: this CPU lacks the AVX512_BF16 instructions'
expect_rc 1 "run with bf16 GEMMs, auto finding no CUDA and no AVX512_BF16" -- \
    env DNNL_MAX_CPU_ISA=AVX512_CORE "$MEFT" run "$QUICKSTART" --set training.gemm_precision=bf16 "${QUICK[@]}"
expect_in "$TMP/err" 'need the CUDA backend or a CPU with AVX512_BF16; backend "auto" found no CUDA backend'
[[ ! -e $DB || $(count_runs) -eq 0 ]] || fail "a refused run created a run row"
# Where the CPU has them, the run trains on the CPU and records its precision (its own database).
if grep -qw avx512_bf16 /proc/cpuinfo; then
    BF16_DB="$TMP/bf16.sqlite"
    expect_rc 0 "run with bf16 GEMMs on the CPU backend" -- \
        "$MEFT" run "$QUICKSTART" --backend cpu --set training.gemm_precision=bf16 --set training.max_steps=4 \
        --set training.eval_every=4 --quiet --db "$BF16_DB"
    "$MEFT" runs --db "$BF16_DB" show 1 | grep -q '"gemm_precision": "bf16"' || fail "the bf16 run does not record gemm_precision bf16"
else
    echo "note: this CPU has no AVX512_BF16: the positive bf16 run is not checked here"
fi

# ---- 2. the fake plugin trains and is recorded -----------------------------------------------
export MEFT_CUDA_PLUGIN=$FAKE
expect_rc 0 "run quickstart --backend cuda with the fake plugin" -- "$MEFT" run "$QUICKSTART" --backend cuda "${QUICK[@]}"
[[ $(count_runs) -eq 1 ]] || fail "expected 1 run, found $(count_runs)"
[[ "$(status_of 1)" == finished ]] || fail "run 1 is '$(status_of 1)', expected finished"
[[ "$(env_backend_of 1)" == fake-cuda ]] || fail "run 1 recorded backend '$(env_backend_of 1)', expected fake-cuda"
expect_rc 0 "run quickstart with tf32 GEMMs under auto" -- \
    "$MEFT" run "$QUICKSTART" --set training.gemm_precision=tf32 "${QUICK[@]}"
[[ "$(env_backend_of 2)" == fake-cuda ]] || fail "auto did not choose the plugin: run 2 recorded '$(env_backend_of 2)'"
"$MEFT" runs --db "$DB" show 2 | grep -q '"gemm_precision": "tf32"' || fail "run 2 does not record gemm_precision tf32"

# ---- 3. out of device memory -------------------------------------------------------------------
expect_rc 1 "run with 1 MiB of free device memory" -- \
    env MEFT_FAKE_CUDA_FREE_BYTES=1048576 "$MEFT" run "$QUICKSTART" --backend cuda "${QUICK[@]}"
expect_in "$TMP/err" "the run needs "
expect_in "$TMP/err" "but the fake-cuda device (1.0 MiB free of 80.0 GiB) cannot hold it"
[[ $(count_runs) -eq 2 ]] || fail "a run refused for memory was recorded ($(count_runs) runs)"

# ---- 4. a plugin without a device: auto says why and uses the CPU ----------------------------
expect_rc 0 "auto with a plugin that finds no device" -- \
    env MEFT_FAKE_CUDA_MODE=nodevice "$MEFT" run "$QUICKSTART" --set training.max_steps=2 --db "$DB"
expect_in "$TMP/err" "meft: backend auto uses the CPU: no CUDA device: "
[[ "$(env_backend_of 3)" == cpu ]] || fail "run 3 recorded backend '$(env_backend_of 3)', expected cpu"

# ---- 5. plan against the fake device -----------------------------------------------------------
expect_rc 0 "plan --backend cuda" -- "$MEFT" plan "$QUICKSTART" --backend cuda
expect_in "$TMP/out" "free on the fake-cuda device (80.0 GiB in all)"
expect_rc 0 "plan --backend cuda on a nearly full device" -- \
    env MEFT_FAKE_CUDA_FREE_BYTES=1048576 "$MEFT" plan "$QUICKSTART" --backend cuda
expect_in "$TMP/out" "does not fit: needs "
expect_in "$TMP/out" "but the fake-cuda device has 1.0 MiB free of 80.0 GiB"
expect_rc 0 "plan --all-methods --backend cuda" -- "$MEFT" plan "$QUICKSTART" --all-methods --backend cuda
expect_in "$TMP/out" "| fits |"
expect_rc 0 "plan --attention tiled --backend cuda" -- "$MEFT" plan "$QUICKSTART" --attention tiled --backend cuda
expect_in "$TMP/out" "tiled attention"
expect_in "$TMP/out" "free on the fake-cuda device"

# ---- 6. predict and resume on the plugin --------------------------------------------------------
expect_rc 0 "init-model" -- "$MEFT" init-model --preset tiny --out "$TMP/model"
echo '{"input_ids": [101, 1500, 2500, 102]}' >"$TMP/in.jsonl"
expect_rc 0 "predict --backend cuda" -- \
    "$MEFT" predict --model "$TMP/model" --data "$TMP/in.jsonl" --out "$TMP/cuda.jsonl" --backend cuda
expect_rc 0 "predict --backend cpu" -- \
    "$MEFT" predict --model "$TMP/model" --data "$TMP/in.jsonl" --out "$TMP/cpu.jsonl" --backend cpu
cmp -s "$TMP/cuda.jsonl" "$TMP/cpu.jsonl" || fail "the fake plugin (a wrapped CPU backend) predicted differently"
expect_rc 1 "predict --backend cuda without a plugin" -- \
    env MEFT_CUDA_PLUGIN="$NONE" "$MEFT" predict --model "$TMP/model" --data "$TMP/in.jsonl" --out "$TMP/x.jsonl" --backend cuda
expect_in "$TMP/err" 'backend "cuda" cannot be used'

check "a cancelled CPU run resumes on the plugin"
"$MEFT" run "$QUICKSTART" --backend cpu --set training.max_steps=100000 --set training.checkpoint_every=5 \
    --quiet --db "$DB" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [[ "$(status_of 4)" == running ]] && break; sleep 0.1; done
sleep 1
kill -INT "$pid"
wait "$pid" || fail "meft run exited non-zero after Ctrl-C"
[[ "$(status_of 4)" == cancelled ]] || fail "run 4 is '$(status_of 4)', expected cancelled"
expect_rc 1 "resume --backend cuda without a plugin" -- \
    env MEFT_CUDA_PLUGIN="$NONE" "$MEFT" resume 4 --backend cuda --db "$DB" --quiet
expect_in "$TMP/err" 'backend "cuda" cannot be used'
[[ "$(status_of 4)" == cancelled ]] || fail "a refused resume changed run 4 to '$(status_of 4)'"
expect_rc 1 "resume with 1 MiB of free device memory" -- \
    env MEFT_FAKE_CUDA_FREE_BYTES=1048576 "$MEFT" resume 4 --backend cuda --db "$DB" --quiet
expect_in "$TMP/err" "cannot hold it"
[[ "$(status_of 4)" == cancelled ]] || fail "a resume refused for memory changed run 4 to '$(status_of 4)'"
echo "all backend command-line checks passed"
