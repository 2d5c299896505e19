// A short training run of the `tiny` preset on the generated toy task: the loss falls and dev
// accuracy ends far above chance (0.5), for BERT and RoBERTa.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/cpu_backend.h"
#include "core/error.h"
#include "data/toy_task.h"
#include "model/sequence_classifier.h"
#include "train/trainer.h"

using namespace meft;

namespace {

class Recorder : public TrainObserver {
public:
    std::vector<double> losses;
    int evals = 0;
    void on_step(const StepReport& r) override { losses.push_back(r.loss); }
    void on_eval(const EvalReport&) override { ++evals; }
};

void train_toy(Arch arch) {
    auto be = make_cpu_backend();
    ModelConfig c = preset_config(arch, "tiny");
    c.set_num_labels(2);
    SequenceClassifier m(c, *be, DType::F32);
    m.init_weights(0);
    ToyTaskConfig tc;
    tc.train_examples = 800;
    tc.dev_examples = 200;
    tc.max_length = 24;
    const TaskData data = make_toy_task(tc, c);
    TrainConfig t;
    t.learning_rate = 1e-3;
    t.batch_size = 32;
    t.epochs = 3;
    t.max_seq_length = 32;
    Recorder rec;
    const TrainResult r = train(m, data, t, &rec);
    EXPECT_EQ(r.steps, 75);
    EXPECT_EQ(rec.losses.size(), 75u);
    EXPECT_EQ(rec.evals, 3);  // once per epoch
    EXPECT_NEAR(r.first_loss, 0.69, 0.1);  // chance level for two classes
    EXPECT_LT(r.final_loss, 0.3 * r.first_loss);
    EXPECT_GT(r.final_eval.metrics.at("accuracy"), 0.9);
}

TEST(Training, BertTinyLearnsToyTask) { train_toy(Arch::Bert); }

// MNLI-style tasks evaluate two dev sets and report both (accuracy_matched, accuracy_mismatched).
TEST(Training, SecondDevSplitIsReportedUnderItsName) {
    auto be = make_cpu_backend();
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.set_num_labels(3);
    SequenceClassifier m(c, *be, DType::F32);
    m.init_weights(0);
    ToyTaskConfig tc;
    tc.num_labels = 3;
    tc.train_examples = 64;
    tc.dev_examples = 32;
    TaskData data = make_toy_task(tc, c);
    data.metric_task = "mnli";
    data.dev_extra = std::vector<Example>(data.dev.begin(), data.dev.begin() + 16);
    data.dev_name = "matched";
    data.dev_extra_name = "mismatched";
    TrainConfig t;
    t.max_steps = 2;
    t.batch_size = 16;
    const TrainResult r = train(m, data, t, nullptr);
    ASSERT_EQ(r.final_eval.metrics.count("accuracy_matched"), 1u);
    ASSERT_EQ(r.final_eval.metrics.count("accuracy_mismatched"), 1u);
    const EvalReport direct = evaluate(m, data.dev_extra, 64, t.max_seq_length, "mnli");
    EXPECT_EQ(r.final_eval.metrics.at("accuracy_mismatched"), direct.metrics.at("accuracy"));
}
TEST(Training, RobertaTinyLearnsToyTask) { train_toy(Arch::Roberta); }

}  // namespace

namespace {

TEST(Training, EarlyStoppingStopsWhenTheMetricPlateausAndKeepsTheBest) {
    auto be = make_cpu_backend();
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.set_num_labels(2);
    SequenceClassifier m(c, *be, DType::F32);
    m.init_weights(0);
    ToyTaskConfig tc;
    tc.train_examples = 800;
    tc.dev_examples = 100;
    const TaskData data = make_toy_task(tc, c);
    TrainConfig t;
    t.learning_rate = 2e-3;
    t.batch_size = 32;
    t.epochs = 20;               // 500 steps unless stopped
    t.eval_every = 5;
    t.early_stopping_metric = "accuracy";
    t.early_stopping_patience = 3;
    std::vector<double> seen;
    struct Watch : TrainObserver {
        std::vector<double>* seen;
        void on_eval(const EvalReport& r) override { seen->push_back(r.metrics.at("accuracy")); }
    } watch;
    watch.seen = &seen;
    const TrainResult r = train(m, data, t, &watch);
    EXPECT_TRUE(r.early_stopped);
    EXPECT_LT(r.steps, 500);
    ASSERT_GE(seen.size(), 4u);
    EXPECT_EQ(r.best_eval.metrics.at("accuracy"), *std::max_element(seen.begin(), seen.end()));
    // the last `patience` evaluations did not beat the best
    for (std::size_t i = seen.size() - 3; i < seen.size(); ++i) EXPECT_LE(seen[i], r.best_eval.metrics.at("accuracy"));

    TrainConfig bad = t;
    bad.early_stopping_metric = "f1";
    bad.max_steps = 5;
    try {
        train(m, data, bad, nullptr);
        ADD_FAILURE() << "an unreported metric must be an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'f1'"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("accuracy"), std::string::npos) << e.what();
    }
}

}  // namespace
