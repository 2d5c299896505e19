// glue.h — the GLUE tasks and a loader for their TSV files as the original GLUE download
// (download_glue_data.py) lays them out: <task_dir>/train.tsv, dev.tsv, test.tsv
// (MNLI: dev_matched.tsv, dev_mismatched.tsv, test_matched.tsv, test_mismatched.tsv).
//
// Parsing follows GLUE's own processors: a line is split on '\t' with no quoting (quote characters are
// literal text), lines end in "\n" or "\r\n", the last line may lack its newline, and a UTF-8 byte-order
// mark at the start of a file (MRPC) is dropped. Lines are UTF-8, checked strictly (a line that is not
// is an error naming file, line and byte), or Latin-1 when asked (text_encoding.h). Columns are found
// by their header names, except CoLA train/dev, which have no header (4 columns: source, label,
// original label, sentence).
//
// A malformed row (wrong column count, unparsable label or score) throws meft::Error naming the file,
// the line (1-based, the header is line 1) and the column. Known quirks of the GLUE files are skipped,
// counted in GlueSplit::skipped_quirks and described in GlueSplit::warnings instead:
//   * QQP: rows with missing fields (fewer columns than the header, or an empty is_duplicate), which
//     the GLUE QQP train file is known to contain; Hugging Face `datasets` filters them out too.
//     More columns than the header is not this quirk and stays an error.
//   * MNLI (and SNLI-style files): gold_label "-" (annotators reached no consensus); GLUE and HF drop them.
// Blank lines are ignored (not examples, not quirks) and reported in a warning.
//
// Labels: CoLA, SST-2, MRPC, QQP and WNLI files write class ids (0/1); RTE, QNLI and MNLI write class
// names, mapped to ids through GlueTaskInfo::label_names. A class name is accepted in either kind of file.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/text_encoding.h"
#include "data/text_example.h"

namespace meft {

struct GlueTaskInfo {
    std::string name;                      // canonical name: cola sst2 mrpc stsb qqp mnli qnli rte wnli
    std::string dir_name;                  // folder in the GLUE download: CoLA, SST-2, MRPC, STS-B, ...
    std::vector<std::string> label_names;  // class names, in Hugging Face `datasets` order; empty for STS-B
    bool regression = false;               // STS-B: a similarity score in [0, 5]
    std::vector<std::string> splits;       // canonical split names, e.g. train dev test
    // The metrics papers report for the task (the GLUE leaderboard's), as named by glue_metrics():
    // cola: matthews; sst2, qnli, rte, wnli: accuracy; mrpc, qqp: f1, accuracy; stsb: pearson, spearman;
    // mnli: accuracy_matched, accuracy_mismatched (accuracy on dev_matched and on dev_mismatched).
    std::vector<std::string> metrics;
    int num_labels() const { return regression ? 1 : static_cast<int>(label_names.size()); }
};

// All nine tasks, in GLUE's order: cola sst2 mrpc stsb qqp mnli qnli rte wnli.
const std::vector<GlueTaskInfo>& glue_tasks();

// Looks a task up case-insensitively, ignoring '-', '_' and spaces, with common aliases
// ("SST-2", "sst", "STS-B", "sts", "MultiNLI", ...). Throws Error listing the known tasks.
const GlueTaskInfo& glue_task(const std::string& name);

// The canonical split name: "validation"/"valid"/"val" mean dev; for MNLI "dev"/"validation" mean
// dev_matched, "test" means test_matched, and "validation_matched" etc. are accepted.
// Throws Error listing the task's splits.
std::string glue_split_name(const GlueTaskInfo& task, const std::string& split);

// The file a split lives in: task_dir / "<canonical split>.tsv".
std::filesystem::path glue_split_file(const GlueTaskInfo& task, const std::filesystem::path& task_dir,
                                      const std::string& split);

struct GlueSplit {
    std::vector<TextExample> examples;
    int skipped_quirks = 0;             // rows dropped as known GLUE quirks (see the top of this file)
    std::vector<std::string> warnings;  // one line per kind of skipped row, naming file and lines
};

// Loads one split of a task from task_dir (e.g. ".../glue/SST-2", "train").
// Examples: text_a/text_b as in the file (no trimming); label = class id into label_names, or -1 when
// a test split's file has no label column or an empty label; target = the STS-B score; id = the row's "index" / "id"
// column, for MRPC train/dev "<#1 ID>-<#2 ID>", else (CoLA train/dev, SST-2 train/dev) the line number.
// `decoding`: the file's encoding (UTF-8 by default) and the advice a UTF-8 error ends with.
GlueSplit load_glue(const std::string& task, const std::filesystem::path& task_dir, const std::string& split,
                    const TextDecoding& decoding = {});

}  // namespace meft
