// A training step's memory timeline: the plan (shape-only) and a CPU measurement of the same
// batch shape are equal event for event; the lanes add up to the bytes in use, whose largest
// value is the step's activation peak; after the step each layer's lane holds what the memory
// report says it holds, MEFT's stored streams in their own lane; the backward starts at its first
// activation gradient.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/cpu_backend.h"
#include "peft/method.h"
#include "train/memory_plan.h"
#include "train/memory_timeline.h"
#include "run/run_setup.h"
#include "store/experiment.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace meft;

namespace {

TEST(MemoryTimeline, PlanEqualsMeasurementAndAddsUpToThePeak) {
    auto be = make_cpu_backend();
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.set_num_labels(2);
    for (const char* method : {"full", "lora", "meft1", "meft3"}) {
        SCOPED_TRACE(method);
        const MethodConfig mc = parse_method(nlohmann::json{{"name", method}}, "t");
        const StepTimeline measured = measure_step_timeline(*be, c, mc, DType::F32, 4, 16);
        const StepTimeline planned = plan_step_timeline(c, mc, DType::F32, 4, 16);
        ASSERT_EQ(measured.events.size(), planned.events.size());
        for (std::size_t i = 0; i < measured.events.size(); ++i) {
            EXPECT_EQ(measured.events[i].arena, planned.events[i].arena) << i;
            EXPECT_EQ(measured.events[i].name, planned.events[i].name) << i;
            EXPECT_EQ(measured.events[i].delta, planned.events[i].delta) << i;
        }
        const MemoryReport report = plan_memory(c, mc, DType::F32, 4, 16).report;
        const std::vector<std::int64_t> total = planned.total();
        ASSERT_FALSE(total.empty());
        EXPECT_EQ(*std::max_element(total.begin(), total.end()), static_cast<std::int64_t>(report.activation_peak));
        EXPECT_EQ(planned.peak, static_cast<std::int64_t>(report.activation_peak));
        EXPECT_EQ(total[static_cast<std::size_t>(planned.peak_at)], planned.peak);
        EXPECT_GT(planned.backward_from, 0);
        // After the step: what each layer holds, and the streams, as the report has them.
        for (const LayerMemory& l : report.layers) {
            const auto lane = std::find_if(planned.lanes.begin(), planned.lanes.end(),
                                           [&](const TimelineLane& t) { return t.kind == "held" && t.layer == l.layer; });
            ASSERT_NE(lane, planned.lanes.end());
            EXPECT_EQ(lane->alive.back(), static_cast<std::int64_t>(l.held)) << l.label;
        }
        const auto streams = std::find_if(planned.lanes.begin(), planned.lanes.end(), [](const TimelineLane& t) { return t.kind == "streams"; });
        ASSERT_NE(streams, planned.lanes.end());
        EXPECT_EQ(streams->alive.back(), static_cast<std::int64_t>(report.stored_streams));
        for (const TimelineLane& t : planned.lanes)  // never negative: every free matches its allocations
            EXPECT_GE(*std::min_element(t.alive.begin(), t.alive.end()), 0) << t.label;
    }
}

// `meft plan --dtype fp16|bf16`: half precision is planned (2-byte activations, the same bytes for
// both), never run: the CPU backend refuses it by name.
TEST(MemoryTimeline, HalfPrecisionIsPlannedNotRun) {
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    c.set_num_labels(2);
    const MethodConfig mc = parse_method(nlohmann::json{{"name", "lora"}}, "t");
    const MemoryReport f16 = plan_memory(c, mc, DType::F16, 4, 16).report;
    const MemoryReport bf16 = plan_memory(c, mc, DType::BF16, 4, 16).report;
    const MemoryReport f32 = plan_memory(c, mc, DType::F32, 4, 16).report;
    EXPECT_EQ(f16.activation_peak, bf16.activation_peak);
    EXPECT_LT(f16.activation_peak, f32.activation_peak);
    auto be = make_cpu_backend();
    try {
        measure_memory(*be, c, mc, DType::F16, 4, 16);
        FAIL() << "the CPU backend ran a half-precision step";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("is F16; ops compute in F32 or F64 (half precision is planned, not run)"),
                  std::string::npos)
            << e.what();
    }
}

// Measuring on the CPU allocates for real: a step this computer cannot hold is refused before it
// allocates, pointing at the plan (here under an address-space limit, in a child process).
TEST(MemoryTimeline, AMeasurementThatCannotFitIsRefused) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        rlimit lim{};
        lim.rlim_cur = lim.rlim_max = rlim_t(1) << 31;  // 2 GiB of address space; BERT-base 32 x 512 needs ~15 GiB
        setrlimit(RLIMIT_AS, &lim);
        try {
            const Experiment e = parse_experiment(
                nlohmann::json::parse(R"({"backbone": {"arch": "bert", "preset": "base"}, "method": {"name": "full"},
                    "task": {"name": "toy"}, "training": {"batch_size": 32, "max_seq_length": 512}})"),
                "t");
            auto be = make_cpu_backend();
            experiment_step_timeline(e, be.get());
            _exit(2);  // measured: the guard did not refuse
        } catch (const Error& err) {
            _exit(std::string(err.what()).find("the plan shows the same timeline without allocating it") != std::string::npos ? 0 : 3);
        } catch (...) {
            _exit(4);
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "2: not refused, 3: another error, 4: not an Error";
}

TEST(MemoryTimeline, LanesFollowTheirEvents) {
    ModelConfig c = preset_config(Arch::Bert, "tiny");
    const std::vector<MeterEvent> events = {{"activations", 0, "attn.probs", 100},
                                            {"activations", 1, "meft.stream1", 40},
                                            {"phase", -1, "backward", 0},
                                            {"backward scratch", 1, "grad", 30},
                                            {"layer temporaries", 0, "tmp", 10},
                                            {"layer temporaries", 0, "tmp", -10},
                                            {"backward scratch", 1, "grad", -30}};
    const StepTimeline tl = timeline_of(events, c);
    EXPECT_EQ(tl.backward_from, 2);
    EXPECT_EQ(tl.peak, 180);
    EXPECT_EQ(tl.peak_at, 4);
    EXPECT_EQ(tl.total(), (std::vector<std::int64_t>{100, 140, 140, 170, 180, 170, 140}));
    const auto streams = std::find_if(tl.lanes.begin(), tl.lanes.end(), [](const TimelineLane& t) { return t.kind == "streams"; });
    ASSERT_NE(streams, tl.lanes.end());
    EXPECT_EQ(streams->alive.back(), 40);  // not layer 1's
    EXPECT_THROW(timeline_of({{"elsewhere", 0, "x", 1}}, c), Error);
}

}  // namespace
