// qa_pair_task.h — a multiple-choice QA task for a multiple-choice head (BERT, RoBERTa, BART):
// every choice of a question becomes one (context, choice) pair, tokenized as a sentence pair with
// the model's special tokens; the head scores each pair and a softmax runs over a question's pairs.
//
//   task            first text                        second text
//   openbookqa      question stem                     choice
//   arc_easy/_chal  question                          choice
//   piqa            goal                              solution
//   sciq            question + " " + support          choice
//
// Truncation is longest first (as the tokenizers do), so SciQ's long support loses its end first
// and the question and the choice stay whole.
#pragma once
#include <string>
#include <vector>

#include "data/example.h"
#include "data/qa.h"
#include "data/text_example.h"
#include "data/tokenizer.h"

namespace meft {

struct ChoicePairs {
    std::string first;                 // shared by every choice
    std::vector<std::string> seconds;  // one per choice
    int answer = -1;                   // the gold choice; -1 when unlabelled
};

// The pairs of one item of `task` (a name qa_task() accepts).
ChoicePairs choice_pairs(const std::string& task, const ChoiceExample& item);

// train: every pair of every labelled question (a question's pairs consecutive, label 1 for the
// gold choice, 0 for the others); dev: every pair of every question (unlabelled ones get label -1
// and are not scored). num_labels is 1, choice_pairs true. QaTaskRequest::bos is not used.
TaskData load_qa_pair_task(const QaTaskRequest& r, const Tokenizer& tok);

}  // namespace meft
