// config.h — a backbone's hyper-parameters, read from and written to Hugging Face config.json.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace meft {

enum class Arch { Bert, Roberta };

std::string arch_name(Arch a);          // "bert" | "roberta" (HF model_type)
Arch parse_arch(const std::string& s);  // throws Error listing the accepted names

struct ModelConfig {
    Arch arch = Arch::Bert;
    int vocab_size = 30522;
    int hidden_size = 768;             // C
    int num_layers = 12;               // L
    int num_heads = 12;                // NH
    int intermediate_size = 3072;      // I
    int max_position_embeddings = 512;
    int type_vocab_size = 2;
    int pad_token_id = 0;
    double layer_norm_eps = 1e-12;
    double hidden_dropout = 0.1;
    double attention_dropout = 0.1;
    double classifier_dropout = -1;    // < 0: use hidden_dropout (HF's classifier_dropout = null)
    double initializer_range = 0.02;
    std::string hidden_act = "gelu";
    std::vector<std::string> labels = {"LABEL_0", "LABEL_1"};  // id2label in id order
    std::string problem_type;          // "", "single_label_classification" or "regression"
    std::string torch_dtype = "float32";  // written to config.json: the checkpoint's tensor dtype

    int num_labels() const { return static_cast<int>(labels.size()); }
    bool is_regression() const { return problem_type == "regression" || (problem_type.empty() && num_labels() == 1); }
    double head_dropout() const { return classifier_dropout >= 0 ? classifier_dropout : hidden_dropout; }
    void set_num_labels(int n);        // LABEL_0..LABEL_{n-1}
    void validate(const std::string& where) const;

    // `where` names the file in error messages.
    static ModelConfig from_json(const nlohmann::json& j, const std::string& where);
    nlohmann::json to_json() const;    // HF layout, architectures = *ForSequenceClassification
};

ModelConfig load_model_config(const std::filesystem::path& dir);
void save_model_config(const ModelConfig& c, const std::filesystem::path& dir);

// Built-in shapes: toy, tiny, base (BERT-base / RoBERTa-base).
ModelConfig preset_config(Arch arch, const std::string& preset);
std::vector<std::string> preset_names();

}  // namespace meft
