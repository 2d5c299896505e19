// A short training run of the `tiny` preset on the generated toy task: the loss falls and dev
// accuracy ends far above chance (0.5), for BERT and RoBERTa.
#include <gtest/gtest.h>

#include "core/cpu_backend.h"
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
TEST(Training, RobertaTinyLearnsToyTask) { train_toy(Arch::Roberta); }

}  // namespace
