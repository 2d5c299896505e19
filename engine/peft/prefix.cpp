#include "peft/prefix.h"

#include <algorithm>

namespace meft {

namespace {

class PrefixStack final : public StackEdit {
public:
    PrefixStack(const PrefixSettings& s, const StackSpec& spec, const ModelConfig& cfg, ParameterStore& ps)
        : s_(s), C_(cfg.hidden_size) {
        if (!s.reparameterize) return;
        const std::int64_t P = s.length, H = s.hidden, L2C = 2 * std::int64_t{spec.count} * C_;
        const Init w_init = Init::normal(cfg.initializer_range);
        const std::string& n = spec.prefix_mlp;
        emb_ = ps.declare(n + "embedding.weight", {P, C_}, Init::normal(s.init_std), true);
        w1_ = ps.declare(n + "transform.0.weight", {H, C_}, w_init, true);
        b1_ = ps.declare(n + "transform.0.bias", {H}, Init::zeros(), true);
        w2_ = ps.declare(n + "transform.2.weight", {L2C, H}, w_init, true);
        b2_ = ps.declare(n + "transform.2.bias", {L2C}, Init::zeros(), true);
    }

    std::unique_ptr<PrefixEdit> prefix(const SiteSpec& site, ParameterStore& ps) const override;

    void begin_forward(const StackEnv& env, const HostBatch& batch, bool active) override {
        mask_ = pre_ = hidden_ = dhidden_ = Tensor{};
        if (!active) return;
        const int P = s_.length, T = batch.T;
        std::vector<std::int32_t> mask(static_cast<std::size_t>(batch.B) * (P + T), 1);  // prefixes are always attended
        for (int b = 0; b < batch.B; ++b)
            std::copy_n(batch.attention_mask.begin() + std::ptrdiff_t(b) * T, T,
                        mask.begin() + std::ptrdiff_t(b) * (P + T) + P);
        mask_ = env.saved.alloc(DType::I32, {batch.B, P + T}, -1, "prefix.mask");
        env.be.upload(mask_, mask.data());
        if (!s_.reparameterize) return;
        const std::int64_t H = s_.hidden;
        const DType dt = env.ps.dtype();
        pre_ = env.saved.alloc(dt, {P, H}, -1, "prefix.mlp_pre");
        hidden_ = env.saved.alloc(dt, {P, H}, -1, "prefix.mlp_hidden");
        env.be.linear_forward(pre_, env.ps.value(emb_), env.ps.value(w1_), env.ps.value(b1_));
        env.be.tanh_forward(hidden_, pre_);
    }
    void begin_backward(const StackEnv& env) override {
        if (hidden_) dhidden_ = env.scratch.zeros(hidden_.dtype, hidden_.shape, -1, "d.prefix_hidden");
    }
    void end_backward(const StackEnv& env) override {  // the MLP, after every layer added its part of d(hidden)
        if (!hidden_) return;
        ParameterStore& ps = env.ps;
        Tensor dpre = env.scratch.alloc(hidden_.dtype, pre_.shape, -1, "d.prefix_pre");
        env.be.tanh_backward(dpre, dhidden_, hidden_);
        env.be.linear_backward(ps.grad(emb_), ps.grad(w1_), ps.grad(b1_), dpre, ps.value(emb_), ps.value(w1_), true);
    }

    const PrefixSettings& settings() const { return s_; }
    int w2() const { return w2_; }
    int b2() const { return b2_; }
    std::int64_t hidden_size() const { return C_; }
    Tensor mask() const { return mask_; }
    Tensor hidden() const { return hidden_; }
    Tensor dhidden() const { return dhidden_; }

private:
    PrefixSettings s_;
    std::int64_t C_;
    int emb_ = -1, w1_ = -1, b1_ = -1, w2_ = -1, b2_ = -1;  // the shared MLP (reparameterised)
    Tensor mask_, pre_, hidden_, dhidden_;                  // the current step
};

class PrefixLayer final : public PrefixEdit {
public:
    PrefixLayer(const PrefixStack& stack, int layer, int k, int v) : stack_(stack), l2_(2 * layer), k_(k), v_(v) {}
    int length() const override { return stack_.settings().length; }
    Tensor key_mask() const override { return stack_.mask(); }

    void keys_values(const EditCall& c, Tensor& pk, Tensor& pv) const override {
        if (k_ >= 0) {
            pk = c.ps.value(k_);
            pv = c.ps.value(v_);
            return;
        }
        const std::int64_t P = length(), C = stack_.hidden_size();
        const Tensor hidden = stack_.hidden();
        const Tensor w2 = c.ps.value(stack_.w2()), b2 = c.ps.value(stack_.b2());
        pk = c.tmp.alloc(hidden.dtype, {P, C});
        pv = c.tmp.alloc(hidden.dtype, {P, C});
        c.be.linear_forward(pk, hidden, w2.rows(l2_ * C, C), b2.rows(l2_ * C, C));
        c.be.linear_forward(pv, hidden, w2.rows((l2_ + 1) * C, C), b2.rows((l2_ + 1) * C, C));
    }

    void backward(const EditCall& c, Tensor dk, Tensor dv, Tensor dkf, Tensor dvf) const override {
        Backend& be = c.be;
        ParameterStore& ps = c.ps;
        if (k_ >= 0) {
            be.prefix_concat_backward(ps.grad(k_), dk, dkf, false);
            be.prefix_concat_backward(ps.grad(v_), dv, dvf, false);
            return;
        }
        // Reparameterised: through this layer's rows of the shared MLP's output layer.
        const std::int64_t C = stack_.hidden_size();
        const Shape ps_shape{std::int64_t{length()}, C};
        const int w2 = stack_.w2(), b2 = stack_.b2();
        for (int kv = 0; kv < 2; ++kv) {
            Tensor dp = c.tmp.zeros(dkf.dtype, ps_shape);
            be.prefix_concat_backward(dp, kv ? dv : dk, kv ? dvf : dkf, false);
            Tensor wt = ps.value(w2).rows((l2_ + kv) * C, C);
            Tensor dw = ps.grad(w2) ? ps.grad(w2).rows((l2_ + kv) * C, C) : Tensor{};
            Tensor db = ps.grad(b2) ? ps.grad(b2).rows((l2_ + kv) * C, C) : Tensor{};
            be.linear_backward(stack_.dhidden(), dw, db, dp, stack_.hidden(), wt, true);
        }
    }

private:
    const PrefixStack& stack_;
    std::int64_t l2_;
    int k_, v_;  // this layer's own [P,C] keys and values, or -1 (reparameterised)
};

std::unique_ptr<PrefixEdit> PrefixStack::prefix(const SiteSpec& site, ParameterStore& ps) const {
    if (s_.reparameterize) return std::make_unique<PrefixLayer>(*this, site.layer, -1, -1);
    const std::int64_t P = s_.length;
    const int k = ps.declare(site.module + ".prefix_key", {P, C_}, Init::normal(s_.init_std), true);
    const int v = ps.declare(site.module + ".prefix_value", {P, C_}, Init::normal(s_.init_std), true);
    return std::make_unique<PrefixLayer>(*this, site.layer, k, v);
}

}  // namespace

std::unique_ptr<StackEdit> prefix_stack(const PrefixSettings& s, const StackSpec& spec, const ModelConfig& cfg,
                                        ParameterStore& ps) {
    return std::make_unique<PrefixStack>(s, spec, cfg, ps);
}

}  // namespace meft
