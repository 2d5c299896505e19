// Sweeps without a cluster: the sweep record (sweep.json) round-trips and names what is wrong with
// a bad one; the sbatch script's directives and task line (run by bash against a stand-in meft and
// scontrol: quoting of paths with spaces, the index, MEFT_THREADS, the exit status, SIGUSR1 -> stop
// meft and requeue); squeue/sacct output parsing; each expansion's state from the scheduler's view
// and its shard; the run `meft run --continue` continues; the sweeps table; MEFT_THREADS; capture().
// tests/test_sweep_slurm.sh runs a sweep on a real Slurm.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/thread_pool.h"
#include "run/slurm.h"
#include "run/subprocess.h"
#include "run/sweep.h"
#include "run/sweep_status.h"
#include "run/sweep_submit.h"
#include "store/database.h"
#include "store/experiment.h"
#include "test_support.h"

using namespace meft;
namespace fs = std::filesystem;

namespace {

const char* kGrid = R"({"name": "grid", "backbone": {"arch": "bert", "preset": "tiny"},
 "task": {"name": "toy", "train_examples": 32, "dev_examples": 8, "max_length": 16},
 "method": {"name": "lora"},
 "training": {"max_steps": 2, "batch_size": 4, "max_seq_length": 16, "learning_rate": [0.001, 0.002]}})";

std::string read_text(const fs::path& f) {
    std::ifstream in(f);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const fs::path& f, const std::string& text, bool executable = false) {
    std::ofstream(f) << text;
    if (executable) fs::permissions(f, fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
}

std::string message_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

class SweepTest : public test::TempDirTest {
protected:
    Sweep planned(const std::string& mode, const std::vector<std::string>& overrides = {"training.seed=[1,2]"}) {
        write_text(dir_ / "grid.json", kGrid);
        return plan_sweep(nlohmann::json::parse(kGrid), dir_ / "grid.json", overrides, dir_ / "my sweep", mode, "/opt/meft/bin/meft");
    }
};

TEST_F(SweepTest, ARecordRoundTripsAndTheFolderHoldsTheFrozenExperiment) {
    Sweep s = planned("slurm");
    ASSERT_EQ(s.expansions(), 4);  // 2 learning rates x 2 seeds from the override
    EXPECT_EQ(s.labels[0], "training.learning_rate=0.001, training.seed=1");
    EXPECT_EQ(s.labels[3], "training.learning_rate=0.002, training.seed=2");
    EXPECT_FALSE(fs::exists(s.dir)) << "planning writes nothing";
    s.slurm.partition = "gpu";
    s.slurm.time = "01:00:00";
    s.slurm.max_parallel = 2;
    s.slurm.sbatch_args = {"--account=abc"};
    s.job_id = "1234";
    s.db = dir_ / "main.sqlite";
    create_sweep(s);
    EXPECT_TRUE(fs::is_directory(s.dir / "shards"));
    EXPECT_TRUE(fs::is_directory(s.dir / "logs"));
    EXPECT_EQ(nlohmann::json::parse(read_text(s.experiment_file())), nlohmann::json::parse(kGrid));
    const Sweep back = read_sweep(s.dir);
    EXPECT_EQ(back.to_json(), s.to_json());
    EXPECT_EQ(back.experiment, s.experiment);
    EXPECT_EQ(read_sweep(s.record_file()).job_id, "1234");
    // The original file changing afterwards changes nothing the tasks run.
    write_text(dir_ / "grid.json", "{}");
    EXPECT_EQ(read_sweep(s.dir).experiment, nlohmann::json::parse(kGrid));
    // A folder that holds a sweep is refused, by plan and by create.
    EXPECT_NE(message_of([&] { planned("slurm"); }).find("already holds a sweep"), std::string::npos);
    EXPECT_NE(message_of([&] { create_sweep(s); }).find("already holds a sweep"), std::string::npos);
}

TEST_F(SweepTest, AnInvalidExpansionIsRefusedBeforeAnythingIsWritten) {
    write_text(dir_ / "grid.json", kGrid);
    const std::string msg = message_of([&] {
        plan_sweep(nlohmann::json::parse(kGrid), dir_ / "grid.json", {"training.batch_size=[4,-1]"}, dir_ / "s", "local", "/bin/meft");
    });
    EXPECT_NE(msg.find("batch_size"), std::string::npos) << msg;
    EXPECT_FALSE(fs::exists(dir_ / "s"));
}

TEST_F(SweepTest, ABadRecordIsNamedByFileAndKey) {
    EXPECT_NE(message_of([&] { read_sweep(dir_ / "nowhere"); }).find("not a sweep folder (no sweep.json"), std::string::npos);
    Sweep s = planned("local");
    create_sweep(s);
    nlohmann::json j = s.to_json();
    auto rejects = [&](nlohmann::json bad, const std::string& want) {
        write_text(s.record_file(), bad.dump());
        const std::string msg = message_of([&] { read_sweep(s.dir); });
        EXPECT_NE(msg.find(s.record_file().string()), std::string::npos) << msg;
        EXPECT_NE(msg.find(want), std::string::npos) << msg;
    };
    nlohmann::json bad = j;
    bad["labels"] = "one";
    rejects(bad, "key 'labels' has string \"one\", not the list of strings expected");
    bad = j;
    bad.erase("mode");
    rejects(bad, "key 'mode' is missing");
    bad = j;
    bad["mode"] = "pbs";
    rejects(bad, "key 'mode' is \"pbs\", expected \"slurm\" or \"local\"");
    bad = j;
    bad["expansions"] = 7;
    rejects(bad, "key 'expansions' is 7 but 'labels' lists 4");
    bad = j;
    bad["format"] = 2;
    rejects(bad, "sweep record format 2");
    write_text(s.record_file(), "{ not json");
    EXPECT_NE(message_of([&] { read_sweep(s.dir); }).find("not valid JSON"), std::string::npos);
}

TEST_F(SweepTest, TheScriptAsksForAnArrayOverTheExpansions) {
    Sweep s = planned("slurm");
    s.slurm.partition = "gpu,large";
    s.slurm.time = "02:00:00";
    s.slurm.gpus_per_run = 1;
    s.slurm.cpus_per_run = 4;
    s.slurm.max_parallel = 3;
    s.slurm.warn_seconds = 300;
    s.slurm.sbatch_args = {"--account=abc", "--qos=low"};
    const std::string t = sbatch_script(s);
    EXPECT_EQ(t.rfind("#!/bin/bash\n", 0), 0u);
    for (const std::string line : {"#SBATCH --array=1-4%3", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@300",
                                   "#SBATCH --cpus-per-task=4", "#SBATCH --gpus-per-task=1", "#SBATCH --partition=gpu,large",
                                   "#SBATCH --time=02:00:00", "#SBATCH --account=abc", "#SBATCH --qos=low",
                                   "#SBATCH --open-mode=append", "#SBATCH --job-name=meft-grid"})
        EXPECT_NE(t.find("\n" + line + "\n"), std::string::npos) << line << "\n" << t;
    EXPECT_NE(t.find("#SBATCH --output='" + (s.dir / "logs").string() + "/%a.log'"), std::string::npos) << t;
    EXPECT_NE(t.find("#SBATCH --chdir=" + s.workdir.string()), std::string::npos) << t;
    s.slurm = SlurmRequest{};
    const std::string plain = sbatch_script(s);
    EXPECT_NE(plain.find("#SBATCH --array=1-4\n"), std::string::npos);
    EXPECT_EQ(plain.find("--partition"), std::string::npos);
    EXPECT_EQ(plain.find("--gpus-per-task"), std::string::npos);
    EXPECT_EQ(plain.find("--time"), std::string::npos);
}

TEST_F(SweepTest, ARequestSlurmCannotReadIsRefusedNamingTheField) {
    for (const char* ok : {"30", "10:00", "04:00:00", "2-12", "2-12:30", "1-00:00:00", "UNLIMITED"}) {
        SlurmRequest r;
        r.time = ok;
        EXPECT_NO_THROW(check_slurm_request(r)) << ok;
    }
    auto refused = [](SlurmRequest r, const std::string& want) {
        const std::string msg = message_of([&] { check_slurm_request(r); });
        EXPECT_NE(msg.find(want), std::string::npos) << msg;
    };
    SlurmRequest r;
    r.time = "1h";
    refused(r, "time limit '1h': Slurm takes minutes, MM:SS, HH:MM:SS");
    r = {};
    r.partition = "gpu a";
    refused(r, "partition 'gpu a'");
    r = {};
    r.sbatch_args = {"account=abc"};
    refused(r, "sbatch argument 'account=abc'");
    r = {};
    r.sbatch_args = {"--qos=low\n#SBATCH --x"};
    refused(r, "on one line");
    r = {};
    r.cpus_per_run = 0;
    refused(r, "CPUs per run: 0");
    Sweep s = planned("slurm");
    s.slurm.time = "soon";
    EXPECT_THROW(sbatch_script(s), Error);  // never a script Slurm would refuse
}

// The script's task part, run by bash: a stand-in meft records its arguments and environment.
class ScriptRun : public SweepTest {
protected:
    void SetUp() override {
        SweepTest::SetUp();
        fs::create_directories(dir_ / "bin");
        write_text(dir_ / "bin" / "scontrol", "#!/bin/sh\necho \"$@\" > '" + (dir_ / "scontrol.args").string() + "'\n", true);
    }
    // Runs the script as Slurm would (its #SBATCH lines are comments to bash); returns its exit status.
    int run_script(const Sweep& s, const std::string& task, const std::function<void(pid_t)>& while_running = {}) {
        write_text(dir_ / "job.sh", sbatch_script(s), true);
        const pid_t pid = fork();
        if (pid == 0) {
            setenv("SLURM_ARRAY_TASK_ID", task.c_str(), 1);
            setenv("SLURM_ARRAY_JOB_ID", "77", 1);
            setenv("SLURM_CPUS_PER_TASK", "3", 1);
            setenv("PATH", ((dir_ / "bin").string() + ":" + std::getenv("PATH")).c_str(), 1);
            const std::string out = (dir_ / "job.out").string();
            freopen(out.c_str(), "w", stdout);
            execl("/bin/bash", "bash", (dir_ / "job.sh").c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        if (while_running) while_running(pid);
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
};

TEST_F(ScriptRun, TheTaskRunsItsExpansionIntoItsShardWithTheCpusItWasGiven) {
    Sweep s = planned("slurm");
    s.meft = dir_ / "bin" / "fake meft";
    write_text(s.meft, "#!/bin/sh\nprintf '%s\\n' \"$@\" > '" + (dir_ / "args").string() + "'\necho \"$MEFT_THREADS\" > '" +
                           (dir_ / "threads").string() + "'\nexit 5\n", true);
    EXPECT_EQ(run_script(s, "3"), 5) << read_text(dir_ / "job.out");
    const std::string want = "run\n" + s.experiment_file().string() + "\n--only\n3\n--db\n" + (s.dir / "shards" / "3.sqlite").string() +
                             "\n--continue\n--quiet\n--set\ntraining.seed=[1,2]\n";
    EXPECT_EQ(read_text(dir_ / "args"), want);
    EXPECT_EQ(read_text(dir_ / "threads"), "3\n");
    EXPECT_NE(read_text(dir_ / "job.out").find("== expansion 3: job 77_3"), std::string::npos) << read_text(dir_ / "job.out");
    EXPECT_FALSE(fs::exists(dir_ / "scontrol.args")) << "no requeue without the time-limit warning";
}

TEST_F(ScriptRun, TheTimeLimitWarningStopsMeftAndRequeuesTheTask) {
    Sweep s = planned("slurm");
    s.meft = dir_ / "bin" / "meft";
    // Stops (exit 0) on SIGTERM, as meft does after its current step.
    write_text(s.meft, "#!/bin/bash\ntrap 'echo stopped > \"" + (dir_ / "meft.state").string() + "\"; exit 0' TERM\n"
               "echo started > \"" + (dir_ / "meft.state").string() + "\"\nwhile :; do sleep 0.05; done\n", true);
    const int rc = run_script(s, "2", [&](pid_t script) {
        for (int i = 0; i < 200 && read_text(dir_ / "meft.state") != "started\n"; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        ASSERT_EQ(read_text(dir_ / "meft.state"), "started\n");
        kill(script, SIGUSR1);
    });
    EXPECT_EQ(rc, 0) << read_text(dir_ / "job.out");
    EXPECT_EQ(read_text(dir_ / "meft.state"), "stopped\n");
    EXPECT_EQ(read_text(dir_ / "scontrol.args"), "requeue 77_2\n");
    EXPECT_NE(read_text(dir_ / "job.out").find("time limit near; stopped at a checkpoint, requeueing"), std::string::npos);
}

TEST(SlurmOutput, SqueueAndSacctLinesAreReadByArrayIndex) {
    const auto q = parse_squeue_tasks("12_1 RUNNING\n12_3 PENDING\n13_2 RUNNING\n12_[4-7] PENDING\ngarbage\n\n12_10 COMPLETING\n", "12");
    EXPECT_EQ(q, (std::map<int, std::string>{{1, "RUNNING"}, {3, "PENDING"}, {10, "COMPLETING"}}));
    const auto a = parse_sacct_tasks("12_1|COMPLETED\n12_2|CANCELLED by 0\n12_2|TIMEOUT\n12_3|FAILED\n120_4|FAILED\n", "12");
    EXPECT_EQ(a, (std::map<int, std::string>{{1, "COMPLETED"}, {2, "TIMEOUT"}, {3, "FAILED"}}));
}

TEST(Subprocess, CaptureReadsBothStreamsAndTheExitCode) {
    const Captured c = capture({"sh", "-c", "echo out; echo err >&2; exit 3"});
    EXPECT_EQ(c.exit_code, 3);
    EXPECT_EQ(c.out, "out\n");
    EXPECT_EQ(c.err, "err\n");
    const Captured big = capture({"sh", "-c", "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2"});
    EXPECT_EQ(big.out.size(), 300000u);
    EXPECT_EQ(big.err.size(), 300000u);
    const std::string msg = message_of([] { capture({"no-such-program-here", "x"}); });
    EXPECT_NE(msg.find("no-such-program-here: not found on PATH"), std::string::npos) << msg;
}

class StatusTest : public SweepTest {
protected:
    // Shard `index` holds one run with `status` and `steps` steps; returns its UUID.
    std::string shard_run(const Sweep& s, int index, const std::string& status, int steps, const std::string& message = "") {
        ExperimentDb db(s.shard(index));
        NewExperiment e{"grid", "grid.json", {{"name", "grid"}}};
        const std::int64_t run = db.add_run(e, {{"i", index}}, {});
        std::vector<StepRow> rows;
        for (int k = 1; k <= steps; ++k) rows.push_back(StepRow{k, 1.0, 1e-3, 0.1, 10, 0.1, 0, 0, 0, 0});
        db.add_steps(run, rows);
        if (status == "running") db.set_status(run, "running");
        else db.finish(run, status, nullptr, message);
        return db.run_uuid(run);
    }
};

TEST_F(StatusTest, EachExpansionIsPlacedFromTheQueueAndItsShard) {
    Sweep s = planned("slurm", {"training.seed=[1,2,3]"});  // 6 expansions
    s.job_id = "9";
    create_sweep(s);
    const std::string finished = shard_run(s, 1, "finished", 5);
    shard_run(s, 2, "cancelled", 3);
    shard_run(s, 3, "failed", 2, "the run diverged at step 2");
    write_text(s.log(3), "line 1\nline 2\nerror: the run diverged at step 2\n");
    shard_run(s, 4, "running", 4);  // killed hard, not in the queue any more
    write_text(s.log(5), "meft: cannot open the experiment\n");  // ended without recording a run
    SchedulerView v;
    v.queue = {{2, "PENDING"}, {6, "RUNNING"}};
    v.ended = {{4, "TIMEOUT"}};
    const SweepStatus st = sweep_status(s, v, {finished});
    ASSERT_EQ(st.expansions.size(), 6u);
    const auto& e = st.expansions;
    EXPECT_EQ(e[0].state, "finished");
    EXPECT_TRUE(e[0].gathered);
    EXPECT_EQ(e[1].state, "queued");
    EXPECT_EQ(e[1].detail, "PENDING, resumes its run from step 3");
    EXPECT_EQ(e[2].state, "failed");
    EXPECT_EQ(e[2].detail, "the run diverged at step 2");
    EXPECT_EQ(e[2].log_tail, "line 1\nline 2\nerror: the run diverged at step 2\n");
    EXPECT_EQ(e[3].state, "failed");
    EXPECT_EQ(e[3].detail, "ended without finishing at step 4 (TIMEOUT)");
    EXPECT_EQ(e[4].state, "failed");
    EXPECT_EQ(e[4].detail, "ended without recording a run");
    EXPECT_EQ(e[4].log_tail, "meft: cannot open the experiment\n");
    EXPECT_EQ(e[5].state, "running");
    EXPECT_EQ(e[5].detail, "RUNNING");
    EXPECT_EQ(st.counts(), (std::map<std::string, int>{{"failed", 3}, {"finished", 1}, {"queued", 1}, {"running", 1}}));

    // Nothing in the queue: the cancelled run is cancelled; an unasked scheduler leaves undecided ones unknown.
    v.queue.clear();
    EXPECT_EQ(sweep_status(s, v).expansions[1].state, "cancelled");
    EXPECT_EQ(sweep_status(s, v).expansions[5].state, "unknown");
    s.cancelled_at = "2026-12-07T00:00:00Z";
    EXPECT_EQ(sweep_status(s, v).expansions[5].state, "cancelled");
    v.reachable = false;
    const SweepStatus blind = sweep_status(s, v);
    EXPECT_EQ(blind.expansions[0].state, "finished");
    EXPECT_EQ(blind.expansions[2].state, "failed");
    EXPECT_EQ(blind.expansions[1].state, "unknown");
}

TEST_F(StatusTest, ALocalSweepIsRunningWhileItsSubmitProcessLives) {
    Sweep s = planned("local");
    create_sweep(s);
    shard_run(s, 1, "running", 2);
    SchedulerView v;
    v.local_alive = true;
    auto st = sweep_status(s, v);
    EXPECT_EQ(st.expansions[0].state, "running");
    EXPECT_EQ(st.expansions[1].state, "queued");
    v.local_alive = false;
    st = sweep_status(s, v);
    EXPECT_EQ(st.expansions[0].state, "failed");
    EXPECT_EQ(st.expansions[1].state, "cancelled");
    EXPECT_EQ(st.expansions[1].detail, "never started (the sweep stopped first)");
    // ask_scheduler: this process is alive; a recorded identity that is not its own is not.
    s.pid = getpid();
    s.host = host_name();
    s.process = process_identity(s.pid);
    EXPECT_TRUE(ask_scheduler(s).local_alive);
    s.process = "another/boot";
    EXPECT_FALSE(ask_scheduler(s).local_alive);
}

TEST_F(SweepTest, ContinueFindsTheLatestRunOfTheSameConfiguration) {
    ExperimentDb db(dir_ / "shard.sqlite");
    const std::vector<Experiment> exps = experiments_from_json(nlohmann::json::parse(kGrid), dir_ / "grid.json");
    const nlohmann::json a = resolved_config(exps[0]), b = resolved_config(exps[1]);
    EXPECT_FALSE(expansion_run(db, a));
    NewExperiment e{"grid", "grid.json", {{"name", "grid"}}};
    const std::int64_t first = db.add_run(e, a, {});
    db.add_run(e, b, {});
    EXPECT_EQ(expansion_run(db, a)->id, first);
    nlohmann::json on_gpu = a;
    on_gpu["training"]["backend"] = "cuda";  // a run may resume on another backend: still the same expansion
    const std::int64_t later = db.add_run(e, on_gpu, {});
    EXPECT_EQ(expansion_run(db, a)->id, later);
}

TEST_F(SweepTest, TheDatabaseRecordsSweepsByFolder) {
    ExperimentDb db(dir_ / "main.sqlite");
    Sweep s = planned("slurm");
    create_sweep(s);
    db.record_sweep(sweep_row(s));
    s.job_id = "55";
    db.record_sweep(sweep_row(s));  // the same folder again: updated, not added
    const std::vector<SweepRow> rows = db.sweeps();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].dir, s.dir.string());
    EXPECT_EQ(rows[0].job_id, "55");
    EXPECT_EQ(rows[0].expansions, 4);
    EXPECT_EQ(rows[0].mode, "slurm");
    EXPECT_EQ(sweep_from_json(rows[0].record, s.dir, "row").to_json(), s.to_json());
    db.forget_sweep(s.dir.string());
    EXPECT_TRUE(db.sweeps().empty());
    EXPECT_TRUE(fs::exists(s.record_file())) << "forgetting a sweep leaves its folder";
}

TEST(Threads, MeftThreadsSetsThePoolsDefault) {
    const char* before = std::getenv("MEFT_THREADS");
    const std::string saved = before ? before : "";
    setenv("MEFT_THREADS", "3", 1);
    EXPECT_EQ(default_thread_count(), 3);
    setenv("MEFT_THREADS", "two", 1);
    EXPECT_NE(message_of([] { default_thread_count(); }).find("MEFT_THREADS=two: expected a whole number of threads"),
              std::string::npos);
    setenv("MEFT_THREADS", "0", 1);
    EXPECT_THROW(default_thread_count(), Error);
    unsetenv("MEFT_THREADS");
    EXPECT_GE(default_thread_count(), 1);
    if (before) setenv("MEFT_THREADS", saved.c_str(), 1);
}

}  // namespace
