// transformer_layer.h — one transformer layer with the edits a fine-tuning method makes to it:
// LoRA on any of its six linears, (IA)3 scalings, sequential adapters after attention and/or FFN
// (Houlsby, Pfeiffer), a parallel FFN adapter, prefix keys and values.
//
// Post-LN (BERT, RoBERTa encoder layers; bidirectional, GELU):
//   attention block: q,k,v = x W + b (LoRA, IA3 on k,v) ; ctx = MHSA ; d = Dropout(ctx Wo + bo)
//                    [d += A_attn(d)] ; h1 = LN1(x + d)
//   FFN block:       a = act(h1 W1 + b1) [* l_ff] ; f = Dropout(a W2 + b2) [f += A_ffn(f)]
//                    [f += s * A_par(h1)] ; out = LN2(h1 + f)
// Pre-LN (OPT decoder layers; causal self-attention, ReLU):
//   attention block: xn = LN1(x) ; q,k,v = xn W + b ; ctx = causal MHSA ; d = Dropout(ctx Wo + bo)
//                    [d += A_attn(d)] ; h1 = x + d
//   FFN block:       hn = LN2(h1) ; a = act(hn W1 + b1) [* l_ff] ; f = Dropout(a W2 + b2)
//                    [f += A_ffn(f)] [f += s * A_par(hn)] ; out = h1 + f
// (the parallel adapter reads the normalised FFN input, as MEFT's OPT code does: spec §2.2).
//
// Tensor names are Hugging Face's for the architecture (bert.encoder.layer.N.attention.self.query,
// model.decoder.layers.N.self_attn.q_proj, ...); a method's added tensors hang off them.
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
};

class TransformerLayer {
public:
    // prefix_w2 / prefix_b2: the reparameterised prefix MLP's output layer [2·L·C, H] / [2·L·C]
    // (declared by the model, shared by all layers), or -1.
    TransformerLayer(int index, const ModelConfig& cfg, const MethodConfig& method, ParameterStore& ps,
                 const std::string& prefix, int prefix_w2 = -1, int prefix_b2 = -1);

    struct Linear {         // a base linear and its optional LoRA
        int w = -1, b = -1;
        LoraWeights lora;
        int site = 0;       // dropout position of the LoRA branch
    };
    struct Acts {           // what the layer keeps for backward
        Tensor x, q, k, v, k_pre, v_pre, kf, vf, probs, ctx, d, res1, mean1, rstd1, h1, pre, act, act_pre, f, res2, mean2,
            rstd2, out;
        Tensor xn, hn;      // pre-LN: the normalised inputs of the attention and FFN blocks
        Tensor lora_xa[6];
        AdapterActs adapter_attn, adapter_ffn, adapter_par;
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
    // The two blocks alone (MEFT3 makes them F and G of a reversible coupling).
    void attention_forward(Acts& a, Tensor x, const LayerContext& ctx) const;  // x -> a.h1
    void ffn_forward(Acts& a, Tensor h1, const LayerContext& ctx) const;       // h1 -> a.out
    void attention_backward(const Acts& a, Tensor G, const LayerContext& ctx) const;  // d(h1) -> d(x)
    void ffn_backward(const Acts& a, Tensor G, const LayerContext& ctx) const;        // d(out) -> d(h1)
    int index() const { return index_; }
    // The Hugging Face name prefix of this layer's tensors ("bert.encoder.layer.3.").
    const std::string& names() const { return names_; }
    bool relu() const { return relu_; }

private:
    void linear_forward(const Linear& l, int slot, Tensor out, Tensor x, Acts& a, const LayerContext& c,
                        const char* tag) const;
    void linear_backward(const Linear& l, int slot, Tensor dx, Tensor dout, Tensor x, const Acts& a,
                         const LayerContext& c, bool accumulate) const;
    PhiloxKey key(const LayerContext& c, int position) const;
    double p_hidden(const LayerContext& c) const { return c.train ? cfg_.hidden_dropout : 0.0; }

    int index_;
    std::string names_;
    bool pre_ln_ = false, relu_ = false, causal_ = false;
    ModelConfig cfg_;
    MethodConfig method_;
    Linear q_, k_, v_, o_, fin_, fout_;
    int ln1_w_, ln1_b_, ln2_w_, ln2_b_;
    int ia3_k_ = -1, ia3_v_ = -1, ia3_ff_ = -1;
    int prefix_k_ = -1, prefix_v_ = -1;        // prefix-tuning: this layer's [P,C] keys and values
    int prefix_w2_ = -1, prefix_b2_ = -1;      // or rows of the shared MLP's output layer
    void prefix_kv(Tensor& pk, Tensor& pv, const LayerContext& c) const;
    AdapterWeights adapter_attn_, adapter_ffn_, adapter_par_;
};

}  // namespace meft
