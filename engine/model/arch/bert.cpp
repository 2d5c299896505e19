// bert.cpp — BERT (transformers' BertModel with BertForSequenceClassification /
// BertForMultipleChoice): word + position + token-type embeddings, post-LN GELU encoder layers,
// a pooler over [CLS].
#include "model/arch/bert.h"

#include "core/error.h"
#include "model/arch/config_json.h"

namespace meft {

using namespace config_json;

ModelConfig BertSpec::json_defaults() const {
    ModelConfig c;
    c.arch = arch();
    return c;
}

ModelConfig BertSpec::preset(const std::string& name) const {
    ModelConfig c = json_defaults();
    if (arch() == Arch::Roberta) {  // roberta-base's vocabulary and positions
        c.vocab_size = 50265;
        c.max_position_embeddings = 514;
        c.type_vocab_size = 1;
    }
    if (name == "base") return c;
    if (name == "large") {  // bert-large / roberta-large
        c.num_layers = 24, c.hidden_size = 1024, c.num_heads = 16, c.intermediate_size = 4096;
        return c;
    }
    // Small presets keep the real vocabulary and positions so any tokenizer of the family fits.
    if (name == "toy") {
        c.num_layers = 4, c.hidden_size = 128, c.num_heads = 4, c.intermediate_size = 512;
    } else if (name == "tiny") {
        c.num_layers = 2, c.hidden_size = 128, c.num_heads = 2, c.intermediate_size = 512;
    } else if (name == "mini") {  // BERT-Mini's shape (Turc et al. 2019): small enough to pre-train on a CPU
        c.num_layers = 4, c.hidden_size = 256, c.num_heads = 4, c.intermediate_size = 1024;
    } else {
        throw Error("unknown preset '" + name + "' (expected toy, tiny, mini, base or large)");
    }
    return c;
}

ModelConfig BertSpec::from_json(const nlohmann::json& j, const std::string& where) const {
    ModelConfig c = json_defaults();
    c.vocab_size = get_int(j, "vocab_size", c.vocab_size, where);
    c.hidden_size = get_int(j, "hidden_size", c.hidden_size, where);
    c.num_layers = get_int(j, "num_hidden_layers", c.num_layers, where);
    c.num_heads = get_int(j, "num_attention_heads", c.num_heads, where);
    c.intermediate_size = get_int(j, "intermediate_size", c.intermediate_size, where);
    c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, where);
    c.type_vocab_size = get_int(j, "type_vocab_size", c.type_vocab_size, where);
    c.pad_token_id = get_int(j, "pad_token_id", c.pad_token_id, where);
    c.layer_norm_eps = get_double(j, "layer_norm_eps", c.layer_norm_eps, where);
    c.hidden_dropout = get_double(j, "hidden_dropout_prob", c.hidden_dropout, where);
    c.attention_dropout = get_double(j, "attention_probs_dropout_prob", c.attention_dropout, where);
    c.classifier_dropout = get_double(j, "classifier_dropout", -1.0, where);
    c.initializer_range = get_double(j, "initializer_range", c.initializer_range, where);
    c.hidden_act = get_string(j, "hidden_act", c.hidden_act, where);
    c.problem_type = get_string(j, "problem_type", "", where);
    const std::string pos = get_string(j, "position_embedding_type", "absolute", where);
    if (pos != "absolute")
        throw Error(where + ": position_embedding_type '" + pos + "' is not supported (expected absolute)");
    check_limits(c, where);
    if (!(c.layer_norm_eps > 0)) throw Error(where + ": layer_norm_eps must be positive");
    read_labels(c, j, where);
    c.validate(where);
    return c;
}

nlohmann::json BertSpec::to_json(const ModelConfig& c) const {
    nlohmann::json j;
    const std::string head = c.masked_lm ? "ForMaskedLM" : c.multiple_choice ? "ForMultipleChoice" : "ForSequenceClassification";
    j["architectures"] = {(arch() == Arch::Bert ? "Bert" : "Roberta") + head};
    j["model_type"] = name();
    j["vocab_size"] = c.vocab_size;
    j["hidden_size"] = c.hidden_size;
    j["num_hidden_layers"] = c.num_layers;
    j["num_attention_heads"] = c.num_heads;
    j["intermediate_size"] = c.intermediate_size;
    j["hidden_act"] = c.hidden_act;
    j["hidden_dropout_prob"] = c.hidden_dropout;
    j["attention_probs_dropout_prob"] = c.attention_dropout;
    j["classifier_dropout"] = c.classifier_dropout >= 0 ? nlohmann::json(c.classifier_dropout) : nlohmann::json(nullptr);
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["type_vocab_size"] = c.type_vocab_size;
    j["initializer_range"] = c.initializer_range;
    j["layer_norm_eps"] = c.layer_norm_eps;
    j["pad_token_id"] = c.pad_token_id;
    if (arch() == Arch::Roberta) {
        j["bos_token_id"] = begin_token(c);
        j["eos_token_id"] = end_token(c);
    }
    j["position_embedding_type"] = "absolute";
    write_labels(c, j);
    j["torch_dtype"] = c.torch_dtype;
    j["use_cache"] = true;
    return j;
}

void BertSpec::validate(const ModelConfig& c, const std::string& where) const {
    if (c.hidden_act != "gelu")
        throw Error(where + ": hidden_act '" + c.hidden_act + "' is not supported (expected gelu)");
}

const LayerNames& BertSpec::layer_names() const {
    static const LayerNames names{{"attention.self.query", "attention.self.key", "attention.self.value",
                                   "attention.output.dense", "intermediate.dense", "output.dense"},
                                  "attention.output.LayerNorm", "output.LayerNorm", "attention.self",
                                  "attention.output.adapter", "output.adapter", "output.parallel_adapter"};
    return names;
}

EmbeddingNames BertSpec::embeddings(const ModelConfig&) const {
    const std::string e = prefix() + "embeddings.";
    return {e + "word_embeddings.weight", e + "position_embeddings.weight", e + "token_type_embeddings.weight",
            e + "LayerNorm", ""};
}

HeadNames BertSpec::head(const ModelConfig& c) const {
    HeadNames h;
    h.pooler = pooler_head(c);
    if (h.pooler) {  // pooler -> dropout -> classifier
        h.pooler_dense = prefix() + "pooler.dense";
        h.out = "classifier";
    } else {  // RobertaClassificationHead: RobertaForSequenceClassification has no pooler
        h.dense = "classifier.dense";
        h.out = "classifier.out_proj";
    }
    return h;
}

std::vector<std::int32_t> BertSpec::positions(const HostBatch& b, const ModelConfig&) const {
    std::vector<std::int32_t> pos(static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T));
    for (std::size_t j = 0; j < pos.size(); ++j) pos[j] = static_cast<std::int32_t>(j % static_cast<std::size_t>(b.T));
    return pos;
}

}  // namespace meft

namespace meft {
const ArchSpec& bert_spec() {
    static const BertSpec spec;
    return spec;
}
}  // namespace meft
