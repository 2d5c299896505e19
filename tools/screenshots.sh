#!/usr/bin/env bash
# tools/screenshots.sh — renders the workbench's main views to docs/screenshots/*.png.
# Runs two short toy experiments into a scratch database on the offscreen platform (no display
# needed), then grabs the experiment view, the runs browser, the comparison and the others, and a
# local sweep in the Sweeps tab (docs/workbench.md, "Screenshots").
# Usage: bash tools/screenshots.sh [OUT_DIR]   (after installer/setup.sh has built the GUI)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/docs/screenshots}"
gui="${MEFT_BUILD:-$root/build/release}/app/meft-workbench"
[ -x "$gui" ] || { echo "screenshots: $gui not built (run bash installer/setup.sh)" >&2; exit 1; }
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
QT_QPA_PLATFORM=offscreen "$gui" --db "$scratch/runs.sqlite" --screenshots "$out"
