#include "train/optimizer.h"

#include <cmath>

namespace meft {

void AdamW::step(double lr) {
    ++step_;
    Backend& be = params_.backend();
    for (Parameter& p : params_.all())
        if (p.trainable)
            be.adamw_update(p.value, p.grad, p.m, p.v, lr, cfg_.beta1, cfg_.beta2, cfg_.eps,
                            p.decay ? cfg_.weight_decay : 0.0, step_);
}

double global_grad_norm(ParameterStore& params) {
    double ss = 0;
    for (Parameter& p : params.all())
        if (p.trainable) ss += params.backend().sum_squares(p.grad);
    return std::sqrt(ss);
}

double clip_grad_norm(ParameterStore& params, double max_norm) {
    const double norm = global_grad_norm(params);
    const double f = max_norm / (norm + 1e-6);
    if (max_norm > 0 && f < 1.0) {
        for (Parameter& p : params.all())
            if (p.trainable) params.backend().scale(p.grad, f);
    }
    return norm;
}

}  // namespace meft
