// SPDX-License-Identifier: GPL-3.0-or-later
// fuzz_vocab_merges.cpp — libFuzzer target for the plain vocabulary files: a BERT WordPiece
// vocab.txt (data/wordpiece.h) and a byte-level BPE vocab.json + merges.txt (data/bpe.h).
// Input: one mode byte, then parts cut at 0xFF bytes.
//   mode bit 0 clear: WordPiece — vocab.txt, text; bit 1: do_lower_case, bit 2: strip_accents.
//   mode bit 0 set:   BPE — vocab.json, merges.txt, text; bits 1-2: family (roberta, bart, opt),
//                     bit 3: add_prefix_space.
// A tokenizer that loads is exercised (exercise_tokenizer.h).
#include <cstddef>
#include <cstdint>

#include "data/bpe.h"
#include "data/wordpiece.h"
#include "exercise_tokenizer.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace meft;
    if (size == 0) return 0;
    const std::uint8_t mode = data[0];
    const auto dir = fuzz::fresh_dir("vocab-merges");
    std::unique_ptr<Tokenizer> tok;
    std::string_view text;
    if ((mode & 1) == 0) {
        const auto parts = fuzz::split_parts(data + 1, size - 1, 2);
        fuzz::write_file(dir / "vocab.txt", parts[0]);
        if (parts.size() > 1) text = parts[1];
        WordPieceOptions o;
        o.do_lower_case = (mode & 2) != 0;
        o.strip_accents = (mode & 4) != 0;
        fuzz::expect_only_meft_errors("WordPiece from_files", [&] { tok = WordPieceTokenizer::from_files(dir / "vocab.txt", o); });
    } else {
        const auto parts = fuzz::split_parts(data + 1, size - 1, 3);
        fuzz::write_file(dir / "vocab.json", parts[0]);
        fuzz::write_file(dir / "merges.txt", parts.size() > 1 ? parts[1] : std::string_view());
        if (parts.size() > 2) text = parts[2];
        static constexpr BpeFamily kFamilies[] = {BpeFamily::Roberta, BpeFamily::Bart, BpeFamily::Opt, BpeFamily::Roberta};
        BpeOptions o = BpeOptions::for_family(kFamilies[(mode >> 1) & 3]);
        o.add_prefix_space = (mode & 8) != 0;
        fuzz::expect_only_meft_errors("BPE from_files",
                                      [&] { tok = ByteLevelBpeTokenizer::from_files(dir / "vocab.json", dir / "merges.txt", o); });
    }
    if (tok) fuzz::exercise_tokenizer(*tok, text);
    return 0;
}
