// config.cpp — the rules every family shares; each family's own are in arch/<name>.cpp.
#include "model/config.h"

#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "core/file_io.h"
#include "model/arch/arch.h"
#include "model/arch/config_json.h"

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

std::vector<std::string> arch_names() {
    std::vector<std::string> out;
    for (const ArchSpec* s : all_archs()) out.push_back(s->name());
    return out;
}

Arch parse_arch(const std::string& s) {
    if (const ArchSpec* spec = find_arch(s)) return spec->arch();
    throw Error("unknown architecture '" + s + "' (expected " + listed(arch_names()) + ")");
}

std::string attention_kind_name(AttentionKind k) { return k == AttentionKind::Tiled ? "tiled" : "standard"; }

AttentionKind parse_attention_kind(const std::string& s) {
    if (s == "standard") return AttentionKind::Standard;
    if (s == "tiled") return AttentionKind::Tiled;
    throw Error("unknown attention '" + s + "' (expected \"standard\" or \"tiled\")");
}

int ModelConfig::max_tokens() const {
    const ArchSpec& spec = arch_spec(arch);
    return spec.position_rows(*this) - spec.first_position(*this);
}

double ModelConfig::head_dropout() const { return arch_spec(arch).head_dropout(*this); }

void ModelConfig::set_num_labels(int n) {
    multiple_choice = false;
    masked_lm = false;
    labels.clear();
    for (int i = 0; i < n; ++i) labels.push_back("LABEL_" + std::to_string(i));
}

void ModelConfig::set_multiple_choice() {
    set_num_labels(1);
    multiple_choice = true;
    problem_type.clear();
}

void ModelConfig::set_masked_lm() {
    set_num_labels(2);  // transformers' default; unused by the head
    masked_lm = true;
    problem_type.clear();
}

void ModelConfig::set_dropout(double p) { arch_spec(arch).set_dropout(*this, p); }

void ModelConfig::validate(const std::string& where) const {
    auto need = [&](bool ok, const std::string& what) {
        if (!ok) throw Error(where + ": " + what);
    };
    const ArchSpec& spec = arch_spec(arch);
    const bool two_stacks = spec.shape() == StackShape::EncoderDecoder;
    need(vocab_size > 0, "vocab_size must be positive");
    need(hidden_size > 0 && num_heads > 0 && hidden_size % num_heads == 0,
         "hidden_size (" + std::to_string(hidden_size) + ") must be a positive multiple of num_attention_heads (" +
             std::to_string(num_heads) + ")");
    need(num_layers > 0, spec.key_of_layers() + " must be positive");
    need(two_stacks ? decoder_layers > 0 : decoder_layers == 0,
         two_stacks ? "decoder_layers must be positive" : spec.name() + " has no decoder layers");
    need(intermediate_size > 0, "intermediate_size must be positive");
    need(max_position_embeddings > 0, "max_position_embeddings must be positive");
    need(type_vocab_size > 0, "type_vocab_size must be positive");
    need(num_labels() > 0, "id2label must name at least one label");
    need(word_embed_proj_dim >= 0, "word_embed_proj_dim must not be negative");
    need(hidden_dropout >= 0 && hidden_dropout < 1, "hidden_dropout_prob must be in [0, 1)");
    need(attention_dropout >= 0 && attention_dropout < 1, "attention_probs_dropout_prob must be in [0, 1)");
    need(activation_dropout >= 0 && activation_dropout < 1, "activation_dropout must be in [0, 1)");
    need(pad_token_id >= 0 && pad_token_id < vocab_size, "pad_token_id must be a valid token id");
    spec.validate(*this, where);
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": expected a JSON object");
    const std::string type = config_json::get_string(j, "model_type", "", where);
    if (type.empty()) throw Error(where + ": missing key 'model_type' (expected " + listed(arch_names(), "\"") + ")");
    const ArchSpec* spec = find_arch(type);
    if (!spec) throw Error(where + ": model_type '" + type + "' is not supported (expected " + listed(arch_names()) + ")");
    return spec->from_json(j, where);
}

nlohmann::json ModelConfig::to_json() const { return arch_spec(arch).to_json(*this); }

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

ModelConfig preset_config(Arch arch, const std::string& preset) { return arch_spec(arch).preset(preset); }

std::vector<std::string> preset_names(Arch arch) { return arch_spec(arch).presets(); }

std::vector<std::string> preset_names() {
    std::vector<std::string> out;
    for (const ArchSpec* s : all_archs())
        for (const std::string& p : s->presets())
            if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    return out;
}

}  // namespace meft
