// jsonl_examples.h — already tokenized examples as JSON lines:
//   {"input_ids": [...], "token_type_ids": [...], "attention_mask": [...], "label": 1}
// token_type_ids, attention_mask and label (or a numeric "target"/"label" for regression) are optional.
#pragma once
#include <filesystem>
#include <vector>

#include "data/example.h"

namespace meft {

// Throws Error naming the file, the line and the key for every malformed line.
std::vector<Example> read_jsonl_examples(const std::filesystem::path& file);

}  // namespace meft
