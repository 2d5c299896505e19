// opt.cpp — OPT (transformers' OPTForCausalLM): a token table of word_embed_proj_dim columns
// (projected in and out when narrower than the model), learned positions from row 2 counting real
// tokens, pre-LN ReLU decoder layers, a final LayerNorm, and the LM head tied to the token table.
#include "model/arch/config_json.h"
#include "model/arch/fairseq.h"

namespace meft {

using namespace config_json;

namespace {
class OptSpec final : public FairseqSpec {
public:
    Arch arch() const override { return Arch::Opt; }
    StackShape shape() const override { return StackShape::Decoder; }

    std::vector<std::string> presets() const override { return {"toy", "tiny", "base", "1.3b"}; }

    // facebook/opt-125m's shapes; 1.3b: facebook/opt-1.3b. The vocabulary is GPT-2's byte-level BPE
    // (the RoBERTa tokenizer files), padded to 50272 rows.
    ModelConfig preset(const std::string& name) const override {
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
        if (name == "1.3b") {
            c.hidden_size = 2048, c.num_layers = 24, c.num_heads = 32, c.intermediate_size = 8192;
        } else if (name == "toy") {
            c.num_layers = 4, c.hidden_size = 128, c.num_heads = 4, c.intermediate_size = 512;
        } else if (name == "tiny") {
            c.num_layers = 2, c.hidden_size = 128, c.num_heads = 2, c.intermediate_size = 512;
        } else if (name != "base") {
            throw Error("unknown preset '" + name + "' for opt (expected toy, tiny, base or 1.3b)");
        }
        c.word_embed_proj_dim = c.hidden_size;
        return c;
    }

    // transformers' OPTConfig: other key names (hidden_act is activation_function, intermediate_size
    // ffn_dim, hidden_dropout dropout, initializer_range init_std), and switches this engine does not
    // implement are refused by name rather than silently ignored.
    ModelConfig from_json(const nlohmann::json& j, const std::string& where) const override {
        ModelConfig c = preset("base");
        c.vocab_size = get_int(j, "vocab_size", c.vocab_size, where);
        c.hidden_size = get_int(j, "hidden_size", c.hidden_size, where);
        c.num_layers = get_int(j, "num_hidden_layers", c.num_layers, where);
        c.num_heads = get_int(j, "num_attention_heads", c.num_heads, where);
        c.intermediate_size = get_int(j, "ffn_dim", c.intermediate_size, where);
        c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, where);
        c.pad_token_id = get_int(j, "pad_token_id", c.pad_token_id, where);
        c.bos_token_id = get_int(j, "bos_token_id", c.bos_token_id, where);
        c.eos_token_id = get_int(j, "eos_token_id", c.eos_token_id, where);
        c.hidden_dropout = get_double(j, "dropout", c.hidden_dropout, where);
        c.attention_dropout = get_double(j, "attention_dropout", c.attention_dropout, where);
        c.initializer_range = get_double(j, "init_std", c.initializer_range, where);
        c.hidden_act = get_string(j, "activation_function", c.hidden_act, where);
        c.word_embed_proj_dim = get_int(j, "word_embed_proj_dim", c.hidden_size, where);
        c.torch_dtype = get_string(j, "torch_dtype", c.torch_dtype, where);
        auto flag = [&](const char* key, bool fallback) { return get_flag(j, key, fallback, where); };
        c.pre_layer_norm = flag("do_layer_norm_before", true);
        c.final_layer_norm = c.pre_layer_norm && !flag("_remove_final_layer_norm", false);
        if (!flag("enable_bias", true)) throw Error(where + ": enable_bias = false is not supported (OPT linears have biases)");
        if (!flag("layer_norm_elementwise_affine", true))
            throw Error(where + ": layer_norm_elementwise_affine = false is not supported");
        c.activation_dropout = get_double(j, "activation_dropout", 0.0, where);
        if (get_double(j, "layerdrop", 0.0, where) != 0.0) throw Error(where + ": layerdrop other than 0 is not supported");
        check_limits(c, where);
        c.validate(where);
        return c;
    }

    nlohmann::json to_json(const ModelConfig& c) const override {
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

    std::string key_of_ffn() const override { return "ffn_dim"; }

    EmbeddingNames embeddings(const ModelConfig& c) const override {
        return {"model.decoder.embed_tokens.weight", "model.decoder.embed_positions.weight", "", "",
                c.projects_embeddings() ? "model.decoder.project_in" : ""};
    }
    std::string layers() const override { return "model.decoder.layers."; }
    HeadNames head(const ModelConfig&) const override { return {}; }  // the LM head is the token table
    std::string final_layer_norm() const override { return "model.decoder.final_layer_norm"; }
    std::string project_out() const override { return "model.decoder.project_out"; }
    bool is_tied_copy(const std::string& name) const override { return name == "lm_head.weight"; }

    // transformers: positions = cumsum(mask) * mask - 1, plus the offset (padding: row 1).
    std::vector<std::int32_t> positions(const HostBatch& b, const ModelConfig&) const override {
        std::vector<std::int32_t> pos(static_cast<std::size_t>(b.B) * static_cast<std::size_t>(b.T));
        for (int i = 0; i < b.B; ++i) {
            int real = 0;
            for (int t = 0; t < b.T; ++t) {
                const std::size_t j = static_cast<std::size_t>(i) * b.T + t;
                real += b.attention_mask[j] != 0;
                pos[j] = (b.attention_mask[j] != 0 ? real - 1 : -1) + kPositionOffset;
            }
        }
        return pos;
    }
};
}  // namespace

const ArchSpec& opt_spec() {
    static const OptSpec spec;
    return spec;
}

}  // namespace meft
