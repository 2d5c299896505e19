#include "model/params.h"

#include <array>
#include <cstdio>
#include <cmath>

#include "core/philox.h"

namespace meft {

namespace {
bool decays(const std::string& name) {
    const auto ends = [&](const std::string& s) {
        return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    return !ends("bias") && name.find("LayerNorm") == std::string::npos;
}
}  // namespace

std::string Init::describe() const {
    char buf[64];
    switch (kind) {
        case Zeros: return "zeros";
        case Ones: return "ones";
        case Normal: std::snprintf(buf, sizeof buf, "N(0, %g)", scale); return buf;
        case Uniform: std::snprintf(buf, sizeof buf, "U(-%g, %g)", scale, scale); return buf;
        case RowNorms: return "the row norms of its weight";
        case Constant: std::snprintf(buf, sizeof buf, "%g", scale); return buf;
    }
    return "?";
}

ParameterStore::ParameterStore(Backend& backend, DType dtype) : backend_(backend), dtype_(dtype) {
    frozen_ = std::make_unique<Arena>("frozen weights", backend.memory());
    trainable_ = std::make_unique<Arena>("trainable weights", backend.memory());
    grads_ = std::make_unique<Arena>("gradients", backend.memory());
    optim_ = std::make_unique<Arena>("optimizer state", backend.memory());
}

int ParameterStore::declare(const std::string& name, Shape shape, Init init, bool added, bool fixed) {
    MEFT_CHECK(!materialized_, "declare after materialize: " + name);
    MEFT_CHECK(!index_.count(name), "parameter declared twice: " + name);
    const int i = static_cast<int>(params_.size());
    Parameter p;
    p.name = name;
    p.shape = shape;
    p.init = init;
    p.added = added;
    p.fixed = added && fixed;
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
    // Each arena takes exactly what its parameters need, in one chunk (no chunk rounding).
    std::size_t frozen = 0, trainable = 0;
    for (const Parameter& p : params_) (p.trainable ? trainable : frozen) += Arena::rounded_size(dtype_, p.shape);
    frozen_->reserve_exactly(frozen);
    trainable_->reserve_exactly(trainable);
    grads_->reserve_exactly(trainable);
    optim_->reserve_exactly(2 * trainable);
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

namespace {
// Deterministic uniform in (0, 1] and [0, 1) pairs from Philox, keyed by (seed, stream, i).
std::array<double, 2> uniform_pair(std::uint64_t seed, std::uint32_t stream, std::uint64_t i) {
    const auto r = philox4x32({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i >> 32), stream, 0x5eed},
                              static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
    return {(static_cast<double>(r[0]) + 1.0) / 4294967296.0, static_cast<double>(r[1]) / 4294967296.0};
}
}  // namespace

void ParameterStore::initialize(int index, std::uint64_t seed) {
    MEFT_CHECK(materialized_, "initialize before materialize");
    Parameter& p = at(index);
    std::vector<double> host(static_cast<std::size_t>(p.shape.numel()), 0.0);
    const auto stream = static_cast<std::uint32_t>(index);
    switch (p.init.kind) {
        case Init::Zeros: break;
        case Init::Ones: std::fill(host.begin(), host.end(), 1.0); break;
        case Init::Constant: std::fill(host.begin(), host.end(), p.init.scale); break;
        case Init::Normal:  // Box-Muller
            for (std::size_t i = 0; i < host.size(); ++i) {
                const auto [u1, u2] = uniform_pair(seed, stream, i);
                host[i] = p.init.scale * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
            }
            if (p.init.zero_row >= 0) {
                const std::int64_t C = p.shape[p.shape.ndim - 1];
                std::fill_n(host.begin() + p.init.zero_row * C, C, 0.0);
            }
            break;
        case Init::Uniform:
            for (std::size_t i = 0; i < host.size(); ++i)
                host[i] = p.init.scale * (2.0 * uniform_pair(seed, stream, i)[1] - 1.0);
            break;
        case Init::RowNorms: {
            MEFT_CHECK(p.init.source >= 0 && p.init.source < index, "row norms of a parameter declared after it");
            const Parameter& w = at(p.init.source);
            const std::int64_t R = w.shape[0], C = w.shape.numel() / R;
            MEFT_CHECK(R == p.shape.numel(), p.name + ": row norms of " + w.name + " need " + std::to_string(R) + " elements");
            const std::vector<double> wv = download_values(w.value);
            for (std::int64_t r = 0; r < R; ++r) {
                double ss = 0;
                for (std::int64_t c = 0; c < C; ++c) ss += wv[static_cast<std::size_t>(r * C + c)] * wv[static_cast<std::size_t>(r * C + c)];
                host[static_cast<std::size_t>(r)] = std::sqrt(ss);
            }
            break;
        }
    }
    if (dtype_ == DType::F64) {
        backend_.upload(p.value, host.data());
    } else {
        const std::vector<float> f(host.begin(), host.end());
        backend_.upload(p.value, f.data());
    }
}

std::vector<double> ParameterStore::download_values(Tensor t) const {
    const std::size_t n = static_cast<std::size_t>(t.numel());
    std::vector<double> out(n);
    if (t.dtype == DType::F64) {
        backend_.download(out.data(), t);
    } else {
        MEFT_CHECK(t.dtype == DType::F32, "parameter values are F32 or F64");
        std::vector<float> f(n);
        backend_.download(f.data(), t);
        std::copy(f.begin(), f.end(), out.begin());
    }
    return out;
}

int ParameterStore::index_of(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? -1 : it->second;
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
