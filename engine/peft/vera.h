// vera.h — VeRA (Kopiczko et al. 2024): one pair of frozen random matrices for the whole model,
// A [r, in_max] ~ U(±1/√in_max) and B [out_max, r] ~ U(±1/√r) (PEFT's `vera_A`, `vera_B`,
// kaiming-uniform, kept in every checkpoint), and per targeted projection two trained vectors:
//   out += λ_b ⊙ (B[:out] · (λ_d ⊙ (A[:, :in] · Dropout(x))))
// λ_d [r] starts at d_initial and λ_b [out] at 0, so training starts at the backbone. Backward
// keeps only the r-wide A·Dropout(x): it never reads x, so a frozen projection's input need not be
// kept (as with LoRA-FA).
#pragma once
#include <memory>

#include "model/config.h"
#include "model/edits.h"
#include "model/params.h"
#include "peft/method.h"

namespace meft {

// The method `vera`. The shared matrices are declared by the first stack that asks (`vera_A`,
// `vera_B`), sized for every targeted projection of the model.
std::unique_ptr<StackEdit> vera_stack(const MethodConfig& m, const ModelConfig& cfg, ParameterStore& ps);

}  // namespace meft
