// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_predict_jsonl.cpp — libFuzzer target for the JSON-lines reader of `meft predict`
// (data/jsonl_examples.h read_jsonl_examples): tokenized lines {"input_ids", ...} or text lines
// {"text", "text_pair"}.
// Input: one mode byte (bit 0: with a tokenizer for text lines; bits 1-3: max_length 0..7 * 4;
// bit 4: the vocabulary check meft predict asks for, at 1000 ids), then the file.
#include <cstddef>
#include <cstdint>

#include "data/jsonl_examples.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace meft;
    if (size == 0) return 0;
    const auto dir = fuzz::fresh_dir("predict");
    const auto file = dir / "inputs.jsonl";
    fuzz::write_file(file, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
    const Tokenizer* tok = (data[0] & 1) ? &fuzz::small_tokenizer() : nullptr;
    const int max_length = ((data[0] >> 1) & 7) * 4;
    const int vocab = (data[0] & 16) ? 1000 : 0;
    fuzz::expect_only_meft_errors("read_jsonl_examples", [&] {
        for (const Example& e : read_jsonl_examples(file, tok, max_length > 0 ? max_length : 512, {}, vocab)) {
            fuzz::require(!e.input_ids.empty(), "an example without input_ids");
            for (const std::int32_t id : e.input_ids)
                fuzz::require(vocab == 0 || (id >= 0 && id < vocab), "a token id outside the vocabulary passed the check");
            fuzz::require(e.token_type_ids.empty() || e.token_type_ids.size() == e.input_ids.size(),
                          "token_type_ids and input_ids differ in length");
            fuzz::require(e.attention_mask.empty() || e.attention_mask.size() == e.input_ids.size(),
                          "attention_mask and input_ids differ in length");
        }
    });
    return 0;
}
