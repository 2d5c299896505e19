// decoder.h — the decoder backbone (OPT): a token table of embed_width() columns (projected in and
// out when narrower than the model), learned positions, causal pre-LN layers, a final LayerNorm.
// Its output, the input of the tied LM head, is [B,T,embed_width()]. It has no embedding dropout.
#pragma once
#include "model/backbone.h"

namespace meft {

class Decoder final : public Backbone {
public:
    Decoder(const ModelConfig& cfg, const ModelEdit* edit, ModelArenas arenas);

    void upload(const HostBatch& b) override;
    // The final LayerNorm's and project_out's activations are tagged as the head's (layer L).
    Tensor forward(const HostBatch& batch, const ForwardOptions& o) override;
    // d(output) [B,T,embed_width()] through project_out and the final LayerNorm into d(stream).
    void output_backward(Tensor d_out);
    void backward(const ForwardOptions& o, int example_offset) override;
    std::vector<const LayerStack*> stacks() const override { return {stack_.get()}; }

    int token_table() const { return wte_; }  // the LM head's weight (tied)

private:
    void embeddings_backward();

    int wte_ = -1, wpe_ = -1, proj_in_ = -1, proj_out_ = -1, lnf_w_ = -1, lnf_b_ = -1;
    std::unique_ptr<LayerStack> stack_;
    // the current step
    Tensor ids_, pos_;
    Tensor tokens_;                         // project_in's input [B,T,Dw] (when it trains)
    Tensor h_, lnf_mean_, lnf_rstd_, hf_;   // the final LayerNorm's input, statistics and output
};

}  // namespace meft
