// A reader polling the experiment database while `meft run` writes it, as the workbench GUI does:
// through ExperimentDb, on one long-lived connection plus a freshly opened one every 16th poll
// (the constructor's pragmas, migration check and dead-run scan run against a live writer).
// Every poll must succeed (no SQLITE_BUSY / "database is locked"); the steps seen are always exactly
// 1..k with every value finite and set, and k is always the end of a batch the writer reported
// committed (MEFT_TRACE_COMMITS) — never part of a transaction; k never decreases; the rows read
// incrementally (steps(run, after_step), as a live chart does) add up to the same rows; every evaluation
// seen is whole; the status only moves forward (queued, running, finished) and the live run is
// never marked interrupted. At the end the run reads finished with all its steps. The poll count
// (at least 100, at least 20 of them while the run reads running, and at least one state between
// the first and the last commit) keeps it from passing without having overlapped the writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "test_kill_soak.h"
#include "test_support.h"

using namespace meft;
using namespace meft::reliability;

namespace {

using LiveReader = meft::test::TempDirTest;

TEST_F(LiveReader, PollingReaderSeesWholeStepsAndNoLockErrors) {
    constexpr int kMaxSteps = 300;
    const fs::path db_file = dir_ / "runs.sqlite";
    const fs::path exp = dir_ / "live.json";
    // LoRA, fast steps: commits of 50-step batches, at each epoch's evaluation (every 60 steps), and
    // at least once a second; a checkpoint every 25 steps.
    write_experiment(exp, "live", "lora", 480, kMaxSteps, 25, 0);

    ExperimentDb reader(db_file);  // the database exists before the run starts, as with the GUI open
    const fs::path err = dir_ / "run.err";
    const pid_t pid = spawn_meft({"run", exp.string(), "--db", db_file.string(), "--quiet"}, err);

    int polls = 0, polls_running = 0, fresh_opens = 0, last_k = 0;
    std::vector<StepRow> incremental;  // the long-lived connection's rows, read as steps(run, after_step)
    std::set<int> seen_k;
    std::int64_t run_id = 0;
    const std::vector<std::string> order = {"queued", "running", "finished"};
    std::size_t status_rank = 0;
    std::string failure;
    int status = 0;
    bool done = false;
    while (failure.empty()) {
        done = waitpid(pid, &status, WNOHANG) == pid;  // one more poll after the writer has gone
        try {
            std::unique_ptr<ExperimentDb> fresh;
            if (polls % 16 == 15) {
                fresh = std::make_unique<ExperimentDb>(db_file);
                ++fresh_opens;
            }
            ExperimentDb& db = fresh ? *fresh : reader;
            const std::vector<RunInfo> runs = db.runs();
            ++polls;
            if (runs.size() > 1) failure = "one meft run made " + std::to_string(runs.size()) + " runs";
            if (!runs.empty()) {
                const RunInfo& r = runs.front();
                run_id = r.id;
                const auto rank = std::find(order.begin(), order.end(), r.status) - order.begin();
                if (rank == static_cast<long>(order.size()))
                    failure = "the live run reads '" + r.status + "' (" + r.message + ")";
                else if (static_cast<std::size_t>(rank) < status_rank)
                    failure = "the status went back from " + order[status_rank] + " to " + r.status;
                else
                    status_rank = static_cast<std::size_t>(rank);
                polls_running += r.status == "running";
                const std::vector<StepRow> rows = db.steps(r.id);  // one statement: one snapshot
                const int k = static_cast<int>(rows.size());
                if (const std::string bad = check_step_rows(rows); !bad.empty()) failure = bad;
                if (k < last_k) failure = "the step count went back from " + std::to_string(last_k) + " to " + std::to_string(k);
                if (r.steps > k)
                    failure = "runs() counted " + std::to_string(r.steps) + " steps, a later steps() read " + std::to_string(k);
                if (const long long nulls = null_step_fields(db.handle(), r.id); nulls != 0)
                    failure = std::to_string(nulls) + " step rows with NULL fields";
                for (const auto& [step, m] : db.evals(r.id))
                    if (!m.count("loss") || !m.count("accuracy")) failure = "a partial evaluation at step " + std::to_string(step);
                last_k = std::max(last_k, k);
                seen_k.insert(k);
                const std::vector<StepRow> more = reader.steps(r.id, static_cast<int>(incremental.size()));
                incremental.insert(incremental.end(), more.begin(), more.end());
                if (const std::string bad = check_step_rows(incremental); !bad.empty()) failure = "incremental reads: " + bad;
                seen_k.insert(static_cast<int>(incremental.size()));
            }
        } catch (const std::exception& e) {
            failure = "poll " + std::to_string(polls) + " failed: " + e.what();
        }
        if (done) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!done) {  // stopped early on a failure
        ::kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    std::printf("live reader: %d polls (%d while running, %d through a freshly opened connection), %zu distinct step "
                "counts seen\n",
                polls, polls_running, fresh_opens, seen_k.size());
    ASSERT_EQ(failure, "");
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_status(status) << "\n" << read_text(err);

    // Every step count a reader saw ends a committed batch.
    const Trace trace = read_trace(err);
    ASSERT_EQ(trace.batch_ends.size(), 1u) << "no commit trace (MEFT_TRACE_COMMITS) from meft run";
    ASSERT_EQ(trace.batch_ends.begin()->first, run_id);
    const std::vector<int>& ends = trace.batch_ends.begin()->second;
    EXPECT_GE(ends.size(), 5u) << "fewer commits than the test needs";
    const std::set<int> boundaries(ends.begin(), ends.end());
    for (int k : seen_k) EXPECT_TRUE(k == 0 || boundaries.count(k)) << "a reader saw " << k << " steps, not a batch end";
    int between = 0;
    for (int k : seen_k) between += k > 0 && k < kMaxSteps;
    EXPECT_GE(between, 1) << "the reader never saw the run between its first and last commit";
    EXPECT_GE(polls, 100);
    EXPECT_GE(polls_running, 20);
    EXPECT_GE(fresh_opens, 5);

    const auto info = reader.run(run_id);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->status, "finished");
    const std::vector<StepRow> rows = reader.steps(run_id);
    EXPECT_EQ(rows.size(), static_cast<std::size_t>(kMaxSteps));
    EXPECT_EQ(check_step_rows(rows), "");
    EXPECT_EQ(last_k, kMaxSteps) << "the last poll, after the writer exited, did not see every step";
    ASSERT_EQ(incremental.size(), rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i)
        EXPECT_TRUE(incremental[i].loss == rows[i].loss && incremental[i].elapsed_s == rows[i].elapsed_s &&
                    incremental[i].learning_rate == rows[i].learning_rate)
            << "the row of step " << i + 1 << " changed after it was read";
    const auto evals = reader.evals(run_id);
    ASSERT_FALSE(evals.empty());
    EXPECT_EQ(evals.back().first, kMaxSteps);
}

// The first open of a database that does not exist yet, by several programs at once — the workbench
// and a `meft run` started together, or a script starting runs in parallel — must succeed everywhere:
// the schema is created once and nobody fails with "table ... already exists" or "database is locked".
TEST_F(LiveReader, ConcurrentFirstOpensOfAFreshDatabaseAllSucceed) {
    constexpr int kRounds = 20, kThreads = 3;
    int failures = 0;
    std::string first_error;
    for (int round = 0; round < kRounds; ++round) {
        const fs::path db_file = dir_ / ("fresh-" + std::to_string(round) + ".sqlite");
        const fs::path err = dir_ / ("fresh-" + std::to_string(round) + ".err");
        std::atomic<int> ready{0};
        std::vector<std::string> errors(kThreads);
        const pid_t pid = spawn_meft({"runs", "--db", db_file.string(), "list"}, err);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] {
                ready.fetch_add(1);
                while (ready.load() < kThreads) {
                }
                try {
                    ExperimentDb db(db_file);
                    if (db.schema_version() != ExperimentDb::kSchemaVersion) errors[t] = "wrong schema version";
                    db.runs();
                } catch (const std::exception& e) {
                    errors[t] = e.what();
                }
            });
        for (std::thread& t : threads) t.join();
        int status = 0;
        waitpid(pid, &status, 0);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) errors.push_back("meft runs list " + describe_status(status) + ": " + read_text(err));
        for (const std::string& e : errors)
            if (!e.empty()) {
                ++failures;
                if (first_error.empty()) first_error = "round " + std::to_string(round) + ": " + e;
            }
    }
    EXPECT_EQ(failures, 0) << failures << " of " << kRounds * (kThreads + 1) << " first opens failed; the first: " << first_error;
}

}  // namespace
