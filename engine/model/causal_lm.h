// causal_lm.h — OPT as Hugging Face's OPTForCausalLM computes it, with explicit forward and
// backward passes: the decoder backbone (decoder.h), then the LM head tied to its token table:
//
//   h = decoder(ids)                                   ([B,T,Dw]: after the final LN and project_out)
//   logits = h · embed_tokensᵀ                         (no bias)
//   loss = cross-entropy of position t-1's logits against labels[t], over labelled positions
//
// Only the labelled positions reach the LM head: their rows of h are gathered first, so the
// [M,V] logits cover the M predicted tokens (for QA: the answer's), not all B·T positions.
// Activation tags: layer -1 is the embeddings, 0..L-1 the decoder layers, L the head.
#pragma once
#include <string>
#include <vector>

#include "model/model.h"

namespace meft {

class Decoder;

class CausalLM : public Model {
public:
    CausalLM(ModelConfig config, Backend& backend, DType dtype, std::shared_ptr<const ModelEdit> edit = nullptr);

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
    // The labelled positions (position t predicts token t+1) and their labels, uploaded.
    void upload_labels(const HostBatch& batch);
    void head_forward(Tensor h);
    // d(logits) to d(the decoder's output) [B,T,Dw]
    Tensor head_backward(Tensor dlogits);
    // Cross-entropy of the last forward's labelled positions (kept for backward), to the host.
    std::vector<double> token_losses();

    Decoder* decoder_ = nullptr;            // backbone_, as the decoder it is
    // the current step
    int B_ = 0, T_ = 0, M_ = 0;
    std::vector<int> row_example_;          // [M] the example of each labelled position
    Tensor rows_, targets_;
    Tensor selected_, logits_, losses_, probs_;
};

}  // namespace meft
