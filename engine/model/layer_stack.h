// layer_stack.h — the L transformer layers between a model's embeddings and its head, run the way
// the method's edit says (model/edits.h): plainly (activations kept), with gradient checkpointing
// (only each layer's input kept; recomputed in backward), or by the edit's own StackRunner (a
// reversible stack); the edit's stack-wide work (a shared prefix MLP) runs before and after.
// BERT, RoBERTa and OPT have one; BART has two (encoder, then a decoder whose layers also attend
// to the encoder's output). Only the layers' style (post-/pre-LN, causal, cross) differs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "model/batch.h"
#include "model/edits.h"
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

class LayerStack {
public:
    // Declares the edit's stack-wide tensors, the layers (with their edits) and the runner's, in
    // that order. `edit` may be null: the plain backbone.
    LayerStack(const ModelConfig& cfg, const ModelEdit* edit, ParameterStore& ps, const StackSpec& spec,
               ModelArenas arenas);
    ~LayerStack();

    // Whether the embeddings' output is read again in backward by the stack (false under a
    // runner such as MEFT's, which copies it into its streams): a model may then place it in
    // scratch.
    bool keeps_input(const ForwardOptions& o) const;
    // x [B,T,C]: the embeddings' output; key_mask [B,T] I32. Returns the last layer's output (or
    // a runner's output). The edit's stack-wide forward runs first.
    Tensor forward(Tensor x, const HostBatch& batch, Tensor key_mask, const ForwardOptions& o);
    // grad [B,T,C]: d(output) in, d(x) out. Parameter gradients accumulate.
    void backward(Tensor grad, const ForwardOptions& o, int example_offset);
    // Cross-attention stacks: the memory [B,S,C] and its key mask [B,S] (set before forward; they
    // must live until backward; the last step's d(memory) buffer is forgotten), and the buffer
    // backward adds d(memory) into (set before backward).
    void set_memory(Tensor memory, Tensor mask) { memory_ = memory, memory_mask_ = mask, dmemory_ = Tensor{}; }
    void set_memory_grad(Tensor dmemory) { dmemory_ = dmemory; }

    // The edit's runner (MEFT's reversible stack), or null when the layers run one by one.
    const StackRunner* runner() const { return runner_.get(); }
    const std::vector<TransformerLayer>& layers() const { return layers_; }

private:
    LayerContext context(Arena& saved, const ForwardOptions& o, int off) const;
    // Examples [b0, b0 + n) of the step's batch: their masks, memory rows and dropout offset.
    LayerContext chunk_context(Arena& saved, const ForwardOptions& o, int off, std::int64_t b0, std::int64_t n) const;
    StackEnv stack_env(const ForwardOptions& o, int off) const;

    ModelConfig cfg_;
    StackSpec spec_;
    ModelArenas ar_;
    std::unique_ptr<StackEdit> edit_;     // null: the plain backbone
    bool checkpoint_layers_ = false;
    int recompute_tokens_ = 0;
    std::vector<TransformerLayer> layers_;
    std::unique_ptr<StackRunner> runner_;
    // the current step
    Tensor key_mask_;
    Tensor memory_, memory_mask_, dmemory_;
    std::vector<TransformerLayer::Acts> la_;  // with checkpointing only .x (the layer input) is kept
};

}  // namespace meft
