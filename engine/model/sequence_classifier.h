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
#include "model/encoder_layer.h"
#include "model/meft_encoder.h"
#include "model/memory_report.h"
#include "model/params.h"
#include "peft/method.h"

namespace meft {

struct ForwardOptions {
    bool train = false;          // dropout on, activations kept for backward
    std::uint64_t seed = 0;      // dropout stream
    std::uint32_t step = 0;      // optimizer step: part of every dropout key
    bool backbone_only = false;  // skip the method's edits (inference only): the backbone's function
    bool check_reconstruction = false;  // MEFT: keep the true layer inputs, measure the rebuilt ones
};

class SequenceClassifier {
public:
    // Declares the backbone's and the method's parameters and marks which train; weights are
    // allocated on init_weights() (or by the checkpoint loader).
    SequenceClassifier(ModelConfig config, Backend& backend, DType dtype, MethodConfig method = {});

    const ModelConfig& config() const { return config_; }
    const MethodConfig& method() const { return method_; }
    ParameterStore& params() { return params_; }
    const ParameterStore& params() const { return params_; }
    Backend& backend() { return backend_; }
    DType dtype() const { return params_.dtype(); }
    // Hugging Face prefix of backbone tensors: "bert." or "roberta."
    std::string prefix() const { return arch_name(config_.arch) + "."; }
    bool is_head_parameter(const std::string& name) const;
    // One dropout rate for hidden states, attention probabilities and the head (experiment override).
    void set_dropout(double p) {
        config_.hidden_dropout = config_.attention_dropout = p;
        config_.classifier_dropout = -1;
    }

    // Every parameter from its Init: N(0, initializer_range) weights, zero biases, unit
    // LayerNorm, zero padding rows (HF init); method parameters as the method defines.
    void init_weights(std::uint64_t seed);
    // Re-draw only the named parameters (a checkpoint's missing head, a method's parameters).
    void init_parameters(const std::vector<std::string>& names, std::uint64_t seed);

    // Forward pass; returns logits [B,K] (device tensor, valid until the next forward).
    Tensor forward(const HostBatch& batch, const ForwardOptions& opts);
    // forward + loss + backward. Parameter gradients accumulate loss_scale * d(sum of losses).
    // Returns the sum of the batch's per-example losses.
    double forward_backward(const HostBatch& batch, const ForwardOptions& opts, double loss_scale);
    std::vector<double> logits_to_host(Tensor logits);
    // The encoder's output [B,T,C] of the last forward (valid until the next forward).
    Tensor last_hidden() const { return last_hidden_; }

    Arena& activations() { return *acts_; }
    // The last forward_backward's memory, layer by layer (see memory_report.h).
    MemoryReport memory_report() const;
    const MeftEncoder* meft_encoder() const { return meft_.get(); }

private:
    struct HeadActs {
        Tensor cls, a, b, c, logits, losses, probs;  // BERT: a=pooler pre-act, b=tanh, c=dropped
    };

    void declare_parameters();
    void upload_inputs(const HostBatch& batch);
    LayerContext layer_context(Arena& saved, const ForwardOptions& o, int off);
    void prefix_forward(const HostBatch& batch);  // prefix-tuning's key mask and MLP
    MeftEnv meft_env(const ForwardOptions& o, int off);
    void head_forward(Tensor h, const ForwardOptions& o, int off);
    void head_backward(Tensor dlogits, const ForwardOptions& o, int off);
    Tensor p(int i) const { return params_.value(i); }
    Tensor g(int i) const { return params_.grad(i); }
    PhiloxKey key(const ForwardOptions& o, int layer, int position) const;
    double drop(const ForwardOptions& o, double p) const { return o.train ? p : 0.0; }

    ModelConfig config_;
    MethodConfig method_;
    Backend& backend_;
    ParameterStore params_;
    MemoryMeter meter_;               // joint use of the four activation arenas below
    std::vector<std::size_t> transient_;  // per layer + 2 (index layer + 1): backward transients
    std::unique_ptr<Arena> acts_;     // saved activations of the current step
    std::unique_ptr<Arena> scratch_;  // backward's activation gradients
    std::unique_ptr<Arena> tmp_;      // one layer's temporaries
    std::unique_ptr<Arena> recompute_;  // gradient checkpointing: one layer's recomputed activations

    int wte_, wpe_, wtt_, emb_ln_w_, emb_ln_b_;
    std::vector<EncoderLayer> layers_;
    std::unique_ptr<MeftEncoder> meft_;  // MEFT methods: the reversible encoder over layers_
    int pool_w_ = -1, pool_b_ = -1, cls_w_, cls_b_, dense_w_ = -1, dense_b_ = -1;
    int prefix_emb_ = -1, prefix_w1_ = -1, prefix_b1_ = -1, prefix_w2_ = -1, prefix_b2_ = -1;  // prefix MLP
    Tensor prefix_mask_, prefix_pre_, prefix_hidden_, prefix_dhidden_;

    // current step's inputs and activations
    int B_ = 0, T_ = 0;
    Tensor ids_, pos_, types_, mask_, labels_, targets_;
    Tensor emb_sum_, emb_mean_, emb_rstd_, last_hidden_;
    std::vector<EncoderLayer::Acts> la_;  // with checkpointing only .x (the layer input) is kept
    HeadActs head_;
    Tensor grad_stream_, grad_tmp_;  // backward: the residual stream's gradient and one temporary
};

}  // namespace meft
