#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace meft {

double LinearSchedule::lr(int step) const {
    if (step < warmup_steps) return base_lr * double(step) / double(std::max(1, warmup_steps));
    return base_lr * std::max(0.0, double(total_steps - step) / double(std::max(1, total_steps - warmup_steps)));
}

int warmup_steps_for(double warmup_ratio, int total_steps) {
    return static_cast<int>(std::ceil(warmup_ratio * double(total_steps)));
}

}  // namespace meft
