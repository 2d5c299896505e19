// step_axis.h — where a recorded training step lies on the x axes a researcher plots against:
// the step, the epoch, wall-clock time, or tokens seen.
//
// The database keeps, per step, the seconds since the training call started (elapsed_s) and the
// padded tokens processed per second since then (tokens_per_s), so tokens seen in that call are
// their product. A resumed run starts a new call at 0: a step whose elapsed time is below the
// previous step's begins a new attempt, and the earlier attempts' last time and tokens are carried
// into it, so both axes keep rising over the whole run (time and tokens of steps that a resume
// recomputed are not counted twice: the database keeps only their last attempt).
#pragma once
#include <string>
#include <vector>

#include "store/database.h"

namespace meft {

enum class StepAxis { step, epoch, seconds, tokens };

const std::vector<StepAxis>& all_step_axes();  // in the order a menu lists them
std::string step_axis_name(StepAxis axis);     // "step", "epoch", "wall-clock", "tokens"
std::string step_axis_label(StepAxis axis);    // the axis title: "wall-clock time (s)", …
StepAxis parse_step_axis(const std::string& name);  // a name above, else Error listing them

// One step's coordinates on every axis.
struct StepPoint {
    int step = 0;
    double epoch = 0;    // step / steps per epoch (the step itself when that is unknown)
    double seconds = 0;  // training time of the run up to the end of this step, over all attempts
    double tokens = 0;   // padded tokens processed up to the end of this step, over all attempts
    double on(StepAxis axis) const;
};

// Turns step rows, in increasing step order, into points; also places evaluations (which come at
// steps) on the same axes. Fed incrementally by live views.
class StepClock {
public:
    explicit StepClock(int steps_per_epoch = 0) : steps_per_epoch_(steps_per_epoch) {}

    int steps_per_epoch() const { return steps_per_epoch_; }
    StepPoint add(const StepRow& row);
    const std::vector<StepPoint>& points() const { return points_; }

    // Where `step` lies on `axis`: exact for a step added; for another step (an evaluation before
    // the first step row, or between rows), the last added point at or before it, its step and
    // epoch moved to `step`; 0 seconds and 0 tokens before any row.
    double at(int step, StepAxis axis) const;

private:
    int steps_per_epoch_ = 0;
    std::vector<StepPoint> points_;
    double last_elapsed_ = 0, last_call_tokens_ = 0;  // the latest row's, within its attempt
    double seconds_before_ = 0, tokens_before_ = 0;   // carried from earlier attempts
};

}  // namespace meft
