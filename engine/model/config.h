// config.h — a backbone's hyper-parameters, read from and written to Hugging Face config.json.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace meft {

// The backbone families: encoders (BERT, RoBERTa: sequence classification), an encoder-decoder
// (BART: sequence classification from the decoder's last eos token) and a decoder-only LM (OPT:
// causal LM). Everything a family owns (config.json keys, presets, tensor names, positions, special
// tokens) is in model/arch/<name>.cpp.
enum class Arch { Bert, Roberta, Bart, Opt };

std::string arch_name(Arch a);          // "bert" | "roberta" | "bart" | "opt" (HF model_type)
Arch parse_arch(const std::string& s);  // throws Error listing the accepted names
std::vector<std::string> arch_names();
bool is_decoder_only(Arch a);
bool is_encoder_decoder(Arch a);

// How attention computes — an execution choice, never written to config.json. Standard keeps each
// block's [heads x T x T] probabilities for backward; Tiled keeps one log-sum-exp per query row
// and recomputes the probabilities tile by tile in backward (Backend::attention_tiled_*). Both
// compute the same function to rounding, with the same dropout masks.
enum class AttentionKind { Standard, Tiled };
std::string attention_kind_name(AttentionKind k);         // "standard" | "tiled"
AttentionKind parse_attention_kind(const std::string& s);  // throws Error listing the accepted names

struct ModelConfig {
    Arch arch = Arch::Bert;
    int vocab_size = 30522;
    int hidden_size = 768;             // C
    int num_layers = 12;               // L (BART: the encoder's layers)
    int decoder_layers = 0;            // BART: the decoder's layers (0 for the others)
    int num_heads = 12;                // NH
    int intermediate_size = 3072;      // I
    int max_position_embeddings = 512;
    int type_vocab_size = 2;
    int pad_token_id = 0;
    double layer_norm_eps = 1e-12;
    double hidden_dropout = 0.1;
    double attention_dropout = 0.1;
    double activation_dropout = 0.0;   // after the FFN's activation (BART's activation_dropout)
    double classifier_dropout = -1;    // < 0: use hidden_dropout (HF's classifier_dropout = null)
    double initializer_range = 0.02;
    std::string hidden_act = "gelu";
    std::vector<std::string> labels = {"LABEL_0", "LABEL_1"};  // id2label in id order
    std::string problem_type;          // "", "single_label_classification" or "regression"
    // Multiple choice (encoders, BART): the head gives one score per (context, choice) pair and the
    // loss is a softmax over each question's pairs (BertForMultipleChoice / RobertaForMultipleChoice;
    // BART scores each pair with BartForSequenceClassification's head, one label). labels has one entry.
    bool multiple_choice = false;
    // The masked-LM head instead of a task head (BertForMaskedLM / RobertaForMaskedLM:
    // model/masked_lm.h); the labels are unused.
    bool masked_lm = false;
    std::string torch_dtype = "float32";  // written to config.json: the checkpoint's tensor dtype
    // Decoder-only (OPT) keys; hidden_act is OPT's activation_function, intermediate_size its
    // ffn_dim, hidden_dropout its dropout, initializer_range its init_std.
    bool pre_layer_norm = false;       // do_layer_norm_before: LayerNorm at each block's input
    bool final_layer_norm = false;     // a LayerNorm after the last layer (pre-LN OPT)
    int word_embed_proj_dim = 0;       // token embedding width when it differs from hidden_size (0: same)
    int bos_token_id = -1, eos_token_id = -1;
    // BART keys (besides the OPT-style names above): the decoder reads the input shifted right by
    // one, starting with decoder_start_token_id; learned positions start at 2 (no padding row).
    int decoder_start_token_id = 2;
    // Not a config.json key: how this model's attention runs (the experiment's training.attention).
    AttentionKind attention = AttentionKind::Standard;

    int embed_width() const { return word_embed_proj_dim > 0 ? word_embed_proj_dim : hidden_size; }
    bool projects_embeddings() const { return word_embed_proj_dim > 0 && word_embed_proj_dim != hidden_size; }

    int num_labels() const { return static_cast<int>(labels.size()); }
    // The longest sequence the positions allow (RoBERTa's positions start after pad_token_id).
    int max_tokens() const;
    // Every transformer layer, encoder and decoder (activation tags 0..total_layers()-1).
    int total_layers() const { return num_layers + decoder_layers; }
    // What an activation tag is: "embeddings" (-1), "layer 3", for BART "encoder layer 3" /
    // "decoder layer 0", and "head" (total_layers()).
    std::string layer_label(int tag) const {
        if (tag < 0) return "embeddings";
        if (tag >= total_layers()) return "head";
        if (decoder_layers == 0) return "layer " + std::to_string(tag);
        return tag < num_layers ? "encoder layer " + std::to_string(tag) : "decoder layer " + std::to_string(tag - num_layers);
    }
    // "L12 H768", or for BART "L6+6 H768" (encoder + decoder layers)
    std::string shape_summary() const {
        return "L" + std::to_string(num_layers) + (decoder_layers > 0 ? "+" + std::to_string(decoder_layers) : "") + " H" +
               std::to_string(hidden_size);
    }
    bool is_regression() const {
        return !multiple_choice && (problem_type == "regression" || (problem_type.empty() && num_labels() == 1));
    }
    // The classification head's dropout (the family's rule: classifier_dropout when set, else
    // hidden_dropout; RobertaForMultipleChoice always hidden_dropout).
    double head_dropout() const;
    void set_num_labels(int n);        // LABEL_0..LABEL_{n-1}: a classification head (not multiple choice)
    void set_multiple_choice();        // one score per pair (LABEL_0), no problem_type
    void set_masked_lm();              // the masked-LM head (encoders), no task head
    // An experiment's dropout override: every dropout the architecture has (hidden states,
    // attention probabilities, the head, and BART's activation dropout) becomes p.
    void set_dropout(double p);
    // The shared rules, then the family's.
    void validate(const std::string& where) const;

    // The family's config.json, by model_type; `where` names the file in error messages.
    static ModelConfig from_json(const nlohmann::json& j, const std::string& where);
    // HF layout, architectures = *ForSequenceClassification or *ForMultipleChoice; BART's
    // multiple-choice scorer is written as BartForSequenceClassification with "meft_head".
    nlohmann::json to_json() const;
};

ModelConfig load_model_config(const std::filesystem::path& dir);
void save_model_config(const ModelConfig& c, const std::filesystem::path& dir);

// Built-in shapes: toy, tiny, mini (BERT-Mini: BERT, RoBERTa), base (BERT-base / RoBERTa-base / BART-base / OPT-125m), large
// (BERT-large / RoBERTa-large / BART-large) and for OPT 1.3b (the MEFT paper's QA backbone).
ModelConfig preset_config(Arch arch, const std::string& preset);
std::vector<std::string> preset_names(Arch arch);
std::vector<std::string> preset_names();  // every family's, without repeats

}  // namespace meft
