#include "model/params.h"

namespace meft {

namespace {
bool decays(const std::string& name) {
    const auto ends = [&](const std::string& s) {
        return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    return !ends("bias") && name.find("LayerNorm") == std::string::npos;
}
}  // namespace

ParameterStore::ParameterStore(Backend& backend, DType dtype) : backend_(backend), dtype_(dtype) {
    frozen_ = std::make_unique<Arena>("frozen weights", backend.memory());
    trainable_ = std::make_unique<Arena>("trainable weights", backend.memory());
    grads_ = std::make_unique<Arena>("gradients", backend.memory());
    optim_ = std::make_unique<Arena>("optimizer state", backend.memory());
}

int ParameterStore::declare(const std::string& name, Shape shape) {
    MEFT_CHECK(!materialized_, "declare after materialize: " + name);
    MEFT_CHECK(!index_.count(name), "parameter declared twice: " + name);
    const int i = static_cast<int>(params_.size());
    Parameter p;
    p.name = name;
    p.shape = shape;
    p.decay = decays(name);
    params_.push_back(p);
    index_[name] = i;
    return i;
}

void ParameterStore::set_trainable(const std::function<bool(const Parameter&)>& pred) {
    MEFT_CHECK(!materialized_, "set_trainable after materialize");
    for (Parameter& p : params_) p.trainable = pred(p);
}

void ParameterStore::materialize() {
    MEFT_CHECK(!materialized_, "materialize twice");
    for (Parameter& p : params_) {
        Arena& a = p.trainable ? *trainable_ : *frozen_;
        p.value = a.zeros(dtype_, p.shape, -1, p.name);
        if (p.trainable) {
            p.grad = grads_->zeros(dtype_, p.shape, -1, p.name);
            p.m = optim_->zeros(dtype_, p.shape, -1, p.name + ".m");
            p.v = optim_->zeros(dtype_, p.shape, -1, p.name + ".v");
        }
    }
    materialized_ = true;
}

Parameter* ParameterStore::find(const std::string& name) {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &params_[static_cast<std::size_t>(it->second)];
}

void ParameterStore::zero_grads() {
    for (Parameter& p : params_)
        if (p.grad) backend_.fill(p.grad, 0.0);
}

std::int64_t ParameterStore::count(bool trainable_only) const {
    std::int64_t n = 0;
    for (const Parameter& p : params_)
        if (!trainable_only || p.trainable) n += p.shape.numel();
    return n;
}

}  // namespace meft
