// shape_backend.h — a backend that computes nothing and allocates nothing: arenas hand out
// addresses that are never touched, and every op returns at once. Running a training step on
// it walks exactly the allocation sequence of the real step, so `meft plan` reports the same
// bytes the CPU backend measures, for any model size, in milliseconds.
#pragma once
#include <memory>

#include "core/backend.h"

namespace meft {

std::unique_ptr<Backend> make_shape_backend();

}  // namespace meft
