// sequence_classifier.h — a sequence classification (or regression) head over an encoder or
// encoder-decoder backbone (model/backbone.h), exactly as Hugging Face computes it, with explicit
// forward and backward passes (no autograd):
//
//   BERT    (BertForSequenceClassification):    embeddings (word + position + type, LN, dropout)
//           -> encoder -> pooler tanh(W h[CLS] + b) -> dropout -> classifier
//   RoBERTa (RobertaForSequenceClassification): the same embeddings (positions count real tokens
//           after the padding id) -> encoder -> dropout -> dense -> tanh -> dropout -> out_proj
//           over h[<s>]
//   BART    (BartForSequenceClassification):    shared token table; the encoder reads the input,
//           the decoder the input shifted right (decoder_start_token_id first); each side adds its
//           learned positions (offset 2), applies layernorm_embedding and dropout. The decoder's
//           layers cross-attend to the encoder's output. The head (dropout -> dense -> tanh ->
//           dropout -> out_proj) reads the decoder's state at each example's last eos token.
//
// Multiple choice (ModelConfig::multiple_choice): each row is one (context, choice) pair and the
// head gives it one score: BertForMultipleChoice and RobertaForMultipleChoice (pooler -> dropout ->
// classifier with one output), BART's classification head with one label (transformers has no
// BartForMultipleChoice). The loss is the softmax cross-entropy over each question's rows
// (HostBatch::choice_counts), so questions may have different numbers of choices (ARC).
//
// Dimensions: B batch, T tokens, C hidden, NH heads, I intermediate, K labels, L layers, N = B*T.
// Activation tags: layer -1 is the embeddings, 0..L-1 the layers (BART: encoder, then decoder),
// L the head.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace meft {

class SequenceClassifier : public Model {
public:
    // Declares the backbone's and the method's parameters and marks which train; weights are
    // allocated on init_weights() (or by the checkpoint loader).
    SequenceClassifier(ModelConfig config, Backend& backend, DType dtype, std::shared_ptr<const ModelEdit> edit = nullptr);

    bool is_head_parameter(const std::string& name) const override;

    // Forward pass; returns logits [B,K] (device tensor, valid until the next forward).
    Tensor forward(const HostBatch& batch, const ForwardOptions& opts) override;
    // forward + loss + backward. Parameter gradients accumulate loss_scale * d(sum of losses).
    // Returns the sum of the batch's per-example losses.
    double forward_backward(const HostBatch& batch, const ForwardOptions& opts, double loss_scale) override;
    std::vector<double> example_outputs(const HostBatch& batch) override { return to_host(forward(batch, {})); }
    int outputs_per_example() const override { return config_.num_labels(); }

private:
    struct HeadActs {
        Tensor cls, a, b, c, logits, losses, probs;  // pooler: a=pre-activation, b=tanh, c=dropped
    };

    void declare_head();
    void head_forward(Tensor h, const ForwardOptions& o, int off);
    void head_backward(Tensor dlogits, Tensor d_hidden, const ForwardOptions& o, int off);
    // Multiple choice: the summed per-question loss; writes loss_scale * d(loss)/d(scores).
    double choice_loss(const HostBatch& batch, Tensor scores, Tensor dscores, double loss_scale);

    bool pooler_ = false;  // pool_*: the pooler head; dense_*: the dense -> tanh -> out_proj head
    int pool_w_ = -1, pool_b_ = -1, cls_w_ = -1, cls_b_ = -1, dense_w_ = -1, dense_b_ = -1;

    // current step's inputs and activations
    int B_ = 0, T_ = 0;
    Tensor labels_, targets_;
    HeadActs head_;
};

}  // namespace meft
