#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# run_fuzzers.sh — runs the libFuzzer targets of a fuzz build (tests/fuzz/CMakeLists.txt), each for
# SECONDS, one after the other, and fails on any finding: a crash, a sanitizer report (memory
# error, undefined behaviour, leak), an input slower than 10 s, more than 2 GiB of memory, or an
# exception other than meft::Error.
#
#   bash tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]     (default: every target built)
#
# Each target starts from its committed seeds (tests/fuzz/seeds/<name>) plus seeds cut from the
# real files in ../shared when present (shared_seeds.py), copied into a temporary corpus folder
# that is removed afterwards. A finding leaves its input in BUILD_DIR/fuzz-artifacts/<target>/
# (replay: BUILD_DIR/tests/fuzz/<target> FILE); each run's output is BUILD_DIR/fuzz-logs/<target>.log.
# Exit status: 0 when every target ran clean, 1 on a finding, 77 when the build has no fuzz targets
# (ctest reports that as skipped), 2 on bad arguments.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if (($# < 2)); then
  echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2
  exit 2
fi
build="$(cd "$1" 2>/dev/null && pwd)" || { echo "run_fuzzers: no build folder $1 (configure one: see tests/fuzz/CMakeLists.txt)" >&2; exit 77; }
seconds="$2"
shift 2
targets=("$@")
if ((${#targets[@]} == 0)); then  # every target of the build (tests/fuzz/targets.cmake lists them)
  for exe in "$build"/tests/fuzz/fuzz_*; do [ -x "$exe" ] && targets+=("$(basename "$exe")"); done
  if ((${#targets[@]} == 0)); then
    echo "run_fuzzers: $build has no fuzz targets (cmake --build $build)" >&2
    exit 77
  fi
fi
shared="${MEFT_SHARED_DIR:-$root/../shared}"

work="$(mktemp -d "${TMPDIR:-/tmp}/meft-fuzz-corpus.XXXXXX")"
trap 'rm -rf "$work"' EXIT
pid=""
# The target runs in the background (so that its pid names its scratch folder), where it ignores
# SIGINT: pass an interrupt or a termination on to it.
scratch() { echo "/dev/shm/meft-fuzz-$1" "${TMPDIR:-/tmp}/meft-fuzz-$1"; }  # fuzz_support.h scratch_root()
trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid"; rm -rf $(scratch "$pid"); }; exit 130' INT TERM
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

failed=()
for t in "${targets[@]}"; do
  exe="$build/tests/fuzz/$t"
  if [ ! -x "$exe" ]; then
    echo "run_fuzzers: $exe is not built (cmake --build $build)" >&2
    exit 77
  fi
  name="${t#fuzz_}"
  corpus="$work/$name"
  mkdir -p "$corpus" "$build/fuzz-artifacts/$t"
  cp "$here/seeds/$name"/* "$corpus"/
  from_shared=0
  if [ -d "$shared" ] && command -v python3 >/dev/null; then
    from_shared="$(python3 "$here/shared_seeds.py" "$shared" "$name" "$corpus" 2>/dev/null || echo 0)"
  fi
  seeds="$(ls "$corpus" | wc -l)"
  log="$build/fuzz-logs/$t.log"
  start=$(date +%s)
  "$exe" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1 \
         -artifact_prefix="$build/fuzz-artifacts/$t/" >"$log" 2>&1 &
  pid=$!
  wait "$pid"
  rc=$?
  rm -rf $(scratch "$pid")  # what a crash leaves of the target's scratch folder
  pid=""
  took=$(($(date +%s) - start))
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  if ((rc == 0)); then
    printf 'run_fuzzers: %-20s ok: %s runs in %d s, %d seeds (%s from shared/), corpus now %d\n' \
           "$t" "${execs:-?}" "$took" "$seeds" "$from_shared" "$(ls "$corpus" | wc -l)"
  else
    failed+=("$t")
    echo "run_fuzzers: $t FAILED (exit $rc after $took s); input in $build/fuzz-artifacts/$t/, log $log:" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|\*\*\*|INFO: a leak|.*runtime error)' "$log" | head -20 >&2
    tail -n 40 "$log" >&2
  fi
done

if ((${#failed[@]})); then
  echo "run_fuzzers: findings in ${failed[*]}" >&2
  exit 1
fi
echo "run_fuzzers: ${#targets[@]} target(s), no crash, no leak, no hang"
