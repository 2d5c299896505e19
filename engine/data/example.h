// example.h — one tokenized example and a task's splits.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace meft {

struct Example {
    std::vector<std::int32_t> input_ids;
    std::vector<std::int32_t> token_type_ids;   // empty = all zero
    std::vector<std::int32_t> attention_mask;   // empty = all one
    int label = -1;                             // class id (classification); -1 = unknown
    double target = 0.0;                        // value (regression)
    // Causal LM (OPT QA): one label per token, -100 where nothing is predicted (choice_prompt.h).
    // Masked LM (masked_lm): the original id at each masked position, not shifted.
    std::vector<std::int32_t> token_labels;
    bool masked_lm = false;
    // Multiple choice (scored by likelihood, or a (context, choice) pair for a multiple-choice
    // head): the question this example is a choice of, and which (label is then 1 for the gold
    // choice, 0 for the others, -1 when unknown). A question's pairs are consecutive examples.
    int group = -1;
    int choice = -1;
    int continuation_bytes = 0;  // the choice text's length in bytes (acc_norm)
};

// A (context, choice) pair of a multiple-choice head: a question's choice without token labels.
inline bool is_choice_pair(const Example& e) { return e.group >= 0 && e.token_labels.empty(); }

// How much an example weighs in a step's mean loss: 1; for a causal LM example the number of
// tokens it predicts (positions t >= 1 with a label), so the mean is per predicted token as in
// Hugging Face's causal LM loss; for a masked LM example its masked positions (any t); for a choice pair 1 if it is the gold choice and 0 otherwise, so
// each question weighs 1 (the mean is per question, as in BertForMultipleChoice).
int loss_weight(const Example& e);

struct MaskingOptions;  // data/text_corpus.h

struct TaskData {
    std::string name;
    // Masked-LM pre-training: train holds unmasked blocks of text, masked anew at every step with
    // these options (from philox_key(seed, step, kMaskingSite)); dev holds blocks masked once
    // (token_labels: the original id at masked positions, -100 elsewhere; not shifted).
    std::shared_ptr<const MaskingOptions> masking;
    // Causal LM multiple choice (OPT): train holds gold sequences, dev every choice of every
    // question (Example::group / choice); evaluation scores choices by log-likelihood.
    bool choice_lm = false;
    // Multiple choice with a multiple-choice head (encoders, BART): train and dev hold every
    // (context, choice) pair of every question; num_labels is 1 (one score per pair).
    bool choice_pairs = false;
    int num_labels = 2;            // 1 = regression
    std::string metric_task;       // GLUE task whose metrics evaluation reports ("" = accuracy / pearson)
    std::vector<Example> train;
    std::vector<Example> dev;
    // A second evaluation split (MNLI: dev_mismatched). When present, metrics are reported as
    // "<metric>_<dev_name>" and "<metric>_<dev_extra_name>" (accuracy_matched, accuracy_mismatched).
    std::vector<Example> dev_extra;
    std::string dev_name, dev_extra_name;
    bool regression() const { return num_labels == 1 && !choice_pairs; }
};

}  // namespace meft
