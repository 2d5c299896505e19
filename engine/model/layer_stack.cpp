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
    if (edit_) edit_->begin_backward(stack_env(o, off));
    const bool checkpoint = checkpoint_layers_ && o.train;
    if (runner_) runner_->backward(grad, stack_env(o, off));
    for (int l = spec_.count - 1; l >= 0 && !runner_; --l) {
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
    if (edit_) edit_->end_backward(stack_env(o, off));
}

}  // namespace meft
