// causal_lm.h — OPT as Hugging Face's OPTForCausalLM computes it, with explicit forward and
// backward passes:
//
//   e = embed_tokens[ids] [project_in] + embed_positions[pos]     (pos = 2 + index among real tokens;
//                                                                  padding: 1 — OPT's offset of 2)
//   h = decoder layers (pre-LN, causal, ReLU; post-LN when do_layer_norm_before is false)
//   h = final_layer_norm(h) [project_out]                          (OPT has no embedding dropout)
//   logits = h · embed_tokensᵀ                                     (the tied LM head, no bias)
//   loss = cross-entropy of position t-1's logits against labels[t], over labelled positions
//
// Only the labelled positions reach the LM head: their rows of h are gathered first, so the
// [M,V] logits cover the M predicted tokens (for QA: the answer's), not all B·T positions.
// Activation tags: layer -1 is the embeddings, 0..L-1 the decoder layers, L the head.
#pragma once
#include <string>
#include <vector>

#include "model/layer_stack.h"
#include "model/model.h"

namespace meft {

class CausalLM : public Model {
public:
    CausalLM(ModelConfig config, Backend& backend, DType dtype, std::shared_ptr<const ModelEdit> edit = nullptr);

    std::string prefix() const override { return "model."; }
    // The LM head is the token embedding (tied): no separate head parameter.
    bool is_head_parameter(const std::string&) const override { return false; }

    // Returns logits [M,V] of the M labelled positions (empty when the batch labels nothing).
    Tensor forward(const HostBatch& batch, const ForwardOptions& opts) override;
    // Sum over labelled tokens of their cross-entropy; gradients scaled by loss_scale.
    double forward_backward(const HostBatch& batch, const ForwardOptions& opts, double loss_scale) override;
    // Per example: the summed log-likelihood of its labelled tokens (0 when it has none).
    std::vector<double> example_outputs(const HostBatch& batch) override;
    int outputs_per_example() const override { return 1; }

private:
    void declare_parameters();
    void upload_inputs(const HostBatch& batch);
    void head_forward(Tensor h, const ForwardOptions& o);
    void head_backward(Tensor dlogits);
    // Cross-entropy of the last forward's labelled positions (kept for backward), to the host.
    std::vector<double> token_losses();
    void embeddings_backward();

    int wte_, wpe_, proj_in_ = -1, proj_out_ = -1, lnf_w_ = -1, lnf_b_ = -1;
    // the current step
    int B_ = 0, T_ = 0, M_ = 0;
    std::vector<int> row_example_;          // [M] the example of each labelled position
    Tensor ids_, pos_, mask_, rows_, targets_;
    Tensor tokens_;                         // project_in's input [B,T,Dw] (when it trains)
    Tensor h_, lnf_mean_, lnf_rstd_, hf_, ho_, selected_, logits_, losses_, probs_;
    Tensor grad_stream_;
};

}  // namespace meft
