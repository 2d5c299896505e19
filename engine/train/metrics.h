// metrics.h — evaluation metrics over a split's predictions.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace meft {

double accuracy(const std::vector<int>& pred, const std::vector<int>& gold);
double pearson(const std::vector<double>& x, const std::vector<double>& y);

// Predictions from logits [n, K] (row-major): argmax for K > 1.
std::vector<int> argmax_rows(const std::vector<double>& logits, int K);

// The metrics a task reports: accuracy for classification; pearson and mse for regression.
std::map<std::string, double> task_metrics(const std::vector<double>& logits, int K, const std::vector<int>& labels,
                                           const std::vector<double>& targets);

}  // namespace meft
