// edits.h — where a fine-tuning method may change a model, and what it implements there.
//
// A method is an edit of the backbone (docs/methods.md): model/ exposes named sites and calls
// the hooks below; it names no method. Each method is a unit in engine/peft/ that declares its
// tensors at the sites it edits and computes there.
//
// Sites of a transformer layer (transformer_layer.h shows the computation around them):
//   query, key, value, attention_output, ffn_in, ffn_out   a linear projection: a LinearEdit
//                                                          adds a branch to its output (LoRA)
//   key, value, ffn_activation                             a per-channel scaling: a ScaleEdit
//                                                          ((IA)3: keys, values, the FFN's
//                                                          activation)
//   after_attention, after_ffn                             a block's output branch d before its
//                                                          residual sum: a BranchEdit, d + A(d)
//   ffn_parallel                                           beside the FFN, reading its input: a
//                                                          BranchEdit adds A(input) to its output
//   key_value_prefix                                       virtual keys and values before
//                                                          self-attention's own (prefix-tuning)
// and of a layer stack: what runs before its layers and after their backward (StackEdit), or a
// StackRunner that runs the layers itself (MEFT's reversible coupling of whole layers or of
// their attention and FFN halves).
//
// Order: a layer asks for its edits site by site while it declares its own tensors, so a
// method's tensors are declared right after those of the site they edit; the parameter order is
// part of every checkpoint and of the gradient norm's summation order.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "model/batch.h"
#include "model/config.h"
#include "model/params.h"

namespace meft {

class TransformerLayer;

enum class Site {
    Query, Key, Value, AttentionOutput, FfnIn, FfnOut,
    FfnActivation, AfterAttention, AfterFfn, FfnParallel, KeyValuePrefix,
};
// "query", "key", "value", "attention_output", "ffn_in", "ffn_out", "ffn_activation",
// "after_attention", "after_ffn", "ffn_parallel", "key_value_prefix"
const char* site_name(Site s);

// What a method is told about a site when it declares its tensors there.
struct SiteSpec {
    Site site = Site::Query;
    // The Hugging Face module its tensors hang off: a projection's own name
    // ("bert.encoder.layer.3.attention.self.query"); for ffn_activation the FFN's output
    // projection (which reads the activation); for a branch, the branch module's name
    // ("bert.encoder.layer.3.output.adapter"); for key_value_prefix the self-attention module.
    std::string module;
    int layer = 0;          // index within its stack
    int layers = 0;         // layers in the stack
    bool cross = false;     // a cross-attention projection (BART's decoder)
    int in = 0, out = 0;    // a projection's input and output width; a scaling's width; else C
    bool relu = false;      // the backbone's activation: ReLU (OPT), else GELU
    int weight = -1;        // a projection's weight [out, in] (its parameter index), for edits that read it (DoRA)
};

// One forward or backward call of an edit: the backend, the parameters, a temporary arena (reset
// between layers), the dropout stream the layer assigns to the site, and the batch position.
struct EditCall {
    Backend& be;
    ParameterStore& ps;
    Arena& tmp;
    bool train;
    double hidden_dropout;  // the backbone's hidden dropout rate in this mode (0 in evaluation)
    PhiloxKey key;
    int example_offset;     // first example's index within the optimizer step
};

// A branch added to a projection's output: out += branch(x).
class LinearEdit {
public:
    virtual ~LinearEdit() = default;
    // Returns what backward needs besides x, allocated in `saved` (tagged `layer`, `name`).
    virtual Tensor forward(const EditCall& c, Tensor out, Tensor x, Arena& saved, int layer,
                           const std::string& name) const = 0;
    // dx += the branch's input gradient; its parameter gradients accumulate.
    virtual void backward(const EditCall& c, Tensor dx, Tensor dout, Tensor x, Tensor kept) const = 0;
    // Whether backward reads x (else the layer may drop a frozen projection's input: LoRA-FA).
    virtual bool needs_input() const { return true; }
};

// A per-channel scaling of a site's output: out[N,C] = inp[N,C] * s[C].
class ScaleEdit {
public:
    virtual ~ScaleEdit() = default;
    virtual void forward(const EditCall& c, Tensor out, Tensor inp) const = 0;
    // dinp = dout * s (dinp may be dout); ds accumulates.
    virtual void backward(const EditCall& c, Tensor dinp, Tensor dout, Tensor inp) const = 0;
};

// What a branch keeps for backward: its input (owned by the caller), and its hidden layer
// before and after the activation.
struct BranchActs {
    Tensor inp, pre, act;
};

// A function A of a block's branch or input, added to the block's output. Sequential sites
// (after_attention, after_ffn) call forward with accumulate = false: out = A(d), to which the
// layer adds d (A's own skip). ffn_parallel calls it with accumulate = true: out += A(input).
class BranchEdit {
public:
    virtual ~BranchEdit() = default;
    // Allocates a.pre and a.act in `saved`.
    virtual void forward(const EditCall& c, BranchActs& a, Arena& saved, int layer, const std::string& name,
                         Tensor out, bool accumulate) const = 0;
    // dinp += (dA/d(inp))^T dout; dinp may be dout (dout is read in full first).
    virtual void backward(const EditCall& c, const BranchActs& a, Tensor dinp, Tensor dout) const = 0;
};

// Virtual keys and values prepended to self-attention's, always attended.
class PrefixEdit {
public:
    virtual ~PrefixEdit() = default;
    virtual int length() const = 0;                          // P
    virtual Tensor key_mask() const = 0;                     // [B,P+T] I32 of the current step
    virtual void keys_values(const EditCall& c, Tensor& pk, Tensor& pv) const = 0;  // [P,C] each, in c.tmp
    // From the prefixed keys' and values' gradients dkf, dvf [B,P+T,C]: the tokens' part into
    // dk, dv [B,T,C] (assigned), the prefix's into its parameters (accumulated).
    virtual void backward(const EditCall& c, Tensor dk, Tensor dv, Tensor dkf, Tensor dvf) const = 0;
};

// Which layers a stack holds and how they are named.
struct StackSpec {
    std::string names;         // Hugging Face prefix of the layers: "bert.encoder.layer.", "model.decoder.layers."
    int count = 0;             // layers in the stack
    int first_tag = 0;         // tag of its first layer within the model (BART's decoder: encoder_layers)
    bool causal = false;       // decoder self-attention
    bool cross = false;        // cross-attention over a memory (BART's decoder)
    std::string prefix_mlp = "prefix_encoder.";  // where a stack-wide prefix module is named (HF PEFT's)
};

// What one forward or backward of a whole stack has at hand.
struct StackEnv {
    Backend& be;
    ParameterStore& ps;
    Arena& saved;               // activations kept until backward (tagged per layer)
    Arena& scratch;             // backward's gradient buffers
    Arena& tape;                // one sub-function's recomputed tape (reset per use)
    Arena& tmp;                 // temporaries (reset per use)
    Tensor key_mask;
    bool train;
    std::uint64_t seed;
    std::uint32_t step;
    int example_offset;
    MemoryMeter* meter = nullptr;                 // optional: per-layer backward transients
    std::vector<std::size_t>* transient = nullptr;  // indexed by layer + 1
    bool check_reconstruction = false;            // keep true inputs this step (diagnostic)
    Tensor memory, memory_mask, dmemory;          // cross-attention (BART decoder): see LayerContext
};

// A stack that runs its layers itself instead of one after another.
class StackRunner {
public:
    virtual ~StackRunner() = default;
    // h0 [B,T,C] (the embeddings' output) -> the stack's output [B,T,C].
    virtual Tensor forward(Tensor h0, const StackEnv& env) = 0;
    // d(output) [B,T,C] -> d(h0) (written into `d`), adding parameter gradients.
    virtual void backward(Tensor d, const StackEnv& env) = 0;
    // Relative error of the inputs a reversible stack rebuilt in the last backward, per layer
    // (0 for layers it does not rebuild); empty unless asked for.
    virtual const std::vector<double>& reconstruction_error() const = 0;
};

// One method's edits of one layer stack. Every hook's default is "no edit".
class StackEdit {
public:
    virtual ~StackEdit() = default;
    // Asked while a layer declares its tensors, site by site; nullptr: no edit at this site.
    virtual std::unique_ptr<LinearEdit> linear(const SiteSpec&, ParameterStore&) const { return nullptr; }
    virtual std::unique_ptr<ScaleEdit> scale(const SiteSpec&, ParameterStore&) const { return nullptr; }
    virtual std::unique_ptr<BranchEdit> branch(const SiteSpec&, ParameterStore&) const { return nullptr; }
    virtual std::unique_ptr<PrefixEdit> prefix(const SiteSpec&, ParameterStore&) const { return nullptr; }
    // After the layers are declared: a runner that replaces the plain layer loop, or nullptr.
    virtual std::unique_ptr<StackRunner> runner(const std::vector<TransformerLayer>&, ParameterStore&) {
        return nullptr;
    }
    // Each step, before the layers run (`active`: false for the backbone's own function, which
    // skips every edit), after the last layer's backward has started and ended.
    virtual void begin_forward(const StackEnv&, const HostBatch&, bool active) { (void)active; }
    virtual void begin_backward(const StackEnv&) {}
    virtual void end_backward(const StackEnv&) {}
};

// A fine-tuning method as a whole: its edits of each stack, and which backbone tensors train.
class ModelEdit {
public:
    virtual ~ModelEdit() = default;
    // The edits of one stack; called by the stack before it declares its layers (so a stack-wide
    // module's tensors come first).
    virtual std::unique_ptr<StackEdit> edit_stack(const StackSpec& spec, const ModelConfig& cfg,
                                                  ParameterStore& ps) const = 0;
    // Whether a backbone parameter (Hugging Face name; `head`: of the task's classifier) trains;
    // the method's own always do.
    virtual bool backbone_trainable(const std::string& name, bool head) const = 0;
    // Keep only each layer's input and recompute the layer in backward (gradient checkpointing).
    virtual bool checkpoint_layers() const { return false; }
    // Recomputed layers run on chunks of whole examples of at most this many tokens (0: no chunks).
    virtual int recompute_tokens() const { return 0; }
};

// Examples per recompute chunk: as many whole examples of T tokens as `tokens` holds, at least one
// and at most the batch's B; tokens <= 0: the whole batch.
inline std::int64_t examples_per_chunk(int tokens, std::int64_t B, std::int64_t T) {
    if (tokens <= 0) return B;
    return std::clamp<std::int64_t>(tokens / std::max<std::int64_t>(T, 1), 1, B);
}

}  // namespace meft
