// peft_export_cases.h — the small models, methods and inputs that test_peft_export and
// peft_export_fixture (the numpy cross-check) export: every backbone with LoRA, (IA)3 and
// prefix-tuning, each method's tensors drawn non-trivial (LoRA's B non-zero, (IA)3's vectors away
// from one) so that an adapter read wrongly cannot pass for a right one.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/model.h"
#include "peft/method.h"

namespace meft::test {

// Tiny shapes: hidden 8, 2 heads (so a head-major layout error shows), 2 layers (BART 2 + 2),
// FFN 16, a few labels; weights drawn with std 0.5 so every path matters.
inline ModelConfig peft_case_config(Arch arch, bool multiple_choice = false) {
    ModelConfig c = arch == Arch::Bert || arch == Arch::Roberta ? ModelConfig{} : preset_config(arch, "tiny");
    c.arch = arch;
    c.vocab_size = 40;
    c.hidden_size = 8;
    c.num_heads = 2;
    c.num_layers = 2;
    c.decoder_layers = arch == Arch::Bart ? 2 : 0;
    c.intermediate_size = 16;
    c.max_position_embeddings = arch == Arch::Bart ? 16 : 32;
    c.initializer_range = 0.5;
    if (arch == Arch::Bert || arch == Arch::Roberta) {
        c.type_vocab_size = arch == Arch::Bert ? 2 : 1;
        c.pad_token_id = arch == Arch::Bert ? 0 : 1;
        c.layer_norm_eps = arch == Arch::Bert ? 1e-12 : 1e-5;
    }
    if (arch == Arch::Opt) c.word_embed_proj_dim = 8;
    if (arch != Arch::Opt) c.set_num_labels(3);
    if (multiple_choice) c.set_multiple_choice();
    return c;
}

// "lora" (query, value, ffn_out; r 2, alpha 3: scale 1.5), "lora_all" (all six sites), the same
// for "rslora" / "lora_fa" / "dora" ("rslora_all", "lora_fa_all", "dora_all"), "vera" (query,
// value, ffn_out; r 3) and "vera_all", "ia3", "prefix" (P = 3), "prefix_mlp" (P = 3 through an
// MLP of width 5), or any method name.
inline MethodConfig peft_case_method(const std::string& name) {
    nlohmann::json j = {{"name", name}};
    if (name == "vera") j["vera"] = {{"r", 3}, {"dropout", 0.1}, {"targets", {"query", "value", "ffn_out"}}};
    if (name == "vera_all")
        j = {{"name", "vera"},
             {"vera", {{"r", 3}, {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}}}};
    for (const std::string family : {"lora", "rslora", "lora_fa", "dora"}) {
        if (name == family)
            j["lora"] = {{"r", 2}, {"alpha", 3}, {"dropout", 0.1}, {"targets", {"query", "value", "ffn_out"}}};
        if (name == family + "_all")
            j = {{"name", family},
                 {"lora", {{"r", 2}, {"alpha", 3}, {"dropout", 0.0},
                           {"targets", {"query", "key", "value", "attention_output", "ffn_in", "ffn_out"}}}}};
    }
    if (name == "prefix") j["prefix"] = {{"length", 3}, {"init_std", 0.5}};
    if (name == "prefix_mlp")
        j = {{"name", "prefix"}, {"prefix", {{"length", 3}, {"init_std", 0.5}, {"reparameterize", true}, {"hidden", 5}}}};
    return parse_method(j, "test");
}

// Every parameter drawn (HF's init), then the method's moved off their starting values.
inline void draw_case_weights(Model& m, std::uint64_t seed) {
    m.init_weights(seed);
    std::mt19937_64 rng(seed + 17);
    std::normal_distribution<double> n(0.0, 0.3);
    for (Parameter& p : m.params().all()) {
        if (!p.added) continue;
        std::vector<double> v = m.to_host(p.value);
        for (double& x : v) x += n(rng);
        m.from_host(p.value, v);
    }
}

inline std::unique_ptr<Model> make_case_model(Arch arch, const std::string& method, DType dtype, Backend& be,
                                              std::uint64_t seed = 5, bool multiple_choice = false) {
    auto m = make_model(peft_case_config(arch, multiple_choice), be, dtype, peft_case_method(method));
    draw_case_weights(*m, seed);
    return m;
}

// Three examples of different lengths, padded: BERT/RoBERTa with token types (BERT) and pads,
// BART ending each in eos (as many in each, as transformers requires), OPT from bos with every
// real token after the first labelled (one example padded on the left).
inline HostBatch case_batch(const ModelConfig& c) {
    HostBatch b;
    b.B = 3;
    b.T = 7;
    const int pad = c.pad_token_id;
    const std::vector<std::vector<int>> rows = {{5, 9, 14, 21, 33, 7, 12}, {6, 30, 11, 4}, {17, 25, 8, 19, 26}};
    for (int i = 0; i < b.B; ++i) {
        std::vector<int> ids = rows[static_cast<std::size_t>(i)];
        if (c.arch == Arch::Bart) {
            ids.front() = c.bos_token_id;
            ids.back() = c.eos_token_id;
        }
        if (c.arch == Arch::Opt) ids.front() = c.bos_token_id;
        const int n = static_cast<int>(ids.size()), lead = c.arch == Arch::Opt && i == 1 ? b.T - n : 0;
        for (int t = 0; t < b.T; ++t) {
            const int k = t - lead;
            const bool real = k >= 0 && k < n;
            b.input_ids.push_back(real ? ids[static_cast<std::size_t>(k)] : pad);
            b.attention_mask.push_back(real);
            b.token_type_ids.push_back(c.arch == Arch::Bert && real && k >= n / 2 ? 1 : 0);
            if (c.arch == Arch::Opt) b.token_labels.push_back(real && k > 0 ? ids[static_cast<std::size_t>(k)] : -100);
        }
        b.labels.push_back(c.multiple_choice ? (i == 1) : i % c.num_labels());
        b.targets.push_back(0);
    }
    if (c.multiple_choice) b.choice_counts = {3};
    return b;
}

// The model's outputs for the batch in evaluation: a classifier's logits [B·K] (one score per
// row for a multiple-choice head), a causal LM's log-probability of each labelled token, in
// order (example, then position).
inline std::vector<double> case_outputs(Model& m, const HostBatch& b, bool backbone_only = false) {
    ForwardOptions o;
    o.backbone_only = backbone_only;
    const std::vector<double> z = m.to_host(m.forward(b, o));
    if (b.token_labels.empty()) return z;
    const std::size_t V = static_cast<std::size_t>(m.config().vocab_size);
    std::vector<double> out;
    std::size_t row = 0;
    for (int i = 0; i < b.B; ++i)
        for (int t = 0; t + 1 < b.T; ++t) {
            const int label = b.token_labels[static_cast<std::size_t>(i * b.T + t + 1)];
            if (label < 0) continue;
            const double* r = z.data() + row++ * V;
            double mx = r[0], s = 0;
            for (std::size_t k = 1; k < V; ++k) mx = std::max(mx, r[k]);
            for (std::size_t k = 0; k < V; ++k) s += std::exp(r[k] - mx);
            out.push_back(r[label] - mx - std::log(s));
        }
    return out;
}

}  // namespace meft::test
