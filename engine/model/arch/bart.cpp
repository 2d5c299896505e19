// bart.cpp — BART (transformers' BartModel with BartForSequenceClassification): one token table
// (model.shared) for both sides; the encoder reads the input, the decoder the input shifted right;
// learned positions from row 2 that do not skip padding; post-LN layers; the head reads the
// decoder's state at each example's last eos token. Multiple choice scores each pair with that
// head and one label (transformers has no BartForMultipleChoice; config.json says "meft_head").
#include "model/arch/config_json.h"
#include "model/arch/fairseq.h"

namespace meft {

using namespace config_json;

namespace {
class BartSpec final : public FairseqSpec {
public:
    Arch arch() const override { return Arch::Bart; }
    StackShape shape() const override { return StackShape::EncoderDecoder; }

    std::vector<std::string> presets() const override { return {"toy", "tiny", "base", "large"}; }

    // facebook/bart-base's shapes; large: facebook/bart-large. The GPT-2 byte-level BPE vocabulary
    // RoBERTa uses (50265 rows).
    ModelConfig preset(const std::string& name) const override {
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
        if (name == "large") {
            c.hidden_size = 1024, c.num_layers = c.decoder_layers = 12, c.num_heads = 16, c.intermediate_size = 4096;
        } else if (name == "toy") {  // 2 + 2 layers: as many as the other toys
            c.num_layers = c.decoder_layers = 2, c.hidden_size = 128, c.num_heads = 4, c.intermediate_size = 512;
        } else if (name == "tiny") {
            c.num_layers = c.decoder_layers = 1, c.hidden_size = 128, c.num_heads = 2, c.intermediate_size = 512;
        } else if (name != "base") {
            throw Error("unknown preset '" + name + "' for bart (expected toy, tiny, base or large)");
        }
        return c;
    }

    // transformers' BartConfig. The encoder and decoder must share widths and head counts (they do
    // in every released BART); switches this engine does not implement are refused by name.
    ModelConfig from_json(const nlohmann::json& j, const std::string& where) const override {
        ModelConfig c = preset("base");
        c.vocab_size = get_int(j, "vocab_size", c.vocab_size, where);
        c.hidden_size = get_int(j, "d_model", c.hidden_size, where);
        c.num_layers = get_int(j, "encoder_layers", c.num_layers, where);
        c.decoder_layers = get_int(j, "decoder_layers", c.decoder_layers, where);
        c.num_heads = get_int(j, "encoder_attention_heads", c.num_heads, where);
        c.intermediate_size = get_int(j, "encoder_ffn_dim", c.intermediate_size, where);
        if (get_int(j, "decoder_attention_heads", c.num_heads, where) != c.num_heads)
            throw Error(where + ": decoder_attention_heads must equal encoder_attention_heads (" +
                        std::to_string(c.num_heads) + ")");
        if (get_int(j, "decoder_ffn_dim", c.intermediate_size, where) != c.intermediate_size)
            throw Error(where + ": decoder_ffn_dim must equal encoder_ffn_dim (" + std::to_string(c.intermediate_size) + ")");
        c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, where);
        c.pad_token_id = get_int(j, "pad_token_id", c.pad_token_id, where);
        c.bos_token_id = get_int(j, "bos_token_id", c.bos_token_id, where);
        c.eos_token_id = get_int(j, "eos_token_id", c.eos_token_id, where);
        c.decoder_start_token_id = get_int(j, "decoder_start_token_id", c.decoder_start_token_id, where);
        c.hidden_dropout = get_double(j, "dropout", c.hidden_dropout, where);
        c.attention_dropout = get_double(j, "attention_dropout", c.attention_dropout, where);
        c.activation_dropout = get_double(j, "activation_dropout", c.activation_dropout, where);
        c.classifier_dropout = get_double(j, "classifier_dropout", 0.0, where);
        c.initializer_range = get_double(j, "init_std", c.initializer_range, where);
        c.hidden_act = get_string(j, "activation_function", c.hidden_act, where);
        c.problem_type = get_string(j, "problem_type", "", where);
        c.torch_dtype = get_string(j, "torch_dtype", c.torch_dtype, where);
        if (get_flag(j, "scale_embedding", false, where))
            throw Error(where + ": scale_embedding = true is not supported (BART checkpoints use false)");
        if (get_flag(j, "normalize_before", false, where) || get_flag(j, "add_final_layer_norm", false, where))
            throw Error(where + ": pre-LN BART variants (normalize_before, add_final_layer_norm: mBART) are not supported");
        for (const char* key : {"encoder_layerdrop", "decoder_layerdrop"})
            if (get_double(j, key, 0.0, where) != 0.0) throw Error(where + ": " + key + " other than 0 is not supported");
        if (c.decoder_start_token_id < 0 || c.decoder_start_token_id >= c.vocab_size)
            throw Error(where + ": decoder_start_token_id must be a valid token id");
        if (c.eos_token_id < 0 || c.eos_token_id >= c.vocab_size)
            throw Error(where + ": eos_token_id must be a valid token id (the classification head reads the last eos)");
        check_limits(c, where);
        read_labels(c, j, where);
        c.validate(where);
        return c;
    }

    nlohmann::json to_json(const ModelConfig& c) const override {
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
        write_labels(c, j);
        j["torch_dtype"] = c.torch_dtype;
        j["use_cache"] = true;
        return j;
    }

    std::string key_of_layers() const override { return "encoder_layers"; }
    std::string key_of_ffn() const override { return "encoder_ffn_dim"; }
    std::string key_of_hidden() const override { return "d_model"; }

    // model.shared is the token table of both sides (transformers ties encoder/decoder.embed_tokens to it).
    EmbeddingNames embeddings(const ModelConfig&) const override {
        return {"model.shared.weight", "model.encoder.embed_positions.weight", "", "model.encoder.layernorm_embedding", ""};
    }
    EmbeddingNames decoder_embeddings(const ModelConfig&) const override {
        return {"model.shared.weight", "model.decoder.embed_positions.weight", "", "model.decoder.layernorm_embedding", ""};
    }
    std::string layers() const override { return "model.encoder.layers."; }
    std::string decoder_layers() const override { return "model.decoder.layers."; }
    HeadNames head(const ModelConfig&) const override {
        HeadNames h;
        h.dense = "classification_head.dense";
        h.out = "classification_head.out_proj";
        return h;
    }
    bool is_tied_copy(const std::string& name) const override {
        return name == "model.encoder.embed_tokens.weight" || name == "model.decoder.embed_tokens.weight" ||
               name == "encoder.embed_tokens.weight" || name == "decoder.embed_tokens.weight";
    }

    std::vector<std::int32_t> positions(const HostBatch& b, const ModelConfig&) const override {
        std::vector<std::int32_t> pos(static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T));
        for (std::size_t j = 0; j < pos.size(); ++j)  // positions do not skip padding
            pos[j] = static_cast<std::int32_t>(j % static_cast<std::size_t>(b.T)) + kPositionOffset;
        return pos;
    }

    // BART's head has its own key (classifier_dropout); activation_dropout follows too.
    void set_dropout(ModelConfig& c, double p) const override {
        c.hidden_dropout = c.attention_dropout = c.activation_dropout = c.classifier_dropout = p;
    }
};
}  // namespace

const ArchSpec& bart_spec() {
    static const BartSpec spec;
    return spec;
}

}  // namespace meft
