// bpe.cpp — byte-level BPE tokenizer (see bpe.h for the pipeline).
#include "data/bpe.h"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <queue>
#include <sstream>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "core/error.h"

namespace meft {

namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Unicode helpers (all category data comes from utf8proc)

enum class CharClass : std::uint8_t { space, letter, number, other };

// Oniguruma's \s for Unicode (= the White_Space property): TAB..CR, NEL and the Z* categories.
bool is_space_cp(std::int32_t cp) {
    if (cp < 0) return false;
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85) return true;
    if (cp < 0x80) return false;
    const auto c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL || c == UTF8PROC_CATEGORY_ZP;
}

CharClass classify_slow(std::int32_t cp) {
    if (cp < 0) return CharClass::other;   // a byte that is not valid UTF-8
    if (is_space_cp(cp)) return CharClass::space;
    switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
            return CharClass::letter;
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            return CharClass::number;
        default:
            return CharClass::other;
    }
}

// ASCII classes, computed once from utf8proc.
const std::array<CharClass, 128>& ascii_classes() {
    static const std::array<CharClass, 128> table = [] {
        std::array<CharClass, 128> t{};
        for (int c = 0; c < 128; ++c) t[c] = classify_slow(c);
        return t;
    }();
    return table;
}

CharClass classify(std::int32_t cp) {
    if (cp >= 0 && cp < 128) return ascii_classes()[cp];
    return classify_slow(cp);
}

// Rust regex's \w, used by single_word added tokens: Alphabetic, marks, decimal digits,
// connector punctuation, joiners (approximated by categories: L*, Nl, M*, Nd, Pc).
bool is_word_cp(std::int32_t cp) {
    if (cp < 0) return false;
    if (cp == 0x200C || cp == 0x200D) return true;
    switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_PC:
            return true;
        default:
            return false;
    }
}

// Decodes one character at s[i]; returns its length in bytes (1 for an invalid byte, cp = -1).
std::size_t decode_at(std::string_view s, std::size_t i, std::int32_t& cp) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    utf8proc_int32_t out = -1;
    const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                    static_cast<utf8proc_ssize_t>(s.size() - i), &out);
    if (n <= 0) {
        cp = -1;
        return 1;
    }
    cp = out;
    return static_cast<std::size_t>(n);
}

// The character ending at s[end - 1]; returns its start (a lone byte when not valid UTF-8).
std::size_t decode_before(std::string_view s, std::size_t end, std::int32_t& cp) {
    std::size_t start = end - 1;
    int back = 0;
    while (start > 0 && back < 3 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) {
        --start;
        ++back;
    }
    std::int32_t c = -1;
    if (decode_at(s, start, c) == end - start) {
        cp = c;
        return start;
    }
    cp = -1;
    return end - 1;
}

void append_utf8(std::string& out, std::int32_t cp) {
    utf8proc_uint8_t buf[4];
    const auto n = utf8proc_encode_char(cp, buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

// GPT-2's reversible byte <-> character table: printable Latin-1 bytes stand for themselves,
// the others (controls, space, 0x7F-0xA0, soft hyphen) become U+0100 + n in byte order.
struct ByteTables {
    std::array<std::string, 256> byte_to_char;
    std::array<std::int32_t, 256> byte_to_cp{};
    std::unordered_map<std::int32_t, unsigned char> cp_to_byte;
    ByteTables() {
        int n = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            byte_to_cp[b] = printable ? b : 256 + n++;
            append_utf8(byte_to_char[b], byte_to_cp[b]);
            cp_to_byte[byte_to_cp[b]] = static_cast<unsigned char>(b);
        }
    }
};

const ByteTables& byte_tables() {
    static const ByteTables tables;
    return tables;
}

std::string mapped(std::string_view bytes) {
    const auto& t = byte_tables();
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char c : bytes) out += t.byte_to_char[static_cast<unsigned char>(c)];
    return out;
}

std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
}

std::string read_text_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error(file.string() + ": read error");
    return ss.str();
}

json parse_json_file(const std::filesystem::path& file) {
    const std::string text = read_text_file(file);
    try {
        return json::parse(text);
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        throw Error(file.string() + ": invalid JSON (" + std::string(e.what()) + ")");
    }
}

constexpr std::size_t kCacheMaxWordBytes = 256;
constexpr std::size_t kCacheMaxEntries = 200000;

}  // namespace

// ---------------------------------------------------------------------------------------------

BpeFamily parse_bpe_family(std::string_view name) {
    if (name == "roberta") return BpeFamily::Roberta;
    if (name == "bart") return BpeFamily::Bart;
    if (name == "opt") return BpeFamily::Opt;
    throw Error("unknown byte-level BPE family '" + std::string(name) + "' (expected roberta, bart or opt)");
}

BpeOptions BpeOptions::for_family(BpeFamily family) {
    BpeOptions o;
    o.family = family;
    const bool opt = family == BpeFamily::Opt;
    o.bos_token = opt ? "</s>" : "<s>";
    o.eos_token = "</s>";
    o.sep_token = "</s>";
    o.cls_token = opt ? "</s>" : "<s>";
    o.pad_token = "<pad>";
    o.unk_token = opt ? "</s>" : "<unk>";
    o.mask_token = opt ? "" : "<mask>";
    return o;
}

const std::array<std::string, 256>& ByteLevelBpeTokenizer::byte_alphabet() { return byte_tables().byte_to_char; }

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer() { byte_id_.fill(-1); }
ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

std::vector<std::string_view> ByteLevelBpeTokenizer::split_words(std::string_view text) {
    struct Unit {
        std::int32_t cp;
        CharClass cls;
    };
    std::vector<Unit> units;
    std::vector<std::size_t> offsets;   // byte offset of each unit, plus the end
    units.reserve(text.size());
    offsets.reserve(text.size() + 1);
    for (std::size_t i = 0; i < text.size();) {
        std::int32_t cp;
        const std::size_t len = decode_at(text, i, cp);
        units.push_back({cp, classify(cp)});
        offsets.push_back(i);
        i += len;
    }
    offsets.push_back(text.size());
    const std::size_t n = units.size();
    auto run = [&](std::size_t k, CharClass c) {
        while (k < n && units[k].cls == c) ++k;
        return k;
    };
    // The end (unit index) of the pattern's match at unit i: the alternatives are tried in order
    // and the first that matches wins, as in the backtracking regex engine.
    auto match = [&](std::size_t i) -> std::size_t {
        const std::int32_t cp = units[i].cp;
        if (cp == '\'' && i + 1 < n) {   // 's 't 're 've 'm 'll 'd (lower case only)
            const std::int32_t c1 = units[i + 1].cp;
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
            if (i + 2 < n) {
                const std::int32_t c2 = units[i + 2].cp;
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
            }
        }
        // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional U+0020 then a run of one class.
        if (cp == ' ' && i + 1 < n && units[i + 1].cls != CharClass::space) return run(i + 1, units[i + 1].cls);
        if (units[i].cls != CharClass::space) return run(i, units[i].cls);
        // "\s+(?!\S)": the whitespace run, less its last character when a non-space follows;
        // "\s+": a single whitespace character followed by a non-space.
        const std::size_t j = run(i, CharClass::space);
        if (j == n) return j;
        return j - 1 > i ? j - 1 : j;
    };
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < n;) {
        const std::size_t j = match(i);
        out.push_back(text.substr(offsets[i], offsets[j] - offsets[i]));
        i = j;
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Building

void ByteLevelBpeTokenizer::set_vocab(VocabMap vocab, const std::string& where) {
    std::int32_t max_id = -1;
    for (const auto& [tok, id] : vocab) {
        if (id < 0) throw Error(where + ": token '" + tok + "' has negative id " + std::to_string(id));
        max_id = std::max(max_id, id);
    }
    id_to_token_.assign(static_cast<std::size_t>(max_id + 1), std::string());
    for (const auto& [tok, id] : vocab) id_to_token_[static_cast<std::size_t>(id)] = tok;
    is_special_.assign(id_to_token_.size(), 0);
    vocab_ = std::move(vocab);
    const auto& t = byte_tables();
    for (int b = 0; b < 256; ++b) {
        const auto it = vocab_.find(t.byte_to_char[b]);
        byte_id_[b] = it == vocab_.end() ? -1 : it->second;
    }
}

void ByteLevelBpeTokenizer::add_merge(std::string_view left, std::string_view right, std::int32_t rank,
                                      const std::string& where) {
    const auto l = vocab_.find(left);
    if (l == vocab_.end()) throw Error(where + ": merge token '" + std::string(left) + "' is not in the vocabulary");
    const auto r = vocab_.find(right);
    if (r == vocab_.end()) throw Error(where + ": merge token '" + std::string(right) + "' is not in the vocabulary");
    std::string joined;
    joined.reserve(left.size() + right.size());
    joined.append(left).append(right);
    const auto m = vocab_.find(joined);
    if (m == vocab_.end()) throw Error(where + ": merged token '" + joined + "' is not in the vocabulary");
    merges_[pair_key(l->second, r->second)] = Merge{rank, m->second};   // a repeated pair: the last wins
}

void ByteLevelBpeTokenizer::set_added_tokens(std::vector<AddedToken> tokens) {
    added_plain_.clear();
    added_normalized_.clear();
    added_first_byte_.fill(false);
    for (auto& t : tokens) {
        if (t.content.empty()) continue;
        const auto id = static_cast<std::size_t>(t.id);
        if (id >= id_to_token_.size()) {
            id_to_token_.resize(id + 1);
            is_special_.resize(id + 1, 0);
        }
        id_to_token_[id] = t.content;   // as Hugging Face: the added token's text wins
        if (t.special) is_special_[id] = 1;
        added_first_byte_[static_cast<unsigned char>(t.content[0])] = true;
        (t.normalized ? added_normalized_ : added_plain_).push_back(std::move(t));
    }
    // Leftmost-longest: at one position the longest content wins, so try longer ones first.
    auto by_length = [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); };
    std::stable_sort(added_plain_.begin(), added_plain_.end(), by_length);
    std::stable_sort(added_normalized_.begin(), added_normalized_.end(), by_length);
}

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::from_files(const std::filesystem::path& vocab_json,
                                                                         const std::filesystem::path& merges_txt,
                                                                         const BpeOptions& options) {
    std::unique_ptr<ByteLevelBpeTokenizer> tok(new ByteLevelBpeTokenizer());
    const std::string vfile = vocab_json.string();
    {
        const json j = parse_json_file(vocab_json);
        if (!j.is_object()) throw Error(vfile + ": expected a JSON object mapping tokens to ids");
        VocabMap vocab;
        vocab.reserve(j.size());
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (!it.value().is_number_integer())
                throw Error(vfile + ": the id of token '" + it.key() + "' is " + it.value().dump() + ", expected an integer");
            const auto v = it.value().get<std::int64_t>();
            if (v < 0 || v > INT32_MAX) throw Error(vfile + ": the id of token '" + it.key() + "' is out of range");
            vocab.emplace(it.key(), static_cast<std::int32_t>(v));
        }
        if (vocab.empty()) throw Error(vfile + ": empty vocabulary");
        tok->set_vocab(std::move(vocab), vfile);
    }
    {
        const std::string mfile = merges_txt.string();
        std::ifstream in(merges_txt, std::ios::binary);
        if (!in) throw Error(mfile + ": cannot open");
        std::string line;
        std::int32_t rank = 0;
        for (int lineno = 1; std::getline(in, line); ++lineno) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty() || line.rfind("#version", 0) == 0) continue;
            const std::string where = mfile + ":" + std::to_string(lineno);
            const auto sp = line.find(' ');
            if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
                throw Error(where + ": expected two tokens separated by one space, got '" + line + "'");
            tok->add_merge(std::string_view(line).substr(0, sp), std::string_view(line).substr(sp + 1), rank++, where);
        }
        if (in.bad()) throw Error(mfile + ": read error");
    }
    tok->add_prefix_space_ = options.add_prefix_space;
    const BpeOptions defaults = BpeOptions::for_family(options.family);
    auto pick = [](const std::optional<std::string>& set, const std::optional<std::string>& def) {
        return set ? *set : *def;
    };
    const std::string bos_token = pick(options.bos_token, defaults.bos_token);
    const std::string eos_token = pick(options.eos_token, defaults.eos_token);
    const std::string sep_token = pick(options.sep_token, defaults.sep_token);
    const std::string cls_token = pick(options.cls_token, defaults.cls_token);
    const std::string pad_token = pick(options.pad_token, defaults.pad_token);
    const std::string unk_token = pick(options.unk_token, defaults.unk_token);
    const std::string mask_token = pick(options.mask_token, defaults.mask_token);

    auto id_of = [&](const std::string& t, const char* what) {
        const auto it = tok->vocab_.find(t);
        if (it == tok->vocab_.end())
            throw Error(vfile + ": the " + std::string(what) + " token '" + t + "' is not in the vocabulary");
        return it->second;
    };
    std::vector<AddedToken> added;
    auto add_special = [&](const std::string& t, const char* what, bool lstrip) {
        if (t.empty()) return;
        const std::int32_t id = id_of(t, what);
        for (const auto& a : added)
            if (a.content == t) return;
        AddedToken a;
        a.content = t;
        a.id = id;
        a.special = true;
        a.lstrip = lstrip;
        added.push_back(a);
    };
    add_special(bos_token, "bos", false);
    add_special(eos_token, "eos", false);
    add_special(unk_token, "unk", false);
    add_special(sep_token, "sep", false);
    add_special(pad_token, "pad", false);
    add_special(cls_token, "cls", false);
    add_special(mask_token, "mask", true);
    tok->set_added_tokens(std::move(added));

    if (pad_token.empty()) {
        tok->pad_error_ = vfile + ": no pad token configured";
    } else {
        tok->pad_id_ = id_of(pad_token, "pad");
    }
    if (options.family == BpeFamily::Opt) {
        if (bos_token.empty()) throw Error(vfile + ": OPT needs a bos token");
        const std::int32_t bos = id_of(bos_token, "bos");
        tok->single_ = {{-1, {bos}, 0}, {0, {}, 0}};
        tok->pair_ = {{-1, {bos}, 0}, {0, {}, 0}, {1, {}, 1}};
    } else {
        if (cls_token.empty() || sep_token.empty()) throw Error(vfile + ": RoBERTa/BART need cls and sep tokens");
        const std::int32_t cls = id_of(cls_token, "cls");
        const std::int32_t sep = id_of(sep_token, "sep");
        tok->single_ = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}};
        tok->pair_ = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep, sep}, 0}, {1, {}, 0}, {-1, {sep}, 0}};
    }
    return tok;
}

namespace {

bool json_bool(const json& obj, const char* key, bool fallback, const std::string& where) {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    if (!obj[key].is_boolean()) throw Error(where + "." + key + ": expected true or false, got " + obj[key].dump());
    return obj[key].get<bool>();
}

std::int32_t json_id(const json& v, const std::string& where) {
    if (!v.is_number_integer()) throw Error(where + ": expected an integer id, got " + v.dump());
    const auto id = v.get<std::int64_t>();
    if (id < 0 || id > INT32_MAX) throw Error(where + ": id " + std::to_string(id) + " out of range");
    return static_cast<std::int32_t>(id);
}

std::string json_string(const json& v, const std::string& where) {
    if (!v.is_string()) throw Error(where + ": expected a string, got " + v.dump());
    return v.get<std::string>();
}

// Flattens {"type": "Sequence", <list_key>: [...]} into its members; anything else is itself.
std::vector<const json*> flatten_sequence(const json& v, const char* list_key) {
    std::vector<const json*> out;
    if (v.is_object() && v.value("type", std::string()) == "Sequence" && v.contains(list_key) && v[list_key].is_array()) {
        for (const auto& x : v[list_key]) {
            auto sub = flatten_sequence(x, list_key);
            out.insert(out.end(), sub.begin(), sub.end());
        }
    } else {
        out.push_back(&v);
    }
    return out;
}

}  // namespace

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::from_tokenizer_json(
    const std::filesystem::path& tokenizer_json, const JsonOverrides& overrides) {
    const std::string file = tokenizer_json.string();
    const json root = parse_json_file(tokenizer_json);
    if (!root.is_object()) throw Error(file + ": expected a JSON object");
    std::unique_ptr<ByteLevelBpeTokenizer> tok(new ByteLevelBpeTokenizer());

    // --- model
    if (!root.contains("model") || !root["model"].is_object()) throw Error(file + ": missing object 'model'");
    const json& model = root["model"];
    const std::string mwhere = file + ": model";
    if (model.contains("type") && model["type"] != "BPE")
        throw Error(mwhere + ".type: '" + model["type"].dump() + "' is not supported here (expected BPE)");
    if (!model.contains("vocab") || !model["vocab"].is_object()) throw Error(mwhere + ".vocab: missing or not an object");
    if (!model.contains("merges") || !model["merges"].is_array()) throw Error(mwhere + ".merges: missing or not an array");
    {
        VocabMap vocab;
        vocab.reserve(model["vocab"].size());
        for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it)
            vocab.emplace(it.key(), json_id(it.value(), mwhere + ".vocab['" + it.key() + "']"));
        if (vocab.empty()) throw Error(mwhere + ".vocab: empty");
        tok->set_vocab(std::move(vocab), mwhere + ".vocab");
    }
    {
        const json& merges = model["merges"];
        for (std::size_t i = 0; i < merges.size(); ++i) {
            const std::string where = mwhere + ".merges[" + std::to_string(i) + "]";
            const json& m = merges[i];
            if (m.is_string()) {
                const std::string s = m.get<std::string>();
                const auto sp = s.find(' ');
                if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                    throw Error(where + ": expected \"a b\", got " + m.dump());
                tok->add_merge(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1),
                               static_cast<std::int32_t>(i), where);
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                tok->add_merge(m[0].get<std::string>(), m[1].get<std::string>(), static_cast<std::int32_t>(i), where);
            } else {
                throw Error(where + ": expected \"a b\" or [\"a\", \"b\"], got " + m.dump());
            }
        }
    }
    if (model.contains("dropout") && !model["dropout"].is_null()) {
        if (!model["dropout"].is_number()) throw Error(mwhere + ".dropout: expected a number or null");
        if (model["dropout"].get<double>() > 0.0) throw Error(mwhere + ".dropout: BPE dropout is not supported");
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (model.contains(key) && !model[key].is_null() && model[key] != "")
            throw Error(mwhere + "." + key + ": " + model[key].dump() + " is not supported (byte-level BPE has none)");
    }
    if (json_bool(model, "byte_fallback", false, mwhere)) throw Error(mwhere + ".byte_fallback: not supported");
    tok->fuse_unk_ = json_bool(model, "fuse_unk", false, mwhere);
    tok->ignore_merges_ = json_bool(model, "ignore_merges", false, mwhere);
    if (model.contains("unk_token") && !model["unk_token"].is_null()) {
        const std::string unk = json_string(model["unk_token"], mwhere + ".unk_token");
        const auto it = tok->vocab_.find(unk);
        if (it == tok->vocab_.end()) throw Error(mwhere + ".unk_token: '" + unk + "' is not in the vocabulary");
        tok->unk_id_ = it->second;
    }

    // --- normalizer: none
    if (root.contains("normalizer") && !root["normalizer"].is_null()) {
        for (const json* n : flatten_sequence(root["normalizer"], "normalizers")) {
            if (n->is_object() && n->value("type", std::string()) == "Sequence") continue;   // empty sequence
            throw Error(file + ": normalizer " + n->dump().substr(0, 200) + " is not supported (expected null)");
        }
    }

    // --- pre-tokenizer: ByteLevel
    {
        if (!root.contains("pre_tokenizer") || root["pre_tokenizer"].is_null())
            throw Error(file + ": pre_tokenizer is null; a byte-level BPE needs pre_tokenizer ByteLevel");
        const auto parts = flatten_sequence(root["pre_tokenizer"], "pretokenizers");
        if (parts.size() != 1 || !parts[0]->is_object() || parts[0]->value("type", std::string()) != "ByteLevel")
            throw Error(file + ": pre_tokenizer " + root["pre_tokenizer"].dump().substr(0, 200) +
                        " is not supported (expected ByteLevel)");
        const std::string where = file + ": pre_tokenizer";
        tok->add_prefix_space_ = json_bool(*parts[0], "add_prefix_space", true, where);
        tok->use_regex_ = json_bool(*parts[0], "use_regex", true, where);
    }
    if (overrides.add_prefix_space) tok->add_prefix_space_ = *overrides.add_prefix_space;

    // --- added tokens
    {
        std::vector<AddedToken> added;
        if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
            if (!root["added_tokens"].is_array()) throw Error(file + ": added_tokens: expected an array");
            const json& arr = root["added_tokens"];
            for (std::size_t i = 0; i < arr.size(); ++i) {
                const std::string where = file + ": added_tokens[" + std::to_string(i) + "]";
                const json& a = arr[i];
                if (!a.is_object() || !a.contains("id") || !a.contains("content"))
                    throw Error(where + ": expected an object with 'id' and 'content'");
                AddedToken t;
                t.id = json_id(a["id"], where + ".id");
                t.content = json_string(a["content"], where + ".content");
                t.special = json_bool(a, "special", false, where);
                t.lstrip = json_bool(a, "lstrip", false, where);
                t.rstrip = json_bool(a, "rstrip", false, where);
                t.single_word = json_bool(a, "single_word", false, where);
                t.normalized = json_bool(a, "normalized", !t.special, where);
                added.push_back(std::move(t));
            }
        }
        tok->set_added_tokens(std::move(added));
    }

    // --- post-processor
    {
        auto sep_cls = [&](const json& p, const char* key, const std::string& where) {
            if (!p.contains(key) || !p[key].is_array() || p[key].size() != 2)
                throw Error(where + "." + key + ": expected [token, id]");
            return json_id(p[key][1], where + "." + key + "[1]");
        };
        const json* proc = nullptr;
        if (root.contains("post_processor") && !root["post_processor"].is_null()) {
            for (const json* p : flatten_sequence(root["post_processor"], "processors")) {
                const std::string type = p->is_object() ? p->value("type", std::string()) : std::string();
                if (type == "ByteLevel") continue;   // offsets only
                if (type != "RobertaProcessing" && type != "BertProcessing" && type != "TemplateProcessing")
                    throw Error(file + ": post_processor type '" + type +
                                "' is not supported (expected RobertaProcessing, BertProcessing, TemplateProcessing, "
                                "ByteLevel)");
                if (proc) throw Error(file + ": post_processor: more than one processor adds special tokens");
                proc = p;
            }
        }
        if (!proc) {
            tok->single_ = {{0, {}, 0}};
            tok->pair_ = {{0, {}, 0}, {1, {}, 1}};
        } else {
            const json& p = *proc;
            const std::string type = p["type"].get<std::string>();
            const std::string where = file + ": post_processor";
            if (type == "RobertaProcessing") {
                const std::int32_t sep = sep_cls(p, "sep", where), cls = sep_cls(p, "cls", where);
                tok->single_ = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}};
                tok->pair_ = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep, sep}, 0}, {1, {}, 0}, {-1, {sep}, 0}};
            } else if (type == "BertProcessing") {
                const std::int32_t sep = sep_cls(p, "sep", where), cls = sep_cls(p, "cls", where);
                tok->single_ = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}};
                tok->pair_ = {{-1, {cls}, 0}, {0, {}, 0}, {-1, {sep}, 0}, {1, {}, 1}, {-1, {sep}, 1}};
            } else {   // TemplateProcessing
                std::unordered_map<std::string, std::vector<std::int32_t>> specials;
                if (p.contains("special_tokens")) {
                    if (!p["special_tokens"].is_object()) throw Error(where + ".special_tokens: expected an object");
                    for (auto it = p["special_tokens"].begin(); it != p["special_tokens"].end(); ++it) {
                        const std::string w = where + ".special_tokens['" + it.key() + "']";
                        if (!it.value().is_object() || !it.value().contains("ids") || !it.value()["ids"].is_array())
                            throw Error(w + ": expected an object with 'ids'");
                        std::vector<std::int32_t> ids;
                        for (const auto& v : it.value()["ids"]) ids.push_back(json_id(v, w + ".ids"));
                        specials[it.key()] = std::move(ids);
                    }
                }
                auto parse_template = [&](const char* key) {
                    const std::string w = where + "." + key;
                    if (!p.contains(key) || !p[key].is_array()) throw Error(w + ": expected an array");
                    std::vector<TemplatePiece> out;
                    for (std::size_t i = 0; i < p[key].size(); ++i) {
                        const json& item = p[key][i];
                        const std::string wi = w + "[" + std::to_string(i) + "]";
                        TemplatePiece piece;
                        if (item.is_object() && item.contains("Sequence") && item["Sequence"].is_object()) {
                            const json& s = item["Sequence"];
                            const std::string id = json_string(s.value("id", json()), wi + ".Sequence.id");
                            if (id != "A" && id != "B") throw Error(wi + ".Sequence.id: expected \"A\" or \"B\"");
                            piece.sequence = id == "A" ? 0 : 1;
                            piece.type_id = json_id(s.value("type_id", json(0)), wi + ".Sequence.type_id");
                        } else if (item.is_object() && item.contains("SpecialToken") && item["SpecialToken"].is_object()) {
                            const json& s = item["SpecialToken"];
                            const std::string id = json_string(s.value("id", json()), wi + ".SpecialToken.id");
                            const auto it = specials.find(id);
                            if (it == specials.end())
                                throw Error(wi + ": special token '" + id + "' is not in special_tokens");
                            piece.ids = it->second;
                            piece.type_id = json_id(s.value("type_id", json(0)), wi + ".SpecialToken.type_id");
                        } else {
                            throw Error(wi + ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
                        }
                        out.push_back(std::move(piece));
                    }
                    return out;
                };
                tok->single_ = parse_template("single");
                tok->pair_ = parse_template("pair");
                const auto count = [](const std::vector<TemplatePiece>& t, int seq) {
                    return std::count_if(t.begin(), t.end(), [&](const TemplatePiece& x) { return x.sequence == seq; });
                };
                if (count(tok->single_, 0) != 1 || count(tok->single_, 1) != 0)
                    throw Error(where + ".single: must contain $A once and no $B");
                if (count(tok->pair_, 0) != 1 || count(tok->pair_, 1) != 1)
                    throw Error(where + ".pair: must contain $A and $B once each");
            }
        }
    }

    // --- pad token
    {
        std::optional<std::string> pad_name = overrides.pad_token;
        if (!pad_name && root.contains("padding") && root["padding"].is_object()) {
            const json& pad = root["padding"];
            if (pad.contains("pad_id") && pad["pad_id"].is_number_integer())
                tok->pad_id_ = json_id(pad["pad_id"], file + ": padding.pad_id");
            else if (pad.contains("pad_token") && pad["pad_token"].is_string())
                pad_name = pad["pad_token"].get<std::string>();
        }
        if (tok->pad_id_ < 0) {
            const std::string name = pad_name.value_or("<pad>");
            if (auto id = tok->token_to_id(name))
                tok->pad_id_ = *id;
            else
                tok->pad_error_ = file + ": no pad token: '" + name + "' is not in the vocabulary or added_tokens";
        }
    }
    return tok;
}

// ---------------------------------------------------------------------------------------------
// Encoding

void ByteLevelBpeTokenizer::bpe_word(std::string_view word, std::vector<std::int32_t>& out) const {
    struct Symbol {
        std::int32_t id;
        std::int32_t prev, next;
        bool alive;
    };
    std::vector<Symbol> syms;
    syms.reserve(word.size());
    bool pending_unk = false;
    for (char ch : word) {
        const std::int32_t id = byte_id_[static_cast<unsigned char>(ch)];
        if (id >= 0) {
            pending_unk = false;
            syms.push_back({id, 0, 0, true});
        } else if (unk_id_ >= 0) {
            if (!(fuse_unk_ && pending_unk)) syms.push_back({unk_id_, 0, 0, true});
            pending_unk = true;
        }
        // No character for this byte and no unk token: the byte is dropped (as Hugging Face does).
    }
    const auto n = static_cast<std::int32_t>(syms.size());
    for (std::int32_t i = 0; i < n; ++i) {
        syms[i].prev = i - 1;
        syms[i].next = i + 1 < n ? i + 1 : -1;
    }
    struct Candidate {
        std::int32_t rank, pos, new_id;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
    auto push_pair = [&](std::int32_t pos) {
        const std::int32_t next = syms[pos].next;
        if (next < 0) return;
        const auto it = merges_.find(pair_key(syms[pos].id, syms[next].id));
        if (it != merges_.end()) heap.push({it->second.rank, pos, it->second.id});
    };
    for (std::int32_t i = 0; i + 1 < n; ++i) push_pair(i);
    while (!heap.empty()) {
        const Candidate top = heap.top();
        heap.pop();
        Symbol& left = syms[top.pos];
        if (!left.alive || left.next < 0) continue;
        const auto it = merges_.find(pair_key(left.id, syms[left.next].id));
        if (it == merges_.end() || it->second.rank != top.rank) continue;   // stale entry
        Symbol& right = syms[left.next];
        left.id = top.new_id;
        right.alive = false;
        left.next = right.next;
        if (right.next >= 0) syms[right.next].prev = top.pos;
        if (left.prev >= 0) push_pair(left.prev);
        push_pair(top.pos);
    }
    for (std::int32_t i = n > 0 ? 0 : -1; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

void ByteLevelBpeTokenizer::append_word_ids(std::string_view word, std::vector<std::int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges_) {
        const auto it = vocab_.find(mapped(word));
        if (it != vocab_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    const bool cacheable = word.size() < kCacheMaxWordBytes;
    if (cacheable) {
        std::shared_lock lock(cache_mutex_);
        const auto it = cache_.find(word);
        if (it != cache_.end()) {
            out.insert(out.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    const std::size_t start = out.size();
    bpe_word(word, out);
    if (cacheable) {
        std::unique_lock lock(cache_mutex_);
        if (cache_.size() < kCacheMaxEntries)
            cache_.emplace(std::string(word), std::vector<std::int32_t>(out.begin() + static_cast<std::ptrdiff_t>(start), out.end()));
    }
}

void ByteLevelBpeTokenizer::encode_plain(std::string_view text, std::vector<std::int32_t>& out) const {
    if (text.empty()) return;
    std::string prefixed;
    if (add_prefix_space_ && text.front() != ' ') {
        prefixed.reserve(text.size() + 1);
        prefixed.push_back(' ');
        prefixed.append(text);
        text = prefixed;
    }
    if (!use_regex_) {
        append_word_ids(text, out);
        return;
    }
    for (std::string_view w : split_words(text)) append_word_ids(w, out);
}

// Cuts the added tokens out of text (leftmost-longest, Hugging Face's lstrip/rstrip/single_word
// rules); the pieces between them go to the next pass, then to encode_plain.
void ByteLevelBpeTokenizer::split_added(std::string_view text, bool normalized_pass, std::vector<std::int32_t>& out) const {
    const auto& tokens = normalized_pass ? added_normalized_ : added_plain_;
    auto next_stage = [&](std::string_view piece) {
        if (piece.empty()) return;
        if (!normalized_pass)
            split_added(piece, true, out);
        else
            encode_plain(piece, out);
    };
    if (tokens.empty()) {
        next_stage(text);
        return;
    }
    std::size_t emitted = 0;   // text[0, emitted) is done
    std::size_t pos = 0;       // where the search goes on
    while (pos < text.size()) {
        // The leftmost match from pos, longest at that position.
        const AddedToken* hit = nullptr;
        std::size_t start = pos;
        for (; start < text.size(); ++start) {
            if (!added_first_byte_[static_cast<unsigned char>(text[start])]) continue;
            for (const auto& t : tokens) {
                if (text.compare(start, t.content.size(), t.content) == 0) {
                    hit = &t;
                    break;
                }
            }
            if (hit) break;
        }
        if (!hit) break;
        std::size_t mstart = start;
        std::size_t mstop = start + hit->content.size();
        pos = mstop;
        if (hit->single_word) {
            std::int32_t cp = -1;
            const bool word_before = mstart > 0 && (decode_before(text, mstart, cp), is_word_cp(cp));
            const bool word_after = mstop < text.size() && (decode_at(text, mstop, cp), is_word_cp(cp));
            if (word_before || word_after) continue;
        }
        if (hit->lstrip) {
            std::size_t s = mstart;
            while (s > 0) {
                std::int32_t cp = -1;
                const std::size_t b = decode_before(text, s, cp);
                if (!is_space_cp(cp)) break;
                s = b;
            }
            mstart = std::max(s, emitted);
        }
        if (hit->rstrip) {
            while (mstop < text.size()) {
                std::int32_t cp = -1;
                const std::size_t len = decode_at(text, mstop, cp);
                if (!is_space_cp(cp)) break;
                mstop += len;
            }
        }
        if (mstart < emitted) mstart = emitted;
        next_stage(text.substr(emitted, mstart - emitted));
        out.push_back(hit->id);
        emitted = std::max(emitted, mstop);
        pos = std::max(pos, emitted);
    }
    next_stage(text.substr(std::min(emitted, text.size())));
}

std::vector<std::int32_t> ByteLevelBpeTokenizer::encode_text(std::string_view text) const {
    std::vector<std::int32_t> out;
    out.reserve(text.size() / 3 + 4);
    split_added(text, false, out);
    return out;
}

int ByteLevelBpeTokenizer::num_special_tokens(bool pair) const { return template_special_tokens(pair ? pair_ : single_); }

Encoding ByteLevelBpeTokenizer::encode(std::string_view a, std::optional<std::string_view> b, int max_length) const {
    // Truncation follows the Rust source of tokenizers 0.13-0.22; 0.23 behaves as if each text were
    // first cut to max_length tokens. They differ by at most one token moved between a and b, and
    // only when a text alone exceeds max_length.
    return apply_template(b ? pair_ : single_, encode_text(a),
                          b ? std::optional<std::vector<std::int32_t>>(encode_text(*b)) : std::nullopt, max_length);
}

std::string ByteLevelBpeTokenizer::token(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size())
        throw Error("tokenizer: token id " + std::to_string(id) + " is out of range [0, " +
                    std::to_string(id_to_token_.size()) + ")");
    return id_to_token_[static_cast<std::size_t>(id)];
}

std::int32_t ByteLevelBpeTokenizer::pad_id() const {
    if (pad_id_ < 0) throw Error(pad_error_.empty() ? std::string("tokenizer: no pad token") : pad_error_);
    return pad_id_;
}

int ByteLevelBpeTokenizer::vocab_size() const { return static_cast<int>(id_to_token_.size()); }

std::optional<std::int32_t> ByteLevelBpeTokenizer::token_to_id(std::string_view t) const {
    for (const auto* list : {&added_plain_, &added_normalized_})
        for (const auto& a : *list)
            if (a.content == t) return a.id;
    const auto it = vocab_.find(t);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens) const {
    const auto& cp_to_byte = byte_tables().cp_to_byte;
    std::string out;
    for (const std::int32_t id : ids) {
        const std::string t = token(id);
        if (skip_special_tokens && is_special_[static_cast<std::size_t>(id)]) continue;
        // Every character back to its byte; a token with a character outside the table is kept as is.
        std::string bytes;
        bool ok = true;
        for (std::size_t i = 0; i < t.size() && ok;) {
            std::int32_t cp;
            i += decode_at(t, i, cp);
            const auto it = cp_to_byte.find(cp);
            if (it == cp_to_byte.end())
                ok = false;
            else
                bytes.push_back(static_cast<char>(it->second));
        }
        out += ok ? bytes : t;
    }
    return out;
}

}  // namespace meft
