#include "peft/method.h"

#include <algorithm>

#include "core/error.h"

namespace meft {

namespace {
const std::vector<std::pair<std::string, MethodKind>> kNames = {
    {"full", MethodKind::Full},         {"bitfit", MethodKind::BitFit},     {"lora", MethodKind::LoRA},
    {"houlsby", MethodKind::Houlsby},   {"pfeiffer", MethodKind::Pfeiffer}, {"parallel", MethodKind::Parallel},
    {"ia3", MethodKind::IA3}};
const std::vector<std::string> kLoraSites = {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"};

bool ends_with(const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
}  // namespace

bool LoraSettings::targets_site(const std::string& site) const {
    return std::find(targets.begin(), targets.end(), site) != targets.end();
}

std::vector<std::string> method_names() {
    std::vector<std::string> n;
    for (const auto& [name, kind] : kNames) n.push_back(name);
    return n;
}

std::string MethodConfig::name() const {
    for (const auto& [name, k] : kNames)
        if (k == kind) return name;
    return "?";
}

bool MethodConfig::backbone_trainable(const std::string& name) const {
    const bool head = name.rfind("classifier.", 0) == 0;
    switch (kind) {
        case MethodKind::Full: return true;
        case MethodKind::BitFit: return head || ends_with(name, ".bias");
        // Adapter methods also tune the layer norms, as Houlsby et al. and Pfeiffer et al. do.
        case MethodKind::Houlsby:
        case MethodKind::Pfeiffer:
        case MethodKind::Parallel: return head || name.find("LayerNorm") != std::string::npos;
        case MethodKind::LoRA:
        case MethodKind::IA3: return head;
    }
    return false;
}

MethodConfig parse_method(const nlohmann::json& j, const std::string& where) {
    MethodConfig m;
    if (j.is_null()) return m;
    if (!j.is_object()) throw Error(where + ": 'method' must be a JSON object");
    auto fail = [&](const std::string& key, const std::string& msg) -> void {
        throw Error(where + ": 'method." + key + "' " + msg);
    };
    auto num = [&](const nlohmann::json& o, const std::string& path, const char* key, double def, double lo, double hi) {
        if (!o.contains(key)) return def;
        if (!o[key].is_number()) fail(path + key, "must be a number, found " + o[key].dump());
        const double v = o[key].get<double>();
        if (v < lo || v > hi) fail(path + key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return v;
    };
    auto check_keys = [&](const nlohmann::json& o, const std::string& path, const std::vector<std::string>& allowed) {
        for (auto it = o.begin(); it != o.end(); ++it)
            if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
                std::string list;
                for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
                fail(path + it.key(), "is not a known key (expected one of: " + list + ")");
            }
    };
    check_keys(j, "", {"name", "lora", "adapter", "gradient_checkpointing"});
    const std::string name = j.value("name", std::string("full"));
    bool found = false;
    for (const auto& [n, k] : kNames)
        if (n == name) m.kind = k, found = true;
    if (!found) {
        std::string list;
        for (const auto& n : method_names()) list += (list.empty() ? "" : ", ") + n;
        fail("name", "must be one of " + list + ", found \"" + name + "\"");
    }
    if (j.contains("gradient_checkpointing")) {
        if (!j["gradient_checkpointing"].is_boolean()) fail("gradient_checkpointing", "must be true or false");
        m.gradient_checkpointing = j["gradient_checkpointing"].get<bool>();
    }
    if (j.contains("lora")) {
        const auto& o = j["lora"];
        if (!o.is_object()) fail("lora", "must be a JSON object");
        check_keys(o, "lora.", {"r", "alpha", "dropout", "targets"});
        m.lora.r = static_cast<int>(num(o, "lora.", "r", m.lora.r, 1, 4096));
        if (o.contains("r") && !o["r"].is_number_integer()) fail("lora.r", "must be an integer");
        m.lora.alpha = num(o, "lora.", "alpha", m.lora.alpha, 0, 1e6);
        m.lora.dropout = num(o, "lora.", "dropout", m.lora.dropout, 0, 0.99);
        if (o.contains("targets")) {
            if (!o["targets"].is_array() || o["targets"].empty()) fail("lora.targets", "must be a non-empty array of names");
            m.lora.targets.clear();
            for (const auto& t : o["targets"]) {
                const std::string s = t.is_string() ? t.get<std::string>() : t.dump();
                if (std::find(kLoraSites.begin(), kLoraSites.end(), s) == kLoraSites.end())
                    fail("lora.targets", "has \"" + s + "\"; expected query, key, value, attention_output, ffn_in or ffn_out");
                m.lora.targets.push_back(s);
            }
        }
    }
    if (j.contains("adapter")) {
        const auto& o = j["adapter"];
        if (!o.is_object()) fail("adapter", "must be a JSON object");
        check_keys(o, "adapter.", {"bottleneck", "init_std", "zero_init_up", "scaling"});
        if (o.contains("bottleneck") && !o["bottleneck"].is_number_integer()) fail("adapter.bottleneck", "must be an integer");
        m.adapter.bottleneck = static_cast<int>(num(o, "adapter.", "bottleneck", m.adapter.bottleneck, 1, 65536));
        m.adapter.init_std = num(o, "adapter.", "init_std", m.adapter.init_std, 0, 10);
        m.adapter.scaling = num(o, "adapter.", "scaling", m.adapter.scaling, 0, 1e6);
        if (o.contains("zero_init_up")) {
            if (!o["zero_init_up"].is_boolean()) fail("adapter.zero_init_up", "must be true or false");
            m.adapter.zero_init_up = o["zero_init_up"].get<bool>();
        }
    }
    return m;
}

}  // namespace meft
