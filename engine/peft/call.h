// call.h — what a method's branch (LoRA, an adapter) needs to run forward or backward once.
#pragma once
#include "core/arena.h"
#include "core/backend.h"
#include "model/params.h"

namespace meft {

struct PeftCall {
    Backend& be;
    ParameterStore& ps;
    Arena& tmp;              // temporaries, reset by the caller between layers
    double dropout;          // the branch's dropout rate (0 in evaluation)
    PhiloxKey key;           // its dropout stream
    int example_offset;      // first example's index within the optimizer step
};

}  // namespace meft
