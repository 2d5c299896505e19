#include "peft/method_knobs.h"

#include "core/error.h"

namespace meft {

namespace {
using Type = MethodKnob::Type;

MethodKnob integer(std::string key, double lo, double hi, int def, std::string label, std::string help) {
    return {std::move(key), Type::Integer, lo, hi, {}, def, std::move(label), std::move(help)};
}
MethodKnob real(std::string key, double lo, double hi, double def, std::string label, std::string help) {
    return {std::move(key), Type::Real, lo, hi, {}, def, std::move(label), std::move(help)};
}
MethodKnob boolean(std::string key, bool def, std::string label, std::string help) {
    return {std::move(key), Type::Boolean, 0, 0, {}, def, std::move(label), std::move(help)};
}
}  // namespace

MethodKind method_kind(const std::string& name) {
    return parse_method(nlohmann::json{{"name", name}}, "method name").kind;
}

std::string method_summary(MethodKind kind) {
    switch (kind) {
        case MethodKind::Full: return "every weight trains (the reference; most memory)";
        case MethodKind::BitFit: return "only biases and the classifier train";
        case MethodKind::LoRA: return "low-rank updates B·A beside chosen projections (Hu et al. 2021)";
        case MethodKind::Houlsby: return "bottleneck adapters after attention and after the FFN (Houlsby et al. 2019)";
        case MethodKind::Pfeiffer: return "one bottleneck adapter after the FFN (Pfeiffer et al. 2021)";
        case MethodKind::Parallel: return "a scaled adapter beside the FFN (He et al. 2022)";
        case MethodKind::Prefix: return "trainable virtual keys and values in every layer (Li & Liang 2021)";
        case MethodKind::IA3: return "learned vectors scale keys, values and the FFN activation (Liu et al. 2022)";
        case MethodKind::MEFT1: return "reversible backbone: F = PLM layer + parallel adapter, G = adapter (λ 0.1, β 1)";
        case MethodKind::MEFT2: return "reversible backbone: F = adapter, G = PLM layer + parallel adapter (λ 1, β 0.1)";
        case MethodKind::MEFT3: return "reversible backbone: F = attention + adapter, G = FFN + parallel adapter (λ β 0.1)";
    }
    return {};
}

std::vector<MethodKnob> method_knobs(MethodKind kind) {
    const MethodConfig d = [&] {  // the parser's defaults for this method
        MethodConfig m;
        m.kind = kind;
        return parse_method(nlohmann::json{{"name", m.name()}}, "defaults");
    }();
    std::vector<MethodKnob> k;
    const auto adapter = [&](bool scaling) {
        k.push_back(integer("adapter.bottleneck", 1, 65536, d.adapter.bottleneck, "bottleneck r",
                            "The adapter's hidden size: W_down is [r, hidden], W_up is [hidden, r]."));
        k.push_back(real("adapter.init_std", 0, 10, d.adapter.init_std, "init σ",
                         "Standard deviation of the N(0, σ²) draw of both adapter projections (biases start at zero)."));
        if (!d.is_meft())
            k.push_back(boolean("adapter.zero_init_up", d.adapter.zero_init_up, "zero-init W_up",
                                "Start W_up at zero so the edited model starts exactly at the backbone."));
        if (scaling)
            k.push_back(real("adapter.scaling", 0, 1e6, d.adapter.scaling, "scaling",
                             "The parallel adapter's output is multiplied by this (He et al. use 4)."));
    };
    switch (kind) {
        case MethodKind::Full:
        case MethodKind::BitFit:
        case MethodKind::IA3: break;
        case MethodKind::LoRA:
            k.push_back(integer("lora.r", 1, 4096, d.lora.r, "rank r", "Rank of the update B·A."));
            k.push_back(real("lora.alpha", 0, 1e6, d.lora.alpha, "alpha", "The update is scaled by alpha / r."));
            k.push_back(real("lora.dropout", 0, 0.99, d.lora.dropout, "dropout", "Dropout on the LoRA branch's input."));
            k.push_back({"lora.targets", Type::Names, 0, 0,
                         {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}, d.lora.targets, "targets",
                         "The projections that get a LoRA update."});
            break;
        case MethodKind::Houlsby:
        case MethodKind::Pfeiffer: adapter(false); break;
        case MethodKind::Parallel: adapter(true); break;
        case MethodKind::Prefix:
            k.push_back(integer("prefix.length", 1, 1024, d.prefix.length, "length P",
                                "Virtual key/value positions prepended in every layer's attention."));
            k.push_back(boolean("prefix.reparameterize", d.prefix.reparameterize, "reparameterize",
                                "Produce the prefixes with one shared MLP (Li & Liang) instead of training them directly."));
            k.push_back(integer("prefix.hidden", 1, 65536, d.prefix.hidden, "MLP hidden", "Hidden size of the reparameterisation MLP."));
            k.push_back(real("prefix.init_std", 0, 10, d.prefix.init_std, "init σ", "Standard deviation of the prefixes' N(0, σ²) draw."));
            break;
        case MethodKind::MEFT1:
        case MethodKind::MEFT2:
        case MethodKind::MEFT3:
            adapter(true);
            k.push_back(real("meft.lambda", 1.0 / 256, 1, d.meft.lambda(), "λ",
                             "y1 = λ·x1 + F(x2). Must be 1/m for an integer m ≤ 256 so the inverse is exact."));
            k.push_back(real("meft.beta", 1.0 / 256, 1, d.meft.beta(), "β",
                             "y2 = β·x2 + G(y1). Must be 1/m for an integer m ≤ 256 so the inverse is exact."));
            k.push_back(integer("meft.reversible_layers", -1, 1000, d.meft.reversible_layers, "reversible layers",
                                "The lowest k coupled layers rebuild their inputs in backward; -1: all of them."));
            k.push_back(integer("meft.frozen_prefix", 0, 1000, d.meft.frozen_prefix, "frozen prefix",
                                "Bottom layers that run as the plain frozen backbone, storing nothing."));
            k.push_back({"meft.streams", Type::Choice, 0, 0, {"exact", "float64"}, d.meft.exact ? "exact" : "float64",
                         "streams", "exact: int64 fixed point with stored remainders (bit-exact inverse); float64: divide."});
            k.push_back(boolean("meft.vanilla_gradient", d.meft.vanilla_gradient, "vanilla gradient",
                                "Train the same architecture with ordinary backprop (for comparison)."));
            k.push_back(boolean("meft.keep_true_inputs", d.meft.keep_true_inputs, "measure reconstruction",
                                "Keep the forward's streams and report the per-layer reconstruction error every step."));
            break;
    }
    if (!d.is_meft())
        k.push_back(boolean("gradient_checkpointing", d.gradient_checkpointing, "gradient checkpointing",
                            "Keep only each layer's input and recompute the layer in backward."));
    return k;
}

}  // namespace meft
