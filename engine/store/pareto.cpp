#include "store/pareto.h"

#include <algorithm>
#include <cmath>

namespace meft {

std::vector<bool> pareto_front(const std::vector<std::vector<double>>& points, const std::vector<bool>& higher) {
    const auto complete = [&](const std::vector<double>& p) {
        return p.size() == higher.size() && std::none_of(p.begin(), p.end(), [](double v) { return std::isnan(v); });
    };
    // a dominates b: at least as good everywhere, better somewhere.
    const auto dominates = [&](const std::vector<double>& a, const std::vector<double>& b) {
        bool better = false;
        for (std::size_t k = 0; k < higher.size(); ++k) {
            const double x = higher[k] ? a[k] : -a[k], y = higher[k] ? b[k] : -b[k];
            if (x < y) return false;
            if (x > y) better = true;
        }
        return better;
    };
    std::vector<bool> front(points.size(), false);
    for (std::size_t i = 0; i < points.size(); ++i) {
        if (!complete(points[i])) continue;
        front[i] = true;
        for (std::size_t j = 0; j < points.size() && front[i]; ++j)
            if (j != i && complete(points[j]) && dominates(points[j], points[i])) front[i] = false;
    }
    return front;
}

std::optional<double> median_step_seconds(const std::vector<StepRow>& steps) {
    std::vector<double> d;
    for (std::size_t i = 1; i < steps.size(); ++i) {
        if (steps[i].step != steps[i - 1].step + 1) continue;
        const double dt = steps[i].elapsed_s - steps[i - 1].elapsed_s;
        if (dt > 0) d.push_back(dt);  // <= 0: a new attempt started from 0 (resumed)
    }
    if (d.empty()) return std::nullopt;
    const std::size_t mid = d.size() / 2;
    std::nth_element(d.begin(), d.begin() + std::ptrdiff_t(mid), d.end());
    if (d.size() % 2 == 1) return d[mid];
    const double upper = d[mid];
    return (*std::max_element(d.begin(), d.begin() + std::ptrdiff_t(mid)) + upper) / 2;
}

}  // namespace meft
