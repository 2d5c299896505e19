// prefix.h — prefix-tuning (Li & Liang 2021): P trainable virtual keys and values before every
// self-attention layer's own, always attended. Either per layer (`<attention>.prefix_key`,
// `.prefix_value` [P,C]) or reparameterised: one MLP shared by the stack, P' [P,C] -> Linear(C,H)
// -> tanh -> Linear(H, 2·L·C), whose output rows (2l, 2l+1) are layer l's keys and values
// (Hugging Face PEFT's PrefixEncoder names under StackSpec::prefix_mlp).
#pragma once
#include <memory>

#include "model/edits.h"
#include "peft/method.h"

namespace meft {

// Declares the shared MLP (reparameterised) right away: before the stack's layers.
std::unique_ptr<StackEdit> prefix_stack(const PrefixSettings& s, const StackSpec& spec, const ModelConfig& cfg,
                                        ParameterStore& ps);

}  // namespace meft
