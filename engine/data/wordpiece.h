// wordpiece.h — the BERT WordPiece tokenizer, equal token for token to Hugging Face `tokenizers`
// (what transformers' BertTokenizerFast runs): BertNormalizer, BertPreTokenizer, the WordPiece
// model, special ("added") tokens matched in the raw text, and the [CLS] a [SEP] b [SEP] template.
//
// Pipeline of encode_text(text):
//   1. Added tokens ([CLS], [SEP], [MASK], ... for BERT) are cut out of the raw text first and
//      map straight to their ids; the pieces between them go through steps 2-4 separately.
//   2. BertNormalizer: clean text (drop NUL, U+FFFD and control characters — categories Cc, Cf,
//      Co except \t \n \r; map every White_Space character to ' '), pad CJK ideographs with
//      spaces, strip accents (NFD, then drop Mn marks), lower-case (full Unicode lower case).
//   3. BertPreTokenizer: split on White_Space, and isolate every punctuation character (ASCII
//      33-47, 58-64, 91-96, 123-126, and Unicode P*).
//   4. WordPiece: greedy longest-match-first with the "##" continuation prefix; a word that
//      cannot be segmented or has more than max_input_chars_per_word code points is one [UNK].
// Unicode properties, NFD and lower-casing come from utf8proc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/tokenizer.h"

namespace meft {

// Options for a tokenizer built from vocab.txt, named as in tokenizer_config.json.
struct WordPieceOptions {
    bool do_lower_case = true;
    std::optional<bool> strip_accents;  // unset: follow do_lower_case (BERT's rule)
    bool tokenize_chinese_chars = true;
    bool clean_text = true;
    std::string unk = "[UNK]";
    std::string cls = "[CLS]";
    std::string sep = "[SEP]";
    std::string pad = "[PAD]";
    std::string mask = "[MASK]";                         // matched in text like the others when the vocabulary has it
    std::vector<std::string> additional_special_tokens;  // also matched verbatim in the raw text
    int max_input_chars_per_word = 100;
    std::string continuing_subword_prefix = "##";
};



class WordPieceTokenizer : public Tokenizer {
public:
    // From a BERT vocab.txt (one token a line, id = line number from 0), as transformers'
    // BertTokenizerFast builds it: unk/cls/sep/pad must be in the vocabulary; the special tokens
    // present in it (unk, sep, pad, cls, mask, additional) are matched verbatim in raw text.
    // Throws Error naming the file when it cannot be read or a special token is missing.
    static std::unique_ptr<WordPieceTokenizer> from_files(const std::filesystem::path& vocab_txt_path,
                                                          const WordPieceOptions& options = {});

    // From a Hugging Face tokenizer.json with a WordPiece model: normalizer BertNormalizer or
    // null, pre_tokenizer BertPreTokenizer or null, post_processor TemplateProcessing,
    // BertProcessing or null, and its added_tokens. pad_id() is padding.pad_id when the file has
    // a padding section, else the id of pad_token. Throws Error naming the file and the key.
    static std::unique_ptr<WordPieceTokenizer> from_tokenizer_json(const std::filesystem::path& tokenizer_json_path,
                                                                   std::string_view pad_token = "[PAD]");

    // transformers' BertTokenizerFast.__init__ rule: tokenizer_config.json's do_lower_case,
    // strip_accents and tokenize_chinese_chars replace those of the file's BertNormalizer (a
    // tokenizer without a normalizer is left as it is). Call before sharing the tokenizer.
    void apply_tokenizer_config(bool do_lower_case, std::optional<bool> strip_accents, bool tokenize_chinese_chars);

    std::vector<std::int32_t> encode_text(std::string_view text) const override;
    Encoding encode(std::string_view a, std::optional<std::string_view> b, int max_length) const override;
    std::string token(std::int32_t id) const override;
    std::int32_t pad_id() const override { return pad_id_; }
    int vocab_size() const override { return static_cast<int>(id_to_token_.size()); }

    // The token strings of encode_text(text).
    std::vector<std::string> tokenize(std::string_view text) const;
    // The id of a vocabulary entry or added token, if any.
    std::optional<std::int32_t> token_to_id(std::string_view token) const;
    // The text after the normalizer (step 2 above), as UTF-8; for tests and debugging.
    std::string normalize(std::string_view text) const;
    // How many special tokens encode() adds for one text (pair = false) or a pair.
    int num_special_tokens(bool pair) const;

private:
    struct AddedToken {
        std::string content;
        std::int32_t id = 0;
        bool single_word = false, lstrip = false, rstrip = false, normalized = false;
    };
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    struct Normalizer {
        bool enabled = true;
        bool clean_text = true, handle_chinese_chars = true, strip_accents = true, lowercase = true;
    };
    struct Matcher {  // added tokens, matched leftmost-longest on code points
        std::u32string pattern;
        std::int32_t id = 0;
        bool single_word = false, lstrip = false, rstrip = false;
    };

    WordPieceTokenizer() = default;
    void finish_setup(const std::string& where);
    void rebuild_normalized_matchers();
    void normalize_into(std::u32string_view in, std::u32string& out) const;
    void encode_segment(std::u32string_view raw, std::vector<std::int32_t>& out) const;
    void encode_normalized(std::u32string_view text, std::vector<std::int32_t>& out) const;
    void encode_word(std::u32string_view word, std::vector<std::int32_t>& out) const;
    std::optional<std::int32_t> vocab_lookup(std::string_view s) const;

    std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> vocab_;
    std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> added_vocab_;
    std::vector<std::string> id_to_token_;
    std::size_t max_token_bytes_ = 0;

    Normalizer normalizer_;
    bool bert_pre_tokenizer_ = true;
    std::string unk_token_ = "[UNK]";
    std::int32_t unk_id_ = 0;
    std::string prefix_ = "##";
    std::size_t max_input_chars_per_word_ = 100;

    std::vector<AddedToken> added_tokens_;
    std::vector<Matcher> raw_matchers_;         // normalized = false: matched in the raw text
    std::vector<Matcher> normalized_matchers_;  // normalized = true: matched after normalizing

    std::vector<TemplatePiece> single_template_, pair_template_;
    std::int32_t pad_id_ = 0;
};

}  // namespace meft
