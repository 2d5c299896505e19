// bpe.h — byte-level BPE (the GPT-2 scheme) as RoBERTa, BART and OPT use it, equal token for token
// to Hugging Face `tokenizers` (ByteLevel pre-tokenizer + BPE model + the model's post-processor).
//
// Pipeline of one text:
//   1. added tokens (<s>, </s>, <pad>, <unk>, <mask>, ...) are cut out first, leftmost-longest,
//      honouring their lstrip / rstrip / single_word flags; they map straight to their ids;
//   2. every other piece gets a leading space when add_prefix_space is on (unless it already starts
//      with one) and is split by the GPT-2 pattern
//        's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//      evaluated by hand over code points (categories from utf8proc);
//   3. each word's UTF-8 bytes start as one symbol per byte (the GPT-2 byte-to-unicode alphabet)
//      and the merge with the lowest rank, leftmost on a tie, is applied until none applies.
// Bytes that are not valid UTF-8 are kept (each is its own "other" character) rather than
// rejected; Hugging Face only accepts valid UTF-8, so this is an extension, not a divergence.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/tokenizer.h"

namespace meft {

enum class BpeFamily { Roberta, Bart, Opt };

// "roberta", "bart" or "opt" (a config.json model_type); throws Error otherwise.
BpeFamily parse_bpe_family(std::string_view name);

struct BpeOptions {
    BpeFamily family = BpeFamily::Roberta;
    bool add_prefix_space = false;   // RoBERTa/BART/OPT default: false
    // Special token strings: unset takes the family's default (RoBERTa/BART: <s> </s> </s> <s>
    // <pad> <unk> <mask>; OPT: </s> as bos/eos/sep/cls/unk, <pad>, no mask); an empty string
    // means none. Each one that is set must be in vocab.json.
    std::optional<std::string> bos_token, eos_token, sep_token, cls_token, pad_token, unk_token;
    std::optional<std::string> mask_token;   // matched with lstrip (eats the spaces before it)

    // The options with every token set to the family's default.
    static BpeOptions for_family(BpeFamily family);
};

class ByteLevelBpeTokenizer final : public Tokenizer {
public:
    // vocab.json + merges.txt as transformers' RobertaTokenizerFast / BartTokenizerFast /
    // GPT2TokenizerFast (OPT) build them from those files:
    //   roberta, bart: <s> a </s>  and  <s> a </s></s> b </s>, token_type_ids all 0;
    //   opt:           </s> a      and  </s> a b (GPT2TokenizerFast with add_bos_token: the bos is
    //                  added once, before a; token_type_ids 0 for </s> and a, 1 for b).
    // The special tokens of options are added tokens (cut out of the text before BPE).
    // Throws Error naming the file and line/key on a malformed or inconsistent file.
    static std::unique_ptr<ByteLevelBpeTokenizer> from_files(const std::filesystem::path& vocab_json,
                                                             const std::filesystem::path& merges_txt,
                                                             const BpeOptions& options = {});

    struct JsonOverrides {
        // transformers lets tokenizer_config.json's add_prefix_space override the pre_tokenizer's.
        std::optional<bool> add_prefix_space;
        // pad token when the file's "padding" section does not name one; default "<pad>".
        std::optional<std::string> pad_token;
    };
    // A Hugging Face tokenizer.json: model BPE (vocab + merges as "a b" strings or [a, b] pairs,
    // optional unk_token/fuse_unk/ignore_merges), normalizer null, pre_tokenizer ByteLevel
    // (add_prefix_space, use_regex; also inside a Sequence), post_processor RobertaProcessing,
    // BertProcessing, TemplateProcessing, ByteLevel or null (also inside a Sequence), added_tokens.
    // Throws Error naming the file and key for anything else.
    static std::unique_ptr<ByteLevelBpeTokenizer> from_tokenizer_json(const std::filesystem::path& tokenizer_json,
                                                                      const JsonOverrides& overrides = {});

    ~ByteLevelBpeTokenizer() override;

    std::vector<std::int32_t> encode_text(std::string_view text) const override;
    Encoding encode(std::string_view a, std::optional<std::string_view> b, int max_length) const override;
    std::string token(std::int32_t id) const override;    // e.g. "Ġthe"; throws Error when out of range
    std::int32_t pad_id() const override;                 // throws Error when there is no pad token
    int vocab_size() const override;                      // highest id + 1 (model vocab and added tokens)

    std::optional<std::int32_t> token_to_id(std::string_view token) const;
    // Bytes of the ids joined (the inverse of encode_text without add_prefix_space); added tokens
    // appear as their text unless skip_special_tokens. May end inside a UTF-8 character.
    std::string decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens = true) const;
    int num_special_tokens(bool pair) const;              // what encode() adds to one text / a pair
    bool add_prefix_space() const { return add_prefix_space_; }

    // The GPT-2 pre-tokenization of text (step 2 without the prefix space): views into text.
    static std::vector<std::string_view> split_words(std::string_view text);
    // GPT-2's byte -> character table, as UTF-8 (byte 0x20 -> "Ġ").
    static const std::array<std::string, 256>& byte_alphabet();

    struct AddedToken {
        std::string content;
        std::int32_t id = 0;
        bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
    };

private:
    ByteLevelBpeTokenizer();

    struct Merge {
        std::int32_t rank;
        std::int32_t id;
    };
    struct StringHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using VocabMap = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

    void set_vocab(VocabMap vocab, const std::string& where);
    void add_merge(std::string_view left, std::string_view right, std::int32_t rank, const std::string& where);
    void set_added_tokens(std::vector<AddedToken> tokens);
    void append_word_ids(std::string_view word, std::vector<std::int32_t>& out) const;
    void bpe_word(std::string_view word, std::vector<std::int32_t>& out) const;
    void encode_plain(std::string_view text, std::vector<std::int32_t>& out) const;
    void split_added(std::string_view text, bool normalized_pass, std::vector<std::int32_t>& out) const;

    VocabMap vocab_;
    std::vector<std::string> id_to_token_;
    std::vector<char> is_special_;                 // per id: an added special token
    std::array<std::int32_t, 256> byte_id_{};      // vocab id of each byte's character, -1 if none
    std::unordered_map<std::uint64_t, Merge> merges_;
    std::vector<AddedToken> added_plain_;          // added tokens matched first (normalized == false)
    std::vector<AddedToken> added_normalized_;     // then these, in the remaining pieces
    std::array<bool, 256> added_first_byte_{};
    bool add_prefix_space_ = false;
    bool use_regex_ = true;
    bool ignore_merges_ = false;
    bool fuse_unk_ = false;
    std::int32_t unk_id_ = -1;                     // the model's unk (none for GPT-2 style BPE)
    std::int32_t pad_id_ = -1;
    std::string pad_error_;
    std::vector<TemplatePiece> single_, pair_;

    // word bytes -> ids; bounded, shared by all threads.
    mutable std::shared_mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<std::int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace meft
