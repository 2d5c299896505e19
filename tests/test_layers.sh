#!/usr/bin/env bash
# The engine's layers point one way, and the build enforces it: each layer's library compiles
# against a view (engine/include-views/<layer>/) holding only the folders it may include. Here a
# probe includes, from each layer's view, a header it may use (must compile) and headers of the
# layers above it (must fail with "No such file").
# Usage: test_layers.sh CXX VIEWS_DIR
set -uo pipefail
cxx=$1 views=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
probe() {  # layer header expect(ok|missing)
    local layer=$1 header=$2 expect=$3
    printf '#include "%s"\nint main() { return 0; }\n' "$header" > "$tmp/probe.cpp"
    if "$cxx" -std=c++20 -fsyntax-only -I"$views/$layer" "$tmp/probe.cpp" 2> "$tmp/err"; then
        got=ok
    elif grep -q "No such file" "$tmp/err"; then
        got=missing
    else
        got=error; cat "$tmp/err" >&2
    fi
    if [ "$got" = "$expect" ]; then
        echo "ok   $layer: #include \"$header\" -> $got"
    else
        echo "FAIL $layer: #include \"$header\" -> $got, expected $expect"; fail=1
    fi
}
probe core  core/backend.h ok
probe core  model/config.h missing
probe model model/model.h ok
probe model model/edits.h ok
probe model peft/method.h missing
probe model train/trainer.h missing
probe model data/batching.h missing
probe peft  peft/method_edit.h ok
probe peft  peft/meft_stack.h ok
probe peft  train/trainer.h missing
probe peft  data/glue.h missing
probe data  data/batching.h ok
probe data  peft/method.h missing
probe data  train/trainer.h missing
probe train train/trainer.h ok
probe train train/memory_plan.h ok
probe train store/database.h missing
probe train run/runner.h missing
probe store store/experiment.h ok
probe store store/saved_model.h ok
probe store run/runner.h missing
probe run   run/runner.h ok
exit $fail
