#include "model/config.h"

#include <fstream>

#include "core/error.h"
#include "core/file_io.h"

namespace meft {

std::string arch_name(Arch a) { return a == Arch::Bert ? "bert" : "roberta"; }

Arch parse_arch(const std::string& s) {
    if (s == "bert") return Arch::Bert;
    if (s == "roberta") return Arch::Roberta;
    throw Error("unknown architecture '" + s + "' (expected bert or roberta)");
}

void ModelConfig::set_num_labels(int n) {
    labels.clear();
    for (int i = 0; i < n; ++i) labels.push_back("LABEL_" + std::to_string(i));
}

void ModelConfig::validate(const std::string& where) const {
    auto need = [&](bool ok, const std::string& what) {
        if (!ok) throw Error(where + ": " + what);
    };
    need(vocab_size > 0, "vocab_size must be positive");
    need(hidden_size > 0 && num_heads > 0 && hidden_size % num_heads == 0,
         "hidden_size (" + std::to_string(hidden_size) + ") must be a positive multiple of num_attention_heads (" +
             std::to_string(num_heads) + ")");
    need(num_layers > 0, "num_hidden_layers must be positive");
    need(intermediate_size > 0, "intermediate_size must be positive");
    need(max_position_embeddings > 0, "max_position_embeddings must be positive");
    need(type_vocab_size > 0, "type_vocab_size must be positive");
    need(num_labels() > 0, "id2label must name at least one label");
    need(hidden_act == "gelu", "hidden_act '" + hidden_act + "' is not supported (expected gelu)");
    need(hidden_dropout >= 0 && hidden_dropout < 1, "hidden_dropout_prob must be in [0, 1)");
    need(attention_dropout >= 0 && attention_dropout < 1, "attention_probs_dropout_prob must be in [0, 1)");
    need(pad_token_id >= 0 && pad_token_id < vocab_size, "pad_token_id must be a valid token id");
}

namespace {
template <typename T> T get(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    try {
        return j[key].get<T>();
    } catch (const nlohmann::json::exception&) {
        throw Error(where + ": key '" + key + "' has the wrong type (" + j[key].dump() + ")");
    }
}
}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": expected a JSON object");
    ModelConfig c;
    const std::string type = get<std::string>(j, "model_type", "", where);
    if (type.empty()) throw Error(where + ": missing key 'model_type' (expected \"bert\" or \"roberta\")");
    if (type != "bert" && type != "roberta")
        throw Error(where + ": model_type '" + type + "' is not supported (expected bert or roberta)");
    c.arch = parse_arch(type);
    if (c.arch == Arch::Roberta) {  // HF defaults differ for RoBERTa
        c.pad_token_id = 1;
        c.layer_norm_eps = 1e-5;
    }
    c.vocab_size = get<int>(j, "vocab_size", c.vocab_size, where);
    c.hidden_size = get<int>(j, "hidden_size", c.hidden_size, where);
    c.num_layers = get<int>(j, "num_hidden_layers", c.num_layers, where);
    c.num_heads = get<int>(j, "num_attention_heads", c.num_heads, where);
    c.intermediate_size = get<int>(j, "intermediate_size", c.intermediate_size, where);
    c.max_position_embeddings = get<int>(j, "max_position_embeddings", c.max_position_embeddings, where);
    c.type_vocab_size = get<int>(j, "type_vocab_size", c.type_vocab_size, where);
    c.pad_token_id = get<int>(j, "pad_token_id", c.pad_token_id, where);
    c.layer_norm_eps = get<double>(j, "layer_norm_eps", c.layer_norm_eps, where);
    c.hidden_dropout = get<double>(j, "hidden_dropout_prob", c.hidden_dropout, where);
    c.attention_dropout = get<double>(j, "attention_probs_dropout_prob", c.attention_dropout, where);
    c.classifier_dropout = get<double>(j, "classifier_dropout", -1.0, where);
    c.initializer_range = get<double>(j, "initializer_range", c.initializer_range, where);
    c.hidden_act = get<std::string>(j, "hidden_act", c.hidden_act, where);
    c.problem_type = get<std::string>(j, "problem_type", "", where);
    const std::string pos = get<std::string>(j, "position_embedding_type", "absolute", where);
    if (pos != "absolute")
        throw Error(where + ": position_embedding_type '" + pos + "' is not supported (expected absolute)");
    if (j.contains("id2label") && j["id2label"].is_object() && !j["id2label"].empty()) {
        const auto& m = j["id2label"];
        c.labels.assign(m.size(), "");
        for (auto it = m.begin(); it != m.end(); ++it) {
            std::size_t id = 0;
            try {
                id = std::stoul(it.key());
            } catch (const std::exception&) {
                throw Error(where + ": id2label key '" + it.key() + "' is not a number");
            }
            if (id >= c.labels.size())
                throw Error(where + ": id2label ids must be 0.." + std::to_string(c.labels.size() - 1));
            c.labels[id] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
        }
    } else if (j.contains("num_labels")) {
        c.set_num_labels(get<int>(j, "num_labels", 2, where));
    }
    c.validate(where);
    return c;
}

nlohmann::json ModelConfig::to_json() const {
    nlohmann::json j;
    const bool bert = arch == Arch::Bert;
    j["architectures"] = {bert ? "BertForSequenceClassification" : "RobertaForSequenceClassification"};
    j["model_type"] = arch_name(arch);
    j["vocab_size"] = vocab_size;
    j["hidden_size"] = hidden_size;
    j["num_hidden_layers"] = num_layers;
    j["num_attention_heads"] = num_heads;
    j["intermediate_size"] = intermediate_size;
    j["hidden_act"] = hidden_act;
    j["hidden_dropout_prob"] = hidden_dropout;
    j["attention_probs_dropout_prob"] = attention_dropout;
    j["classifier_dropout"] = classifier_dropout >= 0 ? nlohmann::json(classifier_dropout) : nlohmann::json(nullptr);
    j["max_position_embeddings"] = max_position_embeddings;
    j["type_vocab_size"] = type_vocab_size;
    j["initializer_range"] = initializer_range;
    j["layer_norm_eps"] = layer_norm_eps;
    j["pad_token_id"] = pad_token_id;
    if (!bert) {
        j["bos_token_id"] = 0;
        j["eos_token_id"] = 2;
    }
    j["position_embedding_type"] = "absolute";
    nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
    for (int i = 0; i < num_labels(); ++i) {
        id2label[std::to_string(i)] = labels[i];
        label2id[labels[i]] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
    if (!problem_type.empty()) j["problem_type"] = problem_type;
    j["torch_dtype"] = torch_dtype;
    j["use_cache"] = true;
    return j;
}

ModelConfig load_model_config(const std::filesystem::path& dir) {
    const auto file = dir / "config.json";
    std::ifstream in(file);
    if (!in) throw Error(file.string() + ": cannot open (is '" + dir.string() + "' a Hugging Face model directory?)");
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
        throw Error(file.string() + ": invalid JSON: " + e.what());
    }
    return ModelConfig::from_json(j, file.string());
}

void save_model_config(const ModelConfig& c, const std::filesystem::path& dir) {
    write_file_atomically(dir / "config.json", c.to_json().dump(2) + "\n");
}

std::vector<std::string> preset_names() { return {"toy", "tiny", "base"}; }

ModelConfig preset_config(Arch arch, const std::string& preset) {
    ModelConfig c;
    c.arch = arch;
    if (arch == Arch::Roberta) {
        c.vocab_size = 50265;
        c.max_position_embeddings = 514;
        c.type_vocab_size = 1;
        c.pad_token_id = 1;
        c.layer_norm_eps = 1e-5;
    }
    if (preset == "base") return c;
    // Small presets keep the real vocabulary and positions so any tokenizer of the family fits.
    if (preset == "toy") {
        c.num_layers = 4, c.hidden_size = 128, c.num_heads = 4, c.intermediate_size = 512;
    } else if (preset == "tiny") {
        c.num_layers = 2, c.hidden_size = 128, c.num_heads = 2, c.intermediate_size = 512;
    } else {
        throw Error("unknown preset '" + preset + "' (expected toy, tiny or base)");
    }
    return c;
}

}  // namespace meft
