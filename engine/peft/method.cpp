#include "peft/method.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace meft {

namespace {
const std::vector<std::pair<std::string, MethodKind>> kNames = {
    {"full", MethodKind::Full},         {"bitfit", MethodKind::BitFit},     {"lora", MethodKind::LoRA},
    {"rslora", MethodKind::RsLoRA},     {"lora_fa", MethodKind::LoraFA},   {"dora", MethodKind::DoRA},
    {"vera", MethodKind::VeRA},
    {"houlsby", MethodKind::Houlsby},   {"pfeiffer", MethodKind::Pfeiffer}, {"parallel", MethodKind::Parallel},
    {"prefix", MethodKind::Prefix},     {"ia3", MethodKind::IA3},           {"meft1", MethodKind::MEFT1},       {"meft2", MethodKind::MEFT2},
    {"meft3", MethodKind::MEFT3}};

bool ends_with(const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
}  // namespace

bool LoraSettings::targets_site(const std::string& site) const {
    return std::find(targets.begin(), targets.end(), site) != targets.end();
}

bool VeraSettings::targets_site(const std::string& site) const {
    return std::find(targets.begin(), targets.end(), site) != targets.end();
}

std::vector<std::string> method_names() {
    std::vector<std::string> n;
    for (const auto& [name, kind] : kNames) n.push_back(name);
    return n;
}

MethodKind method_by_name(const std::string& name) {
    for (const auto& [n, k] : kNames)
        if (n == name) return k;
    throw Error("unknown method '" + name + "' (expected one of " + listed(method_names()) + ")");
}

std::string MethodConfig::name() const {
    for (const auto& [name, k] : kNames)
        if (k == kind) return name;
    return "?";
}

double MethodConfig::lora_scale() const {
    return kind == MethodKind::RsLoRA ? lora.alpha / std::sqrt(double(lora.r)) : lora.alpha / lora.r;
}

bool MethodConfig::backbone_trainable(const std::string& name, bool head) const {
    switch (kind) {
        case MethodKind::Full: return true;
        case MethodKind::BitFit: return head || ends_with(name, ".bias");
        // Adapter methods also tune the layer norms, as Houlsby et al. and Pfeiffer et al. do.
        case MethodKind::Houlsby:
        case MethodKind::Pfeiffer:
        case MethodKind::Parallel: return head || name.find("LayerNorm") != std::string::npos;
        case MethodKind::LoRA:
        case MethodKind::RsLoRA:
        case MethodKind::LoraFA:
        case MethodKind::DoRA:
        case MethodKind::VeRA:
        case MethodKind::Prefix:
        case MethodKind::IA3:
        case MethodKind::MEFT1:
        case MethodKind::MEFT2:
        case MethodKind::MEFT3: return head;  // MEFT: only adapters and the classifier (spec §3)
    }
    return false;
}

bool same_architecture(const MethodConfig& a, const MethodConfig& b) {
    if (a.kind != b.kind) return false;
    const auto same_adapter = [&] {
        return a.adapter.bottleneck == b.adapter.bottleneck && a.adapter.scaling == b.adapter.scaling;
    };
    switch (a.kind) {
        case MethodKind::Full:
        case MethodKind::BitFit:
        case MethodKind::IA3: return true;
        case MethodKind::LoRA:
        case MethodKind::RsLoRA:
        case MethodKind::LoraFA:
        case MethodKind::DoRA:
            return a.lora.r == b.lora.r && a.lora.alpha == b.lora.alpha &&
                   std::is_permutation(a.lora.targets.begin(), a.lora.targets.end(), b.lora.targets.begin(), b.lora.targets.end());
        case MethodKind::VeRA:
            return a.vera.r == b.vera.r &&
                   std::is_permutation(a.vera.targets.begin(), a.vera.targets.end(), b.vera.targets.begin(), b.vera.targets.end());
        case MethodKind::Houlsby:
        case MethodKind::Pfeiffer:
        case MethodKind::Parallel: return same_adapter();
        case MethodKind::Prefix:
            return a.prefix.length == b.prefix.length && a.prefix.reparameterize == b.prefix.reparameterize &&
                   (!a.prefix.reparameterize || a.prefix.hidden == b.prefix.hidden);
        case MethodKind::MEFT1:
        case MethodKind::MEFT2:
        case MethodKind::MEFT3:
            return same_adapter() && a.meft.lambda_inverse == b.meft.lambda_inverse && a.meft.beta_inverse == b.meft.beta_inverse &&
                   a.meft.frozen_prefix == b.meft.frozen_prefix && a.meft.exact == b.meft.exact;
    }
    return false;
}

}  // namespace meft
