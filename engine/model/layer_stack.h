// layer_stack.h — the L transformer layers between a model's embeddings and its head, run the way
// the method says: plainly (activations kept), with gradient checkpointing (only each layer's
// input kept; recomputed in backward), as MEFT's reversible stack, or with prefix-tuning's
// virtual keys and values (whose reparameterisation MLP, shared by all layers, lives here too).
// BERT, RoBERTa and OPT have one; BART has two (encoder, then a decoder whose layers also attend
// to the encoder's output). Only the layers' style (post-/pre-LN, causal, cross) differs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "model/batch.h"
#include "model/meft_encoder.h"
#include "model/transformer_layer.h"

namespace meft {

struct ForwardOptions;

// The model's activation arenas and their meter (see model.h).
struct ModelArenas {
    Backend& be;
    ParameterStore& ps;
    Arena& acts;       // saved activations of the step
    Arena& scratch;    // forward-only buffers and backward's gradients (reset before backward)
    Arena& tmp;        // one layer's temporaries
    Arena& recompute;  // checkpointing / MEFT: one layer's recomputed tape
    MemoryMeter& meter;
    std::vector<std::size_t>& transient;  // per layer + 2 (index layer + 1)
};

// Which layers a stack holds and how they are named.
struct StackSpec {
    std::string names;         // Hugging Face prefix of the layers: "bert.encoder.layer.", "model.decoder.layers."
    int count = 0;             // layers in the stack
    int first_tag = 0;         // tag of its first layer within the model (BART's decoder: encoder_layers)
    bool causal = false;       // decoder self-attention
    bool cross = false;        // cross-attention over a memory (BART's decoder)
    std::string prefix_mlp = "prefix_encoder.";  // reparameterised prefix-tuning's MLP (HF PEFT's name)
};

class LayerStack {
public:
    // Declares the prefix MLP (reparameterised prefix-tuning), the layers and MEFT's adapters,
    // in that order.
    LayerStack(const ModelConfig& cfg, const MethodConfig& method, ParameterStore& ps, const StackSpec& spec,
               ModelArenas arenas);

    // Whether the embeddings' output is read again in backward by the stack (false under MEFT,
    // which copies it into its streams): a model may then place it in scratch.
    bool keeps_input(const ForwardOptions& o) const;
    // x [B,T,C]: the embeddings' output; key_mask [B,T] I32. Returns the last layer's output (or
    // MEFT's merge). Prefix-tuning's mask and MLP run first.
    Tensor forward(Tensor x, const HostBatch& batch, Tensor key_mask, const ForwardOptions& o);
    // grad [B,T,C]: d(output) in, d(x) out. Parameter gradients accumulate.
    void backward(Tensor grad, const ForwardOptions& o, int example_offset);
    // Cross-attention stacks: the memory [B,S,C] and its key mask [B,S] (set before forward; they
    // must live until backward), and the buffer backward adds d(memory) into (set before backward).
    void set_memory(Tensor memory, Tensor mask) { memory_ = memory, memory_mask_ = mask; }
    void set_memory_grad(Tensor dmemory) { dmemory_ = dmemory; }

    const MeftEncoder* meft() const { return meft_.get(); }
    const std::vector<TransformerLayer>& layers() const { return layers_; }

private:
    LayerContext context(Arena& saved, const ForwardOptions& o, int off) const;
    MeftEnv meft_env(const ForwardOptions& o, int off) const;
    void prefix_forward(const HostBatch& batch);

    ModelConfig cfg_;
    MethodConfig method_;
    StackSpec spec_;
    ModelArenas ar_;
    std::vector<TransformerLayer> layers_;
    std::unique_ptr<MeftEncoder> meft_;
    int prefix_emb_ = -1, prefix_w1_ = -1, prefix_b1_ = -1, prefix_w2_ = -1, prefix_b2_ = -1;  // prefix MLP
    // the current step
    Tensor key_mask_, prefix_mask_, prefix_pre_, prefix_hidden_, prefix_dhidden_;
    Tensor memory_, memory_mask_, dmemory_;
    std::vector<TransformerLayer::Acts> la_;  // with checkpointing only .x (the layer input) is kept
};

}  // namespace meft
