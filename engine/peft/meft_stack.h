// meft_stack.h — MEFT1/2/3: a layer stack made reversible (docs/meft.md and ../shared/docs/meft-spec.md).
//
//   h0 -> [frozen prefix: plain layers, nothing stored] -> duplicate (x1 = x2 = h)
//      -> [reversible layers: store only remainders; rebuild inputs in backward]
//      -> [vanilla layers: same coupling, ordinary backprop with stored tapes]
//      -> merge (x1 + x2) / 2 (encoders; OPT: the stream tracking the backbone weighs 1, the other 0.1)
//      -> head
//
// Coupling per layer: y1 = λ·x1 + F(x2), y2 = β·x2 + G(y1); MEFT1/2 emit [y2 | y1] (swap).
//   MEFT1: F = PLM layer with a parallel FFN adapter, G = adapter;   λ = 0.1, β = 1
//   MEFT2: F = adapter, G = PLM layer with a parallel FFN adapter;   λ = 1,   β = 0.1
//   MEFT3: F = attention block + adapter, G = FFN block + parallel adapter; λ = β = 0.1, no swap
//
// Streams are int64 fixed point (exact: x1 = m·(y1 − F(x2)) + remainder, integer arithmetic) or
// float64 (x1 = (y1 − F(x2))·m, drifts with depth). F and G are recomputed with the same kernels
// and the same Philox keys, so in exact mode the rebuilt inputs equal the forward's bit for bit.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "model/edits.h"
#include "model/transformer_layer.h"
#include "peft/adapter.h"
#include "peft/method.h"

namespace meft {

// The method: MEFT3's adapter after attention and every variant's parallel FFN adapter on the
// layers above the frozen prefix, and the reversible runner (declared after the layers).
std::unique_ptr<StackEdit> meft_stack(const MethodConfig& method, const ModelConfig& cfg);

class MeftEncoder final : public StackRunner {
public:
    // Declares the reversible adapters (G for MEFT1, F for MEFT2) of the coupled layers. Works on
    // any stack: an encoder's, OPT's decoder, or BART's encoder and decoder (one each).
    MeftEncoder(const ModelConfig& cfg, const MethodConfig& method, ParameterStore& ps,
                const std::vector<TransformerLayer>& layers);

    // h0 [B,T,C] (embedding output) -> merged hidden [B,T,C], allocated in env.saved.
    Tensor forward(Tensor h0, const StackEnv& env) override;
    // d(merged) [B,T,C] -> dh0 (written into `d`), adding parameter gradients.
    void backward(Tensor d, const StackEnv& env) override;

    int first_coupled() const { return prefix_; }
    int first_vanilla() const { return prefix_ + reversible_; }
    // With keep_true_inputs or a step's check_reconstruction: relative error ||x̂ − x|| / ||x|| of
    // the rebuilt streams (x1 and x2 together) per layer (0 for non-reversible ones), from the
    // last backward; empty otherwise.
    const std::vector<double>& reconstruction_error() const override { return recon_error_; }

private:
    enum class Fn { Layer, Adapter, Attention, Ffn };
    struct LayerState {           // per coupled layer
        int b1 = 0;               // which stream buffer holds x1 (and so y1)
        Tensor rem1, rem2;        // packed remainders (exact mode, m > 1)
        TransformerLayer::Acts f_acts, g_acts;  // tapes (vanilla layers only)
        AdapterActs f_adapter, g_adapter;
        Tensor f_in, g_in;        // compute-dtype inputs of F and G (vanilla layers only)
        Tensor true_x1, true_x2;  // diagnostic copies of the inputs
    };
    int tag(int l) const { return layers_[static_cast<std::size_t>(l)].tag(); }
    Tensor run_forward(Fn fn, int l, TransformerLayer::Acts& acts, AdapterActs& aa, Tensor in, const StackEnv& env,
                       Arena& tape) const;
    void run_backward(Fn fn, int l, const TransformerLayer::Acts& acts, const AdapterActs& aa, Tensor g, Tensor din,
                      const StackEnv& env, Arena& tape) const;
    // Reversible layers' forward: fn(in) on the tape, nothing kept (a PLM layer block by block,
    // through h1).
    Tensor output_only(Fn fn, int l, Tensor in, Tensor h1, const StackEnv& env) const;
    // Reversible layers: recompute fn(in) on the tape, hand its output to `rebuild` (the coupling
    // inverse), then backpropagate g -> din. A whole PLM layer is recomputed in two phases (FFN
    // block, then attention block) so only one block's tape is alive at a time.
    void recompute_backward(Fn fn, int l, Tensor in, Tensor g, Tensor din, Tensor h1, const StackEnv& env,
                            const std::function<void(Tensor)>& rebuild) const;
    // Reversible layers (and the frozen prefix) run on chunks of whole examples, at most
    // recompute_tokens tokens (at least one example), in forward and backward alike, so the
    // recomputed outputs are the forward's bit for bit; each chunk starts on a whole byte of the
    // packed remainders. chunk_env: the environment of examples [b0, b0 + n) (their masks,
    // cross-attention memory rows and dropout offset); remainder_part: their packed remainders.
    std::int64_t chunk_examples(std::int64_t B, std::int64_t T, std::int64_t C) const;
    static StackEnv chunk_env(const StackEnv& env, std::int64_t b0, std::int64_t n);
    static Tensor remainder_part(Tensor rem, int m, std::int64_t per_example, std::int64_t b0, std::int64_t n);
    template <typename Body> void for_chunks(std::int64_t B, Body&& body) const;  // body(b0, n) per chunk
    LayerContext context(const StackEnv& env, Arena& tape) const;

    ModelConfig cfg_;
    MethodConfig method_;
    const std::vector<TransformerLayer>& layers_;
    std::vector<AdapterWeights> rev_adapters_;  // indexed by layer; empty for MEFT3 and the prefix
    Fn f_fn_, g_fn_;
    bool swap_;
    int prefix_, reversible_, vanilla_;
    // state of the current step
    std::vector<LayerState> state_;
    Tensor s1_, s2_;              // the two stream buffers
    std::int64_t chunk_ = 1;      // examples per chunk (chunk_examples of the step's batch)
    Tensor in_buf_, h1_buf_;      // a chunk: a sub-function's input, a recomputed layer's h1
    Tensor boundary1_, boundary2_;  // reversible segment output, when vanilla layers follow
    std::vector<double> recon_error_;
    double merge_first_ = 0.5, merge_second_ = 0.5;  // top merge weights (first half = next x1)
    int top_b1_ = 0;              // the buffer holding the first half after the last layer
};

}  // namespace meft
