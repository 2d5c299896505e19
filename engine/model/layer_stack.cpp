#include "model/layer_stack.h"

#include <algorithm>

#include "core/error.h"
#include "model/model.h"

namespace meft {

LayerStack::LayerStack(const ModelConfig& cfg, const ModelEdit* edit, ParameterStore& ps, const StackSpec& spec,
                       ModelArenas arenas)
    : cfg_(cfg), spec_(spec), ar_(arenas) {
    if (edit) {
        edit_ = edit->edit_stack(spec, cfg, ps);
        checkpoint_layers_ = edit->checkpoint_layers();
        recompute_tokens_ = edit->recompute_tokens();
    }
    layers_.reserve(static_cast<std::size_t>(spec.count));
    for (int l = 0; l < spec.count; ++l) {
        const LayerSpec ls{l, spec.first_tag + l, spec.count, spec.names + std::to_string(l) + ".", spec.causal,
                           spec.cross};
        layers_.emplace_back(ls, cfg, edit_.get(), ps);
    }
    if (edit_) runner_ = edit_->runner(layers_, ps);
}

LayerStack::~LayerStack() = default;

bool LayerStack::keeps_input(const ForwardOptions& o) const { return !(runner_ && !o.backbone_only); }

LayerContext LayerStack::context(Arena& saved, const ForwardOptions& o, int off) const {
    MEFT_CHECK(!(o.backbone_only && o.train), "backbone_only is for inference");
    return LayerContext{ar_.be,  ar_.ps, saved,           ar_.tmp, key_mask_,    o.train, o.seed,
                        o.step,  off,    o.backbone_only, memory_, memory_mask_, dmemory_};
}

LayerContext LayerStack::chunk_context(Arena& saved, const ForwardOptions& o, int off, std::int64_t b0,
                                       std::int64_t n) const {
    LayerContext c = context(saved, o, off + static_cast<int>(b0));
    const auto part = [&](Tensor t) { return t ? t.rows(b0, n) : t; };
    c.key_mask = part(c.key_mask);
    c.memory = part(c.memory);
    c.memory_mask = part(c.memory_mask);
    c.dmemory = part(c.dmemory);
    c.batch_row = b0;
    return c;
}

StackEnv LayerStack::stack_env(const ForwardOptions& o, int off) const {
    return StackEnv{ar_.be,   ar_.ps, ar_.acts, ar_.scratch, ar_.recompute,         ar_.tmp,
                    key_mask_, o.train, o.seed, o.step,     off,                   &ar_.meter,
                    &ar_.transient, o.check_reconstruction, memory_, memory_mask_, dmemory_};
}

Tensor LayerStack::forward(Tensor x, const HostBatch& batch, Tensor key_mask, const ForwardOptions& o) {
    key_mask_ = key_mask;
    const int off = batch.example_offset;
    if (edit_) edit_->begin_forward(stack_env(o, off), batch, !o.backbone_only);
    la_.assign(layers_.size(), TransformerLayer::Acts{});
    if (runner_ && !o.backbone_only) return runner_->forward(x, stack_env(o, off));  // backbone_only: plain layers
    const bool checkpoint = checkpoint_layers_ && o.train;
    for (int l = 0; l < spec_.count; ++l) {
        TransformerLayer::Acts& a = la_[static_cast<std::size_t>(l)];
        ar_.tmp.reset();
        if (checkpoint) {  // run in the recompute arena, a chunk at a time; keep only the layer's output
            Tensor out = ar_.acts.alloc(x.dtype, x.shape, spec_.first_tag + l, "checkpoint.out");
            const std::int64_t B = x.dim(0), n = examples_per_chunk(recompute_tokens_, B, x.dim(1));
            for (std::int64_t b0 = 0; b0 < B; b0 += n) {
                const std::int64_t m = std::min(n, B - b0);
                ar_.recompute.reset();
                ar_.tmp.reset();
                TransformerLayer::Acts part;
                layers_[static_cast<std::size_t>(l)].forward(part, x.rows(b0, m), chunk_context(ar_.recompute, o, off, b0, m));
                ar_.be.copy(out.rows(b0, m), part.out);
            }
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
    if (edit_) edit_->begin_backward(stack_env(o, off));
    const bool checkpoint = checkpoint_layers_ && o.train;
    if (runner_) runner_->backward(grad, stack_env(o, off));
    for (int l = spec_.count - 1; l >= 0 && !runner_; --l) {
        const TransformerLayer& layer = layers_[static_cast<std::size_t>(l)];
        TransformerLayer::Acts& a = la_[static_cast<std::size_t>(l)];
        ar_.tmp.reset();
        const std::size_t start = ar_.meter.current;
        ar_.meter.reset_peak();
        if (checkpoint) {  // recompute this layer from its input, same dropout keys, a chunk at a time
            const Tensor x = a.x;
            const std::int64_t B = x.dim(0), n = examples_per_chunk(recompute_tokens_, B, x.dim(1));
            for (std::int64_t b0 = 0; b0 < B; b0 += n) {
                const std::int64_t m = std::min(n, B - b0);
                const LayerContext c = chunk_context(ar_.recompute, o, off, b0, m);
                ar_.recompute.reset();
                ar_.tmp.reset();
                TransformerLayer::Acts part;
                layer.forward(part, x.rows(b0, m), c);
                ar_.tmp.reset();
                layer.backward(part, grad.rows(b0, m), c);
            }
        } else {
            layer.backward(a, grad, context(ar_.acts, o, off));
        }
        ar_.transient[static_cast<std::size_t>(layer.tag() + 1)] = ar_.meter.peak - start;
    }
    if (edit_) edit_->end_backward(stack_env(o, off));
}

}  // namespace meft
