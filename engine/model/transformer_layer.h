// transformer_layer.h — one transformer layer, with the sites where a method edits it
// (model/edits.h): a branch on any projection [+ E(x)], per-channel scalings of keys, values and
// the FFN's activation [* s], branches after attention and after the FFN [d += A(d)], a branch
// beside the FFN [f += A_par(h)], virtual keys and values before self-attention's. The layer asks
// the method's StackEdit for each while it declares its tensors and calls what it got.
//
// Post-LN (BERT, RoBERTa, BART encoder and decoder layers; GELU):
//   attention block: q,k,v = x W + b (LoRA, IA3 on k,v) ; ctx = MHSA ; d = Dropout(ctx Wo + bo)
//                    [d += A_attn(d)] ; h = LN1(x + d)
//   cross-attention (BART decoder): the same block with q from h and k,v from the encoder's
//                    output m (padding keys masked, not causal) ; h = LNc(h + d)
//   FFN block:       a = Dropout_act(act(h W1 + b1)) [* l_ff] ; f = Dropout(a W2 + b2)
//                    [f += A_ffn(f)] [f += s * A_par(h)] ; out = LN2(h + f)
// Pre-LN (OPT decoder layers; ReLU):
//   attention block: xn = LN1(x) ; q,k,v = xn W + b ; ctx = MHSA ; d = Dropout(ctx Wo + bo)
//                    [d += A_attn(d)] ; h = x + d
//   FFN block:       hn = LN2(h) ; a = act(hn W1 + b1) [* l_ff] ; f = Dropout(a W2 + b2)
//                    [f += A_ffn(f)] [f += s * A_par(hn)] ; out = h + f
// (the parallel adapter reads the normalised FFN input, as MEFT's OPT code does: spec §2.2).
// Decoder layers (OPT, BART's decoder) mask self-attention causally.
//
// Cross-attention's projections are the same sites with SiteSpec::cross set (Hugging Face PEFT's
// target modules q_proj / v_proj / k_proj match both); the key/value prefix and the branch after
// attention belong to self-attention only.
//
// Tensor names are Hugging Face's for the architecture (bert.encoder.layer.N.attention.self.query,
// model.decoder.layers.N.self_attn.q_proj, model.decoder.layers.N.encoder_attn.k_proj, ...); a
// method's added tensors hang off them.
//
// Dropout positions inside a layer (part of every Philox key) are fixed in transformer_layer.cpp.
#pragma once
#include <memory>
#include <string>

#include "core/arena.h"
#include "core/backend.h"
#include "model/config.h"
#include "model/edits.h"
#include "model/params.h"

namespace meft {

struct LayerContext {
    Backend& be;
    ParameterStore& ps;
    Arena& saved;           // activations kept for backward
    Arena& tmp;             // temporaries, reset between layers
    Tensor key_mask;        // [B,T] I32
    bool train;
    std::uint64_t seed;
    std::uint32_t step;
    int example_offset;
    bool backbone_only = false;  // skip the method's edits: the backbone's own function
    // Cross-attention (BART decoder layers): the encoder's output [B,S,C], its key mask [B,S] and
    // the gradient buffer every decoder layer's backward adds into.
    Tensor memory, memory_mask, dmemory;
    // The first example of this call within the step's batch, when a recompute runs a chunk of
    // it (key_mask, memory and dropout offsets are the chunk's; a prefix's mask is the batch's).
    std::int64_t batch_row = 0;
};

// Where a layer sits: its Hugging Face names and its place in the model.
struct LayerSpec {
    int index = 0;        // within its stack: the number in its names, its rows of the prefix MLP
    int tag = 0;          // within the model: activation tags and dropout keys (BART's decoder
                          // layers follow the encoder's)
    int count = 0;        // layers in its stack
    std::string names;    // name prefix of its tensors, e.g. "bert.encoder.layer.3."
    bool causal = false;  // decoder self-attention
    bool cross = false;   // cross-attention over the encoder's output (BART decoder)
};

class TransformerLayer {
public:
    // `edit`: the method's edits of this layer's stack (asked site by site here), or null for
    // the plain backbone.
    TransformerLayer(const LayerSpec& spec, const ModelConfig& cfg, const StackEdit* edit, ParameterStore& ps);

    struct Linear {         // a base projection and its optional edit
        int w = -1, b = -1;
        std::shared_ptr<const LinearEdit> edit;
        int site = 0;       // dropout position of the edit's branch
    };
    struct Attention {      // one attention block's weights
        Linear q, k, v, o;
        int ln_w = -1, ln_b = -1;
        std::shared_ptr<const ScaleEdit> scale_k, scale_v;
        std::shared_ptr<const BranchEdit> after;  // the branch after the output projection (self-attention)
        int probs_site = 0, out_site = 0;  // dropout positions
        bool self = true;
    };
    struct AttnActs {       // what one attention block keeps for backward
        Tensor x, xn, q, k, v, k_pre, v_pre, kf, vf, probs, ctx, d, res, mean, rstd, out;
        Tensor lse, key_mask;  // tiled attention: the rows' log-sum-exp (kept) and the keys' mask (not owned)
        Tensor edit_kept[4];  // q, k, v, o: what their edits keep
        BranchActs after;
    };
    struct Acts {           // what the layer keeps for backward
        Tensor x;           // the layer's input
        AttnActs self, cross;
        Tensor h1;          // the FFN block's input: the attention blocks' output
        Tensor hn, pre, act, act_pre, f, res2, mean2, rstd2, out;
        Tensor edit_fin, edit_fout;
        BranchActs after_ffn, ffn_parallel;
    };

    // x [B,T,C] (kept by reference). Everything else is allocated in ctx.saved, tagged by layer.
    void forward(Acts& a, Tensor x, const LayerContext& ctx) const {
        attention_forward(a, x, ctx);
        ffn_forward(a, a.h1, ctx);
    }
    // G [B,T,C]: in d(out), out d(x). Parameter gradients accumulate.
    void backward(const Acts& a, Tensor G, const LayerContext& ctx) const {
        ffn_backward(a, G, ctx);
        attention_backward(a, G, ctx);
    }
    // The two halves alone (MEFT3 makes them F and G of a reversible coupling). The attention
    // half is self-attention, then cross-attention where the layer has it.
    void attention_forward(Acts& a, Tensor x, const LayerContext& ctx) const;  // x -> a.h1
    void ffn_forward(Acts& a, Tensor h1, const LayerContext& ctx) const;       // h1 -> a.out
    void attention_backward(const Acts& a, Tensor G, const LayerContext& ctx) const;  // d(h1) -> d(x)
    void ffn_backward(const Acts& a, Tensor G, const LayerContext& ctx) const;        // d(out) -> d(h1)
    int tag() const { return spec_.tag; }
    // The Hugging Face name prefix of this layer's tensors ("bert.encoder.layer.3.").
    const std::string& names() const { return spec_.names; }
    bool relu() const { return relu_; }
    const ModelConfig& config() const { return cfg_; }

private:
    void declare_attention(Attention& w, bool self, const StackEdit* edit, ParameterStore& ps);
    SiteSpec site(Site s, std::string module, int in = 0, int out = 0, bool cross = false) const;
    SiteSpec linear_site(Site s, std::string module, int in, int out, bool cross, int weight) const;
    EditCall edit_call(const LayerContext& c, int position) const;
    void block_forward(const Attention& w, AttnActs& a, Tensor x, const LayerContext& c) const;
    void block_backward(const Attention& w, const AttnActs& a, Tensor G, const LayerContext& c) const;
    void linear_forward(const Linear& l, Tensor out, Tensor x, Tensor& xa, const LayerContext& c,
                        const std::string& tag) const;
    void linear_backward(const Linear& l, Tensor dx, Tensor dout, Tensor x, Tensor xa, const LayerContext& c,
                         bool accumulate) const;
    PhiloxKey key(const LayerContext& c, int position) const;
    double p_hidden(const LayerContext& c) const { return c.train ? cfg_.hidden_dropout : 0.0; }
    double p_act(const LayerContext& c) const { return c.train ? cfg_.activation_dropout : 0.0; }

    LayerSpec spec_;
    bool pre_ln_ = false, relu_ = false;
    ModelConfig cfg_;
    Attention self_, cross_;
    Linear fin_, fout_;
    int ln2_w_, ln2_b_;
    std::shared_ptr<const ScaleEdit> scale_act_;                  // the FFN's activation
    std::shared_ptr<const PrefixEdit> prefix_;                    // self-attention's virtual keys and values
    std::shared_ptr<const BranchEdit> after_ffn_, ffn_parallel_;
};

}  // namespace meft
