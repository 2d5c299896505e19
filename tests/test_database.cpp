// The experiment database: schema and WAL, the run lifecycle, batched steps that readers see
// whole, dead runs marked interrupted on open, filters, and a clear error for newer schemas.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/error.h"
#include "store/database.h"
#include "test_support.h"

using namespace meft;

namespace {

using DatabaseTest = meft::test::TempDirTest;

TEST_F(DatabaseTest, CreatesSchemaInWalMode) {
    ExperimentDb db(dir_ / "x.sqlite");
    EXPECT_EQ(db.schema_version(), ExperimentDb::kSchemaVersion);
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db.handle(), "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
    sqlite3_finalize(s);
}

TEST_F(DatabaseTest, RecordsARunFromStartToFinish) {
    ExperimentDb db(dir_ / "x.sqlite");
    const auto e = db.add_experiment("exp", "exp.json", {{"name", "exp"}}, "paper,glue", "a note");
    const auto r = db.add_run(e, {{"task", {{"name", "sst2"}}}, {"method", {{"name", "lora"}}}}, {{"backend", "cpu"}});
    db.set_status(r, "running");
    std::vector<StepRow> rows;
    for (int i = 1; i <= 30; ++i) rows.push_back(StepRow{i, 1.0 / i, 1e-3, 0.5, 1000, 0.1 * i, 1 << 20});
    db.add_steps(r, rows);
    db.add_eval(r, 30, {{"accuracy", 0.75}}, 0.5);
    db.finish(r, "finished", {{"accuracy", 0.75}});
    const auto info = db.run(r);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->status, "finished");
    EXPECT_EQ(info->steps, 30);
    EXPECT_EQ(info->final_metrics["accuracy"], 0.75);
    EXPECT_EQ(info->config["method"]["name"], "lora");
    EXPECT_FALSE(info->finished_at.empty());
    const auto steps = db.steps(r);
    ASSERT_EQ(steps.size(), 30u);
    EXPECT_DOUBLE_EQ(steps[9].loss, 0.1);
    const auto ev = db.evals(r);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_DOUBLE_EQ(ev[0].second.at("accuracy"), 0.75);
    EXPECT_DOUBLE_EQ(ev[0].second.at("loss"), 0.5);
    EXPECT_EQ(db.runs("finished").size(), 1u);
    EXPECT_EQ(db.runs("failed").size(), 0u);
    EXPECT_EQ(db.runs("", "glue").size(), 1u);
    EXPECT_EQ(db.runs("", "glu").size(), 0u);  // whole tags only
    db.delete_run(r);
    EXPECT_FALSE(db.run(r));
    EXPECT_TRUE(db.steps(r).empty());  // cascaded
}

// run(id) looks one run up by itself: every field as runs() reads it, nothing for an unknown id.
TEST_F(DatabaseTest, RunByIdReadsWhatRunsReads) {
    ExperimentDb db(dir_ / "x.sqlite");
    const auto e1 = db.add_experiment("one", "one.json", {{"name", "one"}}, "paper", "");
    const auto e2 = db.add_experiment("two", "two.json", {{"name", "two"}}, "", "its note");
    const auto a = db.add_run(e1, {{"method", {{"name", "lora"}}}}, {{"backend", "cpu"}});
    const auto b = db.add_run(e2, {{"method", {{"name", "full"}}}}, {{"backend", "cuda"}});
    const auto c = db.add_run(e1, {{"method", {{"name", "meft1"}}}}, {{"backend", "cpu"}});
    db.add_steps(b, {StepRow{1, 0.7}, StepRow{2, 0.6}});
    db.finish(b, "finished", {{"accuracy", 0.9}});
    db.finish(c, "failed", nlohmann::json::object(), "the loss is nan");
    db.set_tags(a, {"x", "y"});
    for (const RunInfo& want : db.runs()) {
        const auto got = db.run(want.id);
        ASSERT_TRUE(got);
        EXPECT_EQ(got->id, want.id);
        EXPECT_EQ(got->uuid, want.uuid);
        EXPECT_EQ(got->experiment_id, want.experiment_id);
        EXPECT_EQ(got->experiment, want.experiment);
        EXPECT_EQ(got->status, want.status);
        EXPECT_EQ(got->message, want.message);
        EXPECT_EQ(got->created_at, want.created_at);
        EXPECT_EQ(got->finished_at, want.finished_at);
        EXPECT_EQ(got->tags, want.tags);
        EXPECT_EQ(got->notes, want.notes);
        EXPECT_EQ(got->config, want.config);
        EXPECT_EQ(got->environment, want.environment);
        EXPECT_EQ(got->final_metrics, want.final_metrics);
        EXPECT_EQ(got->steps, want.steps);
    }
    EXPECT_EQ(db.run(b)->steps, 2);
    EXPECT_EQ(db.run(b)->experiment, "two");
    EXPECT_TRUE(db.run(a)->final_metrics.is_null());  // not finished: no metrics
    EXPECT_FALSE(db.run(0));
    EXPECT_FALSE(db.run(c + 1));
}

TEST_F(DatabaseTest, DeadRunningRunsAreMarkedInterruptedOnOpen) {
    std::int64_t r = 0;
    {
        ExperimentDb db(dir_ / "x.sqlite");
        r = db.add_run(db.add_experiment("e", "", nlohmann::json::object(), "", ""), nlohmann::json::object(),
                       nlohmann::json::object());
        db.set_status(r, "running");
        // pretend the process that ran it has died
        ASSERT_EQ(sqlite3_exec(db.handle(), "UPDATE runs SET pid = 2147483000", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    ExperimentDb again(dir_ / "x.sqlite");
    EXPECT_EQ(again.run(r)->status, "interrupted");
    // a running run whose process is alive (this one) is left alone
    const auto live = again.add_run(again.add_experiment("f", "", nlohmann::json::object(), "", ""),
                                    nlohmann::json::object(), nlohmann::json::object());
    again.set_status(live, "running");
    ExperimentDb third(dir_ / "x.sqlite");
    EXPECT_EQ(third.run(live)->status, "running");
}

TEST_F(DatabaseTest, ReadersSeeOnlyWholeBatchesAndNoLockErrors) {
    const auto file = dir_ / "x.sqlite";
    ExperimentDb writer(file);
    const auto r = writer.add_run(writer.add_experiment("e", "", nlohmann::json::object(), "", ""),
                                  nlohmann::json::object(), nlohmann::json::object());
    std::atomic<bool> done{false};
    std::atomic<int> bad{0}, reads{0};
    std::string last_error;
    std::thread reader([&] {
        ExperimentDb db(file);
        while (!done.load()) {
            try {
                const std::size_t n = db.steps(r).size();
                if (n % 25 != 0) ++bad;  // steps arrive in transactions of 25
                ++reads;
            } catch (const Error& e) {
                last_error = e.what();
                ++bad;
            }
        }
    });
    while (reads.load() == 0) std::this_thread::yield();  // the reader is polling
    for (int batch = 0; batch < 40; ++batch) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        std::vector<StepRow> rows;
        for (int i = 0; i < 25; ++i) rows.push_back(StepRow{batch * 25 + i + 1, 1.0, 0, 0, 0, 0, 0});
        writer.add_steps(r, rows);
    }
    done = true;
    reader.join();
    EXPECT_EQ(bad.load(), 0) << last_error;
    EXPECT_GT(reads.load(), 40);
    EXPECT_EQ(writer.steps(r).size(), 1000u);
}

TEST_F(DatabaseTest, RunsCarryTheirOwnTagsNotesMemoryAndReconstruction) {
    ExperimentDb db(dir_ / "x.sqlite");
    const auto e = db.add_experiment("exp", "exp.json", {{"name", "exp"}}, "paper,glue", "a note");
    const auto a = db.add_run(e, {{"name", "a"}}, {});
    const auto b = db.add_run(e, {{"name", "b"}}, {});
    EXPECT_EQ(db.run(a)->tags, "paper,glue");  // taken from the experiment
    EXPECT_EQ(db.run(a)->notes, "a note");
    db.set_tags(b, {"baseline", "lr-sweep"});
    db.set_notes(b, "diverged at step 40");
    EXPECT_EQ(db.run(a)->tags, "paper,glue");  // only the edited run changes
    EXPECT_EQ(db.run(b)->tags, "baseline,lr-sweep");
    EXPECT_EQ(db.run(b)->notes, "diverged at step 40");
    EXPECT_EQ(db.runs("", "baseline").size(), 1u);
    EXPECT_THROW(db.set_tags(b, {"a,b"}), Error);

    db.add_layer_memory(a, "measured", 0, "layer 0", 100, 10);
    db.add_layer_memory(a, "planned", 0, "layer 0", 120, 12);
    db.add_layer_memory(a, "measured", -1, "embeddings", 50, 5);
    const auto mem = db.layer_memory(a);
    ASSERT_EQ(mem.size(), 3u);
    EXPECT_EQ(mem[0].kind, "measured");
    EXPECT_EQ(mem[0].layer, -1);
    EXPECT_EQ(mem[2].kind, "planned");
    EXPECT_EQ(mem[2].held, 120);

    db.add_reconstruction(a, 5, {1e-9, 2e-9});
    db.add_reconstruction(a, 10, {0, 0});
    const auto rec = db.reconstruction(a);
    ASSERT_EQ(rec.size(), 2u);
    EXPECT_EQ(rec[0].first, 5);
    EXPECT_DOUBLE_EQ(rec[0].second[1], 2e-9);

    std::vector<StepRow> rows;
    for (int i = 1; i <= 10; ++i) rows.push_back(StepRow{i, 1.0, 1e-3, 0.5, 1000, 0.1 * i, 1 << 20, 3 << 20});
    db.add_steps(a, rows);
    const auto later = db.steps(a, 7);  // what a live view fetches after step 7
    ASSERT_EQ(later.size(), 3u);
    EXPECT_EQ(later[0].step, 8);
    EXPECT_EQ(later[0].resident_bytes, 3 << 20);
    db.add_event(a, "note", "hello");
    ASSERT_EQ(db.events(a).size(), 1u);
    EXPECT_EQ(db.events(a)[0].message, "hello");
}

// A database written by schema version 1 opens migrated: runs take their experiment's tags.
TEST_F(DatabaseTest, MigratesVersionOneDatabases) {
    const auto file = dir_ / "v1.sqlite";
    {
        sqlite3* h = nullptr;
        ASSERT_EQ(sqlite3_open(file.c_str(), &h), SQLITE_OK);
        const char* v1 = R"sql(
            CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT NOT NULL, file TEXT, spec TEXT NOT NULL,
                tags TEXT NOT NULL DEFAULT '', notes TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL DEFAULT '');
            CREATE TABLE runs (id INTEGER PRIMARY KEY, experiment_id INTEGER NOT NULL, status TEXT NOT NULL,
                config TEXT NOT NULL, environment TEXT NOT NULL, pid INTEGER, host TEXT, message TEXT NOT NULL DEFAULT '',
                final_metrics TEXT, created_at TEXT NOT NULL DEFAULT '', finished_at TEXT);
            CREATE TABLE steps (run_id INTEGER NOT NULL, step INTEGER NOT NULL, loss REAL, learning_rate REAL,
                grad_norm REAL, tokens_per_s REAL, elapsed_s REAL, activation_bytes INTEGER, PRIMARY KEY (run_id, step));
            CREATE TABLE evals (run_id INTEGER NOT NULL, step INTEGER NOT NULL, metric TEXT NOT NULL, value REAL);
            CREATE TABLE layer_memory (run_id INTEGER NOT NULL, kind TEXT NOT NULL, layer INTEGER NOT NULL,
                label TEXT NOT NULL, held INTEGER NOT NULL, transient INTEGER NOT NULL);
            CREATE TABLE reconstruction (run_id INTEGER NOT NULL, step INTEGER NOT NULL, layer INTEGER NOT NULL,
                relative_error REAL NOT NULL);
            CREATE TABLE events (run_id INTEGER NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, at TEXT NOT NULL DEFAULT '');
            INSERT INTO experiments(id, name, spec, tags, notes) VALUES (1, 'old', '{}', 'v1,paper', 'from v1');
            INSERT INTO runs(id, experiment_id, status, config, environment) VALUES (1, 1, 'finished', '{}', '{}');
            INSERT INTO steps(run_id, step, loss) VALUES (1, 1, 0.5);
            PRAGMA user_version = 1;)sql";
        ASSERT_EQ(sqlite3_exec(h, v1, nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(h);
    }
    ExperimentDb db(file);
    EXPECT_EQ(db.schema_version(), ExperimentDb::kSchemaVersion);
    EXPECT_EQ(db.run(1)->uuid.size(), 36u);  // version 3 gave the old run a UUID
    EXPECT_EQ(db.run(1)->tags, "v1,paper");
    EXPECT_EQ(db.run(1)->notes, "from v1");
    ASSERT_EQ(db.steps(1).size(), 1u);
    EXPECT_EQ(db.steps(1)[0].resident_bytes, 0);
}

TEST_F(DatabaseTest, NewerSchemaIsAClearError) {
    {
        ExperimentDb db(dir_ / "x.sqlite");
        ASSERT_EQ(sqlite3_exec(db.handle(), "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    const std::string msg = meft::test::error_of([&] { ExperimentDb db(dir_ / "x.sqlite"); });
    EXPECT_NE(msg.find("schema version 99"), std::string::npos) << msg;
    EXPECT_NE(msg.find("x.sqlite"), std::string::npos) << msg;
}

TEST_F(DatabaseTest, DefaultPathFollowsTheEnvironment) {
    setenv("MEFT_DB", "/tmp/somewhere.sqlite", 1);
    EXPECT_EQ(ExperimentDb::default_path(), "/tmp/somewhere.sqlite");
    unsetenv("MEFT_DB");
    setenv("XDG_DATA_HOME", "/data", 1);
    EXPECT_EQ(ExperimentDb::default_path(), "/data/meft-workbench/experiments.sqlite");
}

}  // namespace
