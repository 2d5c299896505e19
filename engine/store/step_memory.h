// step_memory.h — one training step's activation memory, split into the parts that add up to its
// peak, planned (shape-only backend, full-length batch) or measured (the run's largest step).
//
//   held by layers   saved for backward by each layer, until its backward (MEFT remainders excluded)
//   remainders       MEFT's packed division remainders (exact streams), held too
//   stored streams   MEFT: the reversible segment's stored output (the two streams and the merge)
//   transient        at the peak, above everything held: the gradient buffers, recomputed tapes and
//                    temporaries of the layer whose backward (or the forward) reached it
//   = activation peak (what `activation_peak_bytes` and the paper call activation memory)
//   parameter gradients  the trainable parameters' gradient buffers: resident, not activation
//
// Recorded per run in the step_memory table (store/database.h), shown stacked by the workbench.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/memory_report.h"

namespace meft {

struct StepMemory {
    std::int64_t held_layers = 0, remainders = 0, streams = 0, transient = 0;
    std::int64_t activation_peak = 0;      // held_layers + remainders + streams + transient
    std::int64_t parameter_gradients = 0;
    int step = 0;           // measured: the step it was taken at (0 for a plan)
    int rows = 0, seq = 0;  // the (micro-)batch: rows x tokens (padded to its longest example)

    static StepMemory from_report(const MemoryReport& report, int step, int rows, int seq);
};

// One row of the step_memory table: a part's name ("held_layers", "remainders", "streams",
// "transient", "activation_peak", "parameter_gradients", "step", "rows", "seq") and its value.
struct StepMemoryRow {
    std::string kind;  // "planned" or "measured"
    std::string part;
    std::int64_t value = 0;
};

std::vector<StepMemoryRow> step_memory_rows(const std::string& kind, const StepMemory& m);
// The kind's parts from rows (any order, other kinds ignored); nullopt when the rows have none of it.
std::optional<StepMemory> step_memory_of(const std::vector<StepMemoryRow>& rows, const std::string& kind);

// Where measured and planned differ, and why, for people: which step and batch shape each is of
// ("measured at step 18 on a 32 x 58 batch; planned for 32 x 64"), and for a batch shorter than
// the plan's that it was dynamically padded to its longest example (so the measurement is the
// smaller); equal shapes with equal peaks say they agree byte for byte.
std::string explain_step_memory(const StepMemory& planned, const StepMemory& measured);

}  // namespace meft
