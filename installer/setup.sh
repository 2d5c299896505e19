#!/usr/bin/env bash
# installer/setup.sh — idempotent set-up on Debian 12: installs the missing Debian packages
# (through sudo when not root), then configures and builds the Release preset, and the parsers'
# libFuzzer targets in a clang build of their own (build/fuzz; tests/fuzz, ctest -L fuzz).
# Sourced by run.sh, test.sh and package.sh; usable alone: bash installer/setup.sh
set -euo pipefail

MEFT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MEFT_BUILD="${MEFT_BUILD:-$MEFT_ROOT/build/release}"
MEFT_FUZZ_BUILD="${MEFT_FUZZ_BUILD:-$MEFT_ROOT/build/fuzz}"

packages=(
  build-essential cmake ninja-build pkg-config   # toolchain (CMake >= 3.25 on Debian 12)
  libopenblas-dev                                # sgemm/dgemm for the CPU backend
  libdnnl-dev                                    # oneDNN: the CPU backend's float32 and bf16 GEMMs
  nlohmann-json3-dev                             # experiment files, safetensors headers
  libcli11-dev                                   # meft command-line parsing
  libutf8proc-dev                                # Unicode categories and normalisation for tokenizers
  libsqlite3-dev                                 # the experiment database
  libgtest-dev                                   # test suites
  python3 python3-numpy                          # independent reference implementation in tests/
  qt6-base-dev qt6-svg-dev                       # the workbench GUI (Widgets, PrintSupport, Svg export)
  libqcustomplot-dev                             # its plots (QCustomPlotQt6; pulls Qt 5 dev too, harmless)
  xvfb xauth                                     # GUI tests and screenshots without a display
  clang libclang-rt-14-dev                       # libFuzzer (+ ASan/UBSan) for tests/fuzz
  dpkg-dev file                                  # the Debian package: CPack runs dpkg-shlibdeps and file
  desktop-file-utils appstream                   # its test validates the desktop entry and the metainfo
  munge slurmctld slurmd slurm-client procps     # a real one-node Slurm for the sweep test (tests/slurm_cluster.sh; pgrep)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S "$MEFT_ROOT" -B "$MEFT_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON \
      -DMEFT_FUZZ_BUILD_DIR="$MEFT_FUZZ_BUILD" >/dev/null
cmake --build "$MEFT_BUILD" -j"$(nproc)"
# The fuzz targets (tests/fuzz, clang + libFuzzer) are built for the tests only: installer/test.sh
# sets MEFT_WITH_FUZZ=1; the main job (installer/run.sh) does not need them.
if [ "${MEFT_WITH_FUZZ:-0}" = 1 ]; then
  cmake -S "$MEFT_ROOT" -B "$MEFT_FUZZ_BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DMEFT_FUZZ=ON >/dev/null
  cmake --build "$MEFT_FUZZ_BUILD" -j"$(nproc)"
fi
