// masked_lm.h — BERT and RoBERTa as Hugging Face's BertForMaskedLM / RobertaForMaskedLM compute
// them, with explicit forward and backward passes: the encoder backbone, then the MLM head over
// the masked positions:
//
//   h = encoder(ids)                                   [B,T,C]
//   x = h[masked positions]                            [M,C]  (labels >= 0, not shifted)
//   z = LayerNorm(gelu(x · Wdᵀ + bd))                  the head's transform (dense, GELU, LayerNorm)
//   logits = z · word_embeddingsᵀ + bias               the decoder, tied to the token table, and its bias [V]
//   loss = cross-entropy of logits against the labels, summed over the masked positions
//
// Hugging Face names (ArchSpec::mlm_head): BERT's cls.predictions.transform.{dense,LayerNorm} and
// cls.predictions.bias, RoBERTa's lm_head.{dense,layer_norm,bias}. The head trains with every
// method, as a task head does (a checkpoint without it — a fine-tuned backbone — draws it fresh).
// As in CausalLM, only the masked positions reach the head and the [M,V] logits exist a chunk of
// rows at a time in training and evaluation (forward() alone returns them whole).
// Activation tags: layer -1 is the embeddings, 0..L-1 the layers, L the head.
#pragma once
#include <string>
#include <vector>

#include "model/model.h"

namespace meft {

class MaskedLM : public Model {
public:
    MaskedLM(ModelConfig config, Backend& backend, DType dtype, std::shared_ptr<const ModelEdit> edit = nullptr);

    // The transform and the output bias; the decoder is the token table (tied).
    bool is_head_parameter(const std::string& name) const override;

    // Logits [M,V] of the M masked positions (empty when the batch masks nothing or has no token
    // labels: then only the backbone runs).
    Tensor forward(const HostBatch& batch, const ForwardOptions& opts) override;
    // Sum over masked positions of their cross-entropy; gradients scaled by loss_scale.
    double forward_backward(const HostBatch& batch, const ForwardOptions& opts, double loss_scale) override;
    // Per example, outputs_per_example() numbers: the summed log-likelihood of its masked tokens,
    // how many it masks, and how many of them the head ranks first.
    std::vector<double> example_outputs(const HostBatch& batch) override;
    int outputs_per_example() const override { return 3; }

    static constexpr std::size_t kLossChunkBytes = std::size_t(32) << 20;  // as CausalLM's
    int loss_chunk_rows() const;
    void set_loss_chunk_rows(int n) { loss_chunk_rows_ = n; }

    int token_table() const { return wte_; }

private:
    void upload_labels(const HostBatch& batch);
    // The backbone, the masked rows of its output and the transform (kept for backward).
    void head_input_forward(const HostBatch& batch, const ForwardOptions& o);
    // Each masked position's cross-entropy (and, with `correct`, whether its label has the largest
    // logit), a chunk of rows at a time; with `backward`, d(transformed_) and the tied table's and
    // bias's gradients, scaled by loss_scale.
    std::vector<double> chunked_loss(bool backward, double loss_scale, std::vector<char>* correct);

    int wte_ = -1, dense_w_ = -1, dense_b_ = -1, ln_w_ = -1, ln_b_ = -1, bias_ = -1;
    // the current step
    int B_ = 0, T_ = 0, M_ = 0;
    std::vector<int> row_example_;  // [M] the example of each masked position
    Tensor rows_, targets_;
    Tensor selected_, dense_, act_, mean_, rstd_, transformed_, logits_, dtransformed_;
    int loss_chunk_rows_ = 0;
};

}  // namespace meft
