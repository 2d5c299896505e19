// ia3.h — (IA)3 (Liu et al. 2022): learned per-channel scalings of the attention's keys and values
// and of the FFN's activation (the input of its output projection), initialised to ones so
// training starts at the backbone. Names as Hugging Face PEFT's: `<projection>.ia3_l`.
#pragma once
#include <memory>

#include "model/edits.h"

namespace meft {

std::unique_ptr<StackEdit> ia3_stack();

}  // namespace meft
