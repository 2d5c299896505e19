// text_corpus.h — raw text for masked-language-model pre-training (BERT, RoBERTa): reading a corpus
// into documents, cutting their encodings into fixed-length blocks as Hugging Face's run_mlm.py
// does without --line_by_line, and masking a block as its DataCollatorForLanguageModeling /
// DataCollatorForWholeWordMask do, but drawn from a Philox key so that a run repeats bit for bit.
//
// A corpus source is
//   a plain-text file   documents separated by one or more blank lines (only spaces, tabs, \r, \f,
//                       \v); a document's lines, each trimmed of that whitespace, joined with one
//                       space. Nothing else of the text is changed.
//   a .jsonl file       one JSON object a line (blank lines skipped); the document is the string at
//                       the source's text_field. A document that is only whitespace is skipped, as
//                       a blank line is in a plain-text file.
//   a folder            every regular file under it, recursively, in path order, each read by its
//                       extension as above; names starting with '.' (files and folders) are skipped.
// Files are UTF-8, checked strictly (an error names file, line and byte, and ends with the
// decoding's advice), or Latin-1 when the decoding says so (text_encoding.h). A NUL byte means a
// binary file (or UTF-16 text) and is an error naming the file and the byte offset.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/philox.h"
#include "data/choice_prompt.h"  // kIgnoreLabel (-100), the label a loss skips
#include "data/text_encoding.h"
#include "data/tokenizer.h"

namespace meft {

struct CorpusSource {
    std::filesystem::path path;      // a file or a folder
    std::string text_field = "text"; // for .jsonl files: the key holding a document's text
};

// The documents of every source, in the order given. Throws Error for a path that does not exist,
// a folder with no files, a binary file, bytes that are not UTF-8, a malformed .jsonl line (file,
// line and what is wrong), and a corpus with no text at all (naming the sources read).
std::vector<std::string> read_corpus(const std::vector<CorpusSource>& sources, const TextDecoding& decoding = {});

// Every document encoded with the model's special tokens (tok.encode(doc, nullopt, 0): BERT
// [CLS] doc [SEP], RoBERTa <s> doc </s>; never truncated), the encodings concatenated in order and
// cut into consecutive blocks of exactly block_tokens ids. The remainder shorter than a block is
// dropped, as run_mlm's group_texts does. Throws Error when block_tokens < 2 or when the corpus
// does not fill one block (the message gives its token count and the block length).
std::vector<std::vector<std::int32_t>> pack_blocks(const Tokenizer& tok, const std::vector<std::string>& documents,
                                                   int block_tokens);

struct CorpusSplit {
    std::vector<std::string> train, held_out;  // both in shuffled order
};

// Shuffles the documents (Fisher–Yates driven by std::mt19937_64(seed), with its own unbiased
// bounded draws, so the order is the same with every standard library), then holds out the first
// round(held_out_share * n) — at least one when the share is above 0 — and trains on the rest.
// The documents are shuffled even when the share is 0. Throws Error when the share is outside
// [0, 0.5] or when it is above 0 and there are fewer than 2 documents.
CorpusSplit split_documents(std::vector<std::string> docs, double held_out_share, std::uint64_t seed);

struct MaskingOptions {
    double probability = 0.15;    // of selecting a token (whole_word: a word) for prediction
    bool whole_word = false;      // select whole words rather than single tokens
    std::int32_t mask_id = -1;    // [MASK] / <mask>
    int vocab_size = 0;
    // [vocab_size]: ids never selected and never drawn as a random replacement ([CLS], [SEP],
    // [PAD], [MASK], <s>, </s>, <pad>, <mask>).
    std::vector<bool> special;
    // [vocab_size] (may be empty unless whole_word): ids that continue the previous token's word
    // (WordPiece "##x"; byte-level BPE: tokens not starting with "Ġ" that are not special).
    std::vector<bool> continues_word;
};

// Masks one block in place; labels becomes ids.size() entries: the original id where a token was
// selected, kIgnoreLabel elsewhere. Of the selected tokens 80% become mask_id, 10% a random
// non-special id, 10% stay as they are (Hugging Face's DataCollatorForLanguageModeling; unlike
// it, random replacements are never special tokens).
//
// Draws: position i uses philox_block(key, example, i), whose four words are
//   w[0]  selects the position when w[0] < floor(probability * 2^32) (drop_threshold);
//         whole_word: the word's first token's w[0] selects every token of the word
//   w[1]  for a selected position: < floor(0.8 * 2^32) mask, < floor(0.9 * 2^32) random, else kept
//   w[2]  the random id: the ((uint64(w[2]) * n) >> 32)-th non-special id in increasing order,
//         n = the number of non-special ids
//   w[3]  unused
// A word is a token followed by its continuation tokens; a continuation token at the start of
// the block or after a special token begins a word of its own. Special ids are never selected.
// Throws Error when mask_id or an id of `ids` is outside the vocabulary, when special (or, for
// whole_word, continues_word) does not have vocab_size entries, when probability is outside
// [0, 1], or when every id is special.
void mask_tokens(const MaskingOptions& o, const PhiloxKey& key, std::uint32_t example, std::vector<std::int32_t>& ids,
                 std::vector<std::int32_t>& labels);

// The masking options of a tokenizer: its mask token ("[MASK]" or "<mask>"), its special tokens
// among [CLS] [SEP] [PAD] [MASK] <s> </s> <pad> <mask> (not [UNK] / <unk>: Hugging Face masks those
// like any other token), and its word continuations (a vocabulary with tokens starting with "Ġ" is
// byte-level BPE; otherwise WordPiece "##"). Throws Error when the vocabulary has no mask token.
MaskingOptions masking_options(const Tokenizer& tok, double probability, bool whole_word);

}  // namespace meft
