// tokenizer.cpp — choosing and loading a tokenizer from a model folder; truncation shared by all.
#include "data/tokenizer.h"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/bpe.h"
#include "data/wordpiece.h"

namespace meft {

std::pair<std::size_t, std::size_t> longest_first_lengths(std::size_t n1, std::size_t n2, std::size_t max_length) {
    if (n1 + n2 <= max_length) return {n1, n2};
    if (max_length == 0) return {0, 0};
    const bool swap = n1 > n2;
    std::size_t shorter = swap ? n2 : n1;
    std::size_t longer = 0;
    // Only the longer one shrinks (to what the shorter leaves) unless that is not enough.
    if (shorter > max_length)
        longer = shorter;
    else
        longer = std::max(shorter, max_length - shorter);
    if (shorter + longer > max_length) {
        shorter = max_length / 2;
        longer = shorter + max_length % 2;
    }
    return swap ? std::pair{longer, shorter} : std::pair{shorter, longer};
}

int template_special_tokens(const std::vector<TemplatePiece>& tmpl) {
    int n = 0;
    for (const TemplatePiece& p : tmpl)
        if (p.sequence < 0) n += static_cast<int>(p.ids.size());
    return n;
}

Encoding apply_template(const std::vector<TemplatePiece>& tmpl, std::vector<std::int32_t> a,
                        std::optional<std::vector<std::int32_t>> b, int max_length) {
    if (max_length < 0) throw Error("tokenizer: max_length must be >= 0 (0: no limit), got " + std::to_string(max_length));
    if (max_length > 0) {
        const int specials = template_special_tokens(tmpl);
        if (max_length < specials)
            throw Error("tokenizer: max_length " + std::to_string(max_length) + " leaves no room for the " +
                        std::to_string(specials) + " special tokens");
        const auto room = static_cast<std::size_t>(max_length - specials);
        if (b) {
            const auto [na, nb] = longest_first_lengths(a.size(), b->size(), room);
            a.resize(std::min(na, a.size()));
            b->resize(std::min(nb, b->size()));
        } else if (a.size() > room) {
            a.resize(room);
        }
    }
    Encoding e;
    for (const TemplatePiece& p : tmpl) {
        const std::vector<std::int32_t>& src = p.sequence < 0 ? p.ids : p.sequence == 0 ? a : *b;
        e.input_ids.insert(e.input_ids.end(), src.begin(), src.end());
        e.token_type_ids.insert(e.token_type_ids.end(), src.size(), p.type_id);
    }
    e.attention_mask.assign(e.input_ids.size(), 1);
    return e;
}

namespace {
nlohmann::json read_json_if_exists(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) return nlohmann::json::object();
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        throw Error(file.string() + ": invalid JSON: " + e.what());
    }
}

std::string model_type_of(const std::filesystem::path& dir) {
    const nlohmann::json cfg = read_json_if_exists(dir / "config.json");
    return cfg.is_object() && cfg.contains("model_type") && cfg["model_type"].is_string() ? cfg["model_type"].get<std::string>()
                                                                                           : "";
}
}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) throw Error(dir.string() + ": not a tokenizer folder");
    const nlohmann::json tcfg = read_json_if_exists(dir / "tokenizer_config.json");
    const std::string model_type = model_type_of(dir);
    auto cfg_bool = [&](const char* key, bool def) {
        return tcfg.is_object() && tcfg.contains(key) && tcfg[key].is_boolean() ? tcfg[key].get<bool>() : def;
    };
    if (fs::exists(dir / "tokenizer.json")) {
        const nlohmann::json tj = read_json_if_exists(dir / "tokenizer.json");
        std::string type = tj.contains("model") && tj["model"].contains("type") && tj["model"]["type"].is_string()
                               ? tj["model"]["type"].get<std::string>()
                               : "";
        if (type.empty() && tj.contains("model") && tj["model"].contains("merges")) type = "BPE";  // older files omit it
        if (type == "WordPiece") {
            auto t = WordPieceTokenizer::from_tokenizer_json(dir / "tokenizer.json");
            if (tcfg.is_object() && tcfg.contains("do_lower_case")) {  // BertTokenizerFast lets the config override
                std::optional<bool> strip;
                if (tcfg.contains("strip_accents") && tcfg["strip_accents"].is_boolean()) strip = tcfg["strip_accents"].get<bool>();
                t->apply_tokenizer_config(cfg_bool("do_lower_case", true), strip, cfg_bool("tokenize_chinese_chars", true));
            }
            return t;
        }
        if (type == "BPE") {  // transformers lets tokenizer_config.json's add_prefix_space override
            ByteLevelBpeTokenizer::JsonOverrides ov;
            if (tcfg.is_object() && tcfg.contains("add_prefix_space") && tcfg["add_prefix_space"].is_boolean())
                ov.add_prefix_space = tcfg["add_prefix_space"].get<bool>();
            return ByteLevelBpeTokenizer::from_tokenizer_json(dir / "tokenizer.json", ov);
        }
        throw Error((dir / "tokenizer.json").string() + ": model.type '" + type + "' is not supported (expected WordPiece or BPE)");
    }
    if (fs::exists(dir / "vocab.txt")) {
        WordPieceOptions o;
        o.do_lower_case = cfg_bool("do_lower_case", true);
        if (tcfg.is_object() && tcfg.contains("strip_accents") && tcfg["strip_accents"].is_boolean())
            o.strip_accents = tcfg["strip_accents"].get<bool>();
        o.tokenize_chinese_chars = cfg_bool("tokenize_chinese_chars", true);
        return WordPieceTokenizer::from_files(dir / "vocab.txt", o);
    }
    if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) {
        BpeOptions o;
        o.add_prefix_space = cfg_bool("add_prefix_space", false);
        if (model_type == "opt") o.family = BpeFamily::Opt;
        else if (model_type == "bart") o.family = BpeFamily::Bart;
        return ByteLevelBpeTokenizer::from_files(dir / "vocab.json", dir / "merges.txt", o);
    }
    throw Error(dir.string() + ": no tokenizer found (expected tokenizer.json, vocab.txt, or vocab.json with merges.txt)");
}

}  // namespace meft
