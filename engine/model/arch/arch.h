// arch.h — one backbone family in one place. Each family (arch/bert.cpp, roberta.cpp, bart.cpp,
// opt.cpp) is an ArchSpec: its config.json keys, its presets, its Hugging Face tensor names, its
// position scheme, its special tokens and what its classification head reads. The models
// (model/backbone.h: embeddings and stacks; sequence_classifier.h, causal_lm.h: the heads) ask the
// spec and name no family.
//
// Adding a backbone: docs/engine.md, "Adding a backbone".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/batch.h"
#include "model/config.h"

namespace meft {

// How a family's layers are stacked; it decides which backbone the model builds (model/backbone.h)
// and which heads compose with it.
enum class StackShape {
    Encoder,         // embeddings -> post-LN encoder layers (BERT, RoBERTa)
    EncoderDecoder,  // encoder over the input, decoder over it shifted right, cross-attending (BART)
    Decoder,         // embeddings -> causal decoder layers -> final LN (OPT)
};

// Hugging Face module names of one transformer layer's parts, relative to the layer.
struct LayerNames {
    const char* linear[6];   // query, key, value, attention_output, ffn_in, ffn_out
    const char* ln1;         // the attention block's LayerNorm
    const char* ln2;         // the FFN block's LayerNorm
    const char* attention;   // the self-attention module (prefix keys hang off it)
    const char* adapter_attn;
    const char* adapter_ffn;
    const char* adapter_par;
    const char* cross_linear[4] = {};  // cross-attention's query, key, value, output (decoders of encoder-decoders)
    const char* cross_ln = nullptr;
};

// Names of one embeddings block (absent parts are empty).
struct EmbeddingNames {
    std::string tokens;       // the token table ("bert.embeddings.word_embeddings.weight")
    std::string positions;    // the learned position table
    std::string types;        // the token-type table (BERT, RoBERTa)
    std::string layer_norm;   // the LayerNorm after the sum, without ".weight"
    std::string project_in;   // OPT: token width -> hidden width (bias-free)
};

// How the classification head is named and which form it has. (Which row it reads follows from
// the stack shape: an encoder-decoder's is each example's last eos, model/backbone.h.)
struct HeadNames {
    bool pooler = false;         // pooler tanh(W h + b) -> dropout -> classifier (BERT); else
                                 // dropout -> dense -> tanh -> dropout -> out_proj
    std::string pooler_dense;    // "bert.pooler.dense"
    std::string dense;           // "classifier.dense" / "classification_head.dense"
    std::string out;             // "classifier" / "classifier.out_proj" / "classification_head.out_proj"
};

// The masked-LM head (BertForMaskedLM's cls.predictions, RobertaForMaskedLM's lm_head): dense ->
// GELU -> LayerNorm -> a decoder tied to the token table, plus an output bias. Names without
// ".weight"/".bias"; `decoder` is the tied decoder's module, whose weight and bias transformers
// may also write as copies. Empty for families without one.
struct MlmHeadNames {
    std::string dense;       // "cls.predictions.transform.dense"
    std::string layer_norm;  // "cls.predictions.transform.LayerNorm"
    std::string bias;        // the output bias, full name: "cls.predictions.bias"
    std::string decoder;     // "cls.predictions.decoder"
    bool empty() const { return dense.empty(); }
};

class ArchSpec {
public:
    virtual ~ArchSpec() = default;

    virtual Arch arch() const = 0;
    std::string name() const { return arch_name(arch()); }  // HF model_type
    virtual StackShape shape() const = 0;

    // ---- presets and config.json ----
    virtual std::vector<std::string> presets() const = 0;
    // Throws Error naming the presets there are.
    virtual ModelConfig preset(const std::string& name) const = 0;
    // config.json of this family (model_type already checked); `where` names the file in errors.
    virtual ModelConfig from_json(const nlohmann::json& j, const std::string& where) const = 0;
    virtual nlohmann::json to_json(const ModelConfig& c) const = 0;
    // The family's own rules (activations it implements, token ids it needs); ModelConfig::validate
    // checks the shared ones and calls this.
    virtual void validate(const ModelConfig& c, const std::string& where) const = 0;
    // The config.json key of a shared field, for error messages ("num_hidden_layers", "encoder_layers").
    virtual std::string key_of_layers() const { return "num_hidden_layers"; }
    virtual std::string key_of_ffn() const { return "intermediate_size"; }
    virtual std::string key_of_hidden() const { return "hidden_size"; }

    // ---- Hugging Face tensor names ----
    virtual std::string prefix() const = 0;  // of the backbone's tensors: "bert.", "roberta.", "model."
    virtual const LayerNames& layer_names() const = 0;
    // The input side's embeddings and, for encoder-decoders, the decoder side's.
    virtual EmbeddingNames embeddings(const ModelConfig& c) const = 0;
    virtual EmbeddingNames decoder_embeddings(const ModelConfig&) const { return {}; }
    // Layer name prefixes: the (first) stack's, and an encoder-decoder's decoder stack's.
    virtual std::string layers() const = 0;
    virtual std::string decoder_layers() const { return {}; }
    virtual HeadNames head(const ModelConfig& c) const = 0;
    virtual MlmHeadNames mlm_head() const { return {}; }
    // Decoders: the final LayerNorm and the output projection (OPT's project_out), without ".weight".
    virtual std::string final_layer_norm() const { return {}; }
    virtual std::string project_out() const { return {}; }
    // A tensor transformers writes as a copy of a tied one (OPT's lm_head, BART's embed_tokens).
    virtual bool is_tied_copy(const std::string&) const { return false; }

    // ---- positions ----
    // Rows of the position table, and the row of the first real token: the model reads at most
    // position_rows - first_position tokens.
    virtual int position_rows(const ModelConfig& c) const = 0;
    virtual int first_position(const ModelConfig& c) const = 0;
    // The table's padding row (zeroed at init, as nn.Embedding(padding_idx)), or -1.
    virtual int position_padding_row(const ModelConfig&) const { return -1; }
    // Each token's row in the position table, [B*T].
    virtual std::vector<std::int32_t> positions(const HostBatch& b, const ModelConfig& c) const = 0;
    // Why the positions are fewer than max_position_embeddings, for error messages ("" if they are not).
    virtual std::string position_note(const ModelConfig&) const { return {}; }

    // ---- special tokens ----
    // Token ids that open and close a sequence (the toy task's), and the id synthetic batches fill
    // their tokens with (the memory plan's; what is allocated does not depend on it).
    virtual int begin_token(const ModelConfig& c) const = 0;
    virtual int end_token(const ModelConfig& c) const = 0;
    virtual int plain_token(const ModelConfig& c) const = 0;

    // ---- dropout ----
    // The head's dropout rate.
    virtual double head_dropout(const ModelConfig& c) const;
    // An experiment's dropout override: every dropout the family has becomes p.
    virtual void set_dropout(ModelConfig& c, double p) const;
};

// The spec of a family; by Hugging Face model_type (null when no family has it).
const ArchSpec& arch_spec(Arch a);
const ArchSpec* find_arch(const std::string& model_type);
// Every family, in Arch order.
const std::vector<const ArchSpec*>& all_archs();

}  // namespace meft
