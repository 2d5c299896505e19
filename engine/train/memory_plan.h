// memory_plan.h — one training step's memory, measured or planned.
//
// Both functions run the same code: build the model, take one optimizer step's forward and
// backward on a full-length batch (B examples of T tokens, no padding; for a multiple-choice
// head B counts (context, choice) pairs, so a batch of q questions of c choices is B = q * c). measure_memory() does it
// on a real backend; plan_memory() on the shape-only backend, which allocates and computes
// nothing, so any model size plans in milliseconds and the two agree byte for byte.
//
// The step's report also has what the model takes from its backend (MemoryReport::footprint():
// arena chunks and op workspaces). A run's footprint comes from *_run_memory: evaluation
// forwards of eval_batch rows as well as training steps, on the backend's WorkspaceRule.
#pragma once
#include "core/dtype.h"
#include "core/shape_backend.h"
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
MemoryPlanResult plan_memory(const ModelConfig& cfg, const MethodConfig& method, DType dtype, int batch, int seq,
                             const WorkspaceRule& rule = WorkspaceRule::cpu());

// A whole run: an evaluation forward of eval_batch x seq, then a training step of train_batch x
// seq, twice (what a run's arenas and workspaces grow to). The report's activation figures are
// the last training step's.
MemoryPlanResult measure_run_memory(Backend& backend, const ModelConfig& cfg, const MethodConfig& method, DType dtype,
                                    int train_batch, int eval_batch, int seq);
MemoryPlanResult plan_run_memory(const ModelConfig& cfg, const MethodConfig& method, DType dtype, int train_batch,
                                 int eval_batch, int seq, const WorkspaceRule& rule = WorkspaceRule::cpu());

}  // namespace meft
