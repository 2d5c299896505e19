// text_task.h — tokenizing text examples into model inputs.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/example.h"
#include "data/text_encoding.h"
#include "data/text_example.h"
#include "data/tokenizer.h"

namespace meft {

// Each example encoded with the model's special tokens and truncated longest-first to
// max_length; labels and regression targets carried over.
std::vector<Example> tokenize_examples(const Tokenizer& tok, const std::vector<TextExample>& in, int max_length);

struct GlueTaskRequest {
    std::string task;                 // GLUE name (glue.h)
    std::filesystem::path dir;        // the task's folder
    std::string dev_split;            // "" = the task's dev split
    int max_train_examples = 0;       // > 0: the first N only
    int max_dev_examples = 0;
    int max_seq_length = 128;
    TextDecoding decoding;            // the files' encoding (task.encoding)
};

// Loads and tokenizes a GLUE task's train and dev splits. Skipped GLUE quirks are reported
// through `warnings`.
TaskData load_glue_task(const GlueTaskRequest& r, const Tokenizer& tok, std::vector<std::string>* warnings = nullptr);

}  // namespace meft
