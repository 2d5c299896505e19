// wordpiece.cpp — the BERT WordPiece tokenizer (see wordpiece.h for the pipeline).
#include "data/wordpiece.h"

#include <utf8proc.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace meft {

namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// UTF-8 <-> code points

// Invalid UTF-8 bytes become U+FFFD one byte at a time (which clean_text then drops).
std::u32string decode_utf8(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            out.push_back(p[i]);
            ++i;
            continue;
        }
        utf8proc_int32_t cp = 0;
        const utf8proc_ssize_t k = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(n - i), &cp);
        if (k <= 0) {
            out.push_back(0xFFFD);
            ++i;
        } else {
            out.push_back(static_cast<char32_t>(cp));
            i += static_cast<std::size_t>(k);
        }
    }
    return out;
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

std::string to_utf8(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) append_utf8(out, c);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Character classes, as tokenizers (Rust) defines them. ASCII is decided without utf8proc.

utf8proc_category_t category(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)); }

// Rust's char::is_whitespace: the Unicode White_Space property = Z* categories, \t..\r, U+0085.
bool is_white_space(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
    if (c == 0x85) return true;
    const auto cat = category(c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// BertNormalizer's is_control: unicode_categories' is_other() = Cc, Cf, Co; \t \n \r excluded.
bool is_control(char32_t c) {
    if (c < 0x80) return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;
    const auto cat = category(c);
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CO;
}

// BertPreTokenizer's is_bert_punc: ASCII punctuation (which includes $ + < = > ^ ` | ~, not P*
// in Unicode) or a Unicode punctuation category.
bool is_punctuation(char32_t c) {
    if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    switch (category(c)) {
        case UTF8PROC_CATEGORY_PC:
        case UTF8PROC_CATEGORY_PD:
        case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI:
        case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO:
            return true;
        default:
            return false;
    }
}

// The CJK ideograph blocks BERT pads with spaces (the ranges of Google's and HF's code).
bool is_chinese_char(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// The regex class \w (Unicode): letters, marks, Nd, Nl, Pc, ZWNJ/ZWJ. Used for single_word.
bool is_word_char(char32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return true;
    switch (category(c)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_PC:
            return true;
        default:
            return false;
    }
}

int combining_class(char32_t c) {
    if (c < 0x300) return 0;
    return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

// Canonical ordering (the last step of NFD): each run of non-starters sorted stably by class.
void canonical_order(std::u32string& s) {
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        if (combining_class(s[i]) == 0) {
            ++i;
            continue;
        }
        std::size_t j = i + 1;
        while (j < n && combining_class(s[j]) != 0) ++j;
        if (j - i > 1)
            std::stable_sort(s.begin() + static_cast<std::ptrdiff_t>(i), s.begin() + static_cast<std::ptrdiff_t>(j),
                             [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
        i = j;
    }
}

// ---------------------------------------------------------------------------------------------
// Added-token matching (tokenizers' AddedVocabulary::find_matches): leftmost-longest matches;
// single_word tokens only between non-word characters; lstrip/rstrip take the whitespace beside.

struct Split {
    std::size_t begin = 0, end = 0;
    std::int32_t id = -1;  // -1: ordinary text
};

// ---------------------------------------------------------------------------------------------
// JSON helpers whose errors name the file and the key.

[[noreturn]] void fail(const std::string& where, const std::string& what) { throw Error(where + ": " + what); }

bool get_bool(const json& obj, const char* key, bool def, const std::string& where, const std::string& path) {
    if (!obj.contains(key) || obj[key].is_null()) return def;
    if (!obj[key].is_boolean())
        fail(where, "'" + path + "." + key + "' is " + obj[key].dump() + ", expected true or false");
    return obj[key].get<bool>();
}

std::int32_t get_id(const json& v, const std::string& where, const std::string& path) {
    if (!v.is_number_integer()) fail(where, "'" + path + "' is " + v.dump() + ", expected a token id");
    const auto x = v.get<std::int64_t>();
    if (x < 0 || x > std::numeric_limits<std::int32_t>::max())
        fail(where, "'" + path + "' = " + std::to_string(x) + " is not a valid token id");
    return static_cast<std::int32_t>(x);
}

std::string get_string(const json& obj, const char* key, const std::string& where, const std::string& path) {
    if (!obj.contains(key)) fail(where, "missing key '" + path + "." + key + "'");
    if (!obj[key].is_string()) fail(where, "'" + path + "." + key + "' is " + obj[key].dump() + ", expected a string");
    return obj[key].get<std::string>();
}

std::string read_whole_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error(file.string() + ": read error");
    return ss.str();
}

}  // namespace

// -------------------------------------------------------------------------------------------------


// -------------------------------------------------------------------------------------------------
// Construction

std::unique_ptr<WordPieceTokenizer> WordPieceTokenizer::from_files(const std::filesystem::path& vocab_txt_path,
                                                                   const WordPieceOptions& options) {
    const std::string where = vocab_txt_path.string();
    const std::string text = read_whole_file(vocab_txt_path);
    std::unique_ptr<WordPieceTokenizer> t(new WordPieceTokenizer());

    // One token a line ("\r\n" too); the id is the line number; a repeated token keeps its last id.
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        std::string tok = text.substr(pos, nl - pos);
        if (!tok.empty() && tok.back() == '\r') tok.pop_back();
        const auto id = static_cast<std::int32_t>(t->id_to_token_.size());
        t->vocab_[tok] = id;
        t->id_to_token_.push_back(std::move(tok));
        pos = nl + 1;
        if (t->id_to_token_.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
            fail(where, "too many lines for a vocabulary");
    }
    if (t->id_to_token_.empty()) fail(where, "the vocabulary is empty");

    if (options.max_input_chars_per_word <= 0)
        fail(where,
             "max_input_chars_per_word must be positive, got " + std::to_string(options.max_input_chars_per_word));
    t->normalizer_.enabled = true;
    t->normalizer_.clean_text = options.clean_text;
    t->normalizer_.handle_chinese_chars = options.tokenize_chinese_chars;
    t->normalizer_.lowercase = options.do_lower_case;
    t->normalizer_.strip_accents = options.strip_accents.value_or(options.do_lower_case);
    t->bert_pre_tokenizer_ = true;
    t->unk_token_ = options.unk;
    t->prefix_ = options.continuing_subword_prefix;
    t->max_input_chars_per_word_ = static_cast<std::size_t>(options.max_input_chars_per_word);

    auto need = [&](const std::string& tok, const char* what) {
        auto it = t->vocab_.find(tok);
        if (it == t->vocab_.end())
            fail(where, std::string("the ") + what + " token '" + tok + "' is not in the vocabulary");
        return it->second;
    };
    const std::int32_t cls = need(options.cls, "cls");
    const std::int32_t sep = need(options.sep, "sep");
    t->pad_id_ = need(options.pad, "pad");
    need(options.unk, "unk");

    // transformers' special-token order: unk, sep, pad, cls, mask, additional ones. Tokens not in
    // the vocabulary (an optional [MASK]) are skipped rather than given new ids.
    std::vector<std::string> specials = {options.unk, options.sep, options.pad, options.cls, options.mask};
    specials.insert(specials.end(), options.additional_special_tokens.begin(), options.additional_special_tokens.end());
    for (std::size_t i = 0; i < specials.size(); ++i) {
        const std::string& s = specials[i];
        if (s.empty()) continue;
        auto it = t->vocab_.find(s);
        if (it == t->vocab_.end()) {
            if (i == 4) continue;  // no mask token: nothing to match
            fail(where, "the special token '" + s + "' is not in the vocabulary");
        }
        const bool seen = std::any_of(t->added_tokens_.begin(), t->added_tokens_.end(),
                                      [&](const AddedToken& a) { return a.content == s; });
        if (seen) continue;
        AddedToken a;
        a.content = s;
        a.id = it->second;
        t->added_tokens_.push_back(a);
    }

    t->single_template_ = {TemplatePiece{-1, {cls}, 0}, TemplatePiece{0, {}, 0}, TemplatePiece{-1, {sep}, 0}};
    t->pair_template_ = {TemplatePiece{-1, {cls}, 0}, TemplatePiece{0, {}, 0}, TemplatePiece{-1, {sep}, 0},
                         TemplatePiece{1, {}, 1}, TemplatePiece{-1, {sep}, 1}};
    t->finish_setup(where);
    return t;
}

std::unique_ptr<WordPieceTokenizer> WordPieceTokenizer::from_tokenizer_json(
    const std::filesystem::path& tokenizer_json_path, std::string_view pad_token) {
    const std::string where = tokenizer_json_path.string();
    json j;
    try {
        j = json::parse(read_whole_file(tokenizer_json_path));
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        fail(where, std::string("invalid JSON (") + e.what() + ")");
    }
    if (!j.is_object()) fail(where, "expected a JSON object");
    std::unique_ptr<WordPieceTokenizer> t(new WordPieceTokenizer());

    // model
    if (!j.contains("model") || !j["model"].is_object()) fail(where, "missing object 'model'");
    const json& model = j["model"];
    if (model.contains("type") && model["type"] != "WordPiece")
        fail(where, "'model.type' is " + model["type"].dump() + ", expected \"WordPiece\"");
    if (!model.contains("vocab") || !model["vocab"].is_object())
        fail(where, "missing object 'model.vocab' (token -> id)");
    std::size_t size = 0;
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
        const std::int32_t id = get_id(it.value(), where, "model.vocab[\"" + it.key() + "\"]");
        t->vocab_[it.key()] = id;
        size = std::max(size, static_cast<std::size_t>(id) + 1);
    }
    if (t->vocab_.empty()) fail(where, "'model.vocab' is empty");
    t->unk_token_ = model.contains("unk_token") ? get_string(model, "unk_token", where, "model") : "[UNK]";
    t->prefix_ = model.contains("continuing_subword_prefix")
                     ? get_string(model, "continuing_subword_prefix", where, "model")
                     : std::string("##");
    if (model.contains("max_input_chars_per_word")) {
        const json& m = model["max_input_chars_per_word"];
        if (!m.is_number_integer() || m.get<std::int64_t>() <= 0)
            fail(where, "'model.max_input_chars_per_word' is " + m.dump() + ", expected a positive integer");
        t->max_input_chars_per_word_ = static_cast<std::size_t>(m.get<std::int64_t>());
    }

    // added tokens
    if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
        const json& arr = j["added_tokens"];
        if (!arr.is_array()) fail(where, "'added_tokens' must be an array");
        for (std::size_t i = 0; i < arr.size(); ++i) {
            const std::string path = "added_tokens[" + std::to_string(i) + "]";
            const json& o = arr[i];
            if (!o.is_object()) fail(where, "'" + path + "' must be an object");
            AddedToken a;
            if (!o.contains("id")) fail(where, "missing key '" + path + ".id'");
            a.id = get_id(o["id"], where, path + ".id");
            a.content = get_string(o, "content", where, path);
            a.single_word = get_bool(o, "single_word", false, where, path);
            a.lstrip = get_bool(o, "lstrip", false, where, path);
            a.rstrip = get_bool(o, "rstrip", false, where, path);
            const bool special = get_bool(o, "special", false, where, path);
            a.normalized = get_bool(o, "normalized", !special, where, path);
            if (a.content.empty()) continue;
            t->added_vocab_[a.content] = a.id;
            size = std::max(size, static_cast<std::size_t>(a.id) + 1);
            t->added_tokens_.push_back(std::move(a));
        }
    }
    t->id_to_token_.assign(size, std::string());
    for (const auto& [tok, id] : t->vocab_) t->id_to_token_[static_cast<std::size_t>(id)] = tok;
    for (const auto& a : t->added_tokens_) t->id_to_token_[static_cast<std::size_t>(a.id)] = a.content;

    // normalizer
    if (!j.contains("normalizer") || j["normalizer"].is_null()) {
        t->normalizer_.enabled = false;
    } else {
        const json& n = j["normalizer"];
        if (!n.is_object() || !n.contains("type") || n["type"] != "BertNormalizer")
            fail(where, "'normalizer' is " + n.dump().substr(0, 200) +
                            ": only BertNormalizer (or null) is supported for a WordPiece tokenizer");
        t->normalizer_.enabled = true;
        t->normalizer_.clean_text = get_bool(n, "clean_text", true, where, "normalizer");
        t->normalizer_.handle_chinese_chars = get_bool(n, "handle_chinese_chars", true, where, "normalizer");
        t->normalizer_.lowercase = get_bool(n, "lowercase", true, where, "normalizer");
        t->normalizer_.strip_accents = get_bool(n, "strip_accents", t->normalizer_.lowercase, where, "normalizer");
    }

    // pre-tokenizer
    if (!j.contains("pre_tokenizer") || j["pre_tokenizer"].is_null()) {
        t->bert_pre_tokenizer_ = false;
    } else {
        const json& p = j["pre_tokenizer"];
        bool ok = p.is_object() && p.contains("type") && p["type"] == "BertPreTokenizer";
        if (!ok && p.is_object() && p.value("type", "") == "Sequence" && p.contains("pretokenizers") &&
            p["pretokenizers"].is_array() && p["pretokenizers"].size() == 1 && p["pretokenizers"][0].is_object() &&
            p["pretokenizers"][0].value("type", "") == "BertPreTokenizer")
            ok = true;
        if (!ok)
            fail(where, "'pre_tokenizer' is " + p.dump().substr(0, 200) +
                            ": only BertPreTokenizer (or null) is supported for a WordPiece tokenizer");
        t->bert_pre_tokenizer_ = true;
    }

    // post-processor
    if (j.contains("post_processor") && !j["post_processor"].is_null()) {
        const json& pp = j["post_processor"];
        const std::string type = pp.is_object() ? pp.value("type", "") : "";
        if (type == "TemplateProcessing") {
            if (!pp.contains("special_tokens") || !pp["special_tokens"].is_object())
                fail(where, "missing object 'post_processor.special_tokens'");
            auto parse = [&](const char* key) {
                const std::string path = std::string("post_processor.") + key;
                if (!pp.contains(key) || !pp[key].is_array()) fail(where, "missing array '" + path + "'");
                std::vector<TemplatePiece> out;
                for (std::size_t i = 0; i < pp[key].size(); ++i) {
                    const json& item = pp[key][i];
                    const std::string ipath = path + "[" + std::to_string(i) + "]";
                    TemplatePiece piece;
                    if (item.is_object() && item.contains("Sequence")) {
                        const json& s = item["Sequence"];
                        const std::string id = get_string(s, "id", where, ipath + ".Sequence");
                        if (id != "A" && id != "B")
                            fail(where, "'" + ipath + ".Sequence.id' is \"" + id + "\", expected \"A\" or \"B\"");
                        piece.sequence = id == "A" ? 0 : 1;
                        piece.type_id =
                            s.contains("type_id") ? get_id(s["type_id"], where, ipath + ".Sequence.type_id") : 0;
                    } else if (item.is_object() && item.contains("SpecialToken")) {
                        const json& s = item["SpecialToken"];
                        const std::string id = get_string(s, "id", where, ipath + ".SpecialToken");
                        piece.type_id =
                            s.contains("type_id") ? get_id(s["type_id"], where, ipath + ".SpecialToken.type_id") : 0;
                        const json& st = pp["special_tokens"];
                        if (!st.contains(id) || !st[id].is_object() || !st[id].contains("ids") ||
                            !st[id]["ids"].is_array())
                            fail(where, "'post_processor.special_tokens' has no entry \"" + id + "\" with 'ids'");
                        for (std::size_t k = 0; k < st[id]["ids"].size(); ++k)
                            piece.ids.push_back(
                                get_id(st[id]["ids"][k], where,
                                       "post_processor.special_tokens[\"" + id + "\"].ids[" + std::to_string(k) + "]"));
                    } else {
                        fail(where, "'" + ipath + "' must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
                    }
                    out.push_back(std::move(piece));
                }
                return out;
            };
            t->single_template_ = parse("single");
            t->pair_template_ = parse("pair");
        } else if (type == "BertProcessing") {
            auto pair_of = [&](const char* key) {
                const std::string path = std::string("post_processor.") + key;
                if (!pp.contains(key) || !pp[key].is_array() || pp[key].size() != 2 || !pp[key][0].is_string())
                    fail(where, "'" + path + "' must be [token, id]");
                return get_id(pp[key][1], where, path + "[1]");
            };
            const std::int32_t cls = pair_of("cls"), sep = pair_of("sep");
            t->single_template_ = {TemplatePiece{-1, {cls}, 0}, TemplatePiece{0, {}, 0}, TemplatePiece{-1, {sep}, 0}};
            t->pair_template_ = {TemplatePiece{-1, {cls}, 0}, TemplatePiece{0, {}, 0}, TemplatePiece{-1, {sep}, 0},
                                 TemplatePiece{1, {}, 1}, TemplatePiece{-1, {sep}, 1}};
        } else {
            fail(where, "'post_processor' is " + pp.dump().substr(0, 200) +
                            ": only TemplateProcessing, BertProcessing (or null) are supported for WordPiece");
        }
    }
    if (t->single_template_.empty()) t->single_template_ = {TemplatePiece{0, {}, 0}};
    if (t->pair_template_.empty()) t->pair_template_ = {TemplatePiece{0, {}, 0}, TemplatePiece{1, {}, 1}};
    for (const auto* tpl : {&t->single_template_, &t->pair_template_})
        for (const auto& piece : *tpl)
            for (std::int32_t id : piece.ids)
                if (static_cast<std::size_t>(id) >= t->id_to_token_.size())
                    fail(where, "post_processor special token id " + std::to_string(id) + " is outside the vocabulary");

    t->finish_setup(where);

    // padding
    if (j.contains("padding") && j["padding"].is_object() && j["padding"].contains("pad_id")) {
        t->pad_id_ = get_id(j["padding"]["pad_id"], where, "padding.pad_id");
    } else {
        const auto pid = t->token_to_id(pad_token);
        if (!pid)
            fail(where,
                 "no padding section and the pad token '" + std::string(pad_token) + "' is not in the vocabulary");
        t->pad_id_ = *pid;
    }
    return t;
}

void WordPieceTokenizer::finish_setup(const std::string& where) {
    auto it = vocab_.find(unk_token_);
    if (it == vocab_.end()) fail(where, "the unk token '" + unk_token_ + "' is not in the WordPiece vocabulary");
    unk_id_ = it->second;
    max_token_bytes_ = 0;
    for (const auto& [tok, id] : vocab_) max_token_bytes_ = std::max(max_token_bytes_, tok.size());

    raw_matchers_.clear();
    for (const auto& a : added_tokens_) {
        if (a.normalized) continue;
        raw_matchers_.push_back(Matcher{decode_utf8(a.content), a.id, a.single_word, a.lstrip, a.rstrip});
    }
    rebuild_normalized_matchers();
}

void WordPieceTokenizer::rebuild_normalized_matchers() {
    // tokenizers matches a normalized added token by its normalized content.
    normalized_matchers_.clear();
    for (const auto& a : added_tokens_) {
        if (!a.normalized) continue;
        std::u32string pattern;
        normalize_into(decode_utf8(a.content), pattern);
        if (pattern.empty()) continue;
        normalized_matchers_.push_back(Matcher{std::move(pattern), a.id, a.single_word, a.lstrip, a.rstrip});
    }
}

void WordPieceTokenizer::apply_tokenizer_config(bool do_lower_case, std::optional<bool> strip_accents,
                                                bool tokenize_chinese_chars) {
    if (!normalizer_.enabled) return;
    normalizer_.lowercase = do_lower_case;
    normalizer_.strip_accents = strip_accents.value_or(do_lower_case);
    normalizer_.handle_chinese_chars = tokenize_chinese_chars;
    rebuild_normalized_matchers();
}

// -------------------------------------------------------------------------------------------------
// Encoding

namespace {

template <typename MatcherT>
std::vector<Split> split_on_added(std::u32string_view s, const std::vector<MatcherT>& matchers) {
    std::vector<Split> out;
    const std::size_t n = s.size();
    if (matchers.empty()) {
        if (n > 0) out.push_back(Split{0, n, -1});
        return out;
    }
    std::size_t start_offset = 0, pos = 0;
    while (pos < n) {
        const MatcherT* best = nullptr;
        for (const auto& m : matchers) {
            const std::size_t len = m.pattern.size();
            if (len > n - pos || s[pos] != m.pattern[0]) continue;
            if (best && len <= best->pattern.size()) continue;
            if (s.compare(pos, len, m.pattern) == 0) best = &m;
        }
        if (!best) {
            ++pos;
            continue;
        }
        std::size_t start = pos, stop = pos + best->pattern.size();
        if (best->single_word) {
            const bool start_ok = start == 0 || !is_word_char(s[start - 1]);
            const bool stop_ok = stop == n || !is_word_char(s[stop]);
            if (!start_ok || !stop_ok) {  // not a whole word: this match is dropped
                pos = stop;
                continue;
            }
        }
        if (best->lstrip) {
            std::size_t ns = start;
            while (ns > 0 && is_white_space(s[ns - 1])) --ns;
            start = std::max(ns, start_offset);
        }
        if (best->rstrip)
            while (stop < n && is_white_space(s[stop])) ++stop;
        if (start_offset < start) out.push_back(Split{start_offset, start, -1});
        out.push_back(Split{start, stop, best->id});
        start_offset = stop;
        pos = stop;
    }
    if (start_offset < n) out.push_back(Split{start_offset, n, -1});
    return out;
}

}  // namespace

void WordPieceTokenizer::normalize_into(std::u32string_view in, std::u32string& out) const {
    out.clear();
    if (!normalizer_.enabled) {
        out.assign(in);
        return;
    }
    const Normalizer& nz = normalizer_;
    std::u32string a;
    a.reserve(in.size() + 8);
    bool non_ascii = false;
    for (char32_t c : in) {
        if (nz.clean_text) {
            if (c == 0 || c == 0xFFFD || is_control(c)) continue;
            if (is_white_space(c)) c = ' ';
        }
        if (c >= 0x80) non_ascii = true;
        if (nz.handle_chinese_chars && c >= 0x3400 && is_chinese_char(c)) {
            a.push_back(' ');
            a.push_back(c);
            a.push_back(' ');
        } else {
            a.push_back(c);
        }
    }
    if (nz.strip_accents && non_ascii) {
        // NFD, then drop the nonspacing marks (Mn).
        std::u32string d;
        d.reserve(a.size() + 8);
        utf8proc_int32_t buf[32];
        for (char32_t c : a) {
            if (c < 0xC0) {  // nothing below U+00C0 has a canonical decomposition
                d.push_back(c);
                continue;
            }
            int boundclass = 0;
            const utf8proc_ssize_t k =
                utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buf, 32, UTF8PROC_DECOMPOSE, &boundclass);
            if (k <= 0 || k > 32) {
                d.push_back(c);
                continue;
            }
            for (utf8proc_ssize_t i = 0; i < k; ++i) d.push_back(static_cast<char32_t>(buf[i]));
        }
        canonical_order(d);
        a.clear();
        for (char32_t c : d)
            if (c < 0x300 || category(c) != UTF8PROC_CATEGORY_MN) a.push_back(c);
    }
    if (nz.lowercase) {
        out.reserve(a.size());
        for (char32_t c : a) {
            if (c < 0x80) {
                out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
            } else if (c == 0x130) {  // the one unconditional multi-character lower case (Rust to_lowercase)
                out.push_back('i');
                out.push_back(0x307);
            } else {
                out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
            }
        }
    } else {
        out = std::move(a);
    }
}

std::optional<std::int32_t> WordPieceTokenizer::vocab_lookup(std::string_view s) const {
    auto it = vocab_.find(s);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
}

void WordPieceTokenizer::encode_word(std::u32string_view word, std::vector<std::int32_t>& out) const {
    const std::size_t n = word.size();
    if (n == 0) return;
    if (n > max_input_chars_per_word_) {
        out.push_back(unk_id_);
        return;
    }
    std::string w;
    w.reserve(n * 2);
    std::vector<std::size_t> off(n + 1);
    for (std::size_t i = 0; i < n; ++i) {
        off[i] = w.size();
        append_utf8(w, word[i]);
    }
    off[n] = w.size();

    const std::size_t first = out.size();
    std::string cand;
    std::size_t start = 0;
    while (start < n) {
        std::size_t end = n;
        std::optional<std::int32_t> id;
        const std::size_t pre = start > 0 ? prefix_.size() : 0;
        while (end > start) {
            const std::size_t bytes = off[end] - off[start];
            if (bytes + pre <= max_token_bytes_) {
                if (start > 0) {
                    cand.assign(prefix_);
                    cand.append(w, off[start], bytes);
                    id = vocab_lookup(cand);
                } else {
                    id = vocab_lookup(std::string_view(w).substr(0, bytes));
                }
                if (id) break;
            }
            --end;
        }
        if (!id) {  // no segmentation: the whole word is one [UNK]
            out.resize(first);
            out.push_back(unk_id_);
            return;
        }
        out.push_back(*id);
        start = end;
    }
}

void WordPieceTokenizer::encode_normalized(std::u32string_view text, std::vector<std::int32_t>& out) const {
    if (!bert_pre_tokenizer_) {
        encode_word(text, out);
        return;
    }
    const std::size_t n = text.size();
    std::size_t word_start = n;  // n: no word open
    for (std::size_t i = 0; i < n; ++i) {
        const char32_t c = text[i];
        if (is_white_space(c)) {
            if (word_start < i) encode_word(text.substr(word_start, i - word_start), out);
            word_start = n;
        } else if (is_punctuation(c)) {
            if (word_start < i) encode_word(text.substr(word_start, i - word_start), out);
            encode_word(text.substr(i, 1), out);
            word_start = n;
        } else if (word_start == n) {
            word_start = i;
        }
    }
    if (word_start < n) encode_word(text.substr(word_start), out);
}

void WordPieceTokenizer::encode_segment(std::u32string_view raw, std::vector<std::int32_t>& out) const {
    std::u32string norm;
    normalize_into(raw, norm);
    if (normalized_matchers_.empty()) {
        encode_normalized(norm, out);
        return;
    }
    const std::u32string_view nv(norm);
    for (const Split& s : split_on_added(nv, normalized_matchers_)) {
        if (s.id >= 0)
            out.push_back(s.id);
        else
            encode_normalized(nv.substr(s.begin, s.end - s.begin), out);
    }
}

std::vector<std::int32_t> WordPieceTokenizer::encode_text(std::string_view text) const {
    std::vector<std::int32_t> out;
    const std::u32string s = decode_utf8(text);
    const std::u32string_view sv(s);
    for (const Split& sp : split_on_added(sv, raw_matchers_)) {
        if (sp.id >= 0)
            out.push_back(sp.id);
        else
            encode_segment(sv.substr(sp.begin, sp.end - sp.begin), out);
    }
    return out;
}

int WordPieceTokenizer::num_special_tokens(bool pair) const {
    return template_special_tokens(pair ? pair_template_ : single_template_);
}

Encoding WordPieceTokenizer::encode(std::string_view a, std::optional<std::string_view> b, int max_length) const {
    return apply_template(b ? pair_template_ : single_template_, encode_text(a),
                          b ? std::optional<std::vector<std::int32_t>>(encode_text(*b)) : std::nullopt, max_length);
}

std::string WordPieceTokenizer::token(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size())
        throw Error("tokenizer: token id " + std::to_string(id) + " is outside the vocabulary (size " +
                    std::to_string(id_to_token_.size()) + ")");
    return id_to_token_[static_cast<std::size_t>(id)];
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
    std::vector<std::string> out;
    for (std::int32_t id : encode_text(text)) out.push_back(token(id));
    return out;
}

std::optional<std::int32_t> WordPieceTokenizer::token_to_id(std::string_view tok) const {
    if (auto it = added_vocab_.find(tok); it != added_vocab_.end()) return it->second;
    return vocab_lookup(tok);
}

std::string WordPieceTokenizer::normalize(std::string_view text) const {
    std::u32string out;
    normalize_into(decode_utf8(text), out);
    return to_utf8(out);
}

}  // namespace meft
