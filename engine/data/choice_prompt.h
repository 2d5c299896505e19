// choice_prompt.h — multiple-choice QA as causal language modelling (OPT; MEFT spec §7.2).
//
// A decoder scores each choice by the log-likelihood of its text after the question, as
// EleutherAI's lm-evaluation-harness does (the harness the paper reports): the context is the
// task's prompt, each continuation is " " + the choice's text. Training uses the gold
// continuation with the causal LM loss on its tokens only (the context's labels are -100,
// which the cross-entropy op ignores).
//
//   task            context                                        continuation
//   piqa            "Question: {goal} Answer:"                     " " + solution
//   openbookqa      "{question stem}"                              " " + choice text
//   arc_easy/_chal  "Question: {question}\nAnswer:"                " " + choice text
//   sciq            "{support}\nQuestion: {question}\nAnswer:"     " " + choice text
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/text_example.h"

namespace meft {

class Tokenizer;

struct ChoicePrompt {
    std::string context;
    std::vector<std::string> continuations;  // one per choice, each starting with " "
    int answer = -1;                         // the gold choice; -1 when unlabelled
};

// The prompt of one item of `task` (a name qa_task() accepts). Throws Error for an unknown task.
ChoicePrompt choice_prompt(const std::string& task, const ChoiceExample& item);

constexpr std::int32_t kIgnoreLabel = -100;  // a label the loss skips (Hugging Face's convention)

// One causal-LM sequence: the context's tokens then the continuation's; labels[t] = ids[t] on the
// continuation and kIgnoreLabel elsewhere (the model shifts: position t-1 predicts labels[t]).
// `bos` (OPT: </s>, id 2) is prepended when >= 0. Longer than max_length tokens (0: no limit):
// the context loses tokens from its start, as the harness truncates, so the continuation stays
// whole; a continuation that alone does not fit is an Error naming both lengths.
struct LmSequence {
    std::vector<std::int32_t> ids;
    std::vector<std::int32_t> labels;
    int continuation_tokens = 0;
};
LmSequence lm_sequence(const Tokenizer& tok, const std::string& context, const std::string& continuation,
                       int max_length, std::int32_t bos = -1);

// The harness's two accuracies from each choice's summed log-likelihood: `pred` maximises the
// sum ("acc", the metric the paper reports), `pred_norm` the sum divided by the continuation's
// length in bytes ("acc_norm"). Ties go to the first choice.
struct ChoiceScores {
    std::vector<double> loglik, loglik_norm;
    int pred = -1, pred_norm = -1;
};
ChoiceScores score_choices(const std::vector<double>& loglik, const std::vector<std::string>& continuations);
// The same with each continuation's length in bytes given.
ChoiceScores score_choices(const std::vector<double>& loglik, const std::vector<std::size_t>& bytes);

}  // namespace meft
