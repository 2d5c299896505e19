#include "model/layer_stack.h"

#include <algorithm>

#include "core/error.h"
#include "model/model.h"

namespace meft {

LayerStack::LayerStack(const ModelConfig& cfg, const MethodConfig& method, ParameterStore& ps, const StackSpec& spec,
                       ModelArenas arenas)
    : cfg_(cfg), method_(method), spec_(spec), ar_(arenas) {
    const std::int64_t C = cfg.hidden_size;
    const Init w_init = Init::normal(cfg.initializer_range);
    if (method.is_prefix() && method.prefix.reparameterize) {  // HF PEFT's PrefixEncoder names
        const std::int64_t P = method.prefix.length, H = method.prefix.hidden, L2C = 2 * std::int64_t{spec.count} * C;
        const std::string& n = spec.prefix_mlp;
        prefix_emb_ = ps.declare(n + "embedding.weight", {P, C}, Init::normal(method.prefix.init_std), true);
        prefix_w1_ = ps.declare(n + "transform.0.weight", {H, C}, w_init, true);
        prefix_b1_ = ps.declare(n + "transform.0.bias", {H}, Init::zeros(), true);
        prefix_w2_ = ps.declare(n + "transform.2.weight", {L2C, H}, w_init, true);
        prefix_b2_ = ps.declare(n + "transform.2.bias", {L2C}, Init::zeros(), true);
    }
    layers_.reserve(static_cast<std::size_t>(spec.count));
    for (int l = 0; l < spec.count; ++l) {
        // MEFT's frozen prefix layers are the plain backbone: no adapters.
        const bool plain = method.is_meft() && l < method.meft.frozen_prefix;
        const LayerSpec ls{l, spec.first_tag + l, spec.names + std::to_string(l) + ".", spec.causal, spec.cross};
        layers_.emplace_back(ls, cfg, plain ? MethodConfig{} : method, ps, prefix_w2_, prefix_b2_);
    }
    if (method.is_meft()) meft_ = std::make_unique<MeftEncoder>(cfg, method, ps, layers_);
}

bool LayerStack::keeps_input(const ForwardOptions& o) const { return !(meft_ && !o.backbone_only); }

LayerContext LayerStack::context(Arena& saved, const ForwardOptions& o, int off) const {
    MEFT_CHECK(!(o.backbone_only && o.train), "backbone_only is for inference");
    return LayerContext{ar_.be,        ar_.ps,         saved,          ar_.tmp,         key_mask_, o.train,
                        o.seed,        o.step,         off,            o.backbone_only, prefix_mask_, prefix_hidden_,
                        prefix_dhidden_, memory_, memory_mask_, dmemory_};
}

MeftEnv LayerStack::meft_env(const ForwardOptions& o, int off) const {
    return MeftEnv{ar_.be,   ar_.ps, ar_.acts, ar_.scratch, ar_.recompute,         ar_.tmp,
                   key_mask_, o.train, o.seed, o.step,     off,                   &ar_.meter,
                   &ar_.transient, o.check_reconstruction, memory_, memory_mask_, dmemory_};
}

void LayerStack::prefix_forward(const HostBatch& batch) {
    const int P = method_.prefix.length, T = batch.T;
    std::vector<std::int32_t> mask(static_cast<std::size_t>(batch.B) * (P + T), 1);  // prefixes are always attended
    for (int b = 0; b < batch.B; ++b)
        std::copy_n(batch.attention_mask.begin() + std::ptrdiff_t(b) * T, T, mask.begin() + std::ptrdiff_t(b) * (P + T) + P);
    prefix_mask_ = ar_.acts.alloc(DType::I32, {batch.B, P + T}, -1, "prefix.mask");
    ar_.be.upload(prefix_mask_, mask.data());
    if (!method_.prefix.reparameterize) return;
    const std::int64_t H = method_.prefix.hidden;
    const DType dt = ar_.ps.dtype();
    prefix_pre_ = ar_.acts.alloc(dt, {P, H}, -1, "prefix.mlp_pre");
    prefix_hidden_ = ar_.acts.alloc(dt, {P, H}, -1, "prefix.mlp_hidden");
    ar_.be.linear_forward(prefix_pre_, ar_.ps.value(prefix_emb_), ar_.ps.value(prefix_w1_), ar_.ps.value(prefix_b1_));
    ar_.be.tanh_forward(prefix_hidden_, prefix_pre_);
}

Tensor LayerStack::forward(Tensor x, const HostBatch& batch, Tensor key_mask, const ForwardOptions& o) {
    key_mask_ = key_mask;
    prefix_mask_ = prefix_pre_ = prefix_hidden_ = prefix_dhidden_ = Tensor{};
    if (method_.is_prefix() && !o.backbone_only) prefix_forward(batch);
    const int off = batch.example_offset;
    la_.assign(layers_.size(), TransformerLayer::Acts{});
    if (meft_ && !o.backbone_only) return meft_->forward(x, meft_env(o, off));  // backbone_only: plain layers
    const bool checkpoint = method_.gradient_checkpointing && o.train;
    for (int l = 0; l < spec_.count; ++l) {
        TransformerLayer::Acts& a = la_[static_cast<std::size_t>(l)];
        ar_.tmp.reset();
        if (checkpoint) {  // run in the recompute arena; keep only the layer's output (= next input)
            ar_.recompute.reset();
            layers_[static_cast<std::size_t>(l)].forward(a, x, context(ar_.recompute, o, off));
            Tensor out = ar_.acts.alloc(x.dtype, x.shape, spec_.first_tag + l, "checkpoint.out");
            ar_.be.copy(out, a.out);
            a = TransformerLayer::Acts{};
            a.x = x;
            x = out;
        } else {
            layers_[static_cast<std::size_t>(l)].forward(a, x, context(ar_.acts, o, off));
            x = a.out;
        }
    }
    return x;
}

void LayerStack::backward(Tensor grad, const ForwardOptions& o, int off) {
    Backend& be = ar_.be;
    const DType dt = grad.dtype;
    if (prefix_hidden_) prefix_dhidden_ = ar_.scratch.zeros(dt, prefix_hidden_.shape, -1, "d.prefix_hidden");
    const bool checkpoint = method_.gradient_checkpointing && o.train;
    if (meft_) meft_->backward(grad, meft_env(o, off));
    for (int l = spec_.count - 1; l >= 0 && !meft_; --l) {
        const TransformerLayer& layer = layers_[static_cast<std::size_t>(l)];
        TransformerLayer::Acts& a = la_[static_cast<std::size_t>(l)];
        ar_.tmp.reset();
        const std::size_t start = ar_.meter.current;
        ar_.meter.reset_peak();
        if (checkpoint) {  // recompute this layer's activations from its input, same dropout keys
            ar_.recompute.reset();
            layer.forward(a, a.x, context(ar_.recompute, o, off));
            ar_.tmp.reset();
            layer.backward(a, grad, context(ar_.recompute, o, off));
        } else {
            layer.backward(a, grad, context(ar_.acts, o, off));
        }
        ar_.transient[static_cast<std::size_t>(layer.tag() + 1)] = ar_.meter.peak - start;
    }
    if (prefix_hidden_) {  // the prefix MLP, after every layer added its part of d(hidden)
        ParameterStore& ps = ar_.ps;
        Tensor dpre = ar_.scratch.alloc(dt, prefix_pre_.shape, -1, "d.prefix_pre");
        be.tanh_backward(dpre, prefix_dhidden_, prefix_hidden_);
        be.linear_backward(ps.grad(prefix_emb_), ps.grad(prefix_w1_), ps.grad(prefix_b1_), dpre, ps.value(prefix_emb_),
                           ps.value(prefix_w1_), true);
    }
}

}  // namespace meft
