// transformer_layer.h — one transformer layer with the edits a fine-tuning method makes to it:
// LoRA on any of its linears, (IA)3 scalings, sequential adapters after attention and/or FFN
// (Houlsby, Pfeiffer), a parallel FFN adapter, prefix keys and values.
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
// LoRA and (IA)3 act on cross-attention's projections too (their site names match both, as
// Hugging Face PEFT's target modules q_proj / v_proj / k_proj do); prefixes and the sequential
// attention adapter belong to self-attention only.
//
// Tensor names are Hugging Face's for the architecture (bert.encoder.layer.N.attention.self.query,
// model.decoder.layers.N.self_attn.q_proj, model.decoder.layers.N.encoder_attn.k_proj, ...); a
// method's added tensors hang off them.
//
// Dropout positions inside a layer (part of every Philox key) are fixed in transformer_layer.cpp.
#pragma once
#include <string>

#include "core/arena.h"
#include "core/backend.h"
#include "model/config.h"
#include "model/params.h"
#include "peft/adapter.h"
#include "peft/lora.h"
#include "peft/method.h"

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
    Tensor prefix_mask;     // [B,P+T] I32: prefix-tuning's keys (P ones, then key_mask)
    Tensor prefix_hidden;   // [P,H] reparameterised prefix-tuning: the shared MLP's hidden layer
    Tensor prefix_dhidden;  // [P,H] its gradient, accumulated by every layer's backward
    // Cross-attention (BART decoder layers): the encoder's output [B,S,C], its key mask [B,S] and
    // the gradient buffer every decoder layer's backward adds into.
    Tensor memory, memory_mask, dmemory;
};

// Where a layer sits: its Hugging Face names and its place in the model.
struct LayerSpec {
    int index = 0;        // within its stack: the number in its names, its rows of the prefix MLP
    int tag = 0;          // within the model: activation tags and dropout keys (BART's decoder
                          // layers follow the encoder's)
    std::string names;    // name prefix of its tensors, e.g. "bert.encoder.layer.3."
    bool causal = false;  // decoder self-attention
    bool cross = false;   // cross-attention over the encoder's output (BART decoder)
};

class TransformerLayer {
public:
    // prefix_w2 / prefix_b2: the reparameterised prefix MLP's output layer [2·L·C, H] / [2·L·C]
    // (declared by the stack, shared by its layers), or -1.
    TransformerLayer(const LayerSpec& spec, const ModelConfig& cfg, const MethodConfig& method, ParameterStore& ps,
                     int prefix_w2 = -1, int prefix_b2 = -1);

    struct Linear {         // a base linear and its optional LoRA
        int w = -1, b = -1;
        LoraWeights lora;
        int site = 0;       // dropout position of the LoRA branch
    };
    struct Attention {      // one attention block's weights
        Linear q, k, v, o;
        int ln_w = -1, ln_b = -1;
        int ia3_k = -1, ia3_v = -1;
        AdapterWeights adapter;  // sequential adapter after the output projection (self-attention)
        int probs_site = 0, out_site = 0;  // dropout positions
        bool self = true;
    };
    struct AttnActs {       // what one attention block keeps for backward
        Tensor x, xn, q, k, v, k_pre, v_pre, kf, vf, probs, ctx, d, res, mean, rstd, out;
        Tensor lora_xa[4];  // q, k, v, o
        AdapterActs adapter;
    };
    struct Acts {           // what the layer keeps for backward
        Tensor x;           // the layer's input
        AttnActs self, cross;
        Tensor h1;          // the FFN block's input: the attention blocks' output
        Tensor hn, pre, act, act_pre, f, res2, mean2, rstd2, out;
        Tensor lora_fin, lora_fout;
        AdapterActs adapter_ffn, adapter_par;
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

private:
    void declare_attention(Attention& w, bool self, ParameterStore& ps);
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
    MethodConfig method_;
    Attention self_, cross_;
    Linear fin_, fout_;
    int ln2_w_, ln2_b_;
    int ia3_ff_ = -1;
    int prefix_k_ = -1, prefix_v_ = -1;        // prefix-tuning: this layer's [P,C] keys and values
    int prefix_w2_ = -1, prefix_b2_ = -1;      // or rows of the shared MLP's output layer
    void prefix_kv(Tensor& pk, Tensor& pv, const LayerContext& c) const;
    AdapterWeights adapter_ffn_, adapter_par_;
};

}  // namespace meft
