#include "model/arch/config_json.h"

#include <cstdint>
#include <limits>
#include <vector>

#include "core/error.h"
#include "model/arch/arch.h"

namespace meft::config_json {

namespace {
const nlohmann::json* find(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
}

Error wrong_type(const char* key, const nlohmann::json& v, const char* expected, const std::string& where) {
    return Error(where + ": key '" + key + "' has the wrong type (" + v.dump() + ", expected " + expected + ")");
}

void check_limit(int value, int max, const std::string& key, const std::string& where) {
    if (value > max)
        throw Error(where + ": " + key + " = " + std::to_string(value) + " is beyond what this engine accepts (at most " +
                    std::to_string(max) + ")");
}
}  // namespace

int get_int(const nlohmann::json& j, const char* key, int fallback, const std::string& where) {
    const nlohmann::json* v = find(j, key);
    if (!v) return fallback;
    if (!v->is_number_integer()) throw wrong_type(key, *v, "an integer", where);
    const bool fits = v->is_number_unsigned()
                          ? v->get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<int>::max())
                          : v->get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                                v->get<std::int64_t>() <= std::numeric_limits<int>::max();
    if (!fits) throw Error(where + ": key '" + key + "' is out of range (" + v->dump() + ")");
    return static_cast<int>(v->get<std::int64_t>());
}

double get_double(const nlohmann::json& j, const char* key, double fallback, const std::string& where) {
    const nlohmann::json* v = find(j, key);
    if (!v) return fallback;
    if (!v->is_number()) throw wrong_type(key, *v, "a number", where);
    return v->get<double>();
}

std::string get_string(const nlohmann::json& j, const char* key, const std::string& fallback, const std::string& where) {
    const nlohmann::json* v = find(j, key);
    if (!v) return fallback;
    if (!v->is_string()) throw wrong_type(key, *v, "a string", where);
    return v->get<std::string>();
}

bool get_flag(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) {
    const nlohmann::json* v = find(j, key);
    if (!v) return fallback;
    if (!v->is_boolean()) throw wrong_type(key, *v, "true or false", where);
    return v->get<bool>();
}

void check_limits(const ModelConfig& c, const std::string& where) {
    const ArchSpec& spec = arch_spec(c.arch);
    check_limit(c.vocab_size, 1 << 24, "vocab_size", where);
    check_limit(c.hidden_size, 1 << 16, "hidden_size", where);
    check_limit(c.num_layers, 1024, spec.key_of_layers(), where);
    check_limit(c.decoder_layers, 1024, "decoder_layers", where);
    check_limit(c.num_heads, 1 << 16, "num_attention_heads", where);
    check_limit(c.intermediate_size, 1 << 20, spec.key_of_ffn(), where);
    check_limit(c.max_position_embeddings, 1 << 20, "max_position_embeddings", where);
    check_limit(c.type_vocab_size, 1 << 16, "type_vocab_size", where);
    check_limit(c.word_embed_proj_dim, 1 << 16, "word_embed_proj_dim", where);
}

void read_labels(ModelConfig& c, const nlohmann::json& j, const std::string& where) {
    if (j.contains("id2label") && j["id2label"].is_object() && !j["id2label"].empty()) {
        const auto& m = j["id2label"];
        c.labels.assign(m.size(), "");
        std::vector<bool> seen(m.size(), false);
        for (auto it = m.begin(); it != m.end(); ++it) {
            const std::string& key = it.key();
            bool numeric = !key.empty() && key.size() <= 9;
            for (char ch : key) numeric = numeric && ch >= '0' && ch <= '9';
            if (!numeric) throw Error(where + ": id2label key '" + key + "' is not a label id (0, 1, ...)");
            const std::size_t id = std::stoul(key);
            if (id >= c.labels.size() || seen[id])
                throw Error(where + ": id2label ids must be 0.." + std::to_string(c.labels.size() - 1) +
                            ", each once (found '" + key + "')");
            seen[id] = true;
            c.labels[id] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
        }
    } else if (j.contains("num_labels")) {
        const int n = get_int(j, "num_labels", 2, where);
        if (n < 1) throw Error(where + ": num_labels must be at least 1");
        check_limit(n, 1 << 20, "num_labels", where);
        c.set_num_labels(n);
    }
    // The head: *ForMultipleChoice in architectures (BERT, RoBERTa), or our "meft_head" key (BART,
    // which transformers has no multiple-choice class for). Its label count is not used.
    // *ForMaskedLM: the masked-LM head (encoders).
    bool mc = false, mlm = false;
    if (j.contains("architectures") && j["architectures"].is_array())
        for (const auto& a : j["architectures"]) {
            if (a.is_string() && a.get<std::string>().ends_with("ForMultipleChoice")) mc = true;
            if (a.is_string() && a.get<std::string>().ends_with("ForMaskedLM") && !arch_spec(c.arch).mlm_head().empty())
                mlm = true;
        }
    if (j.contains("meft_head")) {
        const std::string head = get_string(j, "meft_head", "", where);
        if (head != "multiple_choice")
            throw Error(where + ": meft_head '" + head + "' is not known (expected \"multiple_choice\")");
        mc = true;
    }
    if (mc) c.set_multiple_choice();
    if (mlm) c.set_masked_lm();
}

void write_labels(const ModelConfig& c, nlohmann::json& j) {
    nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
    for (int i = 0; i < c.num_labels(); ++i) {
        id2label[std::to_string(i)] = c.labels[i];
        label2id[c.labels[i]] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
    if (!c.problem_type.empty()) j["problem_type"] = c.problem_type;
}

}  // namespace meft::config_json
