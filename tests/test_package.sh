#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# test_package.sh — the Debian package (ctest, label package):
#
#   test_package.sh BUILD_DIR SOURCE_DIR VERSION HAVE_CUDA_PLUGIN(0|1)
#
# Runs CPack on the build (installer/package.cmake) into a temporary folder, then checks the
# package: its file name and control fields (Depends names Qt 6, QCustomPlot, OpenBLAS, SQLite and
# utf8proc; CUDA is no dependency), and, unpacked with dpkg-deb -x into a temporary root, that
#   - usr/bin holds meft and meft-workbench only, the CUDA plugin is in usr/lib/meft when it was
#     built, and no test or benchmark program is in the package;
#   - the unpacked meft --version and meft-workbench --version print VERSION;
#   - the quickstart experiment runs from the unpacked root and is recorded (the installed meft
#     finds the installed plugin, not the one in the build tree);
#   - desktop-file-validate passes on the desktop entry, appstreamcli validate on the metainfo
#     (whose release is VERSION) and validate-tree on the root; the icons are at their hicolor
#     paths and of their size;
#   - every experiment file and document of the source tree is installed;
#   - no ELF file has a run path into the build or source tree.
# Every check is required: a missing tool is a failure (installer/setup.sh installs them).
set -euo pipefail
if [[ $# -ne 4 ]]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR VERSION HAVE_CUDA_PLUGIN" >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd -P)
SOURCE=$(cd "$2" && pwd -P)
VERSION=$3
HAVE_CUDA=$4
TMP=$(mktemp -d "${TMPDIR:-/tmp}/meft_package.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/cli_helpers.sh"

for tool in cpack dpkg-deb dpkg-shlibdeps file readelf desktop-file-validate appstreamcli; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (installer/setup.sh installs it)"
done

# ---- the package
expect_rc 0 "cpack builds the Debian package" -- cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$TMP/pkg"
ARCH=$(dpkg --print-architecture)
WANT="meft-workbench_${VERSION}_${ARCH}.deb"
check "the package is $WANT"
mapfile -t debs < <(cd "$TMP/pkg" && ls -- *.deb)
[[ ${#debs[@]} -eq 1 && ${debs[0]} == "$WANT" ]] || fail "cpack wrote ${debs[*]:-no .deb}, expected $WANT"
DEB=$TMP/pkg/$WANT

field() { dpkg-deb -f "$DEB" "$1"; }
check "control fields"
[[ $(field Package) == meft-workbench ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$VERSION" ]] || fail "Version: $(field Version), expected $VERSION"
[[ $(field Architecture) == "$ARCH" ]] || fail "Architecture: $(field Architecture)"
[[ $(field Section) == science ]] || fail "Section: $(field Section)"
[[ -n $(field Maintainer) ]] || fail "no Maintainer"
[[ -n $(field Description) ]] || fail "no Description"
DEPENDS=$(field Depends)
echo "Depends: $DEPENDS"
for want in libqt6widgets6 libqt6gui6 libqt6core6 libqt6svg6 qcustomplot openblas sqlite3 utf8proc libc6 libstdc++6; do
    [[ $DEPENDS == *"$want"* ]] || fail "Depends does not name $want: $DEPENDS"
done
[[ $DEPENDS != *cuda* && $DEPENDS != *cublas* ]] || fail "Depends names CUDA, which is optional: $DEPENDS"
if [[ $HAVE_CUDA == 1 ]]; then
    [[ $(field Suggests) == *cudart*cublas* ]] || fail "Suggests does not name the CUDA runtime and cuBLAS: $(field Suggests)"
fi

# ---- its files
ROOT=$TMP/root
expect_rc 0 "dpkg-deb -x unpacks it" -- dpkg-deb -x "$DEB" "$ROOT"
check "usr/bin holds meft and meft-workbench only"
[[ $(cd "$ROOT/usr/bin" && ls | tr '\n' ' ') == "meft meft-workbench " ]] || fail "usr/bin: $(ls "$ROOT/usr/bin" | tr '\n' ' ')"
[[ -x $ROOT/usr/bin/meft && -x $ROOT/usr/bin/meft-workbench ]] || fail "meft or meft-workbench is not executable"
check "only usr/bin, usr/lib/meft and usr/share"
[[ $(cd "$ROOT" && ls) == usr ]] || fail "the package installs outside /usr: $(ls "$ROOT")"
others=$(cd "$ROOT/usr" && find . -mindepth 1 -maxdepth 1 ! -name bin ! -name lib ! -name share)
[[ -z $others ]] || fail "unexpected folders under /usr: $others"
PLUGIN=$ROOT/usr/lib/meft/libmeft_cuda.so
if [[ $HAVE_CUDA == 1 ]]; then
    check "the CUDA plugin is usr/lib/meft/libmeft_cuda.so"
    [[ -f $PLUGIN ]] || fail "the build has the CUDA plugin, the package does not"
    [[ $(cd "$ROOT/usr/lib" && find . -type f) == ./meft/libmeft_cuda.so ]] || fail "usr/lib: $(cd "$ROOT/usr/lib" && find . -type f)"
else
    [[ ! -e $ROOT/usr/lib ]] || fail "a build without the CUDA plugin installs usr/lib: $(cd "$ROOT/usr/lib" && find .)"
fi
check "no test or benchmark program"
strays=$(cd "$ROOT" && find . -name 'test_*' -o -name 'meft-bench' -o -name 'meft-reconstruction' \
                              -o -name 'meft-tokenize-bench' -o -name '*fuzz*' -o -name '*.a' -o -name '*.h')
[[ -z $strays ]] || fail "in the package: $strays"

# ---- the installed programs
expect_rc 0 "the unpacked meft --version" -- "$ROOT/usr/bin/meft" --version
grep -q "^meft $VERSION " "$TMP/out" || fail "meft --version printed '$(cat "$TMP/out")', expected meft $VERSION (commit ...)"
expect_rc 0 "the unpacked meft-workbench --version" -- env QT_QPA_PLATFORM=offscreen "$ROOT/usr/bin/meft-workbench" --version
grep -qx "meft-workbench $VERSION" "$TMP/out" || fail "meft-workbench --version printed '$(cat "$TMP/out")'"

QUICKSTART=$ROOT/usr/share/meft-workbench/experiments/quickstart.json
[[ -f $QUICKSTART ]] || fail "no $QUICKSTART"
expect_rc 0 "the quickstart runs from the unpacked root" -- \
    env -u MEFT_CUDA_PLUGIN -u MEFT_DB "$ROOT/usr/bin/meft" run "$QUICKSTART" --db "$TMP/runs.sqlite" \
    --set training.max_steps=20 --backend auto
cp "$TMP/err" "$TMP/run.err"
expect_rc 0 "meft runs show 1" -- "$ROOT/usr/bin/meft" runs --db "$TMP/runs.sqlite" show 1
/usr/bin/python3 - "$TMP/out" "$VERSION" <<'EOF' || fail "the quickstart run is not recorded as it should be"
import json, sys
run = json.load(open(sys.argv[1]))
run = run[0] if isinstance(run, list) else run
env = run["environment"]
ok = run["status"] == "finished" and env["program"] == "meft " + sys.argv[2] and run["final_metrics"]["steps"] == 20
print(f"check: run 1 {run['status']}, {run['final_metrics']['steps']} steps, {env['program']}, backend {env['backend']}")
sys.exit(0 if ok else 1)
EOF
if [[ $HAVE_CUDA == 1 ]]; then
    # Without a GPU, backend auto says why it uses the CPU, naming the plugin it loaded: the
    # installed one (<prefix>/lib/meft), which must load (its run path finds the CUDA toolkit's
    # libraries). With a GPU the run used it.
    check "the unpacked meft uses the unpacked plugin"
    if grep -q "backend auto uses the CPU" "$TMP/run.err"; then
        grep -qF "$PLUGIN" "$TMP/run.err" || fail "meft did not name the installed plugin: $(cat "$TMP/run.err")"
        ! grep -q "could not be loaded" "$TMP/run.err" || fail "the installed plugin does not load: $(cat "$TMP/run.err")"
    else
        grep -q '"backend": *"cuda"' "$TMP/out" || fail "backend auto neither used CUDA nor said why not: $(cat "$TMP/run.err")"
    fi
fi

# ---- desktop integration
DESKTOP=$ROOT/usr/share/applications/org.meft.Workbench.desktop
METAINFO=$ROOT/usr/share/metainfo/org.meft.Workbench.metainfo.xml
expect_rc 0 "desktop-file-validate on the desktop entry" -- desktop-file-validate "$DESKTOP"
[[ ! -s $TMP/out ]] || fail "desktop-file-validate reports: $(cat "$TMP/out")"
grep -qx "Exec=meft-workbench %f" "$DESKTOP" || fail "the desktop entry does not start meft-workbench"
grep -qx "Icon=meft-workbench" "$DESKTOP" || fail "the desktop entry's icon is not meft-workbench"
expect_rc 0 "appstreamcli validate on the metainfo" -- appstreamcli validate --no-net "$METAINFO"
expect_rc 0 "appstreamcli validate-tree on the root (metainfo, desktop entry and icons together)" -- \
    appstreamcli validate-tree --no-net "$ROOT"
grep -q "<release version=\"$VERSION\" date=\"[0-9-]*\"/>" "$METAINFO" || fail "the metainfo's release is not $VERSION"
check "icons at their hicolor paths"
for n in 16 32 48 64 128 256; do
    png=$ROOT/usr/share/icons/hicolor/${n}x${n}/apps/meft-workbench.png
    [[ -f $png ]] || fail "no $png"
    file "$png" | grep -q "PNG image data, $n x $n" || fail "$png is not a $n x $n PNG: $(file -b "$png")"
done
svg=$ROOT/usr/share/icons/hicolor/scalable/apps/meft-workbench.svg
grep -qs "<svg" "$svg" || fail "no scalable icon $svg"

# ---- data and documentation: everything of the source tree
check "every experiment file and document is installed"
same_files() {  # same_files SOURCE_FOLDER INSTALLED_FOLDER PATTERN
    local want got
    want=$(cd "$1" && find . -maxdepth 1 -type f -name "$3" | sort)
    got=$( (cd "$2" 2>/dev/null && find . -maxdepth 1 -type f -name "$3" || true) | sort)
    [[ -n $want && $want == "$got" ]] || fail "$2 holds [${got//$'\n'/ }], the source $1 [${want//$'\n'/ }]"
}
same_files "$SOURCE/experiments" "$ROOT/usr/share/meft-workbench/experiments" '*.json'
same_files "$SOURCE/experiments/paper" "$ROOT/usr/share/meft-workbench/experiments/paper" '*.json'
DOC=$ROOT/usr/share/doc/meft-workbench
same_files "$SOURCE/docs" "$DOC/docs" '*.md'
same_files "$SOURCE/docs" "$DOC/docs" '*.json'
same_files "$SOURCE/docs/screenshots" "$DOC/docs/screenshots" '*.png'
[[ -f $DOC/README.md ]] || fail "no $DOC/README.md"
grep -q "^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" "$DOC/copyright" \
    && grep -q "^License: GPL-3.0+" "$DOC/copyright" || fail "no DEP-5 copyright file naming GPL-3.0+ in $DOC"

# ---- run paths
check "no run path into the build or source tree"
elves=0
while IFS= read -r -d '' f; do
    [[ $(head -c 4 "$f" | od -An -c | tr -d ' ') == 177ELF ]] || continue
    elves=$((elves + 1))
    paths=$(readelf -d "$f" | sed -n 's/.*(R\(UN\)\{0,1\}PATH).*\[\(.*\)\]/\2/p')
    case "$f" in
        */usr/bin/*) [[ -z $paths ]] || fail "${f#"$ROOT"} has a run path: $paths" ;;
    esac
    [[ $paths != *"$BUILD"* && $paths != *"$SOURCE"* ]] || fail "${f#"$ROOT"} has a run path into the build: $paths"
    echo "  ${f#"$ROOT"}: run path '${paths}'"
done < <(find "$ROOT" -type f -print0)
[[ $elves -ge 2 ]] || fail "found $elves ELF files, expected meft and meft-workbench at least"

echo "package $WANT: all checks passed"
