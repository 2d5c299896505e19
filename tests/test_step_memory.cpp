// A step's memory as parts that add up to its peak: taken from a training run's largest step,
// they equal the shape-only plan for that step's batch shape part for part, byte for byte (full
// fine-tuning and MEFT1); they round-trip through the database and replace an earlier attempt's;
// the explanation names the step, both shapes and why they differ.
#include <gtest/gtest.h>

#include "core/cpu_backend.h"
#include "data/toy_task.h"
#include "model/sequence_classifier.h"
#include "peft/method.h"
#include "store/database.h"
#include "store/step_memory.h"
#include "test_support.h"
#include "train/memory_plan.h"
#include "train/trainer.h"

using namespace meft;

namespace {

void expect_same(const StepMemory& a, const StepMemory& b) {
    EXPECT_EQ(a.held_layers, b.held_layers);
    EXPECT_EQ(a.remainders, b.remainders);
    EXPECT_EQ(a.streams, b.streams);
    EXPECT_EQ(a.transient, b.transient);
    EXPECT_EQ(a.activation_peak, b.activation_peak);
    EXPECT_EQ(a.parameter_gradients, b.parameter_gradients);
    EXPECT_EQ(a.rows, b.rows);
    EXPECT_EQ(a.seq, b.seq);
}

TEST(StepMemory, PartsAddUpToThePeak) {
    MemoryReport r;
    r.layers = {{-1, "embeddings", 100, 0}, {0, "layer 0", 300, 50}, {1, "head", 40, 10}};
    r.remainders = 60;       // inside layer 0's held bytes
    r.stored_streams = 500;  // not in any layer
    r.held_total = 100 + 300 + 40 + 500;
    r.activation_peak = r.held_total + 70;
    r.gradients = 12;
    const StepMemory m = StepMemory::from_report(r, 7, 4, 16);
    EXPECT_EQ(m.held_layers, 380);
    EXPECT_EQ(m.remainders, 60);
    EXPECT_EQ(m.streams, 500);
    EXPECT_EQ(m.transient, 70);
    EXPECT_EQ(m.held_layers + m.remainders + m.streams + m.transient, m.activation_peak);
    EXPECT_EQ(m.parameter_gradients, 12);
    const auto back = step_memory_of(step_memory_rows("measured", m), "measured");
    ASSERT_TRUE(back);
    expect_same(*back, m);
    EXPECT_EQ(back->step, 7);
    EXPECT_FALSE(step_memory_of(step_memory_rows("measured", m), "planned"));
}

TEST(StepMemory, AMeasuredStepEqualsThePlanForItsShape) {
    auto be = make_cpu_backend();
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.set_num_labels(2);
    ToyTaskConfig tc;
    tc.train_examples = 48;
    tc.dev_examples = 16;
    tc.max_length = 16;
    const TaskData data = make_toy_task(tc, c);
    for (const char* method : {"full", "meft1"}) {
        SCOPED_TRACE(method);
        const MethodConfig mc = parse_method(nlohmann::json{{"name", method}}, "t");
        SequenceClassifier m(c, *be, DType::F32, mc);
        m.init_weights(0);
        TrainConfig t;
        t.batch_size = 8;
        t.max_steps = 4;
        t.max_seq_length = 16;
        const TrainResult res = train(m, data, t, nullptr);
        ASSERT_GT(res.memory_at.step, 0);
        EXPECT_EQ(static_cast<std::int64_t>(res.memory.activation_peak), res.memory_at.bytes);
        const StepMemory measured = StepMemory::from_report(res.memory, res.memory_at.step, res.memory_at.rows, res.memory_at.seq);
        const StepMemory planned = StepMemory::from_report(
            plan_memory(c, mc, DType::F32, res.memory_at.rows, res.memory_at.seq).report, 0, res.memory_at.rows, res.memory_at.seq);
        expect_same(measured, planned);
        EXPECT_GT(measured.transient, 0);
        if (std::string(method) == "meft1") EXPECT_GT(measured.streams, 0);
        else EXPECT_EQ(measured.streams, 0);
        EXPECT_NE(explain_step_memory(planned, measured).find("the plan is exact"), std::string::npos);
    }
}

TEST(StepMemory, ExplainsShapesAndPadding) {
    StepMemory p, m;
    p.rows = m.rows = 32;
    p.seq = 64;
    m.seq = 58;
    m.step = 18;
    p.activation_peak = 27 << 20;
    m.activation_peak = 24 << 20;
    const std::string s = explain_step_memory(p, m);
    EXPECT_NE(s.find("measured at step 18 (the run's largest) on a 32 x 58 batch: 24.00 MiB"), std::string::npos) << s;
    EXPECT_NE(s.find("planned for a full-length 32 x 64 batch: 27.00 MiB"), std::string::npos) << s;
    EXPECT_NE(s.find("dynamic padding"), std::string::npos) << s;
    m.rows = 16;
    m.seq = 64;
    const std::string r = explain_step_memory(p, m);
    EXPECT_NE(r.find("16 rows against the plan's 32"), std::string::npos) << r;
    EXPECT_EQ(r.find("dynamic padding"), std::string::npos) << r;
}

class StepMemoryDb : public test::TempDirTest {};

TEST_F(StepMemoryDb, RoundTripsAndAResumeReplacesTheRows) {
    ExperimentDb db(dir_ / "runs.sqlite");
    NewExperiment e{"x"};
    const std::int64_t run = db.add_run(e, nlohmann::json::object(), nlohmann::json::object());
    StepMemory m;
    m.held_layers = 5;
    m.activation_peak = 5;
    m.step = 3;
    db.finish_with_memory(run, "cancelled", nlohmann::json::object(), "", {}, step_memory_rows("measured", m));
    auto back = step_memory_of(db.step_memory(run), "measured");
    ASSERT_TRUE(back);
    EXPECT_EQ(back->step, 3);
    m.step = 9;  // the resumed attempt's largest step
    db.finish_with_memory(run, "finished", nlohmann::json::object(), "", {}, step_memory_rows("measured", m));
    EXPECT_EQ(db.step_memory(run).size(), step_memory_rows("measured", m).size());
    EXPECT_EQ(step_memory_of(db.step_memory(run), "measured")->step, 9);
    db.delete_run(run);
    EXPECT_TRUE(db.step_memory(run).empty());
}

}  // namespace
