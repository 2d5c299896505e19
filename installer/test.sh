#!/usr/bin/env bash
# installer/test.sh — sets up and builds, then runs the whole ctest suite.
# Exit status is non-zero on any failure.
set -euo pipefail
MEFT_WITH_FUZZ=1  # also build the fuzz targets that ctest -L fuzz runs
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup.sh"
ctest --test-dir "$MEFT_BUILD" --output-on-failure -j"$(nproc)" "$@"
