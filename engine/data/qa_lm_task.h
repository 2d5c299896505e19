// qa_lm_task.h — a multiple-choice QA task as causal language modelling (OPT; MEFT spec §7.2):
// training examples are the gold sequences (context + " " + answer, loss on the answer's tokens),
// evaluation examples every choice of every question, scored by likelihood (choice_prompt.h).
#pragma once
#include "data/example.h"
#include "data/qa.h"
#include "data/tokenizer.h"

namespace meft {

// Throws Error naming the file (from the loader) or the question whose answer cannot fit.
TaskData load_qa_lm_task(const QaTaskRequest& r, const Tokenizer& tok);

}  // namespace meft
