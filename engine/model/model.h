// model.h — what every backbone-with-a-head offers the trainer, the planner, the checkpoint code
// and the front ends: its parameters, a forward pass, forward + loss + backward, and the memory
// it kept. A model is a backbone (model/backbone.h: embeddings and layer stacks, as the family's
// shape says) with a head: SequenceClassifier (a classification, regression or multiple-choice
// head over an encoder or encoder-decoder) or CausalLM (the tied LM head over a decoder).
//
// The base owns what both share: the configuration, the method, the parameter store, the four
// activation arenas with their joint meter, and the backbone. Activation tags: layer -1 is the embeddings,
// 0..L-1 the layers (BART: the encoder's, then the decoder's), L the head.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/memory_report.h"
#include "model/params.h"
#include "model/edits.h"

namespace meft {

class Backbone;
struct ModelArenas;

struct ForwardOptions {
    bool train = false;          // dropout on, activations kept for backward
    std::uint64_t seed = 0;      // dropout stream
    std::uint32_t step = 0;      // optimizer step: part of every dropout key
    bool backbone_only = false;  // skip the method's edits (inference only): the backbone's function
    bool check_reconstruction = false;  // MEFT: keep the true layer inputs, measure the rebuilt ones
};

class Model {
public:
    // `edit`: the fine-tuning method's edit of the backbone (peft/), or null for the backbone
    // itself, fully trainable (full fine-tuning).
    Model(ModelConfig config, Backend& backend, DType dtype, std::shared_ptr<const ModelEdit> edit);
    virtual ~Model();
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const ModelConfig& config() const { return config_; }
    const ModelEdit* edit() const { return edit_.get(); }
    ParameterStore& params() { return params_; }
    const ParameterStore& params() const { return params_; }
    Backend& backend() { return backend_; }
    DType dtype() const { return params_.dtype(); }
    // Hugging Face prefix of backbone tensors: "bert.", "roberta.", "model."
    std::string prefix() const;
    // Parameters of the task head, which a backbone checkpoint may lack (drawn fresh then).
    virtual bool is_head_parameter(const std::string& name) const = 0;

    // Every parameter from its Init (HF's init); method parameters as the method defines.
    void init_weights(std::uint64_t seed);
    // Re-draw only the named parameters (a checkpoint's missing head, a method's parameters).
    void init_parameters(const std::vector<std::string>& names, std::uint64_t seed);

    // Forward pass; returns the head's output (device tensor, valid until the next forward):
    // classifier logits [B,K]; causal LM: logits [M,V] of the M labelled positions.
    virtual Tensor forward(const HostBatch& batch, const ForwardOptions& opts) = 0;
    // forward + loss + backward. Parameter gradients accumulate loss_scale * d(sum of losses),
    // the sum running over examples (classifier) or labelled tokens (causal LM). Returns that sum.
    virtual double forward_backward(const HostBatch& batch, const ForwardOptions& opts, double loss_scale) = 0;
    // Evaluation (no dropout): outputs_per_example() numbers per example, in batch order:
    // classifier logits, or the causal LM's summed log-likelihood of the labelled tokens.
    virtual std::vector<double> example_outputs(const HostBatch& batch) = 0;
    virtual int outputs_per_example() const = 0;
    // The backbone's last hidden states [B,T,C] of the last forward (valid until the next forward).
    Tensor last_hidden() const { return last_hidden_; }
    std::vector<double> to_host(Tensor t);  // any floating tensor, as doubles
    void from_host(Tensor t, const std::vector<double>& v);  // the reverse (F32 or F64 tensors)

    Arena& activations() { return *acts_; }
    // The last forward_backward's memory, layer by layer (see memory_report.h).
    MemoryReport memory_report() const;
    // While set, every allocation and free of the activation arenas is appended to `trace`
    // (train/memory_timeline.h); nullptr stops it.
    void set_memory_trace(std::vector<MeterEvent>* trace) { meter_.trace = trace; }
    // The edit's runner of the (encoder's) layer stack, e.g. MEFT's reversible stack; null when
    // the layers run one by one.
    const StackRunner* stack_runner() const;
    // MEFT's last measured reconstruction error per layer (all stacks, by tag); empty if none.
    std::vector<double> reconstruction_error() const;

protected:
    // Call at the start of every forward: resets the arenas and the per-layer transients.
    void begin_forward();
    // A traced step's phase boundary (train/memory_timeline.h): an event of arena "phase".
    void mark_phase(const char* phase) {
        if (meter_.trace) meter_.trace->push_back(MeterEvent{"phase", -1, phase, 0});
    }
    PhiloxKey key(const ForwardOptions& o, int layer, int position) const;
    // An int32 host array as a tensor in the activation arena (tagged as an input).
    Tensor upload_i32(const std::vector<std::int32_t>& v, Shape s, const char* name);
    double drop(const ForwardOptions& o, double p) const { return o.train ? p : 0.0; }
    Tensor p(int i) const { return params_.value(i); }
    Tensor g(int i) const { return params_.grad(i); }
    // Marks backbone parameters trainable as the method says (added ones always train).
    void apply_method_trainability();
    ModelArenas arenas();

    ModelConfig config_;
    std::shared_ptr<const ModelEdit> edit_;
    Backend& backend_;
    ParameterStore params_;
    MemoryMeter meter_;                   // joint use of the four activation arenas below
    std::vector<std::size_t> transient_;  // per layer + 2 (index layer + 1): backward transients
    std::unique_ptr<Arena> acts_;         // saved activations of the current step
    std::unique_ptr<Arena> scratch_;      // backward's activation gradients
    std::unique_ptr<Arena> tmp_;          // one layer's temporaries
    std::unique_ptr<Arena> recompute_;    // gradient checkpointing: one layer's recomputed activations
    std::unique_ptr<Backbone> backbone_;  // embeddings and layer stacks, declared by the head's constructor
    Tensor last_hidden_;
};

}  // namespace meft
