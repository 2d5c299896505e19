// Failing safely: an exception in any thread reaches the caller; a diverged MEFT run, an
// impossible allocation and an experiment that is known to fail end with a message that says
// where and what to change, never with std::terminate, a bare std::bad_alloc or a half-recorded run.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <new>
#include <stdexcept>
#include <vector>

#include "peft/method.h"
#include "core/arena.h"
#include "core/cpu_backend.h"
#include "core/error.h"
#include "core/host_memory.h"
#include "core/stream_fixed.h"
#include "core/thread_pool.h"
#include "data/toy_task.h"
#include "model/checkpoint.h"
#include "model/sequence_classifier.h"
#include "store/database.h"
#include "store/experiment.h"
#include "run/preflight.h"
#include "run/runner.h"
#include "test_support.h"
#include "train/trainer.h"

using namespace meft;
using meft::test::error_of;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---- the thread pool -------------------------------------------------------------------------

TEST(ThreadPool, ExceptionInAWorkersRangeReachesTheCaller) {
    ThreadPool pool(4);
    std::atomic<int> ran{0};
    try {
        pool.parallel_for(400, [&](std::int64_t b, std::int64_t) {
            ++ran;
            if (b >= 100) throw std::runtime_error("range starting at " + std::to_string(b) + " failed");
        });
        FAIL() << "parallel_for did not rethrow the worker's exception";
    } catch (const std::runtime_error& e) {
        EXPECT_TRUE(contains(e.what(), "failed")) << e.what();
    }
    EXPECT_EQ(ran.load(), 4);  // every range ran to its end before the caller got the error
    // The pool still works afterwards, and a later job sees no stale error.
    std::vector<int> hit(1000, 0);
    pool.parallel_for(1000, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) hit[static_cast<std::size_t>(i)] = 1;
    });
    for (int h : hit) ASSERT_EQ(h, 1);
}

TEST(ThreadPool, ExceptionInTheCallersOwnRangeWaitsForTheWorkers) {
    ThreadPool pool(3);
    std::atomic<int> finished{0};
    EXPECT_THROW(pool.parallel_for(300,
                                   [&](std::int64_t b, std::int64_t) {
                                       if (b == 0) throw Error("first range");
                                       volatile int spin = 0;  // busy for a while
                                       while (spin < 200000) spin = spin + 1;
                                       ++finished;
                                   }),
                 Error);
    EXPECT_EQ(finished.load(), 2);  // the other ranges ended before parallel_for returned
}

TEST(ThreadPool, NestedParallelForRunsInline) {
    ThreadPool pool(2);
    std::atomic<std::int64_t> sum{0};
    pool.parallel_for(4, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i)
            pool.parallel_for(10, [&](std::int64_t b2, std::int64_t e2) { sum += e2 - b2; });
    });
    EXPECT_EQ(sum.load(), 40);
}

// ---- MEFT's exact streams ------------------------------------------------------------------------

TEST(StreamRange, ConversionAndCouplingRefuseInsteadOfWrapping) {
    std::int64_t q = 0;
    EXPECT_TRUE(stream_to_fixed(8388607.0, &q));
    EXPECT_FALSE(stream_to_fixed(8388608.0, &q));
    EXPECT_FALSE(stream_to_fixed(-1e7, &q));
    EXPECT_FALSE(stream_to_fixed(std::nan(""), &q));
    // x + q beyond int64: refused, x untouched (it used to wrap around silently)
    std::int64_t x = std::numeric_limits<std::int64_t>::max() - 5, rem = 0;
    ASSERT_TRUE(stream_to_fixed(8000000.0, &q));
    EXPECT_FALSE(stream_couple(&x, q, 1, &rem));
    EXPECT_EQ(x, std::numeric_limits<std::int64_t>::max() - 5);
    // In range: the inverse restores the input bit for bit.
    std::int64_t y = -123456789012345;
    const std::int64_t y0 = y;
    ASSERT_TRUE(stream_to_fixed(3.25, &q));
    ASSERT_TRUE(stream_couple(&y, q, 10, &rem));
    EXPECT_EQ(stream_uncouple(y, q, 10, rem), y0);
}

TEST(StreamRange, CpuBackendThrowsStreamRangeErrorWithTheValue) {
    auto be = make_cpu_backend();
    Arena a("t");
    const std::int64_t n = 20000;  // several pool tasks
    Tensor s = a.zeros(DType::I64, {n});
    Tensor f = a.alloc(DType::F32, {n});
    std::vector<float> host(static_cast<std::size_t>(n), 1.0f);
    host[17777] = 2.5e7f;
    be->upload(f, host.data());
    try {
        be->coupling_forward(s, Tensor{}, f, 1);
        FAIL() << "no StreamRangeError";
    } catch (const StreamRangeError& e) {
        EXPECT_DOUBLE_EQ(e.value(), 2.5e7);
        EXPECT_TRUE(contains(e.what(), "2.5e+07")) << e.what();
        EXPECT_TRUE(contains(e.what(), "2^23")) << e.what();
    }
}

// A tiny BERT with MEFT1 on the toy task.
struct MeftToy {
    std::unique_ptr<Backend> be = make_cpu_backend();
    ModelConfig cfg;
    std::unique_ptr<SequenceClassifier> model;
    TaskData data;
    TrainConfig train;
    MeftToy() {
        cfg = preset_config(Arch::Bert, "tiny");
        cfg.set_num_labels(2);
        MethodConfig m;
        m.kind = MethodKind::MEFT1;
        model = std::make_unique<SequenceClassifier>(cfg, *be, DType::F32, m);
        model->init_weights(0);
        ToyTaskConfig tc;
        tc.train_examples = 64;
        tc.dev_examples = 16;
        tc.max_length = 12;
        data = make_toy_task(tc, cfg);
        train.batch_size = 8;
        train.max_steps = 4;
        train.max_seq_length = 16;
        train.learning_rate = 1e-3;
    }
    // Sets the reversible adapter of layer `layer` to output `value` everywhere (its up-projection bias).
    void blow_up(int layer, float value) {
        for (Parameter& p : model->params().all())
            if (contains(p.name, "layer." + std::to_string(layer) + ".rev_adapter.up.bias")) {
                be->fill(p.value, value);
                return;
            }
        FAIL() << "no reversible adapter in layer " << layer;
    }
};

// Blows the adapter up after the first step, so that step 2 diverges.
class BlowUpAfterStep1 : public TrainObserver {
public:
    explicit BlowUpAfterStep1(MeftToy& t) : t_(t) {}
    void on_step(const StepReport& r) override {
        if (r.step == 1) t_.blow_up(1, 3e7f);
    }

private:
    MeftToy& t_;
};

TEST(StreamRange, DivergedMeftRunNamesStepLayerCouplingAndWhatToChange) {
    MeftToy t;
    BlowUpAfterStep1 obs(t);
    const std::string msg = error_of([&] { train(*t.model, t.data, t.train, &obs); });
    EXPECT_EQ(msg.rfind("step 2: the run diverged: ", 0), 0u) << msg;
    EXPECT_TRUE(contains(msg, "layer 1, coupling y2 = β·x2 + G(y1)")) << msg;
    EXPECT_TRUE(contains(msg, "3e+07")) << msg;
    EXPECT_TRUE(contains(msg, "|value| < 2^23 = 8388608")) << msg;
    EXPECT_TRUE(contains(msg, "training.learning_rate")) << msg;
    EXPECT_TRUE(contains(msg, "method.meft.streams")) << msg;
}

TEST(StreamRange, DivergenceBeforeTrainingIsNamedAsSuch) {
    MeftToy t;
    t.blow_up(0, -2e7f);
    const std::string msg = error_of([&] { train(*t.model, t.data, t.train, nullptr); });
    EXPECT_EQ(msg.rfind("the starting-point check before training: the run diverged: layer 0", 0), 0u) << msg;
}

// ---- memory -------------------------------------------------------------------------------------

TEST(OutOfMemory, ArenaNamesTheTensorTheBytesAndWhatIsAvailable) {
    Arena a("activations");
    try {
        a.alloc(DType::F32, {1ll << 20, 1ll << 20}, 3, "attn.probs");  // 4 TiB
        FAIL() << "a 4 TiB allocation succeeded";
    } catch (const OutOfMemoryError& e) {
        const std::string msg = e.what();
        EXPECT_TRUE(contains(msg, "activations arena")) << msg;
        EXPECT_TRUE(contains(msg, "'attn.probs'")) << msg;
        EXPECT_TRUE(contains(msg, "4096.0 GiB")) << msg;
        EXPECT_TRUE(contains(msg, "layer tag 3")) << msg;
        EXPECT_TRUE(contains(msg, "available")) << msg;
    }
    // The arena is still usable.
    EXPECT_EQ(a.alloc(DType::F32, {16}).numel(), 16);
}

TEST(OutOfMemory, FailedOperatorNewRecordsItsSizeForTheMessage) {
    const std::size_t huge = std::size_t{1} << 45;  // 32 TiB
    try {
        std::vector<char> v(huge);
        FAIL() << "a 32 TiB vector was allocated";
    } catch (const std::bad_alloc&) {
        EXPECT_EQ(last_failed_allocation_bytes(), huge);
        const std::string msg = out_of_memory_message("reading the data");
        EXPECT_EQ(msg.rfind("out of host memory while reading the data: a request for 32768.0 GiB failed; ", 0), 0u) << msg;
        EXPECT_TRUE(contains(msg, " is available")) << msg;
    }
    const HostMemory m = host_memory();
    EXPECT_GT(m.total, 0u);
    EXPECT_LE(m.available, m.total);
}

// ---- refused before anything is recorded ------------------------------------------------------

Experiment toy_experiment(const std::string& extra_training = "") {
    const nlohmann::json j = nlohmann::json::parse(R"({"name": "t", "backbone": {"arch": "bert", "preset": "tiny"},
        "task": {"name": "toy", "train_examples": 64, "dev_examples": 16, "max_length": 12},
        "method": {"name": "lora"},
        "training": {"batch_size": 8, "max_steps": 3, "max_seq_length": 16)" + extra_training + "}}");
    return parse_experiment(j, "t.json");
}

class Preflighted : public meft::test::TempDirTest {};

TEST_F(Preflighted, SequenceLongerThanThePositionsIsRefusedBeforeARunRowExists) {
    nlohmann::json j = nlohmann::json::parse(R"({"name": "t", "backbone": {"arch": "roberta", "preset": "tiny"},
        "task": {"name": "toy", "max_length": 600}, "training": {"max_seq_length": 600, "max_steps": 1}})");
    const Experiment e = parse_experiment(j, "t.json");
    auto be = make_cpu_backend();
    const Preflight p = preflight(e, *be);
    ASSERT_EQ(p.problems.size(), 1u);
    EXPECT_TRUE(contains(p.problems[0], "training.max_seq_length is 600")) << p.problems[0];
    EXPECT_TRUE(contains(p.problems[0], "has 512 positions (max_position_embeddings 514, less RoBERTa's padding offset 2)"))
        << p.problems[0];
    ExperimentDb db(dir_ / "runs.sqlite");
    RunOptions o;
    const std::string msg = error_of([&] { execute_run(e, db, o); });
    EXPECT_TRUE(contains(msg, "set training.max_seq_length to at most 512")) << msg;
    EXPECT_TRUE(db.runs().empty());
}

TEST_F(Preflighted, AStepThatCannotFitIsRefusedNamingTheBytesAndTheKnobs) {
    nlohmann::json j = nlohmann::json::parse(R"({"name": "t", "backbone": {"arch": "bert", "preset": "large"},
        "task": {"name": "toy", "max_length": 512}, "training": {"batch_size": 4096, "max_seq_length": 512, "max_steps": 1}})");
    const Experiment e = parse_experiment(j, "t.json");
    auto be = make_cpu_backend();
    const Preflight p = preflight(e, *be);
    ASSERT_EQ(p.problems.size(), 1u);
    const std::string& m = p.problems[0];
    EXPECT_EQ(m.rfind("the run needs ", 0), 0u) << m;
    EXPECT_TRUE(contains(m, "a training micro-batch of 4096 x 512 tokens")) << m;
    EXPECT_TRUE(contains(m, "this computer (")) << m;
    EXPECT_TRUE(contains(m, "training.batch_size")) << m;
    EXPECT_TRUE(contains(m, "op workspaces")) << m;
    EXPECT_GT(p.plan.report.footprint(), p.available);
    ExperimentDb db(dir_ / "runs.sqlite");
    RunOptions o;
    error_of([&] { execute_run(e, db, o); });
    EXPECT_TRUE(db.runs().empty());
}

TEST_F(Preflighted, ARunThatFitsPassesAndItsPlanCountsChunksAndWorkspace) {
    const Experiment e = toy_experiment();
    auto be = make_cpu_backend();
    const Preflight p = preflight(e, *be);
    EXPECT_TRUE(p.ok()) << p.message();
    const MemoryReport& m = p.plan.report;
    EXPECT_GE(m.reserved, m.resident() + m.activation_peak);  // whole chunks hold everything in use
    EXPECT_GT(m.workspace, 0u);                                // attention backward's per-thread workspace
    EXPECT_EQ(m.footprint(), m.reserved + m.workspace);
}

TEST_F(Preflighted, ZeroShotWithAHeadOfOtherLabelsIsRefused) {
    auto be = make_cpu_backend();
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.set_num_labels(3);
    SequenceClassifier m(c, *be, DType::F32);
    m.init_weights(1);
    save_model(m, dir_ / "mnli-model");
    nlohmann::json j = nlohmann::json::parse(R"({"name": "t", "task": {"name": "toy", "num_labels": 2},
        "training": {"zero_shot": true, "max_seq_length": 16}})");
    j["backbone"] = {{"path", (dir_ / "mnli-model").string()}};
    const Experiment e = parse_experiment(j, "t.json");
    const Preflight p = preflight(e, *be);
    ASSERT_EQ(p.problems.size(), 1u);
    EXPECT_TRUE(contains(p.problems[0], "has 3 labels and task toy has 2")) << p.problems[0];
}

TEST_F(Preflighted, AFailureDuringTrainingMarksTheRunFailedWithItsMessage) {
    Experiment e = toy_experiment();
    e.method.kind = MethodKind::MEFT1;
    e.train.learning_rate = 10;  // the reversible adapters' outputs leave the exact range
    e.train.max_grad_norm = 0;
    e.train.max_steps = 40;
    ExperimentDb db(dir_ / "runs.sqlite");
    RunOptions o;
    NewExperiment experiment{"t"};
    o.experiment = &experiment;
    const std::string msg = error_of([&] { execute_run(e, db, o); });
    ASSERT_EQ(db.runs().size(), 1u);
    const RunInfo r = db.runs().front();
    EXPECT_EQ(r.status, "failed");
    EXPECT_EQ(r.message, msg);
    EXPECT_TRUE(contains(msg, "the run diverged")) << msg;
    EXPECT_TRUE(contains(msg, "set training.max_grad_norm")) << msg;
}

}  // namespace
