// method_knobs.cpp — every method knob in one table (kKnobs): its key, type, range, label and help,
// which methods show it, and where its value lives in MethodConfig. The table drives the parser
// (parse_method), the workbench's forms (method_knobs) and the experiment schema's "method"
// section (method_schema, written into docs/experiment.schema.json by `meft schema`). A new knob
// is one row here.
#include "peft/method_knobs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace meft {

namespace {
using Type = MethodKnob::Type;
using json = nlohmann::json;

// A section of the method object ("lora": {...}); "" for the top level.
struct Group {
    const char* key;
    const char* description;            // for the schema
    bool (*applies)(MethodKind);        // which methods may set it; null: any
    const char* applies_text;           // the error when another method does: "applies only to ..."
};

bool is_meft(MethodKind k) { return k == MethodKind::MEFT1 || k == MethodKind::MEFT2 || k == MethodKind::MEFT3; }
bool is_adapter(MethodKind k) { return k == MethodKind::Houlsby || k == MethodKind::Pfeiffer || k == MethodKind::Parallel; }

const Group kGroups[] = {
    {"lora", "LoRA knobs", nullptr, nullptr},
    {"adapter", "adapter knobs (Houlsby, Pfeiffer, parallel, MEFT)", nullptr, nullptr},
    {"meft", "MEFT knobs", is_meft, "applies only to meft1, meft2 and meft3"},
    {"prefix", "prefix-tuning knobs", [](MethodKind k) { return k == MethodKind::Prefix; }, "applies only to the prefix method"},
    {"vera", "VeRA knobs", [](MethodKind k) { return k == MethodKind::VeRA; }, "applies only to the vera method"},
};

struct KnobRow {
    const char* group;                  // a kGroups key, or "" (top level)
    const char* name;
    Type type;
    double min, max;                    // Integer, Real
    std::vector<std::string> choices;   // Choice, Names
    const char* label;
    const char* help;
    bool (*shown)(MethodKind);          // the methods whose form shows it
    json (*get)(const MethodConfig&);
    void (*set)(MethodConfig&, const json&);  // the value has passed the type and range checks
    const char* (*check)(double) = nullptr;   // a further rule on a number: the complaint, or null
};

const char* inverse_of_integer(double v) {
    const double inv = 1.0 / v;
    return std::abs(inv - std::round(inv)) > 1e-9 ? "must be 1/m for an integer m in [1, 256] (e.g. 0.1, 0.125, 0.5, 1)"
                                                   : nullptr;
}
int inverse(const json& v) { return static_cast<int>(std::round(1.0 / v.get<double>())); }

const std::vector<KnobRow>& knobs() {
    static const std::vector<KnobRow> rows = {
        {"lora", "r", Type::Integer, 1, 4096, {}, "rank r", "Rank of the update B·A.",
         [](MethodKind k) { return is_lora_kind(k); }, [](const MethodConfig& m) { return json(m.lora.r); },
         [](MethodConfig& m, const json& v) { m.lora.r = v.get<int>(); }},
        {"lora", "alpha", Type::Real, 0, 1e6, {}, "alpha", "The update is scaled by alpha / r (rslora: alpha / √r).",
         [](MethodKind k) { return is_lora_kind(k); }, [](const MethodConfig& m) { return json(m.lora.alpha); },
         [](MethodConfig& m, const json& v) { m.lora.alpha = v.get<double>(); }},
        {"lora", "dropout", Type::Real, 0, 0.99, {}, "dropout", "Dropout on the LoRA branch's input.",
         [](MethodKind k) { return is_lora_kind(k); }, [](const MethodConfig& m) { return json(m.lora.dropout); },
         [](MethodConfig& m, const json& v) { m.lora.dropout = v.get<double>(); }},
        {"lora", "targets", Type::Names, 0, 0, {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"},
         "targets", "The projections that get a LoRA update.", [](MethodKind k) { return is_lora_kind(k); },
         [](const MethodConfig& m) { return json(m.lora.targets); },
         [](MethodConfig& m, const json& v) { m.lora.targets = v.get<std::vector<std::string>>(); }},
        {"lora", "detach_norm", Type::Boolean, 0, 0, {}, "detach norm",
         "DoRA: backward treats the column norm ||W + s·B·A|| as a constant (the paper's §4.3, PEFT); false: the exact "
         "gradient through it.",
         [](MethodKind k) { return k == MethodKind::DoRA; }, [](const MethodConfig& m) { return json(m.lora.detach_norm); },
         [](MethodConfig& m, const json& v) { m.lora.detach_norm = v.get<bool>(); }},

        {"vera", "r", Type::Integer, 1, 65536, {}, "rank r", "Rank of the shared random matrices A [r, in] and B [out, r].",
         [](MethodKind k) { return k == MethodKind::VeRA; }, [](const MethodConfig& m) { return json(m.vera.r); },
         [](MethodConfig& m, const json& v) { m.vera.r = v.get<int>(); }},
        {"vera", "d_initial", Type::Real, 0, 1e3, {}, "λ_d initial", "The starting value of every entry of λ_d.",
         [](MethodKind k) { return k == MethodKind::VeRA; }, [](const MethodConfig& m) { return json(m.vera.d_initial); },
         [](MethodConfig& m, const json& v) { m.vera.d_initial = v.get<double>(); }},
        {"vera", "dropout", Type::Real, 0, 0.99, {}, "dropout", "Dropout on the VeRA branch's input.",
         [](MethodKind k) { return k == MethodKind::VeRA; }, [](const MethodConfig& m) { return json(m.vera.dropout); },
         [](MethodConfig& m, const json& v) { m.vera.dropout = v.get<double>(); }},
        {"vera", "targets", Type::Names, 0, 0, {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"},
         "targets", "The projections that get a VeRA update.", [](MethodKind k) { return k == MethodKind::VeRA; },
         [](const MethodConfig& m) { return json(m.vera.targets); },
         [](MethodConfig& m, const json& v) { m.vera.targets = v.get<std::vector<std::string>>(); }},

        {"adapter", "bottleneck", Type::Integer, 1, 65536, {}, "bottleneck r",
         "The adapter's hidden size: W_down is [r, hidden], W_up is [hidden, r].",
         [](MethodKind k) { return is_adapter(k) || is_meft(k); },
         [](const MethodConfig& m) { return json(m.adapter.bottleneck); },
         [](MethodConfig& m, const json& v) { m.adapter.bottleneck = v.get<int>(); }},
        {"adapter", "init_std", Type::Real, 0, 10, {}, "init σ",
         "Standard deviation of the N(0, σ²) draw of both adapter projections (biases start at zero).",
         [](MethodKind k) { return is_adapter(k) || is_meft(k); },
         [](const MethodConfig& m) { return json(m.adapter.init_std); },
         [](MethodConfig& m, const json& v) { m.adapter.init_std = v.get<double>(); }},
        {"adapter", "zero_init_up", Type::Boolean, 0, 0, {}, "zero-init W_up",
         "Start W_up at zero so the edited model starts exactly at the backbone.", is_adapter,
         [](const MethodConfig& m) { return json(m.adapter.zero_init_up); },
         [](MethodConfig& m, const json& v) { m.adapter.zero_init_up = v.get<bool>(); }},
        {"adapter", "scaling", Type::Real, 0, 1e6, {}, "scaling",
         "The parallel adapter's output is multiplied by this (He et al. use 4).",
         [](MethodKind k) { return k == MethodKind::Parallel || is_meft(k); },
         [](const MethodConfig& m) { return json(m.adapter.scaling); },
         [](MethodConfig& m, const json& v) { m.adapter.scaling = v.get<double>(); }},

        {"prefix", "length", Type::Integer, 1, 1024, {}, "length P",
         "Virtual key/value positions prepended in every layer's attention.",
         [](MethodKind k) { return k == MethodKind::Prefix; }, [](const MethodConfig& m) { return json(m.prefix.length); },
         [](MethodConfig& m, const json& v) { m.prefix.length = v.get<int>(); }},
        {"prefix", "reparameterize", Type::Boolean, 0, 0, {}, "reparameterize",
         "Produce the prefixes with one shared MLP (Li & Liang) instead of training them directly.",
         [](MethodKind k) { return k == MethodKind::Prefix; },
         [](const MethodConfig& m) { return json(m.prefix.reparameterize); },
         [](MethodConfig& m, const json& v) { m.prefix.reparameterize = v.get<bool>(); }},
        {"prefix", "hidden", Type::Integer, 1, 65536, {}, "MLP hidden", "Hidden size of the reparameterisation MLP.",
         [](MethodKind k) { return k == MethodKind::Prefix; }, [](const MethodConfig& m) { return json(m.prefix.hidden); },
         [](MethodConfig& m, const json& v) { m.prefix.hidden = v.get<int>(); }},
        {"prefix", "init_std", Type::Real, 0, 10, {}, "init σ", "Standard deviation of the prefixes' N(0, σ²) draw.",
         [](MethodKind k) { return k == MethodKind::Prefix; }, [](const MethodConfig& m) { return json(m.prefix.init_std); },
         [](MethodConfig& m, const json& v) { m.prefix.init_std = v.get<double>(); }},

        {"meft", "lambda", Type::Real, 1.0 / 256, 1, {}, "λ",
         "y1 = λ·x1 + F(x2). Must be 1/m for an integer m ≤ 256 so the inverse is exact.", is_meft,
         [](const MethodConfig& m) { return json(m.meft.lambda()); },
         [](MethodConfig& m, const json& v) { m.meft.lambda_inverse = inverse(v); }, inverse_of_integer},
        {"meft", "beta", Type::Real, 1.0 / 256, 1, {}, "β",
         "y2 = β·x2 + G(y1). Must be 1/m for an integer m ≤ 256 so the inverse is exact.", is_meft,
         [](const MethodConfig& m) { return json(m.meft.beta()); },
         [](MethodConfig& m, const json& v) { m.meft.beta_inverse = inverse(v); }, inverse_of_integer},
        {"meft", "reversible_layers", Type::Integer, -1, 1000, {}, "reversible layers",
         "The lowest k coupled layers rebuild their inputs in backward; -1: all of them.", is_meft,
         [](const MethodConfig& m) { return json(m.meft.reversible_layers); },
         [](MethodConfig& m, const json& v) { m.meft.reversible_layers = v.get<int>(); }},
        {"meft", "frozen_prefix", Type::Integer, 0, 1000, {}, "frozen prefix",
         "Bottom layers that run as the plain frozen backbone, storing nothing.", is_meft,
         [](const MethodConfig& m) { return json(m.meft.frozen_prefix); },
         [](MethodConfig& m, const json& v) { m.meft.frozen_prefix = v.get<int>(); }},
        {"meft", "streams", Type::Choice, 0, 0, {"exact", "float64"}, "streams",
         "exact: int64 fixed point with stored remainders (bit-exact inverse); float64: divide.", is_meft,
         [](const MethodConfig& m) { return json(m.meft.exact ? "exact" : "float64"); },
         [](MethodConfig& m, const json& v) { m.meft.exact = v.get<std::string>() == "exact"; }},
        {"meft", "vanilla_gradient", Type::Boolean, 0, 0, {}, "vanilla gradient",
         "Train the same architecture with ordinary backprop (for comparison).", is_meft,
         [](const MethodConfig& m) { return json(m.meft.vanilla_gradient); },
         [](MethodConfig& m, const json& v) { m.meft.vanilla_gradient = v.get<bool>(); }},
        {"meft", "keep_true_inputs", Type::Boolean, 0, 0, {}, "measure reconstruction",
         "Keep the forward's streams and report the per-layer reconstruction error every step.", is_meft,
         [](const MethodConfig& m) { return json(m.meft.keep_true_inputs); },
         [](MethodConfig& m, const json& v) { m.meft.keep_true_inputs = v.get<bool>(); }},

        {"", "recompute_tokens", Type::Integer, 0, 1 << 24, {}, "recompute chunk",
         "Layers recomputed in backward (MEFT, gradient checkpointing) run on chunks of whole examples of at most "
         "this many tokens, so one layer's recomputed activations are a chunk's, not the batch's; 0: the whole batch.",
         [](MethodKind) { return true; }, [](const MethodConfig& m) { return json(m.recompute_tokens); },
         [](MethodConfig& m, const json& v) { m.recompute_tokens = v.get<int>(); }},
        {"", "gradient_checkpointing", Type::Boolean, 0, 0, {}, "gradient checkpointing",
         "Keep only each layer's input and recompute the layer in backward.", [](MethodKind k) { return !is_meft(k); },
         [](const MethodConfig& m) { return json(m.gradient_checkpointing); },
         [](MethodConfig& m, const json& v) { m.gradient_checkpointing = v.get<bool>(); }},
    };
    return rows;
}

std::string key_of(const KnobRow& r) { return *r.group ? std::string(r.group) + "." + r.name : std::string(r.name); }

// A method's configuration before any knob is set: the spec's defaults for MEFT (§2, §3, §7):
// r = 8, σ = 0.02 and the variant's λ, β.
MethodConfig defaults_for(MethodKind kind) {
    MethodConfig m;
    m.kind = kind;
    if (m.is_meft()) {
        m.adapter.bottleneck = 8;
        m.adapter.init_std = 0.02;
        m.meft.lambda_inverse = kind == MethodKind::MEFT2 ? 1 : 10;
        m.meft.beta_inverse = kind == MethodKind::MEFT1 ? 1 : 10;
    }
    return m;
}

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return buf;
}

// The complaint about `v` for the row's type and range, or "".
std::string complaint(const KnobRow& r, const json& v) {
    switch (r.type) {
        case Type::Integer:
        case Type::Real: {
            if (!v.is_number()) return "must be a number, found " + v.dump();
            if (r.type == Type::Integer && !v.is_number_integer()) return "must be an integer, found " + v.dump();
            const double x = v.get<double>();
            if (x < r.min || x > r.max) return "must be in [" + number(r.min) + ", " + number(r.max) + "], found " + v.dump();
            if (r.check)
                if (const char* c = r.check(x)) return c;
            return "";
        }
        case Type::Boolean: return v.is_boolean() ? "" : "must be true or false, found " + v.dump();
        case Type::Choice:
            if (v.is_string() && std::find(r.choices.begin(), r.choices.end(), v.get<std::string>()) != r.choices.end())
                return "";
            return "must be " + listed(r.choices, "\"") + ", found " + v.dump();
        case Type::Names:
            if (!v.is_array() || v.empty()) return "must be a non-empty array of names";
            for (const json& t : v)
                if (!t.is_string() || std::find(r.choices.begin(), r.choices.end(), t.get<std::string>()) == r.choices.end())
                    return "has " + t.dump() + "; expected " + listed(r.choices);
            return "";
    }
    return "";
}

nlohmann::ordered_json schema_of(const KnobRow& r, const MethodConfig& defaults) {
    nlohmann::ordered_json s;
    switch (r.type) {
        case Type::Integer:
            s = {{"type", "integer"}, {"minimum", static_cast<long long>(r.min)}, {"maximum", static_cast<long long>(r.max)}};
            break;
        case Type::Real: s = {{"type", "number"}, {"minimum", r.min}, {"maximum", r.max}}; break;
        case Type::Boolean: s = {{"type", "boolean"}}; break;
        case Type::Choice: s = {{"type", "string"}, {"enum", r.choices}}; break;
        case Type::Names:
            s = {{"type", "array"}, {"minItems", 1}, {"items", {{"type", "string"}, {"enum", r.choices}}}};
            break;
    }
    s["default"] = r.get(defaults);
    s["description"] = std::string(r.label) + ": " + r.help;
    if (r.type == Type::Names) return s;  // a list already; no sweep over lists
    // A sweep: an experiment file may give a list of values (store/experiment.h, expand_sweeps).
    return nlohmann::ordered_json{{"anyOf", {s, {{"type", "array"}, {"minItems", 1}, {"items", s}}}}};
}
}  // namespace

MethodKind method_kind(const std::string& name) { return method_by_name(name); }

std::string method_summary(MethodKind kind) {
    switch (kind) {
        case MethodKind::Full: return "every weight trains (the reference; most memory)";
        case MethodKind::BitFit: return "only biases and the classifier train";
        case MethodKind::LoRA: return "low-rank updates B·A beside chosen projections (Hu et al. 2021)";
        case MethodKind::RsLoRA: return "LoRA scaled by alpha / √r, stable at high rank (Kalajdzievski 2023)";
        case MethodKind::DoRA: return "LoRA on the direction of each weight row plus a learned magnitude (Liu et al. 2024)";
        case MethodKind::VeRA: return "shared frozen random A, B; only per-layer scaling vectors train (Kopiczko et al. 2024)";
        case MethodKind::LoraFA: return "LoRA with A frozen at its random draw: only B trains, frozen inputs are not kept (Zhang et al. 2023)";
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
    const MethodConfig d = defaults_for(kind);
    std::vector<MethodKnob> out;
    for (const KnobRow& r : knobs())
        if (r.shown(kind)) out.push_back({key_of(r), r.type, r.min, r.max, r.choices, r.get(d), r.label, r.help});
    return out;
}

MethodConfig parse_method(const json& j, const std::string& where) {
    MethodConfig m;
    if (j.is_null()) return m;
    if (!j.is_object()) throw Error(where + ": 'method' must be a JSON object");
    auto fail = [&](const std::string& key, const std::string& msg) { throw Error(where + ": 'method." + key + "' " + msg); };
    // Every key of an object must be one of `allowed`.
    auto check_keys = [&](const json& o, const std::string& path, const std::vector<std::string>& allowed) {
        for (auto it = o.begin(); it != o.end(); ++it)
            if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
                std::string list;
                for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
                fail(path + it.key(), "is not a known key (expected one of: " + list + ")");
            }
    };
    auto names_in = [&](const char* group) {
        std::vector<std::string> n;
        for (const KnobRow& r : knobs())
            if (std::string(r.group) == group) n.push_back(r.name);
        return n;
    };
    // Sets the knobs of one object (a group's, or the top level's) that it holds.
    auto read = [&](const json& o, const char* group) {
        for (const KnobRow& r : knobs()) {
            if (std::string(r.group) != group || !o.contains(r.name)) continue;
            const std::string c = complaint(r, o[r.name]);
            if (!c.empty()) fail(key_of(r), c);
            r.set(m, o[r.name]);
        }
    };

    std::vector<std::string> top = {"name"};
    for (const Group& g : kGroups) top.push_back(g.key);
    for (const std::string& n : names_in("")) top.push_back(n);
    check_keys(j, "", top);
    if (j.contains("name") && !j["name"].is_string()) fail("name", "must be a string, found " + j["name"].dump());
    const std::string name = j.value("name", std::string("full"));
    const std::vector<std::string> names = method_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
        fail("name", "must be one of " + listed(names) + ", found \"" + name + "\"");
    m = defaults_for(method_by_name(name));
    for (const Group& g : kGroups) {
        if (!j.contains(g.key)) continue;
        if (g.applies && !g.applies(m.kind)) fail(g.key, g.applies_text);
        const json& o = j[g.key];
        if (!o.is_object()) fail(g.key, "must be a JSON object");
        check_keys(o, std::string(g.key) + ".", names_in(g.key));
        read(o, g.key);
    }
    read(j, "");
    if (m.gradient_checkpointing && m.is_meft())
        fail("gradient_checkpointing", "does not combine with " + m.name() + ": MEFT recomputes its layers by construction");
    return m;
}

nlohmann::ordered_json method_schema() {
    using ojson = nlohmann::ordered_json;
    const MethodConfig d;
    const std::vector<std::string> names = method_names();
    const ojson name = {{"type", "string"}, {"enum", names}, {"default", d.name()}, {"description", "the fine-tuning method"}};
    ojson props = {{"name", {{"anyOf", {name, {{"type", "array"}, {"minItems", 1}, {"items", name}}}}}}};
    for (const Group& g : kGroups) {
        ojson p = ojson::object();
        for (const KnobRow& r : knobs())
            if (std::string(r.group) == g.key) p[r.name] = schema_of(r, d);
        props[g.key] = {{"type", "object"}, {"additionalProperties", false}, {"properties", p}, {"description", g.description}};
    }
    for (const KnobRow& r : knobs())
        if (!*r.group) props[r.name] = schema_of(r, d);
    return ojson{{"type", "object"}, {"additionalProperties", false}, {"properties", props},
                 {"description", "the method (docs/methods.md)"}};
}

}  // namespace meft
