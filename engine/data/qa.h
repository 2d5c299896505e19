// qa.h — multiple-choice QA datasets (the MEFT / OPT evaluation set) in their original file layouts.
//
//   openbookqa  <dir>/<split>.tsv or <dir>/Main/<split>.tsv — OpenBookQA-V1-Sep2018 Data/Main layout:
//               header "ID, Question Stem, Choices, Complete Question, Answer Key" (tab-separated, no
//               quoting), Choices written "(A) text (B) text (C) text (D) text", Answer Key a letter.
//               Or <dir>/[Main/]<split>.jsonl: {"id", "question": {"stem", "choices": [{"text","label"}]},
//               "answerKey"} (the .tsv is used when both exist). Extra keys (fact1, ...) are ignored.
//   arc_easy,   <dir>/<split>.jsonl or <dir>/ARC-Easy-<Split>.jsonl (ARC-Challenge-<Split>.jsonl): the ARC
//   arc_challenge  record as above; extra keys such as the per-choice "para" are ignored. answerKey is
//               matched against the choices' labels, which are letters A-E or digits 1-5; 3 to 5 choices.
//   piqa        <dir>/train.jsonl + train-labels.lst, valid.jsonl + valid-labels.lst, tests.jsonl (no
//               labels): {"goal", "sol1", "sol2"} per line, one 0/1 label per line of the .lst.
//   sciq        <dir>/<split>.json: a JSON array of {"question", "distractor1", "distractor2",
//               "distractor3", "correct_answer", "support"} (a .jsonl with one such object a line is also
//               read). choices = {distractor1, distractor2, distractor3, correct_answer} in that FIXED
//               order, so answer = 3 (as lm-evaluation-harness does); context = support. A model that
//               scores all choices equally is still marked wrong: argmax ties go to the first choice.
//
// Splits: train, dev, test ("validation", "valid", "val" mean dev; PIQA's dev files are valid.*, SciQ's
// valid.json). Lines end in "\n" or "\r\n"; blank lines in .jsonl/.lst files are ignored. Files are UTF-8,
// checked strictly before any JSON is parsed (a line that is not is an error naming file, line and
// byte), or Latin-1 when asked (text_encoding.h).
// Malformed input throws meft::Error naming the file, the line (SciQ .json: the line where the item
// starts, and the item's index), the key or column, and what was expected. A Git LFS pointer file is
// reported as such. An unlabelled test item has answer -1; a train/dev item without an answer is an error.
// id: the record's "ID"/"id" when it has one; PIQA: the line number; SciQ: the item's 0-based index.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/text_encoding.h"
#include "data/text_example.h"

namespace meft {

struct QaTaskInfo {
    std::string name;      // canonical name: openbookqa arc_easy arc_challenge piqa sciq
    std::string dir_name;  // the usual folder name: OpenBookQA, ARC-Easy, ARC-Challenge, PIQA, SciQ
    int num_choices = 0;   // choices per item; 0 when it varies (ARC: 3 to 5)
    int most_choices() const { return num_choices > 0 ? num_choices : 5; }  // the largest item's
    std::vector<std::string> splits;  // train dev test
};

const std::vector<QaTaskInfo>& qa_tasks();

// Case-insensitive, ignoring '-', '_' and spaces; aliases obqa, arc_e / arc-easy, arc_c, ...
// Throws Error listing the known tasks.
const QaTaskInfo& qa_task(const std::string& name);

// `decoding`: the files' encoding (UTF-8 by default) and the advice a UTF-8 error ends with.
std::vector<ChoiceExample> load_qa(const std::string& task, const std::filesystem::path& dir,
                                   const std::string& split, const TextDecoding& decoding = {});

// What a run reads of a QA task (qa_lm_task.h: causal LM; qa_pair_task.h: a multiple-choice head).
struct QaTaskRequest {
    std::string task;                 // a name qa_task() accepts
    std::filesystem::path dir;        // the task's folder
    std::string dev_split;            // "" = dev
    int max_train_examples = 0;       // > 0: the first N questions only
    int max_dev_examples = 0;
    int max_seq_length = 128;
    bool load_train = true;           // false: evaluation only (zero-shot); train stays empty
    std::int32_t bos = -1;            // causal LM: prepended to every sequence when >= 0 (OPT: </s> = 2)
    TextDecoding decoding;            // the files' encoding (task.encoding)
};

struct IndexedQuestion {
    int index = 0;                    // the item's position in its file (Example::group)
    ChoiceExample item;
};
// The request's questions in file order: for training the labelled ones (the first
// max_train_examples of them), for evaluation the first max_dev_examples of the dev split.
std::vector<IndexedQuestion> requested_questions(const QaTaskRequest& r, bool train);

}  // namespace meft
