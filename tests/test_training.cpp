// A short training run of the `tiny` preset on the generated toy task: the loss falls and dev
// accuracy ends far above chance (0.5), for BERT, RoBERTa and BART.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "peft/method.h"
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
TEST(Training, BartTinyLearnsToyTask) { train_toy(Arch::Bart); }

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

namespace {

std::vector<float> all_trainable(SequenceClassifier& m) {
    std::vector<float> out;
    for (const Parameter& p : m.params().all())
        if (p.trainable)
            for (const Tensor& t : {p.value, p.m, p.v}) out.insert(out.end(), t.ptr<float>(), t.ptr<float>() + t.numel());
    return out;
}

// A run of 10 steps, checkpointed, then resumed for 10 more, ends bit-identical to a run of 20.
TEST(Training, TenPlusTenStepsEqualTwentyExactly) {
    auto be = make_cpu_backend();
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.set_num_labels(2);
    ToyTaskConfig tc;
    tc.train_examples = 100;  // 20 steps of 16 cross an epoch boundary (7 steps an epoch)
    tc.dev_examples = 20;
    TrainConfig t;
    t.max_steps = 20;
    t.batch_size = 16;
    t.eval_every = 50;
    const auto dir = std::filesystem::temp_directory_path() / ("meft_resume_" + std::to_string(::getpid()));
    const auto file = dir / "checkpoint.safetensors";

    SequenceClassifier straight(c, *be, DType::F32, parse_method({{"name", "lora"}}, "t"));
    straight.init_weights(3);
    const TaskData data = make_toy_task(tc, straight.config());
    train(straight, data, t, nullptr);

    struct StopAt : TrainObserver {
        int at;
        int seen = 0;
        void on_step(const StepReport& r) override { seen = r.step; }
        bool should_stop() override { return seen >= at; }
    } stop;
    stop.at = 10;
    TrainHooks save;
    save.every = 4;
    SequenceClassifier first(c, *be, DType::F32, parse_method({{"name", "lora"}}, "t"));
    first.init_weights(3);
    save.save = [&](const TrainState& s, const AdamW& opt) { save_training_checkpoint(file, first, opt, s); };
    const TrainResult r1 = train(first, data, t, &stop, &save);
    EXPECT_TRUE(r1.stopped);
    EXPECT_EQ(r1.steps, 10);

    SequenceClassifier second(c, *be, DType::F32, parse_method({{"name", "lora"}}, "t"));
    second.init_weights(3);
    int adam = 0;
    const TrainState state = load_training_checkpoint(file, second, &adam);
    EXPECT_EQ(state.step, 10);
    EXPECT_EQ(adam, 10);
    TrainHooks resume;
    resume.resume = &state;
    resume.adam_steps = adam;
    const TrainResult r2 = train(second, data, t, nullptr, &resume);
    EXPECT_EQ(r2.first_step, 10);
    EXPECT_EQ(r2.steps, 20);  // the run's steps in all
    EXPECT_EQ(all_trainable(second), all_trainable(straight));
    std::filesystem::remove_all(dir);

    // a file that is not a training checkpoint is a clear error
    std::filesystem::create_directories(dir);
    {
        std::ofstream(dir / "junk.safetensors") << "not a checkpoint";
    }
    EXPECT_THROW(load_training_checkpoint(dir / "junk.safetensors", second, &adam), Error);
    std::filesystem::remove_all(dir);
}

}  // namespace

// A NaN or Inf stops training with the step and the tensor where it first appeared, before any
// weight is updated with it.
namespace {
std::string train_error(SequenceClassifier& m, const TaskData& data) {
    TrainConfig t;
    t.batch_size = 8;
    t.max_steps = 3;
    t.max_seq_length = 16;
    try {
        train(m, data, t, nullptr);
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "training did not fail";
    return {};
}

struct NanSetup {
    std::unique_ptr<Backend> be = make_cpu_backend();
    ModelConfig c = [] {
        ModelConfig c = preset_config(Arch::Bert, "tiny");
        c.set_num_labels(2);
        return c;
    }();
    SequenceClassifier m{c, *be, DType::F32};
    TaskData data;
    NanSetup() {
        m.init_weights(0);
        ToyTaskConfig tc;
        tc.train_examples = 32;
        tc.dev_examples = 8;
        tc.max_length = 12;
        data = make_toy_task(tc, c);
    }
    float* values(const std::string& name) { return m.params().find(name)->value.ptr<float>(); }
};
}  // namespace

TEST(Training, NanWeightIsNamed) {
    NanSetup s;
    s.values("bert.encoder.layer.1.output.LayerNorm.weight")[5] = std::nanf("");
    const std::string msg = train_error(s.m, s.data);
    EXPECT_NE(msg.find("step 1: the loss is nan"), std::string::npos) << msg;
    EXPECT_NE(msg.find("parameter 'bert.encoder.layer.1.output.LayerNorm.weight'"), std::string::npos) << msg;
}

TEST(Training, OverflowingActivationIsNamedAndNeverReachesTheWeights) {
    NanSetup s;
    Parameter* wte = s.m.params().find("bert.embeddings.word_embeddings.weight");
    const std::int64_t C = wte->value.dim(1);
    float* w = wte->value.ptr<float>();
    for (std::int64_t i = 0; i < wte->value.numel(); i += C) w[i] = 3e38f;  // finite, but x + x overflows
    s.values("bert.embeddings.position_embeddings.weight")[0] = 3e38f;
    const Parameter* cls = s.m.params().find("classifier.weight");
    const std::vector<float> before(cls->value.ptr<float>(), cls->value.ptr<float>() + cls->value.numel());
    const std::string msg = train_error(s.m, s.data);
    EXPECT_NE(msg.find("step 1: the loss is nan"), std::string::npos) << msg;
    EXPECT_NE(msg.find("first non-finite tensor: activation '"), std::string::npos) << msg;
    EXPECT_NE(msg.find("of the embeddings (forward)"), std::string::npos) << msg;
    const std::vector<float> after(cls->value.ptr<float>(), cls->value.ptr<float>() + cls->value.numel());
    EXPECT_EQ(before, after);
}

// MEFT's reconstruction error is reported on every step that measured it: each step with the
// method's keep_true_inputs, every Nth with training.reconstruction_check_every, none otherwise.
TEST(Training, ReconstructionIsReportedWheneverMeasured) {
    struct Seen : TrainObserver {
        std::vector<int> steps;
        std::size_t layers = 0;
        void on_step(const StepReport& r) override {
            if (r.reconstruction_error.empty()) return;
            steps.push_back(r.step);
            layers = r.reconstruction_error.size();
        }
    };
    auto be = make_cpu_backend();
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.set_num_labels(2);
    ToyTaskConfig tc;
    tc.train_examples = 48;
    tc.dev_examples = 16;
    tc.max_length = 16;
    const TaskData data = make_toy_task(tc, c);
    const auto run = [&](bool keep, int every) {
        MethodConfig mc = parse_method(nlohmann::json{{"name", "meft1"}, {"meft", {{"keep_true_inputs", keep}}}}, "t");
        SequenceClassifier m(c, *be, DType::F32, mc);
        m.init_weights(0);
        TrainConfig t;
        t.batch_size = 8;
        t.max_steps = 6;
        t.max_seq_length = 16;
        t.reconstruction_check_every = every;
        Seen seen;
        train(m, data, t, &seen);
        return seen;
    };
    const Seen each = run(true, 0);
    EXPECT_EQ(each.steps, (std::vector<int>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(each.layers, 2u);
    EXPECT_EQ(run(false, 3).steps, (std::vector<int>{3, 6}));
    EXPECT_TRUE(run(false, 0).steps.empty());
}
