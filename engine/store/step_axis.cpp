#include "store/step_axis.h"

#include <algorithm>

#include "core/error.h"

namespace meft {

const std::vector<StepAxis>& all_step_axes() {
    static const std::vector<StepAxis> axes = {StepAxis::step, StepAxis::epoch, StepAxis::seconds, StepAxis::tokens};
    return axes;
}

std::string step_axis_name(StepAxis axis) {
    switch (axis) {
        case StepAxis::step: return "step";
        case StepAxis::epoch: return "epoch";
        case StepAxis::seconds: return "wall-clock";
        case StepAxis::tokens: return "tokens";
    }
    return "step";
}

std::string step_axis_label(StepAxis axis) {
    switch (axis) {
        case StepAxis::step: return "step";
        case StepAxis::epoch: return "epoch";
        case StepAxis::seconds: return "wall-clock time (s)";
        case StepAxis::tokens: return "tokens seen (padded)";
    }
    return "step";
}

StepAxis parse_step_axis(const std::string& name) {
    std::string known;
    for (StepAxis a : all_step_axes()) {
        if (step_axis_name(a) == name) return a;
        known += (known.empty() ? "" : ", ") + step_axis_name(a);
    }
    throw Error("unknown x axis \"" + name + "\": expected one of " + known);
}

double StepPoint::on(StepAxis axis) const {
    switch (axis) {
        case StepAxis::step: return step;
        case StepAxis::epoch: return epoch;
        case StepAxis::seconds: return seconds;
        case StepAxis::tokens: return tokens;
    }
    return step;
}

StepPoint StepClock::add(const StepRow& row) {
    const double call_tokens = row.tokens_per_s * row.elapsed_s;
    if (!points_.empty() && row.elapsed_s < last_elapsed_) {  // a new attempt (resumed) starts from 0
        seconds_before_ += last_elapsed_;
        tokens_before_ += last_call_tokens_;
    }
    last_elapsed_ = row.elapsed_s;
    last_call_tokens_ = call_tokens;
    StepPoint p;
    p.step = row.step;
    p.epoch = steps_per_epoch_ > 0 ? double(row.step) / steps_per_epoch_ : double(row.step);
    p.seconds = seconds_before_ + row.elapsed_s;
    p.tokens = tokens_before_ + call_tokens;
    points_.push_back(p);
    return p;
}

double StepClock::at(int step, StepAxis axis) const {
    const auto after = std::upper_bound(points_.begin(), points_.end(), step,
                                        [](int s, const StepPoint& p) { return s < p.step; });
    StepPoint p = after == points_.begin() ? StepPoint{} : *(after - 1);
    p.step = step;
    p.epoch = steps_per_epoch_ > 0 ? double(step) / steps_per_epoch_ : double(step);
    return p.on(axis);
}

}  // namespace meft
