// jsonl_examples.h — already tokenized examples as JSON lines:
//   {"input_ids": [...], "token_type_ids": [...], "attention_mask": [...], "label": 1}
// token_type_ids, attention_mask and label (or a numeric "target"/"label" for regression) are optional.
#pragma once
#include <filesystem>
#include <vector>

#include "data/example.h"
#include "data/text_encoding.h"
#include "data/tokenizer.h"

namespace meft {

// Lines may instead carry text: {"text": "...", "text_pair": "...", "label": 1}, encoded with `tok`
// (truncated longest-first to max_length). Throws Error naming the file, the line and the key for
// every malformed line, and for text lines when no tokenizer is given. Lines are UTF-8, checked
// strictly before they are parsed (an error names file, line and byte), or Latin-1 when
// `decoding` says so (text_encoding.h).
// vocab_size > 0: every token id must be below it (an error names the line and the position).
std::vector<Example> read_jsonl_examples(const std::filesystem::path& file, const Tokenizer* tok = nullptr,
                                         int max_length = 512, const TextDecoding& decoding = {}, int vocab_size = 0);

}  // namespace meft
