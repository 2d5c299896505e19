// gradcheck.h — float64 central finite differences for the gradient-check suites.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace meft::test {

// A host float64 buffer with a Tensor view.
struct Buf {
    Shape shape;
    std::vector<double> v;
    explicit Buf(Shape s, double fill = 0.0) : shape(s), v(static_cast<std::size_t>(s.numel()), fill) {}
    Tensor t() { return Tensor{DType::F64, shape, v.data()}; }
};

inline Buf randn(Shape s, std::uint64_t seed, double scale = 1.0) {
    Buf b(s);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> n(0.0, scale);
    for (double& x : b.v) x = n(rng);
    return b;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

struct GradError {
    double max_abs = 0;       // max |analytic - numeric|
    double scale = 0;         // max |numeric|
    double rel() const { return max_abs / std::max(scale, 1e-12); }
};

// Compares analytic[i] with (loss(x_i + h) - loss(x_i - h)) / 2h for the elements `which`
// (all when empty). x is perturbed in place and restored.
inline GradError check_grad(std::vector<double>& x, const std::vector<double>& analytic,
                            const std::function<double()>& loss, std::vector<std::size_t> which = {},
                            double h = 1e-5) {
    if (which.empty())
        for (std::size_t i = 0; i < x.size(); ++i) which.push_back(i);
    GradError e;
    for (std::size_t i : which) {
        const double keep = x[i];
        x[i] = keep + h;
        const double lp = loss();
        x[i] = keep - h;
        const double lm = loss();
        x[i] = keep;
        const double num = (lp - lm) / (2 * h);
        e.max_abs = std::max(e.max_abs, std::abs(num - analytic[i]));
        e.scale = std::max(e.scale, std::abs(num));
    }
    return e;
}

}  // namespace meft::test
