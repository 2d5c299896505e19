#include "model/config.h"

#include <fstream>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/file_io.h"

namespace meft {

std::string arch_name(Arch a) {
    switch (a) {
        case Arch::Bert: return "bert";
        case Arch::Roberta: return "roberta";
        case Arch::Bart: return "bart";
        case Arch::Opt: break;
    }
    return "opt";
}

std::vector<std::string> arch_names() { return {"bert", "roberta", "bart", "opt"}; }

Arch parse_arch(const std::string& s) {
    for (Arch a : {Arch::Bert, Arch::Roberta, Arch::Bart, Arch::Opt})
        if (s == arch_name(a)) return a;
    throw Error("unknown architecture '" + s + "' (expected bert, roberta, bart or opt)");
}

void ModelConfig::set_num_labels(int n) {
    multiple_choice = false;
    labels.clear();
    for (int i = 0; i < n; ++i) labels.push_back("LABEL_" + std::to_string(i));
}

void ModelConfig::set_multiple_choice() {
    set_num_labels(1);
    multiple_choice = true;
    problem_type.clear();
}

void ModelConfig::set_dropout(double p) {
    hidden_dropout = attention_dropout = p;
    classifier_dropout = arch == Arch::Bart ? p : -1;  // BART's head has its own key; the others follow hidden
    if (arch == Arch::Bart || activation_dropout > 0) activation_dropout = p;
}

void ModelConfig::validate(const std::string& where) const {
    auto need = [&](bool ok, const std::string& what) {
        if (!ok) throw Error(where + ": " + what);
    };
    need(vocab_size > 0, "vocab_size must be positive");
    need(hidden_size > 0 && num_heads > 0 && hidden_size % num_heads == 0,
         "hidden_size (" + std::to_string(hidden_size) + ") must be a positive multiple of num_attention_heads (" +
             std::to_string(num_heads) + ")");
    need(num_layers > 0, arch == Arch::Bart ? "encoder_layers must be positive" : "num_hidden_layers must be positive");
    need(arch == Arch::Bart ? decoder_layers > 0 : decoder_layers == 0,
         arch == Arch::Bart ? "decoder_layers must be positive" : "only bart has decoder layers");
    need(intermediate_size > 0, "intermediate_size must be positive");
    need(max_position_embeddings > 0, "max_position_embeddings must be positive");
    need(type_vocab_size > 0, "type_vocab_size must be positive");
    need(num_labels() > 0, "id2label must name at least one label");
    if (arch == Arch::Opt || arch == Arch::Bart)
        need(hidden_act == "relu" || hidden_act == "gelu",
             "activation_function '" + hidden_act + "' is not supported (expected relu or gelu)");
    else
        need(hidden_act == "gelu", "hidden_act '" + hidden_act + "' is not supported (expected gelu)");
    need(word_embed_proj_dim >= 0, "word_embed_proj_dim must not be negative");
    need(hidden_dropout >= 0 && hidden_dropout < 1, "hidden_dropout_prob must be in [0, 1)");
    need(attention_dropout >= 0 && attention_dropout < 1, "attention_probs_dropout_prob must be in [0, 1)");
    need(activation_dropout >= 0 && activation_dropout < 1, "activation_dropout must be in [0, 1)");
    need(pad_token_id >= 0 && pad_token_id < vocab_size, "pad_token_id must be a valid token id");
    // RoBERTa's padding row is also a row of the position table (nn.Embedding padding_idx).
    need(arch != Arch::Roberta || pad_token_id < max_position_embeddings,
         "pad_token_id must be below max_position_embeddings for roberta");
}

namespace {
// The value of `key` as a T (int, double or std::string), or `fallback` when absent or null.
// Strict: a bool, a fraction or an out-of-range number for an int key is the wrong type, not
// silently converted.
template <typename T> T get(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    const nlohmann::json& v = *it;
    const auto wrong = [&](const char* expected) {
        return Error(where + ": key '" + key + "' has the wrong type (" + v.dump() + ", expected " + expected + ")");
    };
    if constexpr (std::is_same_v<T, int>) {
        if (!v.is_number_integer()) throw wrong("an integer");
        const bool fits = v.is_number_unsigned()
                              ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<int>::max())
                              : v.get<std::int64_t>() >= std::numeric_limits<int>::min() &&
                                    v.get<std::int64_t>() <= std::numeric_limits<int>::max();
        if (!fits) throw Error(where + ": key '" + key + "' is out of range (" + v.dump() + ")");
        return static_cast<int>(v.get<std::int64_t>());
    } else if constexpr (std::is_same_v<T, double>) {
        if (!v.is_number()) throw wrong("a number");
        return v.get<double>();
    } else {
        static_assert(std::is_same_v<T, std::string>);
        if (!v.is_string()) throw wrong("a string");
        return v.get<std::string>();
    }
}

// Sizes past these are not a BERT/RoBERTa-family model but a damaged file; refusing them here keeps
// the model from trying to allocate (or even declare) terabytes.
void check_limit(int value, int max, const char* key, const std::string& where) {
    if (value > max)
        throw Error(where + ": " + key + " = " + std::to_string(value) + " is beyond what this engine accepts (at most " +
                    std::to_string(max) + ")");
}
}  // namespace

namespace {
void check_limits(const ModelConfig& c, const std::string& where) {
    check_limit(c.vocab_size, 1 << 24, "vocab_size", where);
    check_limit(c.hidden_size, 1 << 16, "hidden_size", where);
    check_limit(c.num_layers, 1024, c.arch == Arch::Bart ? "encoder_layers" : "num_hidden_layers", where);
    check_limit(c.decoder_layers, 1024, "decoder_layers", where);
    check_limit(c.num_heads, 1 << 16, "num_attention_heads", where);
    check_limit(c.intermediate_size, 1 << 20,
                c.arch == Arch::Opt ? "ffn_dim" : c.arch == Arch::Bart ? "encoder_ffn_dim" : "intermediate_size", where);
    check_limit(c.max_position_embeddings, 1 << 20, "max_position_embeddings", where);
    check_limit(c.type_vocab_size, 1 << 16, "type_vocab_size", where);
    check_limit(c.word_embed_proj_dim, 1 << 16, "word_embed_proj_dim", where);
}

bool get_flag(const nlohmann::json& j, const char* key, bool fallback, const std::string& where) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw Error(where + ": key '" + key + "' has the wrong type (" + it->dump() + ", expected true or false)");
    return it->get<bool>();
}

// id2label (or num_labels) into c.labels.
void read_labels(ModelConfig& c, const nlohmann::json& j, const std::string& where);

// OPT's config.json (transformers' OPTConfig): other key names, and switches this engine does
// not implement are refused by name rather than silently ignored.
ModelConfig opt_from_json(const nlohmann::json& j, const std::string& where) {
    ModelConfig c = preset_config(Arch::Opt, "base");
    c.vocab_size = get<int>(j, "vocab_size", c.vocab_size, where);
    c.hidden_size = get<int>(j, "hidden_size", c.hidden_size, where);
    c.num_layers = get<int>(j, "num_hidden_layers", c.num_layers, where);
    c.num_heads = get<int>(j, "num_attention_heads", c.num_heads, where);
    c.intermediate_size = get<int>(j, "ffn_dim", c.intermediate_size, where);
    c.max_position_embeddings = get<int>(j, "max_position_embeddings", c.max_position_embeddings, where);
    c.pad_token_id = get<int>(j, "pad_token_id", c.pad_token_id, where);
    c.bos_token_id = get<int>(j, "bos_token_id", c.bos_token_id, where);
    c.eos_token_id = get<int>(j, "eos_token_id", c.eos_token_id, where);
    c.hidden_dropout = get<double>(j, "dropout", c.hidden_dropout, where);
    c.attention_dropout = get<double>(j, "attention_dropout", c.attention_dropout, where);
    c.initializer_range = get<double>(j, "init_std", c.initializer_range, where);
    c.hidden_act = get<std::string>(j, "activation_function", c.hidden_act, where);
    c.word_embed_proj_dim = get<int>(j, "word_embed_proj_dim", c.hidden_size, where);
    c.torch_dtype = get<std::string>(j, "torch_dtype", c.torch_dtype, where);
    auto flag = [&](const char* key, bool fallback) { return get_flag(j, key, fallback, where); };
    c.pre_layer_norm = flag("do_layer_norm_before", true);
    c.final_layer_norm = c.pre_layer_norm && !flag("_remove_final_layer_norm", false);
    if (!flag("enable_bias", true)) throw Error(where + ": enable_bias = false is not supported (OPT linears have biases)");
    if (!flag("layer_norm_elementwise_affine", true))
        throw Error(where + ": layer_norm_elementwise_affine = false is not supported");
    c.activation_dropout = get<double>(j, "activation_dropout", 0.0, where);
    if (get<double>(j, "layerdrop", 0.0, where) != 0.0) throw Error(where + ": layerdrop other than 0 is not supported");
    check_limits(c, where);
    c.validate(where);
    return c;
}

// BART's config.json (transformers' BartConfig). The encoder and decoder must share widths and
// head counts (they do in every released BART); switches this engine does not implement are
// refused by name.
ModelConfig bart_from_json(const nlohmann::json& j, const std::string& where) {
    ModelConfig c = preset_config(Arch::Bart, "base");
    c.vocab_size = get<int>(j, "vocab_size", c.vocab_size, where);
    c.hidden_size = get<int>(j, "d_model", c.hidden_size, where);
    c.num_layers = get<int>(j, "encoder_layers", c.num_layers, where);
    c.decoder_layers = get<int>(j, "decoder_layers", c.decoder_layers, where);
    c.num_heads = get<int>(j, "encoder_attention_heads", c.num_heads, where);
    c.intermediate_size = get<int>(j, "encoder_ffn_dim", c.intermediate_size, where);
    if (get<int>(j, "decoder_attention_heads", c.num_heads, where) != c.num_heads)
        throw Error(where + ": decoder_attention_heads must equal encoder_attention_heads (" + std::to_string(c.num_heads) + ")");
    if (get<int>(j, "decoder_ffn_dim", c.intermediate_size, where) != c.intermediate_size)
        throw Error(where + ": decoder_ffn_dim must equal encoder_ffn_dim (" + std::to_string(c.intermediate_size) + ")");
    c.max_position_embeddings = get<int>(j, "max_position_embeddings", c.max_position_embeddings, where);
    c.pad_token_id = get<int>(j, "pad_token_id", c.pad_token_id, where);
    c.bos_token_id = get<int>(j, "bos_token_id", c.bos_token_id, where);
    c.eos_token_id = get<int>(j, "eos_token_id", c.eos_token_id, where);
    c.decoder_start_token_id = get<int>(j, "decoder_start_token_id", c.decoder_start_token_id, where);
    c.hidden_dropout = get<double>(j, "dropout", c.hidden_dropout, where);
    c.attention_dropout = get<double>(j, "attention_dropout", c.attention_dropout, where);
    c.activation_dropout = get<double>(j, "activation_dropout", c.activation_dropout, where);
    c.classifier_dropout = get<double>(j, "classifier_dropout", 0.0, where);
    c.initializer_range = get<double>(j, "init_std", c.initializer_range, where);
    c.hidden_act = get<std::string>(j, "activation_function", c.hidden_act, where);
    c.problem_type = get<std::string>(j, "problem_type", "", where);
    c.torch_dtype = get<std::string>(j, "torch_dtype", c.torch_dtype, where);
    if (get_flag(j, "scale_embedding", false, where))
        throw Error(where + ": scale_embedding = true is not supported (BART checkpoints use false)");
    if (get_flag(j, "normalize_before", false, where) || get_flag(j, "add_final_layer_norm", false, where))
        throw Error(where + ": pre-LN BART variants (normalize_before, add_final_layer_norm: mBART) are not supported");
    for (const char* key : {"encoder_layerdrop", "decoder_layerdrop"})
        if (get<double>(j, key, 0.0, where) != 0.0) throw Error(where + ": " + key + " other than 0 is not supported");
    if (c.decoder_start_token_id < 0 || c.decoder_start_token_id >= c.vocab_size)
        throw Error(where + ": decoder_start_token_id must be a valid token id");
    if (c.eos_token_id < 0 || c.eos_token_id >= c.vocab_size)
        throw Error(where + ": eos_token_id must be a valid token id (the classification head reads the last eos)");
    check_limits(c, where);
    read_labels(c, j, where);
    c.validate(where);
    return c;
}
}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": expected a JSON object");
    ModelConfig c;
    const std::string type = get<std::string>(j, "model_type", "", where);
    if (type.empty()) throw Error(where + ": missing key 'model_type' (expected \"bert\", \"roberta\", \"bart\" or \"opt\")");
    if (type != "bert" && type != "roberta" && type != "bart" && type != "opt")
        throw Error(where + ": model_type '" + type + "' is not supported (expected bert, roberta, bart or opt)");
    if (type == "opt") return opt_from_json(j, where);
    if (type == "bart") return bart_from_json(j, where);
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
    check_limits(c, where);
    if (!(c.layer_norm_eps > 0)) throw Error(where + ": layer_norm_eps must be positive");
    read_labels(c, j, where);
    c.validate(where);
    return c;
}

namespace {
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
        const int n = get<int>(j, "num_labels", 2, where);
        if (n < 1) throw Error(where + ": num_labels must be at least 1");
        check_limit(n, 1 << 20, "num_labels", where);
        c.set_num_labels(n);
    }
    // The head: *ForMultipleChoice in architectures (BERT, RoBERTa), or our "meft_head" key (BART,
    // which transformers has no multiple-choice class for). Its label count is not used.
    bool mc = false;
    if (j.contains("architectures") && j["architectures"].is_array())
        for (const auto& a : j["architectures"])
            if (a.is_string() && a.get<std::string>().ends_with("ForMultipleChoice")) mc = true;
    if (j.contains("meft_head")) {
        const std::string head = get<std::string>(j, "meft_head", "", where);
        if (head != "multiple_choice")
            throw Error(where + ": meft_head '" + head + "' is not known (expected \"multiple_choice\")");
        mc = true;
    }
    if (mc) c.set_multiple_choice();
}

void labels_json(const ModelConfig& c, nlohmann::json& j) {
    nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
    for (int i = 0; i < c.num_labels(); ++i) {
        id2label[std::to_string(i)] = c.labels[i];
        label2id[c.labels[i]] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
    if (!c.problem_type.empty()) j["problem_type"] = c.problem_type;
}

nlohmann::json bart_to_json(const ModelConfig& c) {
    nlohmann::json j;
    j["architectures"] = {"BartForSequenceClassification"};
    if (c.multiple_choice) j["meft_head"] = "multiple_choice";
    j["model_type"] = "bart";
    j["vocab_size"] = c.vocab_size;
    j["d_model"] = c.hidden_size;
    j["encoder_layers"] = c.num_layers;
    j["decoder_layers"] = c.decoder_layers;
    j["encoder_attention_heads"] = j["decoder_attention_heads"] = c.num_heads;
    j["encoder_ffn_dim"] = j["decoder_ffn_dim"] = c.intermediate_size;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["activation_function"] = c.hidden_act;
    j["dropout"] = c.hidden_dropout;
    j["attention_dropout"] = c.attention_dropout;
    j["activation_dropout"] = c.activation_dropout;
    j["classifier_dropout"] = c.classifier_dropout >= 0 ? c.classifier_dropout : 0.0;
    j["encoder_layerdrop"] = j["decoder_layerdrop"] = 0.0;
    j["init_std"] = c.initializer_range;
    j["scale_embedding"] = false;
    j["is_encoder_decoder"] = true;
    j["pad_token_id"] = c.pad_token_id;
    j["bos_token_id"] = c.bos_token_id;
    j["eos_token_id"] = c.eos_token_id;
    j["decoder_start_token_id"] = c.decoder_start_token_id;
    j["forced_eos_token_id"] = c.eos_token_id;
    j["num_labels"] = c.num_labels();
    labels_json(c, j);
    j["torch_dtype"] = c.torch_dtype;
    j["use_cache"] = true;
    return j;
}

nlohmann::json opt_to_json(const ModelConfig& c) {
    nlohmann::json j;
    j["architectures"] = {"OPTForCausalLM"};
    j["model_type"] = "opt";
    j["vocab_size"] = c.vocab_size;
    j["hidden_size"] = c.hidden_size;
    j["num_hidden_layers"] = c.num_layers;
    j["num_attention_heads"] = c.num_heads;
    j["ffn_dim"] = c.intermediate_size;
    j["word_embed_proj_dim"] = c.embed_width();
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["activation_function"] = c.hidden_act;
    j["do_layer_norm_before"] = c.pre_layer_norm;
    j["_remove_final_layer_norm"] = c.pre_layer_norm && !c.final_layer_norm;
    j["dropout"] = c.hidden_dropout;
    j["attention_dropout"] = c.attention_dropout;
    j["activation_dropout"] = c.activation_dropout;
    j["layerdrop"] = 0.0;
    j["init_std"] = c.initializer_range;
    j["enable_bias"] = true;
    j["layer_norm_elementwise_affine"] = true;
    j["pad_token_id"] = c.pad_token_id;
    j["bos_token_id"] = c.bos_token_id;
    j["eos_token_id"] = c.eos_token_id;
    j["prefix"] = "</s>";
    j["torch_dtype"] = c.torch_dtype;
    j["use_cache"] = true;
    return j;
}
}  // namespace

nlohmann::json ModelConfig::to_json() const {
    if (arch == Arch::Opt) return opt_to_json(*this);
    if (arch == Arch::Bart) return bart_to_json(*this);
    nlohmann::json j;
    const bool bert = arch == Arch::Bert;
    const std::string head = multiple_choice ? "ForMultipleChoice" : "ForSequenceClassification";
    j["architectures"] = {(bert ? "Bert" : "Roberta") + head};
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
    labels_json(*this, j);
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
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
        throw Error(file.string() + ": invalid JSON: " + e.what());
    }
    return ModelConfig::from_json(j, file.string());
}

void save_model_config(const ModelConfig& c, const std::filesystem::path& dir) {
    write_file_atomically(dir / "config.json", c.to_json().dump(2) + "\n");
}

std::vector<std::string> preset_names() { return {"toy", "tiny", "base", "large", "1.3b"}; }

namespace {
// OPT-125m's shapes (facebook/opt-125m); 1.3b: facebook/opt-1.3b. The vocabulary is GPT-2's byte-level
// BPE (the RoBERTa tokenizer files), padded to 50272 rows.
ModelConfig opt_preset(const std::string& preset) {
    ModelConfig c;
    c.arch = Arch::Opt;
    c.vocab_size = 50272;
    c.max_position_embeddings = 2048;
    c.type_vocab_size = 1;
    c.pad_token_id = 1;
    c.bos_token_id = c.eos_token_id = 2;
    c.layer_norm_eps = 1e-5;  // nn.LayerNorm's default; OPT's config has no key for it
    c.hidden_dropout = 0.1;
    c.attention_dropout = 0.0;
    c.hidden_act = "relu";
    c.pre_layer_norm = c.final_layer_norm = true;
    c.hidden_size = 768, c.num_layers = 12, c.num_heads = 12, c.intermediate_size = 3072;
    if (preset == "1.3b") {
        c.hidden_size = 2048, c.num_layers = 24, c.num_heads = 32, c.intermediate_size = 8192;
    } else if (preset == "toy") {
        c.num_layers = 4, c.hidden_size = 128, c.num_heads = 4, c.intermediate_size = 512;
    } else if (preset == "tiny") {
        c.num_layers = 2, c.hidden_size = 128, c.num_heads = 2, c.intermediate_size = 512;
    } else if (preset != "base") {
        throw Error("unknown preset '" + preset + "' for opt (expected toy, tiny, base or 1.3b)");
    }
    c.word_embed_proj_dim = c.hidden_size;
    return c;
}

// BART-base's shapes (facebook/bart-base); large: facebook/bart-large. Same GPT-2 BPE vocabulary
// as RoBERTa (50265 rows).
ModelConfig bart_preset(const std::string& preset) {
    ModelConfig c;
    c.arch = Arch::Bart;
    c.vocab_size = 50265;
    c.max_position_embeddings = 1024;
    c.type_vocab_size = 1;
    c.pad_token_id = 1;
    c.bos_token_id = 0;
    c.eos_token_id = c.decoder_start_token_id = 2;
    c.layer_norm_eps = 1e-5;  // nn.LayerNorm's default; BART's config has no key for it
    c.hidden_dropout = c.attention_dropout = c.activation_dropout = 0.1;
    c.classifier_dropout = 0.0;
    c.hidden_size = 768, c.num_layers = c.decoder_layers = 6, c.num_heads = 12, c.intermediate_size = 3072;
    if (preset == "large") {
        c.hidden_size = 1024, c.num_layers = c.decoder_layers = 12, c.num_heads = 16, c.intermediate_size = 4096;
    } else if (preset == "toy") {  // 2 + 2 layers: as many as the other toys
        c.num_layers = c.decoder_layers = 2, c.hidden_size = 128, c.num_heads = 4, c.intermediate_size = 512;
    } else if (preset == "tiny") {
        c.num_layers = c.decoder_layers = 1, c.hidden_size = 128, c.num_heads = 2, c.intermediate_size = 512;
    } else if (preset != "base") {
        throw Error("unknown preset '" + preset + "' for bart (expected toy, tiny, base or large)");
    }
    return c;
}
}  // namespace

ModelConfig preset_config(Arch arch, const std::string& preset) {
    if (arch == Arch::Opt) return opt_preset(preset);
    if (arch == Arch::Bart) return bart_preset(preset);
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
    if (preset == "large") {  // BERT-large / RoBERTa-large
        c.num_layers = 24, c.hidden_size = 1024, c.num_heads = 16, c.intermediate_size = 4096;
        return c;
    }
    // Small presets keep the real vocabulary and positions so any tokenizer of the family fits.
    if (preset == "toy") {
        c.num_layers = 4, c.hidden_size = 128, c.num_heads = 4, c.intermediate_size = 512;
    } else if (preset == "tiny") {
        c.num_layers = 2, c.hidden_size = 128, c.num_heads = 2, c.intermediate_size = 512;
    } else {
        throw Error("unknown preset '" + preset + "' (expected toy, tiny, base or large)");
    }
    return c;
}

}  // namespace meft
