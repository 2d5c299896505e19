// dora.h — DoRA (Liu et al. 2024) on a linear layer: the frozen weight W [out, in] becomes
// m ⊙ (W + s·B·A) / ||W + s·B·A||, each output row scaled to a learned magnitude m [out] (PEFT's
// lora_magnitude_vector, starting at W's row norms so training starts at the backbone), with
// LoRA's A, B and scale s (alpha / r). As in PEFT, the branch reads Dropout(x):
//   out = W x + b + (g - 1) ⊙ (W x_d) + g ⊙ (s · B A x_d),   g = m / ||W + s·B·A||   (per row)
// which is m ⊙ (W + sBA) x / ||W + sBA|| + b when dropout is off. Backward keeps only A·x_d
// (and x, which the projection keeps), recomputing W x_d; the norm is either held constant
// (`detach_norm`, the paper's §4.3 and PEFT's default) or differentiated exactly.
#pragma once
#include <memory>

#include "model/edits.h"
#include "peft/method.h"

namespace meft {

// The method `dora`: a DoRA branch on each targeted projection.
std::unique_ptr<StackEdit> dora_stack(const MethodConfig& m);

}  // namespace meft
