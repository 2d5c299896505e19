// memory_plan.h — one training step's memory, measured or planned.
//
// Both functions run the same code: build the model, take one optimizer step's forward and
// backward on a full-length batch (B examples of T tokens, no padding; for a multiple-choice
// head B counts (context, choice) pairs, so a batch of q questions of c choices is B = q * c). measure_memory() does it
// on a real backend; plan_memory() on the shape-only backend, which allocates and computes
// nothing, so any model size plans in milliseconds and the two agree byte for byte.
#pragma once
#include "core/dtype.h"
#include "model/config.h"
#include "model/memory_report.h"
#include "peft/method.h"

namespace meft {

class Backend;

struct MemoryPlanResult {
    MemoryReport report;
    std::int64_t trainable_parameters = 0;
    std::int64_t parameters = 0;
};

MemoryPlanResult measure_memory(Backend& backend, const ModelConfig& cfg, const MethodConfig& method, DType dtype,
                                int batch, int seq);
MemoryPlanResult plan_memory(const ModelConfig& cfg, const MethodConfig& method, DType dtype, int batch, int seq);

}  // namespace meft
