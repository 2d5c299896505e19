#!/usr/bin/env bash
# installer/run.sh — the main job. Sets up and builds, then opens the workbench GUI when a
# display is available and the GUI is built; otherwise runs the default experiment headless
# (experiments/quickstart.json) with a progress bar and prints the results table.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup.sh"

gui="$MEFT_BUILD/app/meft-workbench"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$gui" ]; then
  exec "$gui" "$@"
fi
exec "$MEFT_BUILD/app/meft" run "$MEFT_ROOT/experiments/quickstart.json" "$@"
