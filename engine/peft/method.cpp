#include "peft/method.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace meft {

namespace {
const std::vector<std::pair<std::string, MethodKind>> kNames = {
    {"full", MethodKind::Full},         {"bitfit", MethodKind::BitFit},     {"lora", MethodKind::LoRA},
    {"houlsby", MethodKind::Houlsby},   {"pfeiffer", MethodKind::Pfeiffer}, {"parallel", MethodKind::Parallel},
    {"prefix", MethodKind::Prefix},     {"ia3", MethodKind::IA3},           {"meft1", MethodKind::MEFT1},       {"meft2", MethodKind::MEFT2},
    {"meft3", MethodKind::MEFT3}};
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
    // The task head: BERT's / RoBERTa's classifier, BART's classification_head.
    const bool head = name.rfind("classifier.", 0) == 0 || name.rfind("classification_head.", 0) == 0;
    switch (kind) {
        case MethodKind::Full: return true;
        case MethodKind::BitFit: return head || ends_with(name, ".bias");
        // Adapter methods also tune the layer norms, as Houlsby et al. and Pfeiffer et al. do.
        case MethodKind::Houlsby:
        case MethodKind::Pfeiffer:
        case MethodKind::Parallel: return head || name.find("LayerNorm") != std::string::npos;
        case MethodKind::LoRA:
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
            return a.lora.r == b.lora.r && a.lora.alpha == b.lora.alpha &&
                   std::is_permutation(a.lora.targets.begin(), a.lora.targets.end(), b.lora.targets.begin(), b.lora.targets.end());
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
    check_keys(j, "", {"name", "lora", "adapter", "meft", "prefix", "gradient_checkpointing"});
    if (j.contains("name") && !j["name"].is_string()) fail("name", "must be a string, found " + j["name"].dump());
    const std::string name = j.value("name", std::string("full"));
    bool found = false;
    for (const auto& [n, k] : kNames)
        if (n == name) m.kind = k, found = true;
    if (!found) {
        std::string list;
        for (const auto& n : method_names()) list += (list.empty() ? "" : ", ") + n;
        fail("name", "must be one of " + list + ", found \"" + name + "\"");
    }
    if (m.is_meft()) {  // the spec's defaults (§2, §3, §7): r = 8, sigma = 0.02, variant factors
        m.adapter.bottleneck = 8;
        m.adapter.init_std = 0.02;
        m.meft.lambda_inverse = m.kind == MethodKind::MEFT2 ? 1 : 10;
        m.meft.beta_inverse = m.kind == MethodKind::MEFT1 ? 1 : 10;
    }
    if (j.contains("meft")) {
        if (!m.is_meft()) fail("meft", "applies only to meft1, meft2 and meft3");
        const auto& o = j["meft"];
        if (!o.is_object()) fail("meft", "must be a JSON object");
        check_keys(o, "meft.", {"lambda", "beta", "reversible_layers", "frozen_prefix", "streams", "vanilla_gradient",
                                "keep_true_inputs"});
        auto inverse_of = [&](const char* key, int def) {
            const double v = num(o, "meft.", key, 1.0 / def, 1.0 / 256, 1.0);
            const double inv = 1.0 / v;
            if (std::abs(inv - std::round(inv)) > 1e-9)
                fail(std::string("meft.") + key, "must be 1/m for an integer m in [1, 256] (e.g. 0.1, 0.125, 0.5, 1)");
            return static_cast<int>(std::round(inv));
        };
        m.meft.lambda_inverse = inverse_of("lambda", m.meft.lambda_inverse);
        m.meft.beta_inverse = inverse_of("beta", m.meft.beta_inverse);
        for (const char* k : {"reversible_layers", "frozen_prefix"})
            if (o.contains(k) && !o[k].is_number_integer()) fail(std::string("meft.") + k, "must be an integer");
        m.meft.reversible_layers = static_cast<int>(num(o, "meft.", "reversible_layers", -1, -1, 1000));
        m.meft.frozen_prefix = static_cast<int>(num(o, "meft.", "frozen_prefix", 0, 0, 1000));
        if (o.contains("streams")) {
            const std::string st = o["streams"].is_string() ? o["streams"].get<std::string>() : o["streams"].dump();
            if (st != "exact" && st != "float64") fail("meft.streams", "must be \"exact\" or \"float64\", found " + st);
            m.meft.exact = st == "exact";
        }
        for (const char* k : {"vanilla_gradient", "keep_true_inputs"})
            if (o.contains(k) && !o[k].is_boolean()) fail(std::string("meft.") + k, "must be true or false");
        m.meft.vanilla_gradient = o.value("vanilla_gradient", false);
        m.meft.keep_true_inputs = o.value("keep_true_inputs", false);
    }
    if (j.contains("prefix")) {
        if (!m.is_prefix()) fail("prefix", "applies only to the prefix method");
        const auto& o = j["prefix"];
        if (!o.is_object()) fail("prefix", "must be a JSON object");
        check_keys(o, "prefix.", {"length", "reparameterize", "hidden", "init_std"});
        for (const char* k : {"length", "hidden"})
            if (o.contains(k) && !o[k].is_number_integer()) fail(std::string("prefix.") + k, "must be an integer");
        m.prefix.length = static_cast<int>(num(o, "prefix.", "length", m.prefix.length, 1, 1024));
        m.prefix.hidden = static_cast<int>(num(o, "prefix.", "hidden", m.prefix.hidden, 1, 65536));
        m.prefix.init_std = num(o, "prefix.", "init_std", m.prefix.init_std, 0, 10);
        if (o.contains("reparameterize")) {
            if (!o["reparameterize"].is_boolean()) fail("prefix.reparameterize", "must be true or false");
            m.prefix.reparameterize = o["reparameterize"].get<bool>();
        }
    }
    if (j.contains("gradient_checkpointing")) {
        if (!j["gradient_checkpointing"].is_boolean()) fail("gradient_checkpointing", "must be true or false");
        m.gradient_checkpointing = j["gradient_checkpointing"].get<bool>();
    }
    if (m.gradient_checkpointing && m.is_meft())
        fail("gradient_checkpointing", "does not combine with " + m.name() + ": MEFT recomputes its layers by construction");
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
