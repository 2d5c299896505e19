// SPDX-License-Identifier: GPL-3.0-or-later
// exercise_tokenizer.h — what the tokenizer fuzz targets do with a tokenizer that loaded: encode a
// fixed sample and the input's own text, alone and as a pair, with and without a length limit,
// and check that every id it produces is one the tokenizer knows (a model indexes its embedding
// table with them). A byte-level BPE tokenizer also decodes its ids.
#pragma once
#include <optional>
#include <string_view>

#include "data/bpe.h"
#include "fuzz_support.h"

namespace meft::fuzz {

inline void exercise_tokenizer(const Tokenizer& tok, std::string_view text) {
    static constexpr std::string_view kSample =
        "Hello, world! It's a naïve café — 東京 2024 [MASK] <mask> </s> [SEP]\tdon't  stop\r\n";
    expect_only_meft_errors("vocab_size/pad_id", [&] {
        require(tok.vocab_size() >= 0, "a negative vocab_size");
        (void)tok.pad_id();
    });
    for (std::string_view t : {kSample, text}) {
        expect_only_meft_errors("encode_text", [&] { check_ids(tok, tok.encode_text(t)); });
        for (int max_length : {0, 7}) {
            expect_only_meft_errors("encode", [&] {
                const Encoding e = tok.encode(t, std::nullopt, max_length);
                check_ids(tok, e.input_ids);
                require(e.token_type_ids.size() == e.input_ids.size() && e.attention_mask.size() == e.input_ids.size(),
                        "encode: token_type_ids/attention_mask differ in length from input_ids");
                require(max_length == 0 || e.input_ids.size() <= static_cast<std::size_t>(max_length),
                        "encode: longer than max_length");
            });
            expect_only_meft_errors("encode pair", [&] {
                const Encoding e = tok.encode(t, kSample, max_length);
                check_ids(tok, e.input_ids);
                require(max_length == 0 || e.input_ids.size() <= static_cast<std::size_t>(max_length),
                        "encode pair: longer than max_length");
            });
        }
        if (const auto* bpe = dynamic_cast<const ByteLevelBpeTokenizer*>(&tok))
            expect_only_meft_errors("decode", [&] { (void)bpe->decode(bpe->encode_text(t), false); });
    }
}

}  // namespace meft::fuzz
