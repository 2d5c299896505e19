// schedule.h — learning-rate schedule: linear warm-up from 0, then linear decay to 0
// (Hugging Face get_linear_schedule_with_warmup). `step` counts updates already made.
#pragma once

namespace meft {

struct LinearSchedule {
    double base_lr = 1e-3;
    int warmup_steps = 0;
    int total_steps = 1;
    double lr(int step) const;
};

int warmup_steps_for(double warmup_ratio, int total_steps);  // ceil(ratio * total), as HF does

}  // namespace meft
