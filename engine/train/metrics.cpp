#include "train/metrics.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace meft {

double accuracy(const std::vector<int>& pred, const std::vector<int>& gold) {
    MEFT_CHECK(pred.size() == gold.size(), "accuracy: size mismatch");
    if (pred.empty()) return 0.0;
    std::size_t ok = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) ok += pred[i] == gold[i];
    return double(ok) / double(pred.size());
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
    MEFT_CHECK(x.size() == y.size(), "pearson: size mismatch");
    const double n = double(x.size());
    if (x.size() < 2) return 0.0;
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < x.size(); ++i) mx += x[i], my += y[i];
    mx /= n, my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return (sxx > 0 && syy > 0) ? sxy / std::sqrt(sxx * syy) : 0.0;
}

std::vector<int> argmax_rows(const std::vector<double>& logits, int K) {
    std::vector<int> out(logits.size() / static_cast<std::size_t>(K));
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto row = logits.begin() + static_cast<std::ptrdiff_t>(i * static_cast<std::size_t>(K));
        out[i] = static_cast<int>(std::max_element(row, row + K) - row);
    }
    return out;
}

std::map<std::string, double> task_metrics(const std::vector<double>& logits, int K, const std::vector<int>& labels,
                                           const std::vector<double>& targets) {
    if (K == 1) {
        double mse = 0;
        for (std::size_t i = 0; i < logits.size(); ++i) mse += (logits[i] - targets[i]) * (logits[i] - targets[i]);
        return {{"pearson", pearson(logits, targets)}, {"mse", logits.empty() ? 0.0 : mse / double(logits.size())}};
    }
    return {{"accuracy", accuracy(argmax_rows(logits, K), labels)}};
}

}  // namespace meft
