#!/usr/bin/env bash
# tools/compare_builds.sh OLD_MEFT NEW_MEFT [OUT_DIR] — runs the shipped experiments (capped at 40
# steps) and every method on the toy BERT, BART and OPT presets with two builds of `meft`, and
# compares what each recorded, digit for digit: every step's loss, gradient norm, learning rate
# and activation bytes, every evaluation metric, every run's status. For refactors that must not
# change behaviour. Needs ../shared for the GLUE and QA experiments. Exits 1 when any case differs.
set -uo pipefail
old=$(realpath "$1") new=$(realpath "$2")
out=$(realpath -m "${3:-$(mktemp -d)}"); mkdir -p "$out"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"; cd "$root"
status=0
dump() {
    sqlite3 "$1" "select step, printf('%.17g', loss), printf('%.17g', grad_norm), printf('%.17g', learning_rate),
                         activation_bytes from steps order by run_id, step;
                  select step, metric, printf('%.17g', value) from evals order by run_id, step, metric;
                  select status from runs order by id;"
}
case_() {  # name file overrides...
    local name=$1 file=$2; shift 2
    for which in old new; do
        local bin=$old; [ $which = new ] && bin=$new
        rm -f "$out/$name.$which.sqlite"*
        "$bin" run -q "$file" --db "$out/$name.$which.sqlite" "$@" > "$out/$name.$which.log" 2>&1
        dump "$out/$name.$which.sqlite" > "$out/$name.$which.txt" 2>&1
    done
    if cmp -s "$out/$name.old.txt" "$out/$name.new.txt"; then
        echo "identical  $name ($(wc -l < "$out/$name.new.txt") rows)"
    else
        echo "DIFFERENT  $name (diff $out/$name.old.txt $out/$name.new.txt)"; status=1
    fi
}
for f in experiments/*.json; do case_ "$(basename "$f" .json)" "$f" --set training.max_steps=40; done
for m in full bitfit lora houlsby pfeiffer parallel prefix ia3 meft1 meft2 meft3; do
    case_ "bert-$m" experiments/quickstart.json --set method.name=$m --set training.max_steps=30 --set training.eval_every=15
done
case_ bert-lora-all experiments/quickstart.json --set training.max_steps=20 \
    --set 'method={"name":"lora","lora":{"targets":["query","key","value","attention_output","ffn_in","ffn_out"]}}'
case_ bert-prefix-mlp experiments/quickstart.json --set training.max_steps=20 \
    --set 'method={"name":"prefix","prefix":{"reparameterize":true,"hidden":32}}'
case_ bert-lora-ckpt experiments/quickstart.json --set training.max_steps=20 \
    --set 'method={"name":"lora","gradient_checkpointing":true}'
case_ bert-meft1-prefix experiments/quickstart.json --set training.max_steps=20 \
    --set 'method={"name":"meft1","meft":{"frozen_prefix":1}}'
case_ bert-meft2-vanilla experiments/quickstart.json --set training.max_steps=20 \
    --set 'method={"name":"meft2","meft":{"reversible_layers":2}}'
for m in lora prefix ia3 houlsby meft1 meft3; do
    case_ "bart-$m" experiments/sst2-bart-toy.json --set method.name=$m --set training.max_steps=15
    case_ "opt-$m" experiments/arc-easy-opt-toy.json --set method.name=$m --set training.max_steps=15
done
for m in full lora meft1; do
    case_ "roberta-$m" experiments/sst2-bart-toy.json --set backbone.arch=roberta --set method.name=$m --set training.max_steps=15
done
case_ roberta-choice experiments/arc-easy-bert-toy.json --set backbone.arch=roberta --set training.max_steps=10 \
    --set backbone.tokenizer=../../shared/models/roberta-base-tokenizer
case_ bart-choice experiments/arc-easy-bert-toy.json --set backbone.arch=bart --set training.max_steps=10 \
    --set backbone.tokenizer=../../shared/models/roberta-base-tokenizer
# What `meft init-model` writes for every backbone: config.json and model.safetensors (names, shapes,
# initial values), byte for byte.
for a in bert roberta bart opt; do
    for which in old new; do
        bin=$old; [ $which = new ] && bin=$new
        rm -rf "$out/init-$a.$which"
        "$bin" init-model --arch $a --preset tiny --out "$out/init-$a.$which" > "$out/init-$a.$which.log" 2>&1
    done
    if cmp -s "$out/init-$a.old/config.json" "$out/init-$a.new/config.json" &&
       cmp -s "$out/init-$a.old/model.safetensors" "$out/init-$a.new/model.safetensors"; then
        echo "identical  init-$a (config.json, model.safetensors)"
    else
        echo "DIFFERENT  init-$a (diff -r $out/init-$a.old $out/init-$a.new)"; status=1
    fi
done
exit $status
