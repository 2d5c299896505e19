// call.h — what a method's branch (LoRA, an adapter) needs to run forward or backward once.
#pragma once
#include "core/arena.h"
#include "core/backend.h"
#include "model/edits.h"
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

// A branch's call from the layer's: its own dropout rate while training, none in evaluation.
inline PeftCall branch_call(const EditCall& c, double dropout) {
    return PeftCall{c.be, c.ps, c.tmp, c.train ? dropout : 0.0, c.key, c.example_offset};
}

}  // namespace meft
