// lora.h — LoRA (Hu et al. 2021) on a linear layer: out += (alpha / r) · B · A · Dropout(x), with
// A [r, IN] drawn U(-1/sqrt(IN), 1/sqrt(IN)) and B [OUT, r] zero, so training starts exactly at the
// backbone (Hugging Face PEFT's defaults). Two variants share it:
//   rsLoRA (Kalajdzievski 2023): scaled by alpha / sqrt(r) (PEFT's use_rslora);
//   LoRA-FA (Zhang et al. 2023): A stays at its random draw and only B trains, so backward needs
//   only the r-wide A·Dropout(x), never x: a frozen projection's input need not be kept.
#pragma once
#include <string>

#include <memory>

#include "core/backend.h"
#include "model/edits.h"
#include "model/params.h"
#include "peft/call.h"
#include "peft/method.h"

namespace meft {

struct LoraWeights {
    int a = -1, b = -1;
    double scale = 0;       // alpha / r (rsLoRA: alpha / sqrt(r))
    bool frozen_a = false;  // LoRA-FA
    explicit operator bool() const { return a >= 0; }
};

// Declares `<prefix>.lora_A.weight` [r, in] and `<prefix>.lora_B.weight` [out, r] (HF PEFT names)
// for a LoRA-family method `m` (its lora settings, scaling and whether A trains).
LoraWeights declare_lora(ParameterStore& ps, const std::string& prefix, int in, int out, const MethodConfig& m);


// out[N,OUT] += scale · (Dropout(x) A^T) B^T. Returns xa = Dropout(x) A^T [N,r], allocated in
// `saved` for backward.
Tensor lora_forward(const PeftCall& c, const LoraWeights& w, Tensor out, Tensor x, Arena& saved, int layer,
                    const std::string& tag);
// dx += the LoRA branch's input gradient; dA (unless frozen) and dB accumulate. x is read only
// for dA (LoRA-FA: may be empty).
void lora_backward(const PeftCall& c, const LoraWeights& w, Tensor dx, Tensor dout, Tensor x, Tensor xa);

// The method (lora, rslora or lora_fa): a LoRA branch on each targeted projection (self- and
// cross-attention's alike).
std::unique_ptr<StackEdit> lora_stack(const MethodConfig& m);

}  // namespace meft
