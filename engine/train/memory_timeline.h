// memory_timeline.h — one training step's activation memory over time, as PyTorch's memory
// snapshot viewer draws it, but per layer: the bytes alive after every allocation and free of the
// activation arenas, in the order the step's forward and backward make them.
//
// Lanes: what each layer holds for backward (the "activations" arena, one lane per layer), then
// the backward's activation gradients, the layers' temporaries and gradient checkpointing's
// recomputed layer (one lane per arena, all layers together). The lanes add up to the bytes in
// use; their largest sum is the step's activation peak (MemoryReport::activation_peak). The plan
// (shape-only backend) and a measurement on the CPU run the same code: for the same batch shape
// their timelines are equal event for event. The traced step is memory_plan.cpp's (the plan's
// own step); this file turns events into lanes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/dtype.h"
#include "core/shape_backend.h"
#include "model/config.h"
#include "peft/method.h"

namespace meft {

class Backend;

struct TimelineLane {
    std::string kind;   // "held" (one layer's saved activations), "gradients", "temporaries", "recomputed"
    int layer = -2;     // held: -1 embeddings, 0..L-1, L head; else -2 (all layers)
    std::string label;  // "layer 3 (held)", "activation gradients"
    std::vector<std::int64_t> alive;  // bytes after each event
};

struct StepTimeline {
    std::vector<MeterEvent> events;  // allocations, frees, and phase boundaries (arena "phase", no bytes)
    std::vector<TimelineLane> lanes;
    int backward_from = -1;      // the "phase" event where the backward starts (the forward is before it)
    std::int64_t peak = 0;       // the largest total
    int peak_at = -1;            // the event after which it was reached
    int rows = 0, seq = 0;       // the batch shape
    std::vector<std::int64_t> total() const;  // the lanes' sum after each event
};

// The lanes of a traced step (labels from the model config's layer names).
StepTimeline timeline_of(const std::vector<MeterEvent>& events, const ModelConfig& cfg);

// One training step of a full-length batch (batch x seq), traced: on a real backend, or planned.
StepTimeline measure_step_timeline(Backend& backend, const ModelConfig& cfg, const MethodConfig& method, DType dtype,
                                   int batch, int seq);
StepTimeline plan_step_timeline(const ModelConfig& cfg, const MethodConfig& method, DType dtype, int batch, int seq,
                                const WorkspaceRule& rule = WorkspaceRule::cpu());

}  // namespace meft
