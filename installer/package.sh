#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# installer/package.sh — builds the Debian package: sets up and builds Release like run.sh
# (installer/setup.sh installs the missing Debian packages on a fresh Debian 12), then runs CPack
# (installer/package.cmake) in that build and prints the path of
#   build/package/meft-workbench_<version>_amd64.deb
# (MEFT_PACKAGE_DIR chooses another folder). Install it with: sudo apt install ./build/package/meft-workbench_*.deb
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup.sh" >&2   # its output to stderr: stdout is the path

MEFT_PACKAGE_DIR="${MEFT_PACKAGE_DIR:-$MEFT_ROOT/build/package}"
mkdir -p "$MEFT_PACKAGE_DIR"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$MEFT_BUILD/CMakeCache.txt")
deb="$MEFT_PACKAGE_DIR/meft-workbench_${version}_$(dpkg --print-architecture).deb"
rm -f "$deb"
(cd "$MEFT_BUILD" && cpack -G DEB -B "$MEFT_PACKAGE_DIR" >&2)
rm -rf "$MEFT_PACKAGE_DIR/_CPack_Packages"   # CPack's staging tree
[ -f "$deb" ] || { echo "package: $deb was not written" >&2; exit 1; }
echo "$deb"
