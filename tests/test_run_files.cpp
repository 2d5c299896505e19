// Files belong to their run, and recorded numbers are what happened: checkpoints are named by the
// run's UUID and carry it (two databases in one folder never share one; a foreign, mismatched or
// runaway checkpoint is refused), a resumed run reports the run's own steps, starting point and
// losses, the recorded activation peak is the largest training step's, the experiment row is
// created with its first run, a reused or zombie pid does not keep a run "running", and every
// file goes through one durable writer.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/file_io.h"
#include "store/database.h"
#include "run/run_setup.h"
#include "run/runner.h"
#include "test_support.h"

using namespace meft;
using meft::test::error_of;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Stops the run after step `at` (as Ctrl-C does: the trainer checkpoints, the run is cancelled).
class StopAfter : public TrainObserver {
public:
    explicit StopAfter(int at) : at_(at) {}
    void on_step(const StepReport& r) override { seen_ = r.step; }
    bool should_stop() override { return at_ > 0 && seen_ >= at_; }

private:
    int at_, seen_ = 0;
};

Experiment experiment(const std::string& method = "houlsby", int steps = 12, int accumulation = 1) {
    nlohmann::json j = nlohmann::json::parse(R"({"name": "files", "backbone": {"arch": "bert", "preset": "tiny"},
        "task": {"name": "toy", "train_examples": 96, "dev_examples": 16, "min_length": 4, "max_length": 24},
        "training": {"batch_size": 8, "max_seq_length": 32, "eval_every": 4, "checkpoint_every": 3}})");
    j["method"] = {{"name", method}};
    j["training"]["max_steps"] = steps;
    j["training"]["gradient_accumulation_steps"] = accumulation;
    return parse_experiment(j, "files.json");
}

class RunFiles : public meft::test::TempDirTest {
protected:
    // Runs `e` into `db`, stopping after step `stop_at` (0: to the end); returns the run id.
    std::int64_t run(ExperimentDb& db, const Experiment& e, int stop_at = 0) {
        StopAfter stop(stop_at);
        RunOptions o;
        o.observer = &stop;
        o.notice = [](const std::string&) {};
        NewExperiment x{e.name};
        o.experiment = &x;
        return execute_run(e, db, o).run_id;
    }
    RunOutcome resume(ExperimentDb& db, const Experiment& e, std::int64_t id) {
        RunOptions o;
        o.notice = [](const std::string&) {};
        o.resume_run = id;
        return execute_run(e, db, o);
    }
};

TEST_F(RunFiles, TwoDatabasesInOneFolderKeepTheirOwnCheckpoints) {
    ExperimentDb a(dir_ / "A.sqlite"), b(dir_ / "B.sqlite");
    const Experiment e = experiment();
    const std::int64_t ra = run(a, e, 7), rb = run(b, e, 4);  // both are run 1 of their database
    ASSERT_EQ(ra, 1);
    ASSERT_EQ(rb, 1);
    EXPECT_NE(a.checkpoint_path(ra), b.checkpoint_path(rb));
    EXPECT_EQ(a.checkpoint_path(ra).filename().string(), a.run(ra)->uuid + ".safetensors");
    ASSERT_TRUE(fs::exists(a.checkpoint_path(ra)));
    ASSERT_TRUE(fs::exists(b.checkpoint_path(rb)));
    EXPECT_EQ(read_checkpoint_identity(a.checkpoint_path(ra)).run_uuid, a.run(ra)->uuid);
    EXPECT_EQ(read_checkpoint_step(a.checkpoint_path(ra)), 7);
    EXPECT_EQ(read_checkpoint_step(b.checkpoint_path(rb)), 4);

    // A resumes from its own checkpoint (step 7), whatever B wrote.
    resume(a, e, ra);
    const auto events = a.events(ra);
    ASSERT_FALSE(events.empty());
    bool resumed_at_7 = false;
    for (const EventRow& ev : events) resumed_at_7 |= ev.kind == "resumed" && ev.message == "from step 7";
    EXPECT_TRUE(resumed_at_7);
    EXPECT_EQ(a.run(ra)->status, "finished");
    EXPECT_EQ(a.run(ra)->final_metrics["steps"], 12);
}

TEST_F(RunFiles, AForeignMismatchedOrRunawayCheckpointIsRefused) {
    ExperimentDb a(dir_ / "A.sqlite"), b(dir_ / "B.sqlite");
    const Experiment e = experiment();
    const std::int64_t ra = run(a, e, 4), rb = run(b, e, 7);
    const fs::path mine = a.checkpoint_path(ra), theirs = b.checkpoint_path(rb);

    fs::copy_file(theirs, mine, fs::copy_options::overwrite_existing);  // B's checkpoint under A's name
    std::string msg = error_of([&] { resume(a, e, ra); });
    EXPECT_TRUE(contains(msg, "belongs to run " + b.run(rb)->uuid + ", not to run 1 (" + a.run(ra)->uuid + ")")) << msg;
    EXPECT_EQ(a.run(ra)->status, "cancelled");  // refused before anything changed

    fs::remove(mine);
    msg = error_of([&] { resume(a, e, ra); });
    EXPECT_TRUE(contains(msg, "has no checkpoint (" + mine.string() + ")")) << msg;
    fs::create_directories(a.legacy_checkpoint_path(ra).parent_path());
    fs::copy_file(theirs, a.legacy_checkpoint_path(ra));  // an old-style run-1 file: could be anyone's
    msg = error_of([&] { resume(a, e, ra); });
    EXPECT_TRUE(contains(msg, "may belong to another database in this folder, so it is not used")) << msg;

    // The run's own identity but another configuration, or a step the run never recorded.
    auto be = make_backend("cpu");
    auto model = build_model(e, *be, 2);
    AdamW opt(model->params(), {});
    TrainState st;
    st.step = 4;
    save_training_checkpoint(mine, *model, opt, st, {a.run(ra)->uuid, "0123456789abcdef"});
    msg = error_of([&] { resume(a, e, ra); });
    EXPECT_TRUE(contains(msg, "was written for another configuration")) << msg;
    st.step = 999;
    save_training_checkpoint(mine, *model, opt, st, {a.run(ra)->uuid, config_hash(a.run(ra)->config)});
    msg = error_of([&] { resume(a, e, ra); });
    EXPECT_TRUE(contains(msg, "is at step 999 but run 1")) << msg;
    EXPECT_TRUE(contains(msg, "recorded 4 steps")) << msg;
    EXPECT_EQ(a.run(ra)->status, "cancelled");
}

TEST_F(RunFiles, AResumedRunReportsTheRunsOwnResults) {
    ExperimentDb db(dir_ / "runs.sqlite");
    const Experiment e = experiment("houlsby");  // adapters with random up-projections: a deviation > 0
    const std::int64_t straight = run(db, e);
    const std::int64_t cut = run(db, e, 5);
    resume(db, e, cut);
    const nlohmann::json s = db.run(straight)->final_metrics, r = db.run(cut)->final_metrics;
    ASSERT_GT(s["starting_point_deviation"].get<double>(), 0.0);
    // Bit for bit the same run: every result equal (a resume used to report 7 steps and the
    // deviation of the trained model).
    for (const char* k : {"steps", "starting_point_deviation", "train_loss_first", "train_loss_last", "dev_loss", "accuracy",
                          "best_step", "best_accuracy", "activation_peak_bytes", "activation_peak_step",
                          "activation_peak_batch"})
        EXPECT_EQ(s[k], r[k]) << k;
    EXPECT_EQ(r["steps"], 12);
}

TEST_F(RunFiles, TheRecordedActivationPeakIsTheLargestTrainingStep) {
    ExperimentDb db(dir_ / "runs.sqlite");
    // Toy examples of 4 to 24 tokens: batches pad to different lengths; two micro-batches a step.
    const std::int64_t id = run(db, experiment("full", 12, 2));
    const std::vector<StepRow> steps = db.steps(id);
    ASSERT_EQ(steps.size(), 12u);
    const auto top = std::max_element(steps.begin(), steps.end(),
                                      [](const StepRow& x, const StepRow& y) { return x.activation_bytes < y.activation_bytes; });
    const auto bottom = std::min_element(steps.begin(), steps.end(),
                                         [](const StepRow& x, const StepRow& y) { return x.activation_bytes < y.activation_bytes; });
    ASSERT_LT(bottom->activation_bytes, top->activation_bytes);  // the steps differ, so the test can fail
    const nlohmann::json m = db.run(id)->final_metrics;
    EXPECT_EQ(m["activation_peak_bytes"].get<std::int64_t>(), top->activation_bytes);
    EXPECT_EQ(m["activation_peak_step"].get<int>(), top->step);
    EXPECT_EQ(m["activation_peak_batch"].get<std::string>(),
              std::to_string(top->activation_rows) + " x " + std::to_string(top->activation_seq));
    EXPECT_EQ(top->activation_rows, 4);  // a micro-batch of half the step's 8 examples
    // The measured per-layer rows are that step's: their held bytes add up to at most its peak.
    std::int64_t held = 0;
    for (const LayerMemoryRow& l : db.layer_memory(id))
        if (l.kind == "measured") held += l.held;
    EXPECT_GT(held, 0);
    EXPECT_LE(held, top->activation_bytes);
}

TEST_F(RunFiles, TheExperimentRowIsCreatedWithItsFirstRunOrNotAtAll) {
    ExperimentDb db(dir_ / "runs.sqlite");
    // Make the run insert fail inside the transaction, as a kill between the two rows would.
    ASSERT_EQ(sqlite3_exec(db.handle(),
                           "CREATE TRIGGER no_runs BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'no runs today'); END",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    NewExperiment x{"orphan?"};
    EXPECT_THROW(db.add_run(x, nlohmann::json::object(), nlohmann::json::object()), Error);
    EXPECT_EQ(x.id, 0);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db.handle(), "SELECT COUNT(*) FROM experiments", -1, &q, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(q, 0), 0);
    sqlite3_finalize(q);
    ASSERT_EQ(sqlite3_exec(db.handle(), "DROP TRIGGER no_runs", nullptr, nullptr, nullptr), SQLITE_OK);
    const std::int64_t r1 = db.add_run(x, nlohmann::json::object(), nlohmann::json::object());
    const std::int64_t r2 = db.add_run(x, nlohmann::json::object(), nlohmann::json::object());
    EXPECT_GT(x.id, 0);
    EXPECT_EQ(db.run(r1)->experiment_id, x.id);
    EXPECT_EQ(db.run(r2)->experiment_id, x.id);
    EXPECT_NE(db.run(r1)->uuid, db.run(r2)->uuid);
}

TEST_F(RunFiles, AReusedOrZombiePidDoesNotKeepARunRunning) {
    const fs::path file = dir_ / "runs.sqlite";
    std::int64_t reused = 0, zombie = 0, alive = 0;
    pid_t child = 0;
    {
        ExperimentDb db(file);
        NewExperiment x{"pids"};
        reused = db.add_run(x, nlohmann::json::object(), nlohmann::json::object());
        zombie = db.add_run(x, nlohmann::json::object(), nlohmann::json::object());
        alive = db.add_run(x, nlohmann::json::object(), nlohmann::json::object());
        for (std::int64_t id : {reused, zombie, alive}) db.set_status(id, "running");
        // This process's pid, but recorded for another process (an earlier one that had it).
        const std::string sql = "UPDATE runs SET process = 'another-boot/12345' WHERE id = " + std::to_string(reused);
        ASSERT_EQ(sqlite3_exec(db.handle(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
        // A child that exits and is never reaped: its pid stays, as a zombie.
        child = fork();
        if (child == 0) {
            ::usleep(200000);
            _exit(0);
        }
        const std::string who = process_identity(child);
        ASSERT_FALSE(who.empty());
        const std::string z = "UPDATE runs SET pid = " + std::to_string(child) + ", process = '" + who + "' WHERE id = " +
                              std::to_string(zombie);
        ASSERT_EQ(sqlite3_exec(db.handle(), z.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    }
    for (int i = 0; i < 100 && !process_identity(child).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_TRUE(process_identity(child).empty()) << "the child should be a zombie by now";
    ExperimentDb db(file);
    EXPECT_EQ(db.run(reused)->status, "interrupted");
    EXPECT_EQ(db.run(zombie)->status, "interrupted");
    EXPECT_EQ(db.run(alive)->status, "running");  // this process, recorded as itself
    int status = 0;
    waitpid(child, &status, 0);
}

TEST_F(RunFiles, TheDurableWriterLeavesOneWholeFileAndNoTemporaries) {
    const fs::path f = dir_ / "sub" / "results.json";
    write_file_atomically(f, "first\n");
    write_file_atomically(f, "second\n");
    EXPECT_EQ(meft::test::read_bytes(f), "second\n");
    int files = 0;
    for (const auto& entry : fs::directory_iterator(f.parent_path())) {
        ++files;
        EXPECT_EQ(entry.path().filename().string().rfind(temporary_prefix(f), 0), std::string::npos) << entry.path();
    }
    EXPECT_EQ(files, 1);
    {  // two writers of one file never share a temporary file; one abandoned leaves nothing behind
        DurableFile x(f), y(f);
        x.write("x", 1);
        y.write("y", 1);
        y.finish();
        y.commit();
    }
    EXPECT_EQ(meft::test::read_bytes(f), "y");
    files = 0;
    for (const auto& entry : fs::directory_iterator(f.parent_path())) (void)entry, ++files;
    EXPECT_EQ(files, 1);
    meft::test::write_bytes(dir_ / "plain", "a file, not a folder");
    const std::string msg = error_of([&] { write_file_atomically(dir_ / "plain" / "results.json", "x"); });
    EXPECT_TRUE(contains(msg, "results.json")) << msg;
}

}  // namespace
