#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# tools/gpu_bench.sh — the one command for a machine with an NVIDIA GPU: build the engine with its
# CUDA backend, run the CPU-vs-CUDA parity suite, then time training steps of BERT-base with
# meft-bench --backend cuda and with PyTorch + transformers (bench/torch_gpu_step.py) on the same
# GPU, and write every table plus a summary (device, date, commit, exact commands) to $OUT.
#
#   bash tools/gpu_bench.sh               run everything (from any directory; works in the repo root)
#   bash tools/gpu_bench.sh check-deps    only report which build dependencies are missing
#   bash tools/gpu_bench.sh fetch-deps    on a Debian 12 machine with apt (the dev machine): download
#                                         the dependency packages into build/gpu-deps/, to carry
#                                         to a GPU machine that has no network and lacks some of them
#
# The GPU machine needs no network: the build uses installed packages only (nlohmann-json,
# CLI11, OpenBLAS, SQLite, utf8proc, GTest, pkg-config; installer/setup.sh lists them). Those it
# lacks are unpacked from build/gpu-deps/*.deb (see fetch-deps) into a private prefix under /tmp,
# never into /. It stops at the first failure with the phase, the exit status and the log's tail;
# it is idempotent (re-runs reuse the build folder and overwrite its own result files only).
#
# Results (at most 8 files, flat, so a remote runner can return them all) in ${OUT:-./gpu-bench-out}:
#   summary.md       device, date, commit, toolchain, phase timings, exact commands, all tables
#   build.log        dependency check, configure and build
#   gpu.log          nvidia-smi and the `ctest -L cuda` (CPU-vs-CUDA parity) output
#   bench.log        stderr of the benchmark programs
#   meft_<backend>.md    meft-bench's table
#   torch_eager.md, torch_sdpa.md    torch_gpu_step.py's tables (transformers attention eager / sdpa)
#
# Settings (environment):
#   OUT                      result folder (default ./gpu-bench-out)
#   CUDAARCHS                CMAKE_CUDA_ARCHITECTURES (default 90: H100/H200)
#   GPU_BENCH_BACKEND        cuda (default) or cpu: cpu configures without CUDA, skips nvidia-smi's
#                            check and runs both benchmarks on the CPU (exercises this script anywhere)
#   GPU_BENCH_BUILD          build folder (default build/gpu, or build/gpu-cpu for the cpu backend)
#   GPU_BENCH_JOBS           build jobs (default 16)
#   GPU_BENCH_TARGETS        build only these targets, space-separated (default: everything, so the
#                            cuda-labelled tests exist)
#   GPU_BENCH_CMAKE_ARGS     more configure arguments, space-separated (e.g. -DBUILD_TESTING=OFF)
#   GPU_BENCH_SKIP_TESTS=1   skip `ctest -L cuda`;  GPU_BENCH_KEEP_GOING=1: benchmark even if it fails
#   GPU_BENCH_CONFIGS        PRESET:BATCH:SEQ list (default base:32:128,base:32:512)
#   GPU_BENCH_MEFT_METHODS   default full,lora,houlsby,pfeiffer,checkpointing,meft1,meft2,meft3
#   GPU_BENCH_TORCH_METHODS  default full,lora,houlsby,pfeiffer,checkpointing
#   GPU_BENCH_TORCH_ATTN     transformers attention runs, comma list (default eager,sdpa; sdpa is
#                            skipped when less than GPU_BENCH_SDPA_MIN_S seconds (150) are left)
#   GPU_BENCH_STEPS / GPU_BENCH_WARMUP   timed / warm-up steps per row (default 5 / 2)
#   GPU_BENCH_TF32           off (default; exact float32 GEMMs, as the engine's default) or on, for torch
#   GPU_BENCH_SKIP_TORCH=1   skip the PyTorch baseline;  GPU_BENCH_PYTHON: its python (default python3)
#   GPU_BENCH_BUDGET_S       wall-clock budget for the whole script (default 570): each benchmark
#                            gets a timeout from what is left, so results so far always come back
#   GPU_BENCH_DEPS           folder of carried .deb files (default build/gpu-deps)
#   GPU_BENCH_FORCE_BUNDLE=1 use every carried package even where the machine has its own (testing)
#   GPU_BENCH_COMMIT         commit to record when the copy has no .git
set -Eeuo pipefail
# The whole script is one compound command, read before it runs: editing the file while it runs
# (or a checkout changing it) cannot change what this run executes.
{

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$SECONDS
MODE="${1:-run}"

BACKEND="${GPU_BENCH_BACKEND:-cuda}"
case "$BACKEND" in cuda|cpu) ;; *) echo "gpu_bench: GPU_BENCH_BACKEND must be cuda or cpu, not '$BACKEND'" >&2; exit 2 ;; esac
OUT="${OUT:-./gpu-bench-out}"
if [ "$BACKEND" = cpu ]; then BUILD="${GPU_BENCH_BUILD:-build/gpu-cpu}"; else BUILD="${GPU_BENCH_BUILD:-build/gpu}"; fi
JOBS="${GPU_BENCH_JOBS:-16}"
ARCH="${CUDAARCHS:-90}"
CONFIGS="${GPU_BENCH_CONFIGS:-base:32:128,base:32:512}"
MEFT_METHODS="${GPU_BENCH_MEFT_METHODS:-full,lora,houlsby,pfeiffer,checkpointing,meft1,meft2,meft3}"
TORCH_METHODS="${GPU_BENCH_TORCH_METHODS:-full,lora,houlsby,pfeiffer,checkpointing}"
TORCH_ATTN="${GPU_BENCH_TORCH_ATTN:-eager,sdpa}"
STEPS="${GPU_BENCH_STEPS:-5}"
WARMUP="${GPU_BENCH_WARMUP:-2}"
TF32="${GPU_BENCH_TF32:-off}"
PY="${GPU_BENCH_PYTHON:-python3}"
BUDGET="${GPU_BENCH_BUDGET_S:-570}"
SDPA_MIN="${GPU_BENCH_SDPA_MIN_S:-150}"
DEPS_DIR="${GPU_BENCH_DEPS:-build/gpu-deps}"
PREFIX="/tmp/meft-gpu-deps"   # carried packages are unpacked here, never into /
ARCH_TRIPLET="x86_64-linux-gnu"

# Debian 12 packages per dependency the build looks for (the first of each is what setup.sh installs).
declare -A DEP_DEBS=(
  [nlohmann-json3-dev]="nlohmann-json3-dev"
  [libcli11-dev]="libcli11-dev"
  [libopenblas-dev]="libopenblas-dev libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0"
  [libsqlite3-dev]="libsqlite3-dev libsqlite3-0"
  [libutf8proc-dev]="libutf8proc-dev libutf8proc2"
  [libgtest-dev]="libgtest-dev"
  [pkg-config]="pkgconf-bin libpkgconf3"
)
DEP_ORDER=(nlohmann-json3-dev libcli11-dev libopenblas-dev libsqlite3-dev pkg-config libutf8proc-dev libgtest-dev)

note() { printf 'gpu_bench: %s\n' "$*"; }
shell_join() {  # the arguments as one shell line, quoting only what needs it
  local a out=""
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+="$a "; else out+="$(printf '%q' "$a") "; fi
  done
  printf '%s' "${out% }"
}
die() { printf 'gpu_bench: error: %s\n' "$*" >&2; exit 2; }
elapsed() { echo $((SECONDS - START)); }
left() { echo $((BUDGET - (SECONDS - START))); }

# ---- fetch-deps: on the dev machine, with apt ------------------------------------------------------
if [ "$MODE" = fetch-deps ]; then
  command -v apt-get >/dev/null || die "fetch-deps needs apt-get (a Debian 12 machine)"
  mkdir -p "$DEPS_DIR"
  all=()
  for d in "${DEP_ORDER[@]}"; do read -r -a p <<<"${DEP_DEBS[$d]}"; all+=("${p[@]}"); done
  note "downloading ${all[*]} into $DEPS_DIR"
  (cd "$DEPS_DIR" && rm -f ./*.deb && apt-get download "${all[@]}")
  du -sh "$DEPS_DIR"
  note "carry '$DEPS_DIR' to the GPU machine (it is under the ignored build/ folder)"
  exit 0
fi
[ "$MODE" = run ] || [ "$MODE" = check-deps ] || die "unknown mode '$MODE' (expected nothing, check-deps or fetch-deps)"

# ---- results and the summary written on any exit -----------------------------------------------
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
SUMMARY="$OUT/summary.md" BUILD_LOG="$OUT/build.log" GPU_LOG="$OUT/gpu.log" BENCH_LOG="$OUT/bench.log"
MEFT_MD="$OUT/meft_$BACKEND.md"
rm -f "$SUMMARY" "$BUILD_LOG" "$GPU_LOG" "$BENCH_LOG" "$OUT"/meft_cuda.md "$OUT"/meft_cpu.md "$OUT"/torch_eager.md "$OUT"/torch_sdpa.md
: >"$BUILD_LOG"; : >"$GPU_LOG"; : >"$BENCH_LOG"
PHASES=() COMMANDS=() TABLES=() STATUS="incomplete" FAILED_PHASE="" STATUS_NOTE=""
DATE="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
COMMIT="${GPU_BENCH_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo "unknown (no .git in this copy; set GPU_BENCH_COMMIT)")}"
DIRTY="$(git status --porcelain 2>/dev/null | grep -c . || true)"
[ "${DIRTY:-0}" != 0 ] || DIRTY=""
DEVICE="(no GPU queried)"
INVOCATION="# invoked as: $(env | grep -E '^(OUT|CUDAARCHS|GPU_BENCH_[A-Z0-9_]+)=' | sort | tr '\n' ' ' || true)bash tools/gpu_bench.sh ${*}"

write_summary() {
  {
    echo "# MEFT engine vs PyTorch + transformers, backend $BACKEND — $DATE"
    echo
    echo "- status: **$STATUS**${FAILED_PHASE:+ (failed in: $FAILED_PHASE)}"
    echo "- device: $DEVICE"
    echo "- host: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(nproc) logical cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo 2>/dev/null)"
    echo "- commit: $COMMIT${DIRTY:+ ($DIRTY changed or untracked paths in the copy)}"
    echo "- backend: $BACKEND; configs: $CONFIGS; steps=$STEPS warmup=$WARMUP; torch tf32 $TF32"
    echo "- toolchain: $(cmake --version 2>/dev/null | head -1); nvcc $( (nvcc --version 2>/dev/null || /usr/local/cuda/bin/nvcc --version 2>/dev/null) | sed -n 's/.*release \([^,]*\).*/\1/p' | head -1); $(c++ --version 2>/dev/null | head -1)"
    echo "- python: $("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)' 2>/dev/null || echo "no torch for $PY"); $("$PY" -c 'import transformers; print("transformers", transformers.__version__)' 2>/dev/null || echo "no transformers")"
    echo
    echo "## Phases"
    echo
    echo "| phase | seconds | result |"
    echo "|---|---|---|"
    for p in "${PHASES[@]}"; do echo "$p"; done
    echo
    echo "Total: $(elapsed) s."
    echo
    echo "## Commands (from the repository root)"
    echo
    echo '```'
    echo "$INVOCATION"
    for c in "${COMMANDS[@]}"; do echo "$c"; done
    echo '```'
    for t in "${TABLES[@]}"; do
      local title="${t%%|*}" file="${t#*|}"
      echo
      echo "## $title"
      echo
      if [ -s "$file" ]; then cat "$file"; else echo "(no rows)"; fi
    done
    if [ -s "$GPU_LOG" ] && grep -q 'tests passed\|tests failed' "$GPU_LOG"; then
      echo
      echo "## CPU-vs-CUDA parity (ctest -L cuda)"
      echo
      echo '```'
      grep -E 'tests passed|tests failed|Total Test time|\*\*\*|Failed|Not Run|Skipped' "$GPU_LOG" | tail -n 40
      echo '```'
    fi
  } >"$SUMMARY"
}
on_exit() {
  local rc=$?
  [ "$rc" -eq 0 ] || [ "$STATUS" != incomplete ] || STATUS="failed (exit $rc)"
  [ "$MODE" = run ] && write_summary
  note "total $(elapsed) s; results in $OUT"
}
trap on_exit EXIT

fail() {  # fail PHASE RC LOG
  STATUS="failed"
  FAILED_PHASE="$1"
  printf 'gpu_bench: FAILED: %s (exit %s) after %s s; last lines of %s:\n' "$1" "$2" "$(elapsed)" "$3" >&2
  tail -n 40 "$3" >&2 || true
  exit "$2"
}

# run_phase NAME LOG [--timeout S] [--table TITLE FILE] [--soft] -- CMD...
# Runs CMD with its output appended to LOG (with --table: stdout to FILE and the console, stderr
# to LOG), records the command and the phase's time, and stops the script when it fails; with
# --soft it returns the exit status instead (PHASE_RC) and the caller decides.
PHASE_RC=0
run_phase() {
  local name=$1 log=$2 limit="" title="" table="" soft=0
  shift 2
  while [ "$1" != "--" ]; do
    case "$1" in
      --timeout) limit=$2; shift 2 ;;
      --table) title=$2; table=$3; shift 3 ;;
      --soft) soft=1; shift ;;
      *) die "run_phase: bad option $1" ;;
    esac
  done
  shift
  local t0=$SECONDS rc=0 cmd
  cmd="$(shell_join "$@")"
  COMMANDS+=("$cmd")
  note "[$name] $cmd"
  printf '\n===== %s: %s\n' "$name" "$cmd" >>"$log"
  local pre=()
  if [ -n "$limit" ]; then
    [ "$limit" -gt 10 ] || { PHASES+=("| $name | 0 | not run: time budget spent |"); fail "$name (no time left in the ${BUDGET} s budget)" 124 "$log"; }
    pre=(timeout -k 10 "$limit")
  fi
  set +e
  if [ -n "$table" ]; then
    TABLES+=("$title|$table")
    "${pre[@]}" "$@" 2>>"$log" | tee "$table"
    rc=${PIPESTATUS[0]}
  else
    "${pre[@]}" "$@" >>"$log" 2>&1
    rc=$?
  fi
  set -e
  local dt=$((SECONDS - t0))
  PHASE_RC=$rc
  if [ "$rc" -eq 0 ]; then
    PHASES+=("| $name | $dt | ok |")
    note "[$name] done in ${dt} s (total $(elapsed) s)"
  else
    local why="exit $rc"
    if [ -n "$limit" ] && { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; }; then why="timed out after ${limit} s"; fi
    PHASES+=("| $name | $dt | **failed**: $why |")
    if [ "$soft" = 1 ]; then
      note "[$name] failed ($why) after ${dt} s"
    else
      if [ "$why" = "exit $rc" ]; then fail "$name" "$rc" "$log"; else fail "$name ($why)" "$rc" "$log"; fi
    fi
  fi
}

# ---- 1. the machine ----------------------------------------------------------------------------
{
  echo "===== nvidia-smi"
  nvidia-smi 2>&1 || echo "(nvidia-smi failed or is not installed)"
  echo
  echo "===== nvidia-smi -L"
  nvidia-smi -L 2>&1 || true
} >>"$GPU_LOG"
if command -v nvidia-smi >/dev/null 2>&1; then
  DEVICE="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 || true)"
  DEVICE="${DEVICE:-nvidia-smi gave no device}"
elif [ "$BACKEND" = cuda ] && [ "$MODE" = run ]; then
  DEVICE="nvidia-smi not found"
  note "warning: nvidia-smi not found; going on (meft-bench --backend cuda says why if no GPU is usable)"
fi
[ "$BACKEND" = cpu ] && DEVICE="CPU only (GPU_BENCH_BACKEND=cpu): $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
note "device: $DEVICE; commit $COMMIT; results to $OUT"
PHASES+=("| nvidia-smi | 0 | ${DEVICE//|//} |")

# ---- 2. build dependencies: check, and unpack carried packages for the missing ones -----------------
command -v cmake >/dev/null || { STATUS=failed; FAILED_PHASE=dependencies; die "cmake is not installed"; }
command -v c++ >/dev/null || command -v g++ >/dev/null || { STATUS=failed; FAILED_PHASE=dependencies; die "no C++ compiler (c++/g++)"; }

probe_deps() {  # prints "<debian package> 0|1" per dependency, exactly as the top-level CMakeLists looks
  local dir
  dir="$(mktemp -d /tmp/meft-dep-probe.XXXXXX)"
  cat >"$dir/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(meft_dep_probe LANGUAGES CXX)
include(CheckIncludeFileCXX)
function(report pkg ok)
  if(${ok})
    message(STATUS "MEFT_DEP ${pkg} 1")
  else()
    message(STATUS "MEFT_DEP ${pkg} 0")
  endif()
endfunction()
find_package(nlohmann_json 3.2 QUIET)
report(nlohmann-json3-dev nlohmann_json_FOUND)
find_package(CLI11 QUIET)
report(libcli11-dev CLI11_FOUND)
set(BLA_VENDOR OpenBLAS)
find_package(BLAS QUIET)
check_include_file_cxx(cblas.h HAVE_CBLAS_H)
set(blas_ok OFF)
if(BLAS_FOUND AND HAVE_CBLAS_H)
  set(blas_ok ON)
endif()
report(libopenblas-dev blas_ok)
find_package(SQLite3 QUIET)
report(libsqlite3-dev SQLite3_FOUND)
find_package(PkgConfig QUIET)
report(pkg-config PKG_CONFIG_FOUND)
set(utf8_ok OFF)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(UTF8PROC QUIET libutf8proc)
  set(utf8_ok ${UTF8PROC_FOUND})
endif()
report(libutf8proc-dev utf8_ok)
find_package(GTest QUIET)
report(libgtest-dev GTest_FOUND)
EOF
  cmake -S "$dir" -B "$dir/b" "${PKG_ARGS[@]}" >"$dir/log" 2>&1 || { cat "$dir/log" >>"$BUILD_LOG"; rm -rf "$dir"; return 1; }
  cat "$dir/log" >>"$BUILD_LOG"
  sed -n 's/^-- MEFT_DEP //p' "$dir/log"
  rm -rf "$dir"
}

unpack_deb() {  # unpack_deb FILE DEST — dpkg-deb where there is one, else ar + tar
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$1" "$2"
  else
    local member
    member="$(ar t "$1" | grep '^data\.tar')" || return 1
    case "$member" in
      *.xz) ar p "$1" "$member" | tar -xJ -C "$2" ;;
      *.zst) ar p "$1" "$member" | zstd -dc | tar -x -C "$2" ;;
      *.gz) ar p "$1" "$member" | tar -xz -C "$2" ;;
      *) ar p "$1" "$member" | tar -x -C "$2" ;;
    esac
  fi
}

use_prefix() {  # point the build (and the engine's programs, not torch) at $PREFIX
  local lib="$PREFIX/usr/lib/$ARCH_TRIPLET"
  export CMAKE_PREFIX_PATH="$PREFIX/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export CPATH="$PREFIX/usr/include/$ARCH_TRIPLET/openblas-pthread:$PREFIX/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export CMAKE_LIBRARY_PATH="$lib${CMAKE_LIBRARY_PATH:+:$CMAKE_LIBRARY_PATH}"  # also where CMake knows no multiarch
  export PKG_CONFIG_PATH="$lib/pkgconfig:$PREFIX/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  MEFT_LD_PATH="$lib:$lib/openblas-pthread"
  export LD_LIBRARY_PATH="$MEFT_LD_PATH${ORIG_LD_LIBRARY_PATH:+:$ORIG_LD_LIBRARY_PATH}"
  if [ -x "$PREFIX/bin/pkg-config" ]; then
    export PATH="$PREFIX/bin:$PATH"
    PKG_ARGS+=(-DPKG_CONFIG_EXECUTABLE="$PREFIX/bin/pkg-config")
  fi
  [ -f "$lib/cmake/GTest/GTestConfig.cmake" ] && PKG_ARGS+=(-DGTest_DIR="$lib/cmake/GTest")
  return 0
}

ORIG_LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
MEFT_LD_PATH=""
PKG_ARGS=()
t_deps=$SECONDS
probe="$(probe_deps)" || { PHASES+=("| dependencies | $((SECONDS - t_deps)) | **failed**: probe did not configure |"); fail "dependency probe (cmake)" 2 "$BUILD_LOG"; }
missing=()
while read -r pkg ok; do
  [ -n "$pkg" ] || continue
  if [ "$ok" != 1 ] || [ "${GPU_BENCH_FORCE_BUNDLE:-0}" = 1 ]; then missing+=("$pkg"); fi
done <<<"$probe"
[ "${GPU_BENCH_FORCE_BUNDLE:-0}" = 1 ] && note "GPU_BENCH_FORCE_BUNDLE=1: using the carried packages for every dependency"
if ((${#missing[@]})); then
  note "not installed here: ${missing[*]}"
  if ! ls "$DEPS_DIR"/*.deb >/dev/null 2>&1; then
    PHASES+=("| dependencies | $((SECONDS - t_deps)) | **missing**: ${missing[*]} |")
    STATUS=failed; FAILED_PHASE=dependencies
    die "missing build dependencies: ${missing[*]} (Debian 12 packages; installer/setup.sh installs them). This machine has no network: on a machine with apt run 'bash tools/gpu_bench.sh fetch-deps', carry build/gpu-deps along, and run this again."
  fi
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  for pkg in "${missing[@]}"; do
    for deb in ${DEP_DEBS[$pkg]}; do
      f="$(ls "$DEPS_DIR/${deb}"_*.deb 2>/dev/null | head -1)"
      [ -n "$f" ] || { STATUS=failed; FAILED_PHASE=dependencies; die "$DEPS_DIR has no ${deb}_*.deb (needed for $pkg); run fetch-deps again"; }
      unpack_deb "$f" "$PREFIX" || { STATUS=failed; FAILED_PHASE=dependencies; die "could not unpack $f"; }
    done
  done
  lib="$PREFIX/usr/lib/$ARCH_TRIPLET"
  # What Debian's update-alternatives and pkg-config's prefix would have set up in /usr.
  if [ -d "$lib/openblas-pthread" ]; then
    for so in libopenblas.so libopenblas.so.0 libblas.so libblas.so.3; do
      [ -e "$lib/openblas-pthread/$so" ] && ln -sf "openblas-pthread/$so" "$lib/$so"
    done
  fi
  for pc in "$lib"/pkgconfig/*.pc "$PREFIX"/usr/share/pkgconfig/*.pc; do
    [ -f "$pc" ] && sed -i "s|^prefix=/usr\$|prefix=$PREFIX/usr|" "$pc"
  done
  if [ -x "$PREFIX/usr/bin/pkgconf" ]; then
    mkdir -p "$PREFIX/bin"
    printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' "$lib" "$PREFIX/usr/bin/pkgconf" >"$PREFIX/bin/pkg-config"
    chmod +x "$PREFIX/bin/pkg-config"
  fi
  use_prefix
  probe="$(probe_deps)" || fail "dependency probe with the carried packages" 2 "$BUILD_LOG"
  still=()
  while read -r pkg ok; do [ -n "$pkg" ] && [ "$ok" != 1 ] && still+=("$pkg"); done <<<"$probe"
  if ((${#still[@]})); then
    PHASES+=("| dependencies | $((SECONDS - t_deps)) | **missing** even with the carried packages: ${still[*]} |")
    STATUS=failed; FAILED_PHASE=dependencies
    die "still missing with the carried packages unpacked in $PREFIX: ${still[*]} (see $BUILD_LOG)"
  fi
  PHASES+=("| dependencies | $((SECONDS - t_deps)) | ok; from carried packages: ${missing[*]} |")
  note "using carried packages for: ${missing[*]} (unpacked in $PREFIX)"
else
  PHASES+=("| dependencies | $((SECONDS - t_deps)) | ok (all installed) |")
  note "all build dependencies are installed"
fi
if [ "$MODE" = check-deps ]; then STATUS="dependencies checked"; exit 0; fi

# ---- 3. configure and build ----------------------------------------------------------------------
cmake_args=(-S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMEFT_BUILD_GUI=OFF -DBUILD_TESTING=ON "${PKG_ARGS[@]}")
if [ -n "${GPU_BENCH_CMAKE_ARGS:-}" ]; then read -r -a extra <<<"$GPU_BENCH_CMAKE_ARGS"; cmake_args+=("${extra[@]}"); fi
command -v ninja >/dev/null && [ ! -f "$BUILD/Makefile" ] && cmake_args+=(-G Ninja)
if [ "$BACKEND" = cuda ]; then
  cmake_args+=(-DMEFT_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH")
  if ! command -v nvcc >/dev/null; then
    [ -x /usr/local/cuda/bin/nvcc ] || { STATUS=failed; FAILED_PHASE=configure; die "nvcc not found (neither on PATH nor /usr/local/cuda/bin)"; }
    cmake_args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
  fi
else
  cmake_args+=(-DMEFT_ENABLE_CUDA=OFF)
fi
run_phase configure "$BUILD_LOG" --timeout 180 -- cmake "${cmake_args[@]}"
if [ "$BACKEND" = cuda ] && ! grep -q 'MEFT: CUDA backend ON' "$BUILD_LOG"; then
  PHASES+=("| configure | 0 | **failed**: CUDA backend OFF |")
  fail "configure (CMake did not enable the CUDA backend: see 'MEFT: CUDA backend' and the CUDA lines)" 2 "$BUILD_LOG"
fi
build_args=(--build "$BUILD" -j "$JOBS")
if [ -n "${GPU_BENCH_TARGETS:-}" ]; then read -r -a tg <<<"$GPU_BENCH_TARGETS"; build_args+=(--target "${tg[@]}"); fi
# A build cut off by its timeout (keeping ~3 minutes for the rest) resumes where it stopped on a re-run.
run_phase build "$BUILD_LOG" --timeout "$(( $(left) - 180 ))" -- cmake "${build_args[@]}"

BENCH_BIN="$BUILD/bench/meft-bench"
[ -x "$BENCH_BIN" ] || fail "build (no $BENCH_BIN)" 2 "$BUILD_LOG"
if [ "$BACKEND" = cuda ]; then
  plugin="$(find "$BUILD" -name 'libmeft_cuda.so' -print -quit 2>/dev/null || true)"
  if [ -n "$plugin" ]; then
    case "$plugin" in /*) ;; *) plugin="$ROOT/$plugin" ;; esac
    export MEFT_CUDA_PLUGIN="$plugin"
    note "CUDA plugin: $MEFT_CUDA_PLUGIN"
  else
    note "warning: no libmeft_cuda.so under $BUILD; meft-bench --backend cuda will say what it searched"
  fi
fi

# ---- 4. CPU-vs-CUDA parity -----------------------------------------------------------------------
if [ "${GPU_BENCH_SKIP_TESTS:-0}" = 1 ]; then
  PHASES+=("| ctest -L cuda | 0 | skipped (GPU_BENCH_SKIP_TESTS=1) |")
else
  lim=$(( $(left) - 240 < 300 ? $(left) - 240 : 300 ))  # keep ~4 minutes for the benchmarks
  run_phase "ctest -L cuda" "$GPU_LOG" --soft --timeout "$lim" -- \
    ctest --test-dir "$BUILD" -L cuda --output-on-failure --no-tests=error --timeout 240
  if [ "$PHASE_RC" -ne 0 ]; then
    if [ "${GPU_BENCH_KEEP_GOING:-0}" = 1 ]; then
      note "parity tests failed (exit $PHASE_RC); benchmarking anyway (GPU_BENCH_KEEP_GOING=1)"
      STATUS_NOTE="CPU-vs-CUDA parity tests FAILED (exit $PHASE_RC); benchmarked anyway"
    else
      fail "ctest -L cuda (CPU-vs-CUDA parity; GPU_BENCH_KEEP_GOING=1 benchmarks anyway)" "$PHASE_RC" "$GPU_LOG"
    fi
  fi
fi

# ---- 5. the engine ---------------------------------------------------------------------------------
# The engine's programs see the carried libraries (if any); torch below gets the original paths.
# A time-out here keeps the rows printed so far and leaves the rest of the budget to PyTorch
# (at least GPU_BENCH_TORCH_MIN_S, 100 s); any other failure stops the script.
run_phase "meft-bench" "$BENCH_LOG" --soft --timeout "$(( $(left) - ${GPU_BENCH_TORCH_MIN_S:-100} ))" \
  --table "meft-bench --backend $BACKEND" "$MEFT_MD" -- \
  "$BENCH_BIN" --backend "$BACKEND" --config "$CONFIGS" --method "$MEFT_METHODS" --steps "$STEPS" --warmup "$WARMUP"
if [ "$PHASE_RC" -eq 124 ] || [ "$PHASE_RC" -eq 137 ]; then
  note "meft-bench ran out of its time: its table keeps the rows it finished; going on with PyTorch"
  STATUS_NOTE="${STATUS_NOTE:+$STATUS_NOTE; }meft-bench timed out (partial table)"
elif [ "$PHASE_RC" -ne 0 ]; then
  fail "meft-bench" "$PHASE_RC" "$BENCH_LOG"
fi

# ---- 6. PyTorch + transformers ---------------------------------------------------------------------
if [ "${GPU_BENCH_SKIP_TORCH:-0}" = 1 ]; then
  PHASES+=("| torch | 0 | skipped (GPU_BENCH_SKIP_TORCH=1) |")
else
  export LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH"
  [ -n "$LD_LIBRARY_PATH" ] || unset LD_LIBRARY_PATH
  export PYTHONUNBUFFERED=1
  device=$([ "$BACKEND" = cuda ] && echo cuda || echo cpu)
  IFS=',' read -r -a attns <<<"$TORCH_ATTN"
  first=1
  for attn in "${attns[@]}"; do
    if [ "$first" = 0 ] && [ "$(left)" -lt "$SDPA_MIN" ]; then
      PHASES+=("| torch ($attn) | 0 | skipped: $(left) s left of the ${BUDGET} s budget |")
      note "skipping torch attention=$attn: only $(left) s left"
      continue
    fi
    first=0
    run_phase "torch ($attn)" "$BENCH_LOG" --timeout "$(( $(left) - 15 ))" \
      --table "PyTorch on $device (eager mode, no torch.compile), transformers attention '$attn'" "$OUT/torch_$attn.md" -- \
      "$PY" bench/torch_gpu_step.py --device "$device" --configs "$CONFIGS" --methods "$TORCH_METHODS" \
      --steps "$STEPS" --warmup "$WARMUP" --tf32 "$TF32" --attn "$attn"
  done
fi

STATUS="complete${STATUS_NOTE:+; $STATUS_NOTE}"
note "all phases done"
exit 0
}
