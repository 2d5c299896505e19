// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_tokenizer_json.cpp — libFuzzer target for a tokenizer folder with a Hugging Face
// tokenizer.json (data/tokenizer.h load_tokenizer; WordPiece and byte-level BPE models).
// Input, cut at 0xFF bytes: tokenizer.json, then (each optional) tokenizer_config.json,
// config.json, and a text to encode. The folder is loaded as `meft` loads one, and the tokenizer
// exercised (exercise_tokenizer.h).
#include <cstddef>
#include <cstdint>

#include "data/tokenizer.h"
#include "exercise_tokenizer.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace meft;
    const auto parts = fuzz::split_parts(data, size, 4);
    const auto dir = fuzz::fresh_dir("tokenizer-json");
    fuzz::write_file(dir / "tokenizer.json", parts[0]);
    if (parts.size() > 1) fuzz::write_file(dir / "tokenizer_config.json", parts[1]);
    if (parts.size() > 2) fuzz::write_file(dir / "config.json", parts[2]);
    const std::string_view text = parts.size() > 3 ? parts[3] : std::string_view();
    std::unique_ptr<Tokenizer> tok;
    fuzz::expect_only_meft_errors("load_tokenizer", [&] { tok = load_tokenizer(dir); });
    if (tok) fuzz::exercise_tokenizer(*tok, text);
    return 0;
}
