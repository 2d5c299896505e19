// method.h — a fine-tuning method as an edit of the backbone: which parameters it adds, which
// parameters train, and how the layer computes. Names, knobs and defaults: docs/methods.md.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/edits.h"

namespace meft {

// RsLoRA, LoraFA and DoRA are LoRA with another scaling / a frozen A / a learned magnitude (the
// LoRA family: is_lora()); VeRA has its own knobs.
enum class MethodKind { Full, BitFit, LoRA, Houlsby, Pfeiffer, Parallel, Prefix, IA3, MEFT1, MEFT2, MEFT3, RsLoRA, LoraFA,
                        DoRA, VeRA };
inline bool is_lora_kind(MethodKind k) {
    return k == MethodKind::LoRA || k == MethodKind::RsLoRA || k == MethodKind::LoraFA || k == MethodKind::DoRA;
}

struct PrefixSettings {
    int length = 20;                // P virtual key/value positions per layer
    bool reparameterize = false;    // P' [P,C] -> Linear(C,H) -> tanh -> Linear(H, 2·L·C) (Li & Liang 2021)
    int hidden = 512;               // H of the reparameterisation MLP
    double init_std = 0.02;         // N(0, std^2) for the prefixes (or the MLP's input embedding)
};

struct LoraSettings {
    int r = 8;
    double alpha = 16;          // the update is scaled by alpha / r
    double dropout = 0.1;       // on the LoRA branch's input
    // among query, key, value, attention_output, ffn_in, ffn_out
    std::vector<std::string> targets = {"query", "value"};
    // DoRA: backward treats ||W + s·B·A|| as a constant (the DoRA paper's §4.3 and PEFT); false:
    // the exact gradient through the norm.
    bool detach_norm = true;
    bool targets_site(const std::string& site) const;
};

// VeRA (Kopiczko et al. 2024): out += λ_b ⊙ (B · (λ_d ⊙ (A · Dropout(x)))) with A [r, in_max] and
// B [out_max, r] frozen random matrices shared by every targeted projection of the model (each
// takes its leading columns of A and rows of B), λ_d [r] = d_initial and λ_b [out] = 0 trained.
struct VeraSettings {
    int r = 256;
    double d_initial = 0.1;
    double dropout = 0.0;
    std::vector<std::string> targets = {"query", "value"};
    bool targets_site(const std::string& site) const;
};

struct AdapterSettings {
    int bottleneck = 64;        // r: W_down is [r, C], W_up is [C, r]
    double init_std = 0.02;     // N(0, std^2) for both projections (biases zero), as MEFT's adapters
    bool zero_init_up = false;  // W_up = 0: the edited model starts exactly at the backbone
    double scaling = 1.0;       // parallel adapters: output multiplied by this (He et al. use 4)
};

// MEFT (Liao, Tan & Monz 2023; ../shared/docs/meft-spec.md): the backbone made reversible.
// λ = 1/lambda_inverse, β = 1/beta_inverse, so the exact (fixed-point) inverse is integer arithmetic.
struct MeftSettings {
    int lambda_inverse = 10;        // MEFT1 λ = 0.1; MEFT2 λ = 1; MEFT3 λ = 0.1
    int beta_inverse = 1;           // MEFT1 β = 1;   MEFT2 β = 0.1; MEFT3 β = 0.1
    int reversible_layers = -1;     // counted from the bottom (after the frozen prefix); -1: all
    int frozen_prefix = 0;          // plain frozen layers below the coupling, nothing stored
    bool exact = true;              // fixed-point int64 streams with stored remainders; else float64 streams
    bool vanilla_gradient = false;  // same architecture, ordinary backprop (no reconstruction)
    bool keep_true_inputs = false;  // diagnostic: keep the forward's streams, report reconstruction error
    double lambda() const { return 1.0 / lambda_inverse; }
    double beta() const { return 1.0 / beta_inverse; }
};

struct MethodConfig {
    MethodKind kind = MethodKind::Full;
    LoraSettings lora;
    VeraSettings vera;
    AdapterSettings adapter;
    MeftSettings meft;
    PrefixSettings prefix;
    bool gradient_checkpointing = false;  // keep only each layer's input; recompute in backward
    // Layers that are recomputed in backward (MEFT's reversible layers and frozen prefix, gradient
    // checkpointing) run on chunks of whole examples of at most this many tokens (at least one
    // example), forward and backward alike; 0: the whole batch at once.
    int recompute_tokens = 2048;

    std::string name() const;
    // Houlsby: after attention and FFN; Pfeiffer: after FFN; sequential (own skip).
    bool is_meft() const { return kind == MethodKind::MEFT1 || kind == MethodKind::MEFT2 || kind == MethodKind::MEFT3; }
    int meft_variant() const { return kind == MethodKind::MEFT1 ? 1 : kind == MethodKind::MEFT2 ? 2 : kind == MethodKind::MEFT3 ? 3 : 0; }
    // MEFT3's F is the attention block with a sequential adapter (spec §2.1).
    bool adapter_after_attention() const { return kind == MethodKind::Houlsby || kind == MethodKind::MEFT3; }
    bool adapter_after_ffn() const { return kind == MethodKind::Houlsby || kind == MethodKind::Pfeiffer; }
    // Every MEFT variant puts a parallel adapter beside the FFN (spec §2.1).
    bool parallel_ffn_adapter() const { return kind == MethodKind::Parallel || is_meft(); }
    bool is_lora() const { return is_lora_kind(kind); }
    bool lora_on(const std::string& site) const { return is_lora() && lora.targets_site(site); }
    // The LoRA update's factor: alpha / r, or rsLoRA's alpha / sqrt(r) (Kalajdzievski 2023).
    double lora_scale() const;
    bool ia3() const { return kind == MethodKind::IA3; }
    bool is_prefix() const { return kind == MethodKind::Prefix; }
    // Whether a backbone parameter (HF name; `head`: of the task's classifier) trains under this method.
    // Added parameters always train.
    bool backbone_trainable(const std::string& name, bool head) const;

    // The method as an edit of a model (peft/method_edit.cpp): what a model is built with, so a
    // MethodConfig can be passed wherever a model takes its edit.
    operator std::shared_ptr<const ModelEdit>() const;
};

// Whether two configurations build the same model: the same added tensors, computing the same
// function (training-only knobs — dropout rates, initialisation, gradient checkpointing, which
// MEFT layers rebuild their inputs — may differ).
bool same_architecture(const MethodConfig& a, const MethodConfig& b);

// The method section of an experiment file, read by the knob table (peft/method_knobs.cpp);
// `where` names the file and key path for error messages.
MethodConfig parse_method(const nlohmann::json& j, const std::string& where);
std::vector<std::string> method_names();
// Throws Error listing the names when `name` is not a method.
MethodKind method_by_name(const std::string& name);

}  // namespace meft
