// metrics.h — evaluation metrics over a split's predictions.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace meft {

// All metrics are fractions (accuracy 0.87, not 87). Empty input gives 0. Mismatched sizes are a
// caller bug (MEFT_CHECK throws meft::Error).
double accuracy(const std::vector<int>& pred, const std::vector<int>& gold);

// Pearson correlation. Fewer than 2 points or a constant x or y (zero variance) gives 0, where scipy
// returns nan: an untrained regressor that predicts a constant scores 0, not nan. NaN inputs give nan.
double pearson(const std::vector<double>& x, const std::vector<double>& y);

// Spearman rank correlation: ranks with ties sharing their average rank (scipy.stats.rankdata
// "average"), then pearson() of the ranks; so constant input gives 0 (scipy: nan). NaN in either
// input gives nan (as scipy does).
double spearman(const std::vector<double>& x, const std::vector<double>& y);

// Binary F1 of class 1 (sklearn f1_score, average="binary", pos_label=1): 2TP / (2TP + FP + FN).
// With no true positives it is 0; when there are no positive labels and no positive predictions it is
// also 0 (sklearn's default zero_division="warn" returns 0). Values other than 0 and 1 throw Error.
double f1(const std::vector<int>& pred, const std::vector<int>& gold);

// Matthews correlation coefficient, sklearn.metrics.matthews_corrcoef semantics (multiclass form from
// the confusion matrix): (c*s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2)), where s
// is the count, c the correct count, p_k / t_k the predicted / true counts of class k. 0 when the
// denominator is 0, e.g. constant predictions or a single gold class.
double matthews_corrcoef(const std::vector<int>& pred, const std::vector<int>& gold);

// Predictions from logits [n, K] (row-major): argmax for K > 1.
std::vector<int> argmax_rows(const std::vector<double>& logits, int K);

// The metrics a task reports: accuracy for classification; pearson and mse for regression.
std::map<std::string, double> task_metrics(const std::vector<double>& logits, int K, const std::vector<int>& labels,
                                           const std::vector<double>& targets);

// Multiple-choice accuracy: scores[i] holds one score per choice of item i (choice counts may differ,
// as in ARC); the prediction is the first highest score (ties go to the lower index). Answers must be
// valid indices (an unlabelled answer -1 throws Error).
double qa_accuracy(const std::vector<std::vector<double>>& scores, const std::vector<int>& answers);
// The same with scores [n, num_choices] row-major.
double qa_accuracy(const std::vector<double>& scores, int num_choices, const std::vector<int>& answers);

// The named metrics of a GLUE task (names as in glue.h, aliases accepted) for one split, from logits
// [n, K] row-major (K = the task's num_labels(): 1 for STS-B, whose "logits" are the predicted scores):
//   cola: matthews, accuracy          sst2, qnli, rte, wnli, mnli: accuracy
//   mrpc, qqp: f1, accuracy           stsb: pearson, spearman, mse (from targets; labels unused)
// For MNLI, call it once per dev split and store the accuracies as "accuracy_matched" and
// "accuracy_mismatched" (GlueTaskInfo::metrics) for glue_average(). Throws Error for a wrong K, sizes
// that disagree, or a label outside 0..K-1 (e.g. -1 from an unlabelled test split).
std::map<std::string, double> glue_metrics(const std::string& task, const std::vector<double>& logits, int K,
                                           const std::vector<int>& labels, const std::vector<double>& targets);

// A task's GLUE score: the unweighted mean of the metrics its papers report (GlueTaskInfo::metrics):
// MRPC and QQP (F1 + accuracy) / 2, STS-B (Pearson + Spearman) / 2, MNLI (matched + mismatched
// accuracy) / 2, the others their single metric. Other keys in `metrics` (mse, loss, ...) are ignored.
// Throws Error naming the task and the missing metric.
double glue_task_score(const std::string& task, const std::map<std::string, double>& metrics);

// The GLUE average as the GLUE benchmark and papers compute it: the mean over the tasks given of
// glue_task_score() (each task counts once, whatever its number of metrics). The caller picks the tasks
// (papers often leave WNLI out; only the tasks present are averaged). Empty map -> 0. Task names go
// through glue_task(), so "SST-2" and "sst2" name the same task; naming one task twice throws Error.
double glue_average(const std::map<std::string, std::map<std::string, double>>& per_task);

}  // namespace meft
