#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "core/error.h"
#include "data/glue.h"

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

namespace {
// Ranks 1..n, ties sharing their average rank.
std::vector<double> average_ranks(const std::vector<double>& v) {
    std::vector<std::size_t> order(v.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
    std::vector<double> rank(v.size());
    for (std::size_t i = 0; i < order.size();) {
        std::size_t j = i + 1;
        while (j < order.size() && v[order[j]] == v[order[i]]) ++j;
        const double r = 0.5 * double(i + 1 + j);  // mean of ranks i+1 .. j
        for (std::size_t k = i; k < j; ++k) rank[order[k]] = r;
        i = j;
    }
    return rank;
}

bool any_nan(const std::vector<double>& v) {
    return std::any_of(v.begin(), v.end(), [](double x) { return std::isnan(x); });
}
}  // namespace

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
    MEFT_CHECK(x.size() == y.size(), "spearman: size mismatch");
    if (any_nan(x) || any_nan(y)) return std::numeric_limits<double>::quiet_NaN();
    return pearson(average_ranks(x), average_ranks(y));
}

double f1(const std::vector<int>& pred, const std::vector<int>& gold) {
    MEFT_CHECK(pred.size() == gold.size(), "f1: size mismatch");
    std::size_t tp = 0, fp = 0, fn = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) {
        if ((pred[i] != 0 && pred[i] != 1) || (gold[i] != 0 && gold[i] != 1))
            throw Error("f1: binary labels must be 0 or 1; item " + std::to_string(i) + " has prediction " +
                        std::to_string(pred[i]) + ", label " + std::to_string(gold[i]));
        tp += pred[i] == 1 && gold[i] == 1;
        fp += pred[i] == 1 && gold[i] == 0;
        fn += pred[i] == 0 && gold[i] == 1;
    }
    const std::size_t denom = 2 * tp + fp + fn;
    return denom == 0 ? 0.0 : double(2 * tp) / double(denom);
}

double matthews_corrcoef(const std::vector<int>& pred, const std::vector<int>& gold) {
    MEFT_CHECK(pred.size() == gold.size(), "matthews_corrcoef: size mismatch");
    std::unordered_map<int, std::pair<double, double>> counts;  // class -> (predicted, true)
    double correct = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) {
        counts[pred[i]].first += 1;
        counts[gold[i]].second += 1;
        correct += pred[i] == gold[i];
    }
    const double s = double(pred.size());
    double pt = 0, pp = 0, tt = 0;
    for (const auto& [k, c] : counts) {
        pt += c.first * c.second;
        pp += c.first * c.first;
        tt += c.second * c.second;
    }
    const double cov_pt = correct * s - pt, cov_pp = s * s - pp, cov_tt = s * s - tt;
    if (cov_pp * cov_tt == 0) return 0.0;
    return cov_pt / std::sqrt(cov_pp * cov_tt);
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

namespace meft {

double qa_accuracy(const std::vector<std::vector<double>>& scores, const std::vector<int>& answers) {
    MEFT_CHECK(scores.size() == answers.size(), "qa_accuracy: size mismatch");
    if (scores.empty()) return 0.0;
    std::size_t ok = 0;
    for (std::size_t i = 0; i < scores.size(); ++i) {
        const auto& row = scores[i];
        if (answers[i] < 0 || static_cast<std::size_t>(answers[i]) >= row.size())
            throw Error("qa_accuracy: item " + std::to_string(i) + " has answer " + std::to_string(answers[i]) +
                        ", expected 0.." + std::to_string(int(row.size()) - 1) + " (an unlabelled test item?)");
        const auto best = std::max_element(row.begin(), row.end()) - row.begin();
        ok += best == answers[i];
    }
    return double(ok) / double(scores.size());
}

double qa_accuracy(const std::vector<double>& scores, int num_choices, const std::vector<int>& answers) {
    MEFT_CHECK(num_choices > 0 && scores.size() == answers.size() * static_cast<std::size_t>(num_choices),
               "qa_accuracy: scores must be [n, num_choices]");
    std::vector<std::vector<double>> rows(answers.size());
    for (std::size_t i = 0; i < rows.size(); ++i)
        rows[i].assign(scores.begin() + static_cast<std::ptrdiff_t>(i * std::size_t(num_choices)),
                       scores.begin() + static_cast<std::ptrdiff_t>((i + 1) * std::size_t(num_choices)));
    return qa_accuracy(rows, answers);
}

std::map<std::string, double> glue_metrics(const std::string& task_name, const std::vector<double>& logits, int K,
                                           const std::vector<int>& labels, const std::vector<double>& targets) {
    const GlueTaskInfo& task = glue_task(task_name);
    if (K != task.num_labels())
        throw Error("glue_metrics: task " + task.name + " has " + std::to_string(task.num_labels()) +
                    (task.regression ? " output (a score)" : " classes") + ", got K = " + std::to_string(K));
    if (logits.size() % static_cast<std::size_t>(K) != 0)
        throw Error("glue_metrics: " + std::to_string(logits.size()) + " logits is not a multiple of K = " +
                    std::to_string(K));
    const std::size_t n = logits.size() / static_cast<std::size_t>(K);
    if (task.regression) {
        if (targets.size() != n)
            throw Error("glue_metrics: " + task.name + ": " + std::to_string(n) + " predictions but " +
                        std::to_string(targets.size()) + " targets");
        double mse = 0;
        for (std::size_t i = 0; i < n; ++i) mse += (logits[i] - targets[i]) * (logits[i] - targets[i]);
        return {{"pearson", pearson(logits, targets)},
                {"spearman", spearman(logits, targets)},
                {"mse", n == 0 ? 0.0 : mse / double(n)}};
    }
    if (labels.size() != n)
        throw Error("glue_metrics: " + task.name + ": " + std::to_string(n) + " predictions but " +
                    std::to_string(labels.size()) + " labels");
    for (std::size_t i = 0; i < n; ++i)
        if (labels[i] < 0 || labels[i] >= K)
            throw Error("glue_metrics: " + task.name + ": label " + std::to_string(labels[i]) + " at item " +
                        std::to_string(i) + ", expected 0.." + std::to_string(K - 1) +
                        (labels[i] == -1 ? " (an unlabelled test split?)" : ""));
    const std::vector<int> pred = argmax_rows(logits, K);
    std::map<std::string, double> out{{"accuracy", accuracy(pred, labels)}};
    if (task.name == "cola") out["matthews"] = matthews_corrcoef(pred, labels);
    if (task.name == "mrpc" || task.name == "qqp") out["f1"] = f1(pred, labels);
    return out;
}

double glue_task_score(const std::string& task_name, const std::map<std::string, double>& metrics) {
    const GlueTaskInfo& task = glue_task(task_name);
    double sum = 0;
    for (const auto& m : task.metrics) {
        const auto it = metrics.find(m);
        if (it == metrics.end()) {
            std::string have;
            for (const auto& [k, v] : metrics) have += (have.empty() ? "" : ", ") + k;
            throw Error("glue score: task " + task.name + " needs metric '" + m + "' (have: " +
                        (have.empty() ? std::string("none") : have) + ")");
        }
        sum += it->second;
    }
    return sum / double(task.metrics.size());
}

double glue_average(const std::map<std::string, std::map<std::string, double>>& per_task) {
    if (per_task.empty()) return 0.0;
    std::map<std::string, std::string> seen;  // canonical name -> name given
    double sum = 0;
    for (const auto& [name, metrics] : per_task) {
        const std::string& canon = glue_task(name).name;
        if (const auto it = seen.find(canon); it != seen.end())
            throw Error("glue_average: task " + canon + " given twice ('" + it->second + "' and '" + name + "')");
        seen[canon] = name;
        sum += glue_task_score(name, metrics);
    }
    return sum / double(per_task.size());
}

}  // namespace meft
