// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_glue_tsv.cpp — libFuzzer target for the GLUE TSV loader (data/glue.h) and the GLUE task
// loading a run does (data/text_task.h load_glue_task: both splits, tokenized).
// Input: one byte choosing the task (its value mod 9, in GLUE's order: cola sst2 mrpc stsb qqp
// mnli qnli rte wnli) and the example limits, then parts cut at 0xFF bytes: the train file, the
// dev file (MNLI: dev_matched), the test file and, for MNLI, dev_mismatched.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/glue.h"
#include "data/text_task.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace meft;
    if (size == 0) return 0;
    const GlueTaskInfo& task = glue_tasks()[data[0] % 9];
    const auto parts = fuzz::split_parts(data + 1, size - 1, 4);
    const auto dir = fuzz::fresh_dir("glue");
    const std::string splits[] = {"train", "dev", "test", "dev_mismatched"};
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i == 3 && task.name != "mnli") break;
        fuzz::write_file(glue_split_file(task, dir, splits[i]), parts[i]);
    }
    GlueTaskRequest r;
    r.task = task.name;
    r.dir = dir;
    r.max_train_examples = (data[0] / 9) % 4;  // 0 = all
    r.max_dev_examples = (data[0] / 36) % 4;
    r.max_seq_length = 16;
    fuzz::expect_only_meft_errors("load_glue_task", [&] {
        std::vector<std::string> warnings;
        const TaskData t = load_glue_task(r, fuzz::small_tokenizer(), &warnings);
        for (const auto* split : {&t.train, &t.dev, &t.dev_extra})
            for (const Example& e : *split) {
                fuzz::check_ids(fuzz::small_tokenizer(), e.input_ids);
                fuzz::require(task.regression || (e.label >= -1 && e.label < task.num_labels()),
                              "a GLUE label outside the task's classes");
            }
    });
    fuzz::expect_only_meft_errors("load_glue test", [&] {
        for (const TextExample& e : load_glue(task.name, dir, "test").examples)
            fuzz::require(task.regression || (e.label >= -1 && e.label < task.num_labels()),
                          "a GLUE label outside the task's classes");
    });
    return 0;
}
