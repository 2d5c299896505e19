// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_qa_jsonl.cpp — libFuzzer target for the multiple-choice QA loaders (data/qa.h): ARC and
// OpenBookQA JSON lines, the OpenBookQA TSV, PIQA's .jsonl + -labels.lst and SciQ's JSON array or
// JSON lines.
// Input: one byte choosing the layout (its value mod 7), then parts cut at 0xFF bytes, written as
//   0 arc_easy       train.jsonl, dev.jsonl          4 piqa   train.jsonl, train-labels.lst,
//   1 arc_challenge  ARC-Challenge-Train.jsonl, ...           valid.jsonl, valid-labels.lst
//   2 openbookqa     train.jsonl, dev.jsonl          5 sciq   train.json, valid.json
//   3 openbookqa     Main/train.tsv, Main/dev.tsv    6 sciq   train.jsonl, valid.jsonl
// and both splits are read through requested_questions (labelled training questions, the first N
// dev questions), as a QA run reads them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/qa.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace meft;
    if (size == 0) return 0;
    struct Layout {
        const char* task;
        std::vector<const char*> files;
    };
    static const Layout kLayouts[] = {
        {"arc_easy", {"train.jsonl", "dev.jsonl"}},
        {"arc_challenge", {"ARC-Challenge-Train.jsonl", "ARC-Challenge-Dev.jsonl"}},
        {"openbookqa", {"train.jsonl", "dev.jsonl"}},
        {"openbookqa", {"Main/train.tsv", "Main/dev.tsv"}},
        {"piqa", {"train.jsonl", "train-labels.lst", "valid.jsonl", "valid-labels.lst"}},
        {"sciq", {"train.json", "valid.json"}},
        {"sciq", {"train.jsonl", "valid.jsonl"}},
    };
    const Layout& layout = kLayouts[data[0] % 7];
    const auto parts = fuzz::split_parts(data + 1, size - 1, layout.files.size());
    const auto dir = fuzz::fresh_dir("qa");
    std::filesystem::create_directories(dir / "Main");
    for (std::size_t i = 0; i < parts.size(); ++i) fuzz::write_file(dir / layout.files[i], parts[i]);

    QaTaskRequest r;
    r.task = layout.task;
    r.dir = dir;
    r.max_train_examples = (data[0] / 7) % 3;  // 0 = all
    r.max_dev_examples = (data[0] / 21) % 3;
    for (bool train : {true, false})
        fuzz::expect_only_meft_errors("requested_questions", [&] {
            for (const IndexedQuestion& q : requested_questions(r, train)) {
                const auto n = static_cast<int>(q.item.choices.size());
                fuzz::require(n >= 2, "a question with fewer than 2 choices");
                fuzz::require(q.item.answer >= -1 && q.item.answer < n, "an answer outside the question's choices");
            }
        });
    return 0;
}
