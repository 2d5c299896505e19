// causal_lm.h — OPT as Hugging Face's OPTForCausalLM computes it, with explicit forward and
// backward passes: the decoder backbone (decoder.h), then the LM head tied to its token table:
//
//   h = decoder(ids)                                   ([B,T,Dw]: after the final LN and project_out)
//   logits = h · embed_tokensᵀ                         (no bias)
//   loss = cross-entropy of position t-1's logits against labels[t], over labelled positions
//
// Only the labelled positions reach the LM head: their rows of h are gathered first, so the
// [M,V] logits cover the M predicted tokens (for QA: the answer's), not all B·T positions. Training
// and evaluation go further: logits, softmax and their gradient are computed a chunk of labelled
// positions at a time (loss_chunk_rows), so [M,V] never exists; forward() alone returns it whole.
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

    // Labelled positions per loss chunk: by default as many as keep one chunk's logits within
    // kLossChunkBytes (at least one); n > 0 sets it (tests cross chunk edges with small vocabularies).
    static constexpr std::size_t kLossChunkBytes = std::size_t(32) << 20;
    int loss_chunk_rows() const;
    void set_loss_chunk_rows(int n) { loss_chunk_rows_ = n; }

private:
    // The labelled positions (position t predicts token t+1) and their labels, uploaded.
    void upload_labels(const HostBatch& batch);
    // The backbone, then the labelled positions' rows of its output (selected_, kept).
    void backbone_forward(const HostBatch& batch, const ForwardOptions& o);
    // Each labelled position's cross-entropy, a chunk at a time (logits and probabilities live in
    // tmp_ for one chunk); with `backward`, also d(selected_) (dselected_) and the tied embedding's
    // gradient, scaled by loss_scale.
    std::vector<double> chunked_loss(bool backward, double loss_scale);

    Decoder* decoder_ = nullptr;            // backbone_, as the decoder it is
    // the current step
    int B_ = 0, T_ = 0, M_ = 0;
    std::vector<int> row_example_;          // [M] the example of each labelled position
    Tensor rows_, targets_;
    Tensor selected_, logits_, dselected_;
    int loss_chunk_rows_ = 0;
};

}  // namespace meft
