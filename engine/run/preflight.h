// preflight.h — what is already known to fail, found before a run row exists: a sequence longer
// than the model's positions, a step that cannot fit in the backend's memory, a zero-shot
// evaluation whose checkpoint head cannot serve the task's labels. `meft run` refuses such an
// experiment before recording anything; the workbench disables its Run button with the reasons.
#pragma once
#include <string>
#include <vector>

#include "core/backend.h"
#include "store/experiment.h"
#include "train/memory_plan.h"

namespace meft {

struct Preflight {
    std::vector<std::string> problems;  // each a sentence naming the key and what to change; empty: go
    MemoryPlanResult plan;              // the run's planned memory (footprint: plan.report.footprint())
    std::size_t available = 0;          // bytes the run can take: the device's free memory, or the host's
    std::string memory_where;           // "the cuda (NVIDIA H100) device", "this computer"
    int train_rows = 0, eval_rows = 0, seq = 0;  // the shapes planned
    bool ok() const { return problems.empty(); }
    std::string message() const;        // the problems, one per line
};

// Checks an experiment against the model it names and the backend it will run on (for memory).
// A model folder that cannot be read throws Error naming the file, as loading it would.
Preflight preflight(const Experiment& e, Backend& backend);

// What can be known wrong about an experiment without a machine to run it on: the checks above
// but memory, and the method built onto the model on the shape-only backend (a method setting the
// backbone cannot take, e.g. more reversible layers than it has). `meft run --dry-run` and `meft
// sweep submit` run it for every expansion, so a grid never queues tasks that fail at start.
// Errors reading the model folder are problems too (the sentence names the file).
std::vector<std::string> static_problems(const Experiment& e);
// static_problems of every expansion, each problem once with the expansions it hits ("expansions
// 1-4, 9: ..."; numbered from first_index); "" when there are none.
std::string grid_problems(const std::vector<Experiment>& exps, int first_index = 1);

// The longest sequence the model's positions allow (RoBERTa: max_position_embeddings - pad - 1).
int model_max_tokens(const ModelConfig& cfg);

}  // namespace meft
