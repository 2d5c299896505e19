// sequence_classifier.h — BERT / RoBERTa encoder with a sequence classification (or regression)
// head, exactly as Hugging Face's BertForSequenceClassification / RobertaForSequenceClassification
// compute it, with explicit forward and backward passes (no autograd).
//
// Dimensions: B batch, T tokens, C hidden, NH heads, I intermediate, K labels, L layers, N = B*T.
// Activation tags: layer -1 is the embeddings, 0..L-1 the encoder layers, L the head.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/layer_stack.h"
#include "model/memory_report.h"
#include "model/model.h"
#include "model/params.h"
#include "peft/method.h"

namespace meft {

class SequenceClassifier : public Model {
public:
    // Declares the backbone's and the method's parameters and marks which train; weights are
    // allocated on init_weights() (or by the checkpoint loader).
    SequenceClassifier(ModelConfig config, Backend& backend, DType dtype, MethodConfig method = {});

    // Hugging Face prefix of backbone tensors: "bert." or "roberta."
    std::string prefix() const override { return arch_name(config_.arch) + "."; }
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
        Tensor cls, a, b, c, logits, losses, probs;  // BERT: a=pooler pre-act, b=tanh, c=dropped
    };

    void declare_parameters();
    void upload_inputs(const HostBatch& batch);
    void head_forward(Tensor h, const ForwardOptions& o, int off);
    void head_backward(Tensor dlogits, const ForwardOptions& o, int off);

    int wte_, wpe_, wtt_, emb_ln_w_, emb_ln_b_;
    int pool_w_ = -1, pool_b_ = -1, cls_w_, cls_b_, dense_w_ = -1, dense_b_ = -1;

    // current step's inputs and activations
    int B_ = 0, T_ = 0;
    Tensor ids_, pos_, types_, mask_, labels_, targets_;
    Tensor emb_sum_, emb_mean_, emb_rstd_;
    HeadActs head_;
    Tensor grad_stream_, grad_tmp_;  // backward: the residual stream's gradient and one temporary
};

}  // namespace meft
