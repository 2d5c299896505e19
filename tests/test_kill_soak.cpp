// The kill -9 soak: `meft run` is killed with SIGKILL at random moments, 24 times (at least 20 are
// required), into one experiment database that accumulates the runs. Kill moments rotate over six kinds:
//   timed       a uniform delay over the whole run (startup, steps, commits, evaluations, checkpoints)
//   startup     a uniform delay before the first commit (database open, run row, model and data)
//   commit      right after (0-3 ms) the j-th commit the run reported (MEFT_TRACE_COMMITS)
//   wal         at the j-th write to the database's WAL file (inotify), i.e. inside a transaction
//   checkpoint  while (or right after) the j-th training checkpoint is written (inotify on checkpoints/)
//   final       at once after the checkpoint taken after the last step is renamed into place, i.e.
//               while the run records its layer memory and finishes
// After every kill: PRAGMA integrity_check is ok and foreign_key_check empty; reopened, the run reads
// "interrupted" and no run reads running; its steps are exactly 1..k with every value finite and set; every step and
// evaluation the trace says committed is there; a checkpoint, if any, loads (every tensor, finite)
// and is not ahead of the recorded steps; runs of earlier trials are unchanged. Then, for half of
// the kills and all checkpoint and final kills, `meft resume` must finish the run with steps 1..max_steps,
// its final evaluation and metrics — or, with no checkpoint, fail with a clear error. A quarter of
// the resumes are themselves killed once and checked the same way before resuming again.
// The seed is printed; MEFT_SOAK_SEED=S replays its choices of experiment and kill moment (where a
// kill lands still depends on timing); MEFT_SOAK_TRIALS=N changes the number of kills.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/inotify.h>

#include <chrono>
#include <optional>
#include <random>
#include <thread>

#include "core/file_io.h"
#include "model/safetensors.h"
#include "test_kill_soak.h"
#include "test_support.h"

using namespace meft;
using namespace meft::reliability;
using Clock = std::chrono::steady_clock;

namespace {

struct Exp {
    std::string name, method;
    fs::path file;
    int max_steps = 0, checkpoint_every = 0;
    double total_s = 0, first_commit_s = 0;  // measured on an uninterrupted reference run
    int trace_lines = 0;
    int wal_writes = 0;  // writes to runs.sqlite-wal
    int layer_rows = 0;  // measured (= planned) layer_memory rows of a finished run
};

enum Mode { kTimed, kStartup, kCommit, kWal, kCheckpoint, kFinal, kModes };
const char* mode_name(int m) {
    static const char* names[] = {"timed", "startup", "commit", "wal", "checkpoint", "final"};
    return names[m];
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Reaps the child if it has exited; true then, with its status.
bool exited(pid_t pid, int* status) { return waitpid(pid, status, WNOHANG) == pid; }

// inotify on one folder.
class Watch {
public:
    Watch(const fs::path& dir, std::uint32_t mask) : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
        if (fd_ < 0 || inotify_add_watch(fd_, dir.c_str(), mask) < 0) throw std::runtime_error("inotify on " + dir.string());
    }
    ~Watch() { ::close(fd_); }
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    // Waits up to timeout_ms (0: not at all) for events, then calls f(mask, name) for each one queued.
    template <typename F> void drain(int timeout_ms, F&& f) {
        pollfd p{fd_, POLLIN, 0};
        ::poll(&p, 1, timeout_ms);
        alignas(inotify_event) char buf[8192];
        ssize_t n;
        while ((n = ::read(fd_, buf, sizeof buf)) > 0)
            for (char* q = buf; q < buf + n;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(q);
                f(ev->mask, std::string(ev->len ? ev->name : ""));
                q += sizeof(inotify_event) + ev->len;
            }
    }

private:
    int fd_;
};

class KillSoak : public meft::test::TempDirTest {
protected:
    fs::path db_file() const { return dir_ / "runs.sqlite"; }
    fs::path ck_dir() const { return dir_ / "checkpoints"; }

    // What a run looked like after its last check; later trials must leave it so.
    struct Known {
        std::string status;
        int steps = 0;
        std::size_t evals = 0;
    };
    std::map<std::int64_t, Known> known_;
    int leftover_tmp_files_ = 0;
    std::uintmax_t leftover_tmp_bytes_ = 0;

    std::int64_t max_run_id() {
        ExperimentDb db(db_file());
        const auto runs = db.runs();
        return runs.empty() ? 0 : runs.back().id;
    }

    // Integrity of the database as the kill left it, before anything reopens it through ExperimentDb.
    void expect_intact() {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open_v2(db_file().c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
        sqlite3_busy_timeout(raw, 10000);
        try {
            EXPECT_EQ(query_text(raw, "PRAGMA integrity_check"), "ok");
            EXPECT_EQ(query_text(raw, "PRAGMA foreign_key_check"), "");
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
        }
        sqlite3_close(raw);
    }

    // A checkpoint file loads as a training checkpoint: metadata, every tensor, finite values. Its step.
    int check_checkpoint(const fs::path& file, const Exp& e) {
        int step = -1;
        try {
            const SafetensorsReader r = SafetensorsReader::open_file(file);
            const auto& meta = r.metadata();
            EXPECT_EQ(meta.count("format") ? meta.at("format") : "", "meft-training-checkpoint-1");
            for (const char* k : {"step", "epoch", "cursor", "adam_steps"})
                EXPECT_TRUE(meta.count(k)) << file << " lacks metadata " << k;
            step = std::stoi(meta.at("step"));
            EXPECT_GE(step, 1);
            EXPECT_LE(step, e.max_steps);
            EXPECT_TRUE(step % e.checkpoint_every == 0 || step == e.max_steps) << "checkpoint at step " << step;
            EXPECT_GT(r.size(), 0u);
            for (const std::string& name : r.names()) {
                const std::vector<float> v = r.read_f32(name);
                for (float x : v)
                    if (!std::isfinite(x)) {
                        ADD_FAILURE() << file << ": tensor " << name << " has a non-finite value";
                        break;
                    }
            }
        } catch (const std::exception& ex) {
            ADD_FAILURE() << "the checkpoint left by the kill does not load: " << ex.what();
        }
        return step;
    }

    // Everything that must hold after run `run` (of experiment e) was killed. `min_steps`: steps the
    // run had before this process started (a resumed run never loses rows). Returns the number of
    // temporary checkpoint files the kill left behind.
    int check_killed_run(std::int64_t run, const Exp& e, const Trace& trace, int min_steps) {
        ExperimentDb db(db_file());  // reopening marks the dead run interrupted
        const auto info = db.run(run);
        if (!info) {
            ADD_FAILURE() << "run " << run << " vanished";
            return 0;
        }
        EXPECT_EQ(info->status, "interrupted") << "run " << run << " after kill -9 and reopening";
        EXPECT_GE(std::stoll(query_text(db.handle(), "SELECT COUNT(*) FROM events WHERE run_id = " + std::to_string(run) +
                                                         " AND kind = 'interrupted'")),
                  1)
            << "no 'interrupted' event";
        const std::vector<StepRow> rows = db.steps(run);
        EXPECT_EQ(check_step_rows(rows), "");
        EXPECT_EQ(null_step_fields(db.handle(), run), 0) << "step rows with NULL fields";
        const int k = static_cast<int>(rows.size());
        EXPECT_EQ(info->steps, k);
        EXPECT_LE(k, e.max_steps);
        EXPECT_GE(k, min_steps) << "the kill lost step rows that were committed earlier";
        const int traced = trace.last_step.count(run) ? trace.last_step.at(run) : 0;
        EXPECT_GE(k, traced) << "steps " << k + 1 << ".." << traced
                             << " were reported committed before the kill but are not in the database";
        const auto evals = db.evals(run);
        std::set<int> eval_steps;
        for (const auto& [step, m] : evals) {
            eval_steps.insert(step);
            EXPECT_TRUE(m.count("loss") && m.count("accuracy")) << "evaluation at step " << step << " is partial";
            EXPECT_LE(step, k) << "an evaluation at step " << step << " beyond the recorded steps";
        }
        if (trace.evals.count(run)) {
            for (int s : trace.evals.at(run))
                EXPECT_TRUE(eval_steps.count(s)) << "the evaluation at step " << s << " was reported committed but is missing";
        }

        const fs::path ck = db.checkpoint_path(run);
        if (fs::exists(ck)) {
            const int c = check_checkpoint(ck, e);
            // meft resume continues at step c + 1 and never records steps k+1..c again.
            EXPECT_LE(c, k) << "the checkpoint (step " << c << ") is ahead of the committed steps 1.." << k
                            << ": resuming would leave steps " << k + 1 << ".." << c
                            << " missing for good (the checkpoint is written before the recorder commits the "
                               "steps it covers)";
        }
        int tmp_files = 0;
        for (const auto& f : fs::directory_iterator(ck_dir())) {
            const std::string n = f.path().filename().string();
            if (n.rfind(temporary_prefix(ck), 0) == 0) {
                ++tmp_files;
                leftover_tmp_bytes_ += f.file_size();
                fs::remove(f.path());  // reported at the end; removed so that it is not counted twice
            }
        }
        leftover_tmp_files_ += tmp_files;
        known_[run] = Known{info->status, k, evals.size()};
        return tmp_files;
    }

    void check_known_runs_unchanged(std::int64_t except) {
        ExperimentDb db(db_file());
        for (const auto& [id, want] : known_) {
            if (id == except) continue;
            const auto info = db.run(id);
            ASSERT_TRUE(info) << "run " << id << " vanished";
            EXPECT_EQ(info->status, want.status) << "run " << id << " changed status";
            EXPECT_EQ(info->steps, want.steps) << "run " << id << " changed its step count";
            EXPECT_EQ(db.evals(id).size(), want.evals) << "run " << id << " changed its evaluations";
        }
        EXPECT_TRUE(db.runs("running").empty()) << "a run reads running with no process";
        EXPECT_TRUE(db.runs("queued").empty()) << "a run reads queued with no process";
    }

    // A finished run: steps 1..max_steps, the final evaluation, metrics, one set of layer rows.
    void check_finished(std::int64_t run, const Exp& e, const Trace& trace) {
        ExperimentDb db(db_file());
        const auto info = db.run(run);
        ASSERT_TRUE(info);
        EXPECT_EQ(info->status, "finished") << info->message;
        const std::vector<StepRow> rows = db.steps(run);
        EXPECT_EQ(check_step_rows(rows), "");
        EXPECT_EQ(static_cast<int>(rows.size()), e.max_steps) << "steps recorded of a finished run";
        EXPECT_EQ(null_step_fields(db.handle(), run), 0);
        if (trace.last_step.count(run)) {  // (a run resumed from its final checkpoint has no steps left to commit)
            EXPECT_EQ(trace.last_step.at(run), e.max_steps) << "the last commit the trace reported";
        }
        const auto evals = db.evals(run);
        ASSERT_FALSE(evals.empty());
        EXPECT_EQ(evals.back().first, e.max_steps) << "no evaluation after the last step";
        for (const auto& [step, m] : evals) EXPECT_TRUE(m.count("loss") && m.count("accuracy")) << "step " << step;
        EXPECT_TRUE(info->final_metrics.contains("accuracy") && info->final_metrics.contains("dev_loss"))
            << "final metrics: " << info->final_metrics.dump();
        if (info->final_metrics.contains("dev_loss")) {
            EXPECT_GT(info->final_metrics["dev_loss"].get<double>(), 0);
        }
        const std::string count = "SELECT COUNT(*) FROM layer_memory WHERE run_id = " + std::to_string(run) + " AND kind = ";
        const int measured = std::stoi(query_text(db.handle(), count + "'measured'"));
        const int planned = std::stoi(query_text(db.handle(), count + "'planned'"));
        if (e.layer_rows > 0) {
            EXPECT_EQ(measured, e.layer_rows) << "measured layer_memory rows";
            EXPECT_EQ(planned, e.layer_rows) << "planned layer_memory rows";
        }
        known_[run] = Known{info->status, static_cast<int>(rows.size()), evals.size()};
    }

    // An uninterrupted run: its duration, time to its first commit, its commits.
    void reference_run(Exp& e) {
        const fs::path err = dir_ / ("ref-" + e.name + ".err");
        const auto t0 = Clock::now();
        Watch wal(dir_, IN_MODIFY);
        const auto count_wal = [&](std::uint32_t, const std::string& name) { e.wal_writes += name == "runs.sqlite-wal"; };
        const pid_t pid = spawn_meft({"run", e.file.string(), "--db", db_file().string(), "--quiet"}, err);
        int status = 0;
        while (!exited(pid, &status)) {
            if (e.first_commit_s == 0 && read_trace(err).lines > 0) e.first_commit_s = seconds_since(t0);
            wal.drain(1, count_wal);
        }
        wal.drain(0, count_wal);
        e.total_s = seconds_since(t0);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "reference run " << describe_status(status) << "\n" << read_text(err);
        const Trace t = read_trace(err);
        e.trace_lines = t.lines;
        if (e.first_commit_s == 0) e.first_commit_s = e.total_s;
        ASSERT_EQ(t.last_step.size(), 1u) << "no commit trace (MEFT_TRACE_COMMITS) from meft run";
        const std::int64_t run = t.last_step.begin()->first;
        {
            ExperimentDb db(db_file());
            e.layer_rows = std::stoi(query_text(
                db.handle(), "SELECT COUNT(*) FROM layer_memory WHERE kind = 'measured' AND run_id = " + std::to_string(run)));
        }
        EXPECT_GT(e.layer_rows, 0) << "a finished run without measured layer memory";
        check_finished(run, e, t);
        std::printf("reference %s (%s, %d steps, checkpoint every %d): %.2f s, first commit at %.2f s, %d commits, "
                    "%d WAL writes\n",
                    e.name.c_str(), e.method.c_str(), e.max_steps, e.checkpoint_every, e.total_s, e.first_commit_s, t.lines,
                    e.wal_writes);
    }
};

TEST_F(KillSoak, KillNineAtRandomMomentsLeavesAConsistentResumableDatabase) {
    const char* seed_env = std::getenv("MEFT_SOAK_SEED");
    const std::uint64_t seed = seed_env && *seed_env ? std::stoull(seed_env) : std::random_device{}();
    const char* trials_env = std::getenv("MEFT_SOAK_TRIALS");
    const int kills_wanted = trials_env && *trials_env ? std::stoi(trials_env) : 24;
    std::printf("kill soak: seed %llu, %d kills (reproduce with MEFT_SOAK_SEED=%llu)\n",
                static_cast<unsigned long long>(seed), kills_wanted, static_cast<unsigned long long>(seed));
    std::fflush(stdout);
    std::mt19937_64 rng(seed);
    auto uniform = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

    fs::create_directories(ck_dir());
    // LoRA: 0.1 MB checkpoints, fast steps; the recorder commits every 50 steps (or second) and at
    // each epoch's evaluation (60 steps). Full fine-tuning: 50 MB checkpoints (long writes to kill
    // into), slower steps, an evaluation (and so a commit) every 8 steps.
    std::vector<Exp> exps = {Exp{"soak-lora", "lora", {}, 150, 5}, Exp{"soak-full", "full", {}, 24, 4}};
    for (Exp& e : exps) e.file = dir_ / (e.name + ".json");
    write_experiment(exps[0].file, exps[0].name, exps[0].method, 480, exps[0].max_steps, exps[0].checkpoint_every, 0);
    write_experiment(exps[1].file, exps[1].name, exps[1].method, 480, exps[1].max_steps, exps[1].checkpoint_every, 8);
    for (Exp& e : exps) {
        reference_run(e);
        if (HasFatalFailure() || HasFailure()) return;
    }

    int kills = 0, attempts = 0, resumes = 0, no_checkpoint = 0, resume_kills = 0, finished_first = 0,
        traced_kills = 0, checkpoint_present = 0;
    std::map<std::string, int> per_mode, finished_per_mode;
    const auto t_start = Clock::now();
    while (kills < kills_wanted && attempts < 2 * kills_wanted) {
        ++attempts;
        const int mode = kills % kModes;  // every kind in turn; the moment within it is random
        Exp& e = exps[pick(0, 2) == 2 ? 1 : 0];
        const std::int64_t before = max_run_id();
        const fs::path err = dir_ / ("trial-" + std::to_string(attempts) + ".err");

        // Everything that picks the moment is drawn before the process starts.
        const double delay_s = mode == kTimed ? uniform(0, 1.05 * e.total_s) : uniform(0, e.first_commit_s);
        const int nth_commit = pick(1, std::max(1, e.trace_lines));
        const int nth_wal_write = pick(1, std::max(1, e.wal_writes));
        // The checkpoints are at every checkpoint_every steps and after the last step.
        const int checkpoints = e.max_steps / e.checkpoint_every;
        const int nth_checkpoint = mode == kFinal ? checkpoints : pick(1, checkpoints);
        const bool after_rename = mode == kFinal || pick(0, 3) == 0;  // else during the write of the temporary file
        const double write_s = e.method == "full" ? 0.03 : 0.002;
        const double extra_s = mode == kCommit ? uniform(0, 0.003)
                               : mode == kFinal ? 0.0
                               : after_rename ? uniform(0, 0.001)
                                              : uniform(0, write_s);
        std::ostringstream what;
        what << "seed " << seed << ", attempt " << attempts << ", kill " << kills + 1 << ": " << e.name << ", "
             << mode_name(mode);
        if (mode == kTimed || mode == kStartup) what << " after " << delay_s * 1e3 << " ms";
        if (mode == kCommit) what << " at commit " << nth_commit << " + " << extra_s * 1e3 << " ms";
        if (mode == kWal) what << " at WAL write " << nth_wal_write;
        if (mode == kCheckpoint || mode == kFinal)
            what << (after_rename ? " after the rename of" : " during the write of") << " checkpoint " << nth_checkpoint << " + "
                 << extra_s * 1e3 << " ms";
        SCOPED_TRACE(what.str());

        // Watches set up before the process starts, so that no event is missed.
        std::optional<Watch> watch;
        if (mode == kWal) watch.emplace(dir_, IN_MODIFY);
        if (mode == kCheckpoint || mode == kFinal) watch.emplace(ck_dir(), IN_CREATE | IN_MOVED_TO);
        const auto t0 = Clock::now();
        const pid_t pid = spawn_meft({"run", e.file.string(), "--db", db_file().string(), "--quiet"}, err);
        int status = 0;
        bool gone = false;  // exited (and reaped) before the moment came
        if (mode == kTimed || mode == kStartup) {
            std::this_thread::sleep_for(std::chrono::duration<double>(delay_s));
        } else if (mode == kCommit) {
            while (!(gone = exited(pid, &status)) && read_trace(err).lines < nth_commit)
                std::this_thread::sleep_for(std::chrono::microseconds(300));
            if (!gone) std::this_thread::sleep_for(std::chrono::duration<double>(extra_s));
        } else if (mode == kWal) {
            int seen = 0;
            while (seen < nth_wal_write && !(gone = exited(pid, &status)))
                watch->drain(1, [&](std::uint32_t, const std::string& name) { seen += name == "runs.sqlite-wal"; });
        } else {
            int seen = 0, created = 0;
            while (seen < nth_checkpoint && !(gone = exited(pid, &status))) {
                // Once the last checkpoint's write has begun, a final kill spins instead of sleeping:
                // the window between its rename and the end of the run is a few milliseconds.
                watch->drain(mode == kFinal && created >= nth_checkpoint ? 0 : 1, [&](std::uint32_t mask, const std::string& name) {
                    // the durable writer's temporary files: ".<uuid>.safetensors.tmp.<pid>.<n>"
                    const bool tmp = name.rfind(".", 0) == 0 && name.find(".tmp.") != std::string::npos;
                    created += (mask & IN_CREATE) && tmp;
                    if (after_rename ? (mask & IN_MOVED_TO) && !tmp : (mask & IN_CREATE) && tmp) ++seen;
                });
            }
            if (!gone && extra_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(extra_s));
        }
        if (!gone) {
            ::kill(pid, SIGKILL);  // a child that exited meanwhile is a zombie until reaped: harmless
            ASSERT_EQ(waitpid(pid, &status, 0), pid);
        }
        const double killed_at = seconds_since(t0);
        const Trace trace = read_trace(err);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {  // it finished first
            ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_status(status) << "\n" << read_text(err);
            expect_intact();
            ASSERT_EQ(max_run_id(), before + 1);
            check_finished(before + 1, e, trace);
            ++finished_first;
            ++finished_per_mode[mode_name(mode)];
            continue;
        }
        ++kills;
        ++per_mode[mode_name(mode)];

        expect_intact();
        if (HasFatalFailure()) return;
        const std::int64_t after = max_run_id();
        ASSERT_LE(after, before + 1) << "one meft run created several runs";
        for (const auto& [r, s] : trace.last_step) EXPECT_EQ(r, before + 1) << "the trace names run " << r;
        if (after == before) {  // killed before its run row was committed: nothing else to check
            EXPECT_EQ(trace.lines, 0);
            check_known_runs_unchanged(0);
            std::printf("kill %2d  %-10s %-9s at %6.0f ms: no run row yet\n", kills, mode_name(mode), e.name.c_str(),
                        killed_at * 1e3);
            continue;
        }
        const std::int64_t run = after;
        if (ExperimentDb(db_file()).run(run)->status == "finished") {  // killed after it recorded its end
            check_finished(run, e, trace);
            check_known_runs_unchanged(run);
            std::printf("kill %2d  %-10s %-9s at %6.0f ms: run %lld had already finished\n", kills, mode_name(mode),
                        e.name.c_str(), killed_at * 1e3, static_cast<long long>(run));
            if (HasFailure()) return;
            continue;
        }
        const int tmp_files = check_killed_run(run, e, trace, 0);
        check_known_runs_unchanged(run);
        if (HasFailure()) return;  // the first failing trial is enough to read
        const bool has_checkpoint = fs::exists(ExperimentDb(db_file()).checkpoint_path(run));
        traced_kills += trace.lines > 0;
        checkpoint_present += has_checkpoint;
        std::printf("kill %2d  %-10s %-9s at %6.0f ms: run %lld, %3d steps committed (traced %3d)%s%s",
                    kills, mode_name(mode), e.name.c_str(), killed_at * 1e3, static_cast<long long>(run), known_[run].steps,
                    trace.last_step.count(run) ? trace.last_step.at(run) : 0, has_checkpoint ? ", checkpoint" : "",
                    tmp_files ? " (killed mid-write: temporary file left)" : "");

        // Resume half of the runs, and every run killed around a checkpoint write.
        if (!(mode == kCheckpoint || mode == kFinal || kills % 2 == 0)) {
            std::printf("\n");
            continue;
        }
        ++resumes;
        const fs::path rerr = dir_ / ("trial-" + std::to_string(attempts) + "-resume.err");
        if (!has_checkpoint) {
            const pid_t rp = spawn_meft({"resume", std::to_string(run), "--db", db_file().string(), "--quiet"}, rerr);
            ASSERT_EQ(waitpid(rp, &status, 0), rp);
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << describe_status(status);
            EXPECT_NE(read_text(rerr).find("has no checkpoint"), std::string::npos) << read_text(rerr);
            ExperimentDb db(db_file());
            EXPECT_EQ(db.run(run)->status, "interrupted");
            ++no_checkpoint;
            std::printf(", no checkpoint: resume refused\n");
            if (HasFailure()) return;
            continue;
        }
        if (pick(0, 3) == 0) {  // kill the resume too, once
            const double d = uniform(0, e.total_s);
            const int steps_before = known_[run].steps;
            const pid_t rp = spawn_meft({"resume", std::to_string(run), "--db", db_file().string(), "--quiet"}, rerr);
            std::this_thread::sleep_for(std::chrono::duration<double>(d));
            ::kill(rp, SIGKILL);
            ASSERT_EQ(waitpid(rp, &status, 0), rp);
            expect_intact();
            if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && ExperimentDb(db_file()).run(run)->status != "finished") {
                SCOPED_TRACE("its resume killed after " + std::to_string(d * 1e3) + " ms");
                ++resume_kills;
                check_killed_run(run, e, read_trace(rerr), steps_before);
                check_known_runs_unchanged(run);
                if (HasFailure()) return;
                std::printf(", resume killed at %.0f ms (%d steps)", d * 1e3, known_[run].steps);
            } else {  // finished before the kill (or was killed after recording its end)
                ASSERT_TRUE(WIFSIGNALED(status) || WEXITSTATUS(status) == 0) << describe_status(status) << "\n" << read_text(rerr);
                check_finished(run, e, read_trace(rerr));
                std::printf(", resumed to the end\n");
                if (HasFailure()) return;
                continue;
            }
        }
        const pid_t rp = spawn_meft({"resume", std::to_string(run), "--db", db_file().string(), "--quiet"}, rerr);
        ASSERT_EQ(waitpid(rp, &status, 0), rp);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "meft resume " << run << " " << describe_status(status) << "\n" << read_text(rerr);
        expect_intact();
        check_finished(run, e, read_trace(rerr));
        check_known_runs_unchanged(run);
        std::printf(", resumed to the end\n");
        if (HasFailure()) return;
    }
    std::printf("kill soak: %d kills (", kills);
    for (const auto& [m, n] : per_mode) std::printf(" %s %d", m.c_str(), n);
    std::printf(" ) in %d attempts, %d finished before their kill (", attempts, finished_first);
    for (const auto& [m, n] : finished_per_mode) std::printf(" %s %d", m.c_str(), n);
    std::printf(" ), %d with committed steps, %d with a checkpoint, "
                "%d resumes (%d refused for want of a checkpoint, %d killed once more), %.1f s; %d temporary "
                "checkpoint files (%.1f MB) left behind by kills\n",
                traced_kills, checkpoint_present, resumes, no_checkpoint, resume_kills,
                seconds_since(t_start), leftover_tmp_files_, double(leftover_tmp_bytes_) / 1e6);
    EXPECT_GE(kills, kills_wanted) << "too many runs finished before their kill";
    // Not vacuous: kills after commits and with checkpoints happened (the commit and checkpoint kinds see to it).
    EXPECT_GE(traced_kills, kills_wanted / 8);
    EXPECT_GE(checkpoint_present, kills_wanted / 8);
    expect_intact();
    check_known_runs_unchanged(0);
}

}  // namespace
