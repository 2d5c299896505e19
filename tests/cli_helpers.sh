# cli_helpers.sh — shared by the command-line test scripts (sourced; they set $TMP first).
#   fail MESSAGE                     print FAIL: MESSAGE and exit 1
#   check DESCRIPTION                announce a check
#   expect_rc CODE DESCRIPTION -- COMMAND...
#                                    run COMMAND (stdout/stderr to $TMP/out, $TMP/err); fail unless it exits CODE

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
check() { echo "check: $*"; }

expect_rc() {
    local want=$1 what=$2
    shift 3
    check "$what (expect exit $want)"
    local rc=0
    "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    if [[ $rc -ne $want ]]; then
        echo "---- stdout:" >&2; tail -n 20 "$TMP/out" >&2
        echo "---- stderr:" >&2; tail -n 20 "$TMP/err" >&2
        fail "$what: exit code $rc, expected $want (command: $*)"
    fi
}
