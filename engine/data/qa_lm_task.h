// qa_lm_task.h — a multiple-choice QA task as causal language modelling (OPT; MEFT spec §7.2):
// training examples are the gold sequences (context + " " + answer, loss on the answer's tokens),
// evaluation examples every choice of every question, scored by likelihood (choice_prompt.h).
#pragma once
#include <filesystem>
#include <string>

#include "data/example.h"
#include "data/tokenizer.h"

namespace meft {

struct QaTaskRequest {
    std::string task;                 // a name qa_task() accepts
    std::filesystem::path dir;        // the task's folder
    std::string dev_split;            // "" = dev
    int max_train_examples = 0;       // > 0: the first N questions only
    int max_dev_examples = 0;
    int max_seq_length = 128;
    bool load_train = true;           // false: evaluation only (zero-shot); train stays empty
    std::int32_t bos = -1;            // prepended to every sequence when >= 0 (OPT: </s> = 2)
};

// Throws Error naming the file (from the loader) or the question whose answer cannot fit.
TaskData load_qa_lm_task(const QaTaskRequest& r, const Tokenizer& tok);

}  // namespace meft
