// pareto.h — which runs are on the trade-off front: no other run is at least as good on every
// objective and better on one. The workbench marks them on its score × activation memory × step
// time plots; "typical step time" is what it measures a run's speed by.
#pragma once
#include <optional>
#include <vector>

#include "store/database.h"

namespace meft {

// points[i][k]: run i's value of objective k; higher[k]: whether more is better for objective k.
// A point with a missing objective (NaN) is never on the front and never dominates. Equal points
// are all on the front.
std::vector<bool> pareto_front(const std::vector<std::vector<double>>& points, const std::vector<bool>& higher);

// The median time of one training step, in seconds, from the elapsed time the steps recorded: the
// differences between consecutive recorded steps (a resumed attempt's restart and a gap in the
// step numbers are skipped; a step that ran an evaluation is an outlier the median ignores).
// nullopt with fewer than two consecutive steps.
std::optional<double> median_step_seconds(const std::vector<StepRow>& steps);

}  // namespace meft
