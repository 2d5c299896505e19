// fairseq.h — what BART and OPT share as models first written in fairseq: the layer's module
// names, learned positions from row 2 (the table has max_position_embeddings + 2 rows), a ReLU or
// GELU activation_function, bos/eos tokens from config.json, and the "model." prefix.
#pragma once
#include "core/error.h"
#include "model/arch/arch.h"

namespace meft {

class FairseqSpec : public ArchSpec {
public:
    void validate(const ModelConfig& c, const std::string& where) const override {
        if (c.hidden_act != "relu" && c.hidden_act != "gelu")
            throw Error(where + ": activation_function '" + c.hidden_act + "' is not supported (expected relu or gelu)");
    }
    std::string prefix() const override { return "model."; }
    const LayerNames& layer_names() const override {
        static const LayerNames names{
            {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc1", "fc2"},
            "self_attn_layer_norm", "final_layer_norm", "self_attn", "self_attn.adapter", "fc2.adapter", "parallel_adapter",
            {"encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj", "encoder_attn.out_proj"},
            "encoder_attn_layer_norm"};
        return names;
    }
    int position_rows(const ModelConfig& c) const override { return c.max_position_embeddings + kPositionOffset; }
    int first_position(const ModelConfig&) const override { return kPositionOffset; }
    int begin_token(const ModelConfig& c) const override { return c.bos_token_id; }
    int end_token(const ModelConfig& c) const override { return c.eos_token_id; }
    int plain_token(const ModelConfig&) const override { return 1; }

protected:
    // {Bart,OPT}LearnedPositionalEmbedding's offset.
    static constexpr int kPositionOffset = 2;
};

}  // namespace meft
