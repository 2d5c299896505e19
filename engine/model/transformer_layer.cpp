#include "model/transformer_layer.h"

#include "model/arch/arch.h"

namespace meft {

namespace {
// Dropout positions inside a layer (low byte of the Philox site id). 12 is MEFT's reversible
// adapter (peft/meft_stack.cpp).
enum Position {
    kAttnProbs = 0, kAttnOut = 1, kFfnOut = 2,
    kEditFirst = 3,  // + slot: the edits of query, key, value, attention_output, ffn_in, ffn_out
    kAfterAttn = 9, kAfterFfn = 10, kFfnParallel = 11,
    kCrossProbs = 14, kCrossOut = 15,
    kCrossEditFirst = 16,  // + slot: the edits of cross-attention's query, key, value, output
    kActivation = 20,      // activation_dropout (BART)
};
enum Slot { kQ = 0, kK, kV, kO, kFin, kFout };
const Site kLinearSites[6] = {Site::Query, Site::Key, Site::Value, Site::AttentionOutput, Site::FfnIn, Site::FfnOut};

}  // namespace

TransformerLayer::TransformerLayer(const LayerSpec& spec, const ModelConfig& cfg, const StackEdit* edit,
                                   ParameterStore& ps)
    : spec_(spec), cfg_(cfg) {
    const int C = cfg.hidden_size, I = cfg.intermediate_size;
    const LayerNames& n = arch_spec(cfg.arch).layer_names();
    pre_ln_ = cfg.pre_layer_norm;
    relu_ = cfg.hidden_act == "relu";
    const std::string& s = spec_.names;
    declare_attention(self_, true, edit, ps);
    if (spec.cross) declare_attention(cross_, false, edit, ps);
    auto lin = [&](Linear& l, int out, int in, int slot) {
        const std::string name = s + n.linear[slot];
        l.w = ps.declare(name + ".weight", {out, in}, Init::normal(cfg.initializer_range));
        l.b = ps.declare(name + ".bias", {out}, Init::zeros());
        l.site = kEditFirst + slot;
        if (edit) l.edit = edit->linear(linear_site(kLinearSites[slot], name, in, out, false, l.w), ps);
    };
    lin(fin_, I, C, kFin);
    lin(fout_, C, I, kFout);
    ln2_w_ = ps.declare(s + n.ln2 + ".weight", {C}, Init::ones());
    ln2_b_ = ps.declare(s + n.ln2 + ".bias", {C}, Init::zeros());
    if (!edit) return;
    scale_act_ = edit->scale(site(Site::FfnActivation, s + n.linear[kFout], I, I), ps);
    prefix_ = edit->prefix(site(Site::KeyValuePrefix, s + n.attention), ps);
    after_ffn_ = edit->branch(site(Site::AfterFfn, s + n.adapter_ffn), ps);
    ffn_parallel_ = edit->branch(site(Site::FfnParallel, s + n.adapter_par), ps);
}

SiteSpec TransformerLayer::site(Site s, std::string module, int in, int out, bool cross) const {
    const int C = cfg_.hidden_size;
    return SiteSpec{s, std::move(module), spec_.index, spec_.count, cross, in ? in : C, out ? out : C, relu_};
}

SiteSpec TransformerLayer::linear_site(Site s, std::string module, int in, int out, bool cross, int weight) const {
    SiteSpec sp = site(s, std::move(module), in, out, cross);
    sp.weight = weight;
    return sp;
}

void TransformerLayer::declare_attention(Attention& w, bool self, const StackEdit* edit, ParameterStore& ps) {
    const int C = cfg_.hidden_size;
    const LayerNames& n = arch_spec(cfg_.arch).layer_names();
    const std::string& s = spec_.names;
    w.self = self;
    w.probs_site = self ? kAttnProbs : kCrossProbs;
    w.out_site = self ? kAttnOut : kCrossOut;
    Linear* lins[4] = {&w.q, &w.k, &w.v, &w.o};
    for (int slot = 0; slot < 4; ++slot) {
        Linear& l = *lins[slot];
        const std::string name = s + (self ? n.linear[slot] : n.cross_linear[slot]);
        l.w = ps.declare(name + ".weight", {C, C}, Init::normal(cfg_.initializer_range));
        l.b = ps.declare(name + ".bias", {C}, Init::zeros());
        l.site = (self ? kEditFirst : kCrossEditFirst) + slot;
        if (edit) l.edit = edit->linear(linear_site(kLinearSites[slot], name, C, C, !self, l.w), ps);
    }
    const std::string ln = s + (self ? n.ln1 : n.cross_ln);
    w.ln_w = ps.declare(ln + ".weight", {C}, Init::ones());
    w.ln_b = ps.declare(ln + ".bias", {C}, Init::zeros());
    if (!edit) return;
    w.scale_k = edit->scale(site(Site::Key, s + (self ? n.linear[kK] : n.cross_linear[kK]), C, C, !self), ps);
    w.scale_v = edit->scale(site(Site::Value, s + (self ? n.linear[kV] : n.cross_linear[kV]), C, C, !self), ps);
    if (self) w.after = edit->branch(site(Site::AfterAttention, s + n.adapter_attn), ps);
}

PhiloxKey TransformerLayer::key(const LayerContext& c, int position) const {
    return philox_key(c.seed, c.step, dropout_site(spec_.tag, position));
}

EditCall TransformerLayer::edit_call(const LayerContext& c, int position) const {
    return EditCall{c.be, c.ps, c.tmp, c.train, p_hidden(c), key(c, position), c.example_offset};
}

void TransformerLayer::linear_forward(const Linear& l, Tensor out, Tensor x, Tensor& kept, const LayerContext& c,
                                      const std::string& tag) const {
    c.be.linear_forward(out, x, c.ps.value(l.w), c.ps.value(l.b));
    if (l.edit && !c.backbone_only) kept = l.edit->forward(edit_call(c, l.site), out, x, c.saved, spec_.tag, tag);
}

void TransformerLayer::linear_backward(const Linear& l, Tensor dx, Tensor dout, Tensor x, Tensor kept,
                                       const LayerContext& c, bool accumulate) const {
    c.be.linear_backward(dx, c.ps.grad(l.w), c.ps.grad(l.b), dout, x, c.ps.value(l.w), accumulate);
    if (l.edit) l.edit->backward(edit_call(c, l.site), dx, dout, x, kept);
}

void TransformerLayer::attention_forward(Acts& a, Tensor x, const LayerContext& c) const {
    a.x = x;
    block_forward(self_, a.self, x, c);
    a.h1 = a.self.out;
    if (!spec_.cross) return;
    MEFT_CHECK(c.memory, "a cross-attention layer needs the encoder's output");
    block_forward(cross_, a.cross, a.self.out, c);
    a.h1 = a.cross.out;
}

void TransformerLayer::attention_backward(const Acts& a, Tensor G, const LayerContext& c) const {
    if (spec_.cross) block_backward(cross_, a.cross, G, c);
    block_backward(self_, a.self, G, c);
}

void TransformerLayer::block_forward(const Attention& w, AttnActs& a, Tensor x, const LayerContext& c) const {
    const std::int64_t B = x.dim(0), T = x.dim(1), C = cfg_.hidden_size;
    const DType dt = x.dtype;
    Arena& S = c.saved;
    const int l = spec_.tag;
    Backend& be = c.be;
    const char* p = w.self ? "attn." : "cross.";
    auto name = [&](const char* what) { return std::string(p) + what; };
    auto act = [&](Shape sh, const char* what) { return S.alloc(dt, sh, l, name(what)); };
    // Keys and values: self-attention's from its own input, cross-attention's from the memory.
    const bool prefixed = w.self && prefix_ && !c.backbone_only;
    const std::int64_t S_kv = w.self ? T : c.memory.dim(1);
    a.x = x;
    a.q = act({B, T, C}, "q");
    a.k = act({B, S_kv, C}, "k");
    a.v = act({B, S_kv, C}, "v");
    // Standard attention keeps the probabilities; tiled attention keeps one log-sum-exp per query
    // row and reads ctx in backward.
    const bool tiled = cfg_.attention == AttentionKind::Tiled;
    if (!prefixed && !tiled) a.probs = act({B, cfg_.num_heads, T, S_kv}, "probs");
    // A linear's input is needed in backward only for its weight gradient (or LoRA): when the
    // output projection is frozen (and attention is standard), ctx is a temporary.
    const bool keep_ctx = tiled || c.ps.at(w.o.w).trainable || (w.o.edit && w.o.edit->needs_input());
    a.ctx = keep_ctx ? act({B, T, C}, "ctx") : c.tmp.alloc(dt, {B, T, C});
    a.mean = act({B * T}, "ln_mean");
    a.rstd = act({B * T}, "ln_rstd");
    a.out = act({B, T, C}, "out");
    // Post-LN sums into res and normalises into out; pre-LN normalises x into xn and sums into out.
    Tensor inp = x;
    if (pre_ln_) {
        a.xn = act({B, T, C}, "ln_out");
        a.res = a.out;
        be.layernorm_forward(a.xn, a.mean, a.rstd, x, c.ps.value(w.ln_w), c.ps.value(w.ln_b), cfg_.layer_norm_eps);
        inp = a.xn;
    } else {
        a.res = act({B, T, C}, "residual");
    }
    const Tensor kv_in = w.self ? inp : c.memory;

    linear_forward(w.q, a.q, inp, a.edit_kept[kQ], c, name("q"));
    const bool scaled = w.scale_k && !c.backbone_only;  // keys and values are scaled together
    const bool after = w.after && !c.backbone_only;
    if (scaled) {
        a.k_pre = act({B, S_kv, C}, "k_unscaled");
        a.v_pre = act({B, S_kv, C}, "v_unscaled");
        linear_forward(w.k, a.k_pre, kv_in, a.edit_kept[kK], c, name("k"));
        linear_forward(w.v, a.v_pre, kv_in, a.edit_kept[kV], c, name("v"));
        w.scale_k->forward(edit_call(c, w.out_site), a.k, a.k_pre);
        w.scale_v->forward(edit_call(c, w.out_site), a.v, a.v_pre);
    } else {
        linear_forward(w.k, a.k, kv_in, a.edit_kept[kK], c, name("k"));
        linear_forward(w.v, a.v, kv_in, a.edit_kept[kV], c, name("v"));
    }
    Tensor keys = a.k, values = a.v, mask = w.self ? c.key_mask : c.memory_mask;
    if (prefixed) {  // prepend the P virtual keys and values
        const std::int64_t P = prefix_->length();
        Tensor pk, pv;
        prefix_->keys_values(edit_call(c, w.probs_site), pk, pv);
        a.kf = act({B, P + T, C}, "k_prefixed");
        a.vf = act({B, P + T, C}, "v_prefixed");
        be.prefix_concat_forward(a.kf, pk, a.k);
        be.prefix_concat_forward(a.vf, pv, a.v);
        keys = a.kf, values = a.vf, mask = prefix_->key_mask().rows(c.batch_row, B);
        if (!tiled) a.probs = act({B, cfg_.num_heads, T, P + T}, "probs");
    }
    const double pa = c.train ? cfg_.attention_dropout : 0.0;
    if (tiled) {
        a.lse = S.alloc(dt == DType::F64 ? DType::F64 : DType::F32, {B, cfg_.num_heads, T}, l, name("lse"));
        a.key_mask = mask;
        be.attention_tiled_forward(a.ctx, a.lse, a.q, keys, values, mask, cfg_.num_heads, pa, key(c, w.probs_site),
                                   c.example_offset, w.self && spec_.causal);
    } else {
        be.attention_forward(a.ctx, a.probs, a.q, keys, values, mask, cfg_.num_heads, pa, key(c, w.probs_site),
                             c.example_offset, w.self && spec_.causal);
    }
    Tensor d = after ? act({B, T, C}, "dense_out") : a.res;
    linear_forward(w.o, d, a.ctx, a.edit_kept[kO], c, name("out"));
    if (!after && !pre_ln_) {  // res = dropout(res) + x, out = LN(res): one fused op
        be.dropout_add_layernorm_forward(a.out, a.mean, a.rstd, a.res, x, c.ps.value(w.ln_w), c.ps.value(w.ln_b),
                                         cfg_.layer_norm_eps, p_hidden(c), key(c, w.out_site), c.example_offset);
        return;
    }
    be.dropout_forward(d, d, p_hidden(c), key(c, w.out_site), c.example_offset);
    if (after) {  // a branch with its own skip: d + A(d)
        a.d = d;
        a.after.inp = d;
        w.after->forward(edit_call(c, kAfterAttn), a.after, S, l, name("adapter"), a.res, false);
        be.accumulate(a.res, d);
    }
    be.accumulate(a.res, x);
    if (!pre_ln_)
        be.layernorm_forward(a.out, a.mean, a.rstd, a.res, c.ps.value(w.ln_w), c.ps.value(w.ln_b), cfg_.layer_norm_eps);
}

void TransformerLayer::block_backward(const Attention& w, const AttnActs& a, Tensor G, const LayerContext& c) const {
    Backend& be = c.be;
    const DType dt = G.dtype;
    const Shape hs = a.x.shape;
    ParameterStore& ps = c.ps;
    // G = d(out). D1 = d(res); G becomes d(x) through the residual (pre-LN: it already is).
    Tensor D1 = c.tmp.alloc(dt, hs);
    if (pre_ln_) {
        be.copy(D1, G);
    } else if (!w.after) {  // the fused op of block_forward's end: D1 = dropout'(d(res)), G = d(res)
        be.layernorm_dropout_backward(D1, G, ps.grad(w.ln_w), ps.grad(w.ln_b), G, a.res, ps.value(w.ln_w), a.mean,
                                      a.rstd, p_hidden(c), key(c, w.out_site), c.example_offset);
    } else {
        be.layernorm_backward(D1, ps.grad(w.ln_w), ps.grad(w.ln_b), G, a.res, ps.value(w.ln_w), a.mean, a.rstd, false);
        be.copy(G, D1);
    }
    if (w.after) w.after->backward(edit_call(c, kAfterAttn), a.after, D1, D1);  // d(d) = D1 + A'(d)^T D1, in place
    if (pre_ln_ || w.after) be.dropout_backward(D1, D1, p_hidden(c), key(c, w.out_site), c.example_offset);
    Tensor dctx = c.tmp.alloc(dt, hs), dk = c.tmp.alloc(dt, a.k.shape), dv = c.tmp.alloc(dt, a.v.shape);
    linear_backward(w.o, dctx, D1, a.ctx, a.edit_kept[kO], c, false);
    Tensor dq = D1;  // D1 is consumed: its buffer takes the query gradient
    const double pa = c.train ? cfg_.attention_dropout : 0.0;
    // Prefix-tuning: the gradients of the prefixed keys/values, split into prefix and tokens after.
    Tensor dkeys = dk, dvalues = dv;
    if (a.kf) dkeys = c.tmp.alloc(dt, a.kf.shape), dvalues = c.tmp.alloc(dt, a.vf.shape);
    const Tensor keys = a.kf ? a.kf : a.k, values = a.kf ? a.vf : a.v;
    if (a.lse)
        be.attention_tiled_backward(dq, dkeys, dvalues, dctx, a.q, keys, values, a.key_mask, a.ctx, a.lse,
                                    cfg_.num_heads, pa, key(c, w.probs_site), c.example_offset, w.self && spec_.causal);
    else
        be.attention_backward(dq, dkeys, dvalues, dctx, a.q, keys, values, a.probs, cfg_.num_heads, pa,
                              key(c, w.probs_site), c.example_offset);
    if (a.kf) prefix_->backward(edit_call(c, w.probs_site), dk, dv, dkeys, dvalues);
    if (w.scale_k) {
        w.scale_k->backward(edit_call(c, w.out_site), dk, dk, a.k_pre);
        w.scale_v->backward(edit_call(c, w.out_site), dv, dv, a.v_pre);
    }
    // Post-LN: the projections read x and add into G = d(x). Pre-LN: they read xn; their input
    // gradient (in dctx, now free) goes through LN1 into G. Cross-attention's keys and values
    // read the memory: their input gradient adds into dmemory.
    const Tensor inp = pre_ln_ ? a.xn : a.x;
    Tensor dinp = pre_ln_ ? dctx : G;
    const Tensor kv_in = w.self ? inp : c.memory;
    const Tensor dkv_in = w.self ? dinp : c.dmemory;
    linear_backward(w.q, dinp, dq, inp, a.edit_kept[kQ], c, !pre_ln_);
    linear_backward(w.k, dkv_in, dk, kv_in, a.edit_kept[kK], c, true);
    linear_backward(w.v, dkv_in, dv, kv_in, a.edit_kept[kV], c, true);
    if (pre_ln_)
        be.layernorm_backward(G, ps.grad(w.ln_w), ps.grad(w.ln_b), dinp, a.x, ps.value(w.ln_w), a.mean, a.rstd, true);
}

void TransformerLayer::ffn_forward(Acts& a, Tensor h1, const LayerContext& c) const {
    const std::int64_t B = h1.dim(0), T = h1.dim(1), C = cfg_.hidden_size, I = cfg_.intermediate_size;
    const DType dt = h1.dtype;
    Arena& S = c.saved;
    const int l = spec_.tag;
    Backend& be = c.be;
    auto act = [&](Shape sh, const char* name) { return S.alloc(dt, sh, l, name); };
    const bool scaled = scale_act_ && !c.backbone_only;
    const bool after = after_ffn_ && !c.backbone_only, parallel = ffn_parallel_ && !c.backbone_only;
    a.h1 = h1;
    a.pre = act({B, T, I}, "ffn.pre_act");
    const bool keep_act = c.ps.at(fout_.w).trainable || (fout_.edit && fout_.edit->needs_input());  // likewise the FFN output's input
    a.act = keep_act ? act({B, T, I}, "ffn.act") : c.tmp.alloc(dt, {B, T, I});
    a.mean2 = act({B * T}, "ffn.ln_mean");
    a.rstd2 = act({B * T}, "ffn.ln_rstd");
    a.out = act({B, T, C}, "ffn.out");
    Tensor inp = h1;  // what the FFN and the parallel adapter read
    if (pre_ln_) {
        a.hn = act({B, T, C}, "ffn.ln_out");
        a.res2 = a.out;
        be.layernorm_forward(a.hn, a.mean2, a.rstd2, h1, c.ps.value(ln2_w_), c.ps.value(ln2_b_), cfg_.layer_norm_eps);
        inp = a.hn;
    } else {
        a.res2 = act({B, T, C}, "ffn.residual");
    }
    linear_forward(fin_, a.pre, inp, a.edit_fin, c, "ffn.in");
    // act(pre), then activation dropout (BART), then the activation's scaling: the output linear's input
    Tensor activated = a.act;
    if (scaled) {
        a.act_pre = act({B, T, I}, "ffn.act_unscaled");
        activated = a.act_pre;
    }
    be.activation_forward(relu_, activated, a.pre);
    if (p_act(c) > 0) be.dropout_forward(activated, activated, p_act(c), key(c, kActivation), c.example_offset);
    if (scaled) scale_act_->forward(edit_call(c, kActivation), a.act, a.act_pre);
    Tensor f = after ? act({B, T, C}, "ffn.dense_out") : a.res2;
    linear_forward(fout_, f, a.act, a.edit_fout, c, "ffn.out");
    if (!after && !parallel && !pre_ln_) {  // res2 = dropout(res2) + h1, out = LN(res2): one fused op
        be.dropout_add_layernorm_forward(a.out, a.mean2, a.rstd2, a.res2, a.h1, c.ps.value(ln2_w_), c.ps.value(ln2_b_),
                                         cfg_.layer_norm_eps, p_hidden(c), key(c, kFfnOut), c.example_offset);
        return;
    }
    be.dropout_forward(f, f, p_hidden(c), key(c, kFfnOut), c.example_offset);
    if (after) {  // a branch with its own skip: f + A(f)
        a.f = f;
        a.after_ffn.inp = f;
        after_ffn_->forward(edit_call(c, kAfterFfn), a.after_ffn, S, l, "ffn.adapter", a.res2, false);
        be.accumulate(a.res2, f);
    }
    if (parallel) {  // beside the FFN, reading its input
        a.ffn_parallel.inp = inp;
        ffn_parallel_->forward(edit_call(c, kFfnParallel), a.ffn_parallel, S, l, "ffn.parallel_adapter", a.res2, true);
    }
    be.accumulate(a.res2, a.h1);
    if (!pre_ln_)
        be.layernorm_forward(a.out, a.mean2, a.rstd2, a.res2, c.ps.value(ln2_w_), c.ps.value(ln2_b_), cfg_.layer_norm_eps);
}

void TransformerLayer::ffn_backward(const Acts& a, Tensor G, const LayerContext& c) const {
    Backend& be = c.be;
    const DType dt = G.dtype;
    const Shape hs = a.h1.shape, is = a.pre.shape;
    ParameterStore& ps = c.ps;
    Tensor D = c.tmp.alloc(dt, hs);   // gradient of a residual sum
    Tensor DI = c.tmp.alloc(dt, is);  // gradient in the FFN's inner width

    // G = d(out). Post-LN: D = d(res2), and G becomes d(h1) through the residual. Pre-LN:
    // d(res2) = G itself, which also stays d(h1) through the residual until the block's
    // LayerNorm adds its part at the end.
    // Without adapters around it, the fused op of ffn_forward's end: D = dropout'(d(res2)) at once.
    const bool fused = !pre_ln_ && !after_ffn_ && !ffn_parallel_;
    if (pre_ln_) {
        be.copy(D, G);
    } else if (fused) {
        be.layernorm_dropout_backward(D, G, ps.grad(ln2_w_), ps.grad(ln2_b_), G, a.res2, ps.value(ln2_w_), a.mean2,
                                      a.rstd2, p_hidden(c), key(c, kFfnOut), c.example_offset);
    } else {
        be.layernorm_backward(D, ps.grad(ln2_w_), ps.grad(ln2_b_), G, a.res2, ps.value(ln2_w_), a.mean2, a.rstd2, false);
        be.copy(G, D);
    }
    Tensor Dn = pre_ln_ ? c.tmp.alloc(dt, hs) : G;  // gradient of the FFN's input
    if (ffn_parallel_ && !pre_ln_) ffn_parallel_->backward(edit_call(c, kFfnParallel), a.ffn_parallel, G, D);
    // res2 = h1 + f + A(f): d(f) = D + A'(f)^T D, in place
    if (after_ffn_) after_ffn_->backward(edit_call(c, kAfterFfn), a.after_ffn, D, D);
    if (!fused) be.dropout_backward(D, D, p_hidden(c), key(c, kFfnOut), c.example_offset);
    linear_backward(fout_, DI, D, a.act, a.edit_fout, c, false);
    if (scale_act_) scale_act_->backward(edit_call(c, kActivation), DI, DI, a.act_pre);
    if (p_act(c) > 0) be.dropout_backward(DI, DI, p_act(c), key(c, kActivation), c.example_offset);
    be.activation_backward(relu_, DI, DI, a.pre);
    linear_backward(fin_, Dn, DI, pre_ln_ ? a.hn : a.h1, a.edit_fin, c, !pre_ln_);
    if (!pre_ln_) return;
    if (ffn_parallel_) ffn_parallel_->backward(edit_call(c, kFfnParallel), a.ffn_parallel, Dn, G);  // reads hn; d(res2) is still G
    be.layernorm_backward(G, ps.grad(ln2_w_), ps.grad(ln2_b_), Dn, a.h1, ps.value(ln2_w_), a.mean2, a.rstd2, true);
}

}  // namespace meft
