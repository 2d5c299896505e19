// Gathering a sweep's shard databases into one: every finished run arrives with everything
// recorded for it under a new id, its experiment reused when the target has the same one; a
// second gather adds nothing (runs are known by UUID); unfinished runs stay out (with --all only
// running ones do); a read-only target, the target as its own shard and a folder without shards
// are refused by name.
#include <gtest/gtest.h>

#include "store/database.h"
#include "store/merge.h"
#include "store/step_memory.h"
#include "test_support.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {

class Merge : public test::TempDirTest {
protected:
    // A shard with a finished run (3 steps, an evaluation, memory, an event), a failed one and a running one.
    std::string make_shard(const fs::path& file, double accuracy) {
        ExperimentDb db(file);
        NewExperiment e{"grid", "grid.json", {{"name", "grid"}}};
        const std::int64_t run = db.add_run(e, {{"method", {{"name", "lora"}}}}, {{"backend", "cpu"}});
        db.set_status(run, "running");
        std::vector<StepRow> steps;
        for (int s = 1; s <= 3; ++s) steps.push_back(StepRow{s, 1.0 / s, 1e-3, 0.5, 100, 0.1 * s, 1000, 10, 2, 8});
        db.add_steps(run, steps);
        db.add_eval(run, 3, {{"accuracy", accuracy}}, 0.4);
        db.add_reconstruction(run, 3, {1e-7, 2e-7});
        db.add_event(run, "note", "hello");
        StepMemory m;
        m.activation_peak = 1000;
        m.step = 2;
        db.finish_with_memory(run, "finished", {{"accuracy", accuracy}}, "", {{"measured", 0, "layer 0", 100, 50}},
                              step_memory_rows("measured", m));
        const std::int64_t failed = db.add_run(e, {{"method", {{"name", "meft1"}}}}, {});
        db.finish(failed, "failed", nullptr, "diverged");
        const std::int64_t running = db.add_run(e, {{"method", {{"name", "full"}}}}, {});
        db.set_status(running, "running");
        return db.run_uuid(run);
    }
};

TEST_F(Merge, GathersFinishedRunsOnceWithEverythingRecorded) {
    fs::create_directories(dir_ / "sweep" / "shards");
    const std::string u1 = make_shard(dir_ / "sweep" / "shards" / "1.sqlite", 0.8);
    const std::string u2 = make_shard(dir_ / "sweep" / "shards" / "2.sqlite", 0.9);
    ExperimentDb main(dir_ / "main.sqlite");
    const auto shards = shard_files(dir_ / "sweep");
    ASSERT_EQ(shards.size(), 2u);
    for (const auto& s : shards) {
        const MergeReport r = merge_runs(main, s);
        EXPECT_EQ(r.added.size(), 1u);
        EXPECT_EQ(r.already, 0);
        EXPECT_EQ(r.not_finished, 2);  // the failed and the running run
    }
    const auto runs = main.runs();
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[0].uuid, u1);
    EXPECT_EQ(runs[1].uuid, u2);
    EXPECT_EQ(runs[0].experiment_id, runs[1].experiment_id);  // the same experiment, reused
    EXPECT_EQ(runs[1].final_metrics["accuracy"], 0.9);
    EXPECT_EQ(runs[1].steps, 3);
    const auto steps = main.steps(runs[1].id);
    ASSERT_EQ(steps.size(), 3u);
    EXPECT_EQ(steps[2].activation_rows, 2);
    EXPECT_EQ(steps[2].activation_seq, 8);
    EXPECT_EQ(main.evals(runs[1].id).size(), 1u);
    EXPECT_EQ(main.layer_memory(runs[1].id).size(), 1u);
    EXPECT_EQ(step_memory_of(main.step_memory(runs[1].id), "measured")->step, 2);
    EXPECT_EQ(main.reconstruction(runs[1].id).size(), 1u);
    EXPECT_EQ(main.events(runs[1].id).size(), 1u);
    // Again: nothing new.
    for (const auto& s : shards) {
        const MergeReport r = merge_runs(main, s);
        EXPECT_TRUE(r.added.empty());
        EXPECT_EQ(r.already, 1);
    }
    EXPECT_EQ(main.runs().size(), 2u);
    // --all: the failed runs too, never the running ones.
    const MergeReport all = merge_runs(main, shards[0], false);
    EXPECT_EQ(all.added.size(), 1u);
    EXPECT_EQ(all.not_finished, 1);
    EXPECT_EQ(main.run(all.added[0])->status, "failed");
    EXPECT_EQ(main.run(all.added[0])->message, "diverged");
}

TEST_F(Merge, RefusesWhatItCannotGather) {
    make_shard(dir_ / "a.sqlite", 0.5);
    ExperimentDb main(dir_ / "main.sqlite");
    EXPECT_NE(test::error_of([&] { merge_runs(main, dir_ / "main.sqlite"); }).find("is the target database itself"), std::string::npos);
    EXPECT_NE(test::error_of([&] { merge_runs(main, dir_ / "nope.sqlite"); }).find("no such shard database"), std::string::npos);
    fs::create_directories(dir_ / "empty");
    EXPECT_NE(test::error_of([&] { shard_files(dir_ / "empty"); }).find("no .sqlite shards"), std::string::npos);
    {
        std::ofstream junk(dir_ / "junk.sqlite");
        junk << "not a database";
    }
    EXPECT_NE(test::error_of([&] { merge_runs(main, dir_ / "junk.sqlite"); }).find("junk.sqlite"), std::string::npos);
    EXPECT_TRUE(main.runs().empty());
    ExperimentDb ro(dir_ / "main.sqlite", DbAccess::ReadOnly);
    EXPECT_NE(test::error_of([&] { merge_runs(ro, dir_ / "a.sqlite"); }).find("read-only"), std::string::npos);
}

}  // namespace
