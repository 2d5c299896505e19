// optimizer.h — AdamW over a ParameterStore's trainable parameters, with global-norm clipping.
#pragma once
#include "model/params.h"

namespace meft {

struct AdamWConfig {
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.01;   // decoupled; not applied to biases and LayerNorm weights
};

class AdamW {
public:
    AdamW(ParameterStore& params, AdamWConfig cfg) : params_(params), cfg_(cfg) {}
    // One update with learning rate lr; returns nothing. step_ counts from 1.
    void step(double lr);
    int steps_done() const { return step_; }
    void set_steps_done(int s) { step_ = s; }

private:
    ParameterStore& params_;
    AdamWConfig cfg_;
    int step_ = 0;
};

// L2 norm over all trainable gradients.
double global_grad_norm(ParameterStore& params);
// Scales gradients so the global norm is at most max_norm (PyTorch clip_grad_norm_: factor
// max_norm / (norm + 1e-6)). Returns the norm before clipping. max_norm <= 0 disables clipping.
double clip_grad_norm(ParameterStore& params, double max_norm);

}  // namespace meft
