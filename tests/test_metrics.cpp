// Evaluation metrics against hand-computed values and the sklearn / scipy documentation examples,
// with their edge cases (constant predictions, ties, empty input), and the GLUE per-task metrics and average.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "train/metrics.h"
#include "test_support.h"

using namespace meft;
using meft::test::error_of;

TEST(Metrics, F1Binary) {
    // tp = 2 (items 0, 4), fp = 1 (item 1), fn = 1 (item 3): 2*2 / (4 + 1 + 1).
    EXPECT_NEAR(f1({1, 1, 0, 0, 1}, {1, 0, 0, 1, 1}), 4.0 / 6.0, 1e-15);
    EXPECT_DOUBLE_EQ(f1({1, 0, 1}, {1, 0, 1}), 1.0);
    // y_true [0,1,1,0], y_pred [1,1,0,0]: tp 1, fp 1, fn 1 -> 0.5.
    EXPECT_DOUBLE_EQ(f1({1, 1, 0, 0}, {0, 1, 1, 0}), 0.5);
    // No positive predictions: precision is ill-defined, F1 = 0 (sklearn zero_division default).
    EXPECT_DOUBLE_EQ(f1({0, 0, 0}, {1, 0, 1}), 0.0);
    // No positives at all: ill-defined, 0.
    EXPECT_DOUBLE_EQ(f1({0, 0}, {0, 0}), 0.0);
    // Everything predicted positive: precision 2/4, recall 1 -> 2/3.
    EXPECT_NEAR(f1({1, 1, 1, 1}, {1, 0, 1, 0}), 2.0 / 3.0, 1e-15);
    EXPECT_DOUBLE_EQ(f1({}, {}), 0.0);
    const std::string e = error_of([] { f1({0, 2}, {0, 1}); });
    EXPECT_NE(e.find("f1: binary labels must be 0 or 1; item 1 has prediction 2"), std::string::npos) << e;
    EXPECT_THROW(f1({0, 1}, {0}), Error);
}

TEST(Metrics, MatthewsCorrcoef) {
    // sklearn docs example: y_true [+1, +1, +1, -1], y_pred [+1, -1, +1, +1] -> -0.333...
    EXPECT_NEAR(matthews_corrcoef({1, -1, 1, 1}, {1, 1, 1, -1}), -1.0 / 3.0, 1e-15);
    EXPECT_NEAR(matthews_corrcoef({1, 0, 1, 1}, {1, 1, 1, 0}), -1.0 / 3.0, 1e-15);
    EXPECT_DOUBLE_EQ(matthews_corrcoef({0, 1, 1, 0}, {0, 1, 1, 0}), 1.0);
    EXPECT_DOUBLE_EQ(matthews_corrcoef({1, 0, 0, 1}, {0, 1, 1, 0}), -1.0);
    // Binary by hand: tp 2, tn 1, fp 1, fn 1 -> (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6.
    EXPECT_NEAR(matthews_corrcoef({1, 1, 0, 1, 0}, {1, 1, 0, 0, 1}), 1.0 / 6.0, 1e-15);
    // Multiclass (sklearn's generalisation): s 6, c 3, p = (3,1,2), t = (2,2,2) -> 6 / sqrt(22 * 24).
    EXPECT_NEAR(matthews_corrcoef({0, 2, 1, 0, 0, 2}, {0, 1, 2, 0, 1, 2}), 0.26111648393354675, 1e-15);
    // Constant predictions (an untrained CoLA model): the denominator is 0 -> 0.
    EXPECT_DOUBLE_EQ(matthews_corrcoef({1, 1, 1, 1}, {1, 0, 1, 0}), 0.0);
    // A single gold class, even with perfect predictions -> 0 (as sklearn).
    EXPECT_DOUBLE_EQ(matthews_corrcoef({1, 1}, {1, 1}), 0.0);
    EXPECT_DOUBLE_EQ(matthews_corrcoef({}, {}), 0.0);
}

TEST(Metrics, SpearmanWithTies) {
    // scipy.stats.spearmanr docs example.
    EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 0.8207826816681233, 1e-14);
    // Ties share their average rank: x ranks (1, 2.5, 2.5, 4), y ranks (1, 3, 2, 4) -> 3 / sqrt(10).
    EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 3, 2, 4}), 0.9486832980505138, 1e-14);
    EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 3, 2, 4}), 3.0 / std::sqrt(10.0), 1e-14);
    // Ties in both inputs.
    EXPECT_NEAR(spearman({3, 1, 2, 2, 5, 1}, {0.5, 0.1, 0.3, 0.3, 0.9, 0.2}), 0.985184366143778, 1e-14);
    // Monotone but non-linear: rank correlation 1 where Pearson is not.
    EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4}, {1, 8, 27, 1000}), 1.0);
    EXPECT_LT(pearson({1, 2, 3, 4}, {1, 8, 27, 1000}), 0.9);
    EXPECT_DOUBLE_EQ(spearman({1, 2, 3}, {3, 2, 1}), -1.0);
    // Constant input (scipy: nan) -> 0; fewer than two points -> 0; empty -> 0.
    EXPECT_DOUBLE_EQ(spearman({2, 2, 2}, {1, 2, 3}), 0.0);
    EXPECT_DOUBLE_EQ(spearman({1}, {1}), 0.0);
    EXPECT_DOUBLE_EQ(spearman({}, {}), 0.0);
    EXPECT_TRUE(std::isnan(spearman({1, NAN, 3}, {1, 2, 3})));
}

TEST(Metrics, PearsonEdgeCases) {
    EXPECT_DOUBLE_EQ(pearson({}, {}), 0.0);
    EXPECT_DOUBLE_EQ(pearson({1}, {2}), 0.0);
    EXPECT_DOUBLE_EQ(pearson({3, 3, 3}, {1, 2, 3}), 0.0);  // constant predictions: 0 (scipy: nan)
    EXPECT_DOUBLE_EQ(pearson({1, 2, 3}, {4, 4, 4}), 0.0);
    EXPECT_NEAR(pearson({1, 2, 3, 4}, {2, 4, 6, 8}), 1.0, 1e-15);
}

TEST(Metrics, QaAccuracy) {
    // Ragged rows (ARC has 3-5 choices); ties go to the first choice.
    const std::vector<std::vector<double>> s = {{0.1, 0.9, 0.0}, {2, 1, 3, 0, -1}, {0.5, 0.5}, {1, 2, 3, 4}};
    EXPECT_DOUBLE_EQ(qa_accuracy(s, {1, 2, 1, 0}), 0.5);  // right, right, tie -> 0 (wrong), wrong
    EXPECT_DOUBLE_EQ(qa_accuracy(s, {1, 2, 0, 3}), 1.0);
    EXPECT_DOUBLE_EQ(qa_accuracy(std::vector<std::vector<double>>{}, {}), 0.0);
    EXPECT_DOUBLE_EQ(qa_accuracy({0.2, 0.8, 0.7, 0.3, 0.1, 0.1}, 2, {1, 0, 1}), 2.0 / 3.0);
    EXPECT_DOUBLE_EQ(qa_accuracy(std::vector<double>{}, 4, {}), 0.0);
    const std::string e = error_of([&] { qa_accuracy(s, {1, 2, -1, 0}); });
    EXPECT_NE(e.find("item 2 has answer -1"), std::string::npos) << e;
    EXPECT_THROW(qa_accuracy({1, 2, 3}, 2, {0}), Error);
}

TEST(Metrics, GlueMetricsPerTask) {
    // CoLA: logits [4, 2]; predictions 1, 0, 1, 1 against 1, 0, 0, 1.
    const std::vector<double> z = {0, 1, 2, 0, -1, 1, 0.2, 0.3};
    const auto cola = glue_metrics("CoLA", z, 2, {1, 0, 0, 1}, {});
    EXPECT_DOUBLE_EQ(cola.at("accuracy"), 0.75);
    // tp 2, tn 1, fp 1, fn 0 -> (2 - 0) / sqrt(3 * 2 * 2 * 1) = 2 / sqrt(12).
    EXPECT_NEAR(cola.at("matthews"), 2.0 / std::sqrt(12.0), 1e-15);
    EXPECT_EQ(cola.size(), 2u);

    const auto mrpc = glue_metrics("mrpc", z, 2, {1, 0, 0, 1}, {});
    EXPECT_DOUBLE_EQ(mrpc.at("accuracy"), 0.75);
    EXPECT_DOUBLE_EQ(mrpc.at("f1"), 0.8);  // 2*2 / (4 + 1 + 0)
    EXPECT_EQ(mrpc.count("matthews"), 0u);

    const auto sst2 = glue_metrics("sst-2", z, 2, {1, 0, 1, 1}, {});
    EXPECT_EQ(sst2.size(), 1u);
    EXPECT_DOUBLE_EQ(sst2.at("accuracy"), 1.0);

    const auto mnli = glue_metrics("mnli", {3, 1, 0, 0, 0, 2}, 3, {0, 1}, {});
    EXPECT_DOUBLE_EQ(mnli.at("accuracy"), 0.5);

    const auto sts = glue_metrics("stsb", {1, 2, 3, 4, 5}, 1, {}, {5, 6, 7, 8, 7});
    EXPECT_NEAR(sts.at("spearman"), 0.8207826816681233, 1e-14);
    EXPECT_NEAR(sts.at("pearson"), pearson({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 1e-15);
    EXPECT_DOUBLE_EQ(sts.at("mse"), (16 + 16 + 16 + 16 + 4) / 5.0);

    // Empty input: zeros, no crash.
    const auto empty = glue_metrics("qqp", {}, 2, {}, {});
    EXPECT_DOUBLE_EQ(empty.at("f1"), 0.0);
    EXPECT_DOUBLE_EQ(empty.at("accuracy"), 0.0);
    EXPECT_DOUBLE_EQ(glue_metrics("stsb", {}, 1, {}, {}).at("spearman"), 0.0);
    EXPECT_DOUBLE_EQ(glue_metrics("cola", {}, 2, {}, {}).at("matthews"), 0.0);

    std::string e = error_of([&] { glue_metrics("mnli", z, 2, {1, 0, 0, 1}, {}); });
    EXPECT_NE(e.find("task mnli has 3 classes, got K = 2"), std::string::npos) << e;
    e = error_of([&] { glue_metrics("rte", z, 2, {1, 0, -1, 1}, {}); });
    EXPECT_NE(e.find("label -1 at item 2"), std::string::npos) << e;
    EXPECT_NE(e.find("unlabelled test split"), std::string::npos) << e;
    e = error_of([&] { glue_metrics("rte", z, 2, {1, 0}, {}); });
    EXPECT_NE(e.find("4 predictions but 2 labels"), std::string::npos) << e;
    EXPECT_THROW(glue_metrics("stsb", {1, 2}, 1, {}, {1}), Error);
    EXPECT_THROW(glue_metrics("imdb", z, 2, {}, {}), Error);
}

TEST(Metrics, GlueAverage) {
    // Task scores: CoLA 0.6; MRPC (0.9 + 0.8)/2; STS-B (0.88 + 0.86)/2; MNLI (0.84 + 0.86)/2; SST-2 0.94.
    const std::map<std::string, std::map<std::string, double>> r = {
        {"cola", {{"matthews", 0.6}, {"accuracy", 0.8}}},  // accuracy is not CoLA's metric: ignored
        {"mrpc", {{"f1", 0.9}, {"accuracy", 0.8}}},
        {"STS-B", {{"pearson", 0.88}, {"spearman", 0.86}, {"mse", 0.5}}},
        {"mnli", {{"accuracy_matched", 0.84}, {"accuracy_mismatched", 0.86}}},
        {"sst2", {{"accuracy", 0.94}}},
    };
    EXPECT_NEAR(glue_task_score("mrpc", r.at("mrpc")), 0.85, 1e-15);
    EXPECT_NEAR(glue_task_score("stsb", r.at("STS-B")), 0.87, 1e-15);
    EXPECT_NEAR(glue_average(r), (0.6 + 0.85 + 0.87 + 0.85 + 0.94) / 5.0, 1e-15);
    EXPECT_DOUBLE_EQ(glue_average({}), 0.0);

    std::string e = error_of([] { glue_average({{"mnli", {{"accuracy", 0.8}}}}); });
    EXPECT_NE(e.find("task mnli needs metric 'accuracy_matched' (have: accuracy)"), std::string::npos) << e;
    e = error_of([] { glue_average({{"qqp", {{"accuracy", 0.9}}}}); });
    EXPECT_NE(e.find("task qqp needs metric 'f1'"), std::string::npos) << e;
    e = error_of([] { glue_average({{"sst2", {{"accuracy", 0.9}}}, {"SST-2", {{"accuracy", 0.9}}}}); });
    EXPECT_NE(e.find("task sst2 given twice"), std::string::npos) << e;
}

TEST(Metrics, ExistingFunctionsUnchanged) {
    EXPECT_DOUBLE_EQ(accuracy({}, {}), 0.0);
    EXPECT_EQ(argmax_rows({0, 1, 1, 0, 2, 2}, 2), (std::vector<int>{1, 0, 0}));
    const auto m = task_metrics({0, 1, 1, 0}, 2, {1, 1}, {});
    EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.5);
}
