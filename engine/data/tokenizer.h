// tokenizer.h — the interface every tokenizer implements, and loading one from a model folder.
// Output must equal Hugging Face tokenizers token for token (tests/test_tokenizers.cpp).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace meft {

struct Encoding {
    std::vector<std::int32_t> input_ids;
    std::vector<std::int32_t> token_type_ids;
    std::vector<std::int32_t> attention_mask;  // all ones: encode() never pads
};

class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    // The ids of one text, without special tokens.
    virtual std::vector<std::int32_t> encode_text(std::string_view text) const = 0;
    // One text or a pair with the model's special tokens (BERT: [CLS] a [SEP] b [SEP], token types
    // 0 then 1; RoBERTa/BART: <s> a </s></s> b </s>; OPT: </s> a ...), truncated "longest first" to
    // max_length tokens in all (0: no limit) as Hugging Face's fast tokenizers do (see
    // longest_first_lengths). No padding.
    virtual Encoding encode(std::string_view a, std::optional<std::string_view> b, int max_length) const = 0;
    virtual std::string token(std::int32_t id) const = 0;   // the vocabulary entry, as stored
    virtual std::int32_t pad_id() const = 0;
    virtual int vocab_size() const = 0;
};

// Lengths after "longest first" truncation of a pair to max_length tokens (special tokens already
// subtracted), as Hugging Face tokenizers (Rust) computes them: if cutting only the longer
// sequence to max_length - shorter suffices, only it is cut; otherwise each gets max_length / 2
// and the one that was longer gets the odd token (the second on a tie).
std::pair<std::size_t, std::size_t> longest_first_lengths(std::size_t n1, std::size_t n2, std::size_t max_length);

// A post-processor template (Hugging Face's TemplateProcessing): special-token pieces and the
// two texts, each with its token type.
struct TemplatePiece {
    int sequence = -1;                 // -1: special tokens, 0: text a, 1: text b
    std::vector<std::int32_t> ids;     // the special ids when sequence == -1
    std::int32_t type_id = 0;
};
int template_special_tokens(const std::vector<TemplatePiece>& tmpl);  // ids the template adds

// Truncates a (and b) longest-first so the laid-out template has at most max_length tokens (0: no
// limit), then lays it out. Throws Error when max_length is negative or leaves no room for the
// special tokens. Shared by every tokenizer's encode().
Encoding apply_template(const std::vector<TemplatePiece>& tmpl, std::vector<std::int32_t> a,
                        std::optional<std::vector<std::int32_t>> b, int max_length);

// dir holds vocab.txt (WordPiece), vocab.json + merges.txt (byte-level BPE), or tokenizer.json
// (either kind); tokenizer_config.json / special_tokens_map.json / config.json refine the
// options (lower-casing, accents, add_prefix_space, special tokens, model_type). Throws Error
// naming the file and what is missing or malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

}  // namespace meft
