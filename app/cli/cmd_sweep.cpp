// meft sweep — a grid's expansions one per task, each into its own SQLite shard, and the shards
// gathered into one experiment database (store/merge.h; a run is known by its UUID, so gathering
// twice adds nothing). `submit --slurm` writes and submits a Slurm job array (run/sweep_submit.h);
// `submit --local N` runs the tasks here, N at a time, as child processes; `status` and `cancel`
// follow and stop either (run/sweep_status.h).
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/thread_pool.h"
#include "store/experiment.h"

#include "cli/commands.h"
#include "run/sweep.h"
#include "run/sweep_status.h"
#include "run/sweep_submit.h"
#include "store/database.h"
#include "store/merge.h"

namespace meft::cli {

namespace {

namespace fs = std::filesystem;

struct SweepArgs {
    std::string db;
    std::vector<std::string> shards;
    bool all = false;
    CLI::App *gather = nullptr, *submit = nullptr, *status = nullptr, *cancel = nullptr, *list = nullptr, *resume = nullptr;
    // submit
    std::string experiment, dir, gpus;
    std::vector<std::string> sets;
    int local = 0;
    bool slurm = false;
    bool no_gather = false;
    bool show_script = false;
    SlurmRequest request;
    // status, cancel
    std::string sweep;
    bool json = false;
};

int gather(const SweepArgs& a);

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop(int) { g_stop = 1; }

// This program, for the tasks to run.
fs::path self() { return fs::read_symlink("/proc/self/exe"); }

fs::path main_db(const SweepArgs& a) { return a.db.empty() ? ExperimentDb::default_path() : fs::path(a.db); }

// Runs the task's command (Sweep::task_command) with its output to its log.
pid_t spawn_task(const Sweep& s, int index, const std::string& gpu, int threads) {
    std::vector<std::string> args = s.task_command(index);
    const fs::path log = s.log(index);
    const pid_t pid = fork();
    if (pid < 0) throw Error("meft sweep: cannot start a task (fork failed)");
    if (pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (!gpu.empty()) setenv("CUDA_VISIBLE_DEVICES", gpu.c_str(), 1);
        if (threads > 0) setenv("MEFT_THREADS", std::to_string(threads).c_str(), 1);
        std::vector<char*> argv;
        for (std::string& x : args) argv.push_back(x.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        std::perror("meft sweep: exec");
        _exit(127);
    }
    return pid;
}

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    for (std::size_t at = 0; !text.empty() && at <= text.size();) {
        const std::size_t comma = text.find(',', at);
        out.push_back(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    return out;
}

std::string indented(const std::string& text) {
    std::string out;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t nl = text.find('\n', at);
        out += "    " + text.substr(at, nl == std::string::npos ? std::string::npos : nl - at + 1);
        if (nl == std::string::npos) {
            out += "\n";
            break;
        }
        at = nl + 1;
    }
    return out;
}

// The sweep described and recorded: the database opened first, so a bad --db fails before anything.
Sweep new_sweep(const SweepArgs& a, const std::string& mode, ExperimentDb& db) {
    Sweep s = plan_sweep(read_experiment_json(a.experiment), a.experiment, a.sets, a.dir, mode, self());
    s.db = fs::absolute(db.path());
    return s;
}

// Runs the local sweep's tasks here, s.parallel at a time (one per listed GPU with s.gpus), then
// gathers the finished runs into its database unless a.no_gather. Exit status 1 when any failed or
// it was stopped.
int run_local(Sweep& s, const SweepArgs& a);

int submit_local(const SweepArgs& a) {
    ExperimentDb db(main_db(a));
    Sweep s = new_sweep(a, "local", db);
    s.gpus = split_list(a.gpus);
    s.parallel = s.gpus.empty() ? a.local : static_cast<int>(s.gpus.size());
    if (s.parallel < 1) throw Error("meft sweep submit: --local N needs N >= 1 (or --gpus LIST)");
    s.pid = getpid();
    s.host = host_name();
    s.process = process_identity(s.pid);
    create_sweep(s);
    db.record_sweep(sweep_row(s));
    return run_local(s, a);
}

// meft sweep resume: a local sweep's tasks run here again, a Slurm sweep's script is submitted
// again; each task continues its expansion (--continue): finished ones are left alone, stopped ones
// resume from their checkpoints, failed ones are not retried.
int resume(const SweepArgs& a) {
    Sweep s = read_sweep(a.sweep);
    if (s.mode == "local") {
        if (ask_scheduler(s).local_alive) throw Error(s.dir.string() + ": its tasks are still running (pid " + std::to_string(s.pid) + ")");
        if (a.local > 0) s.parallel = a.local;
        if (!a.gpus.empty()) s.gpus = split_list(a.gpus);
        if (!s.gpus.empty()) s.parallel = static_cast<int>(s.gpus.size());
        s.pid = getpid();
        s.host = host_name();
        s.process = process_identity(s.pid);
    }
    s.cancelled_at.clear();
    ExperimentDb db(a.db.empty() ? (s.db.empty() ? ExperimentDb::default_path() : s.db) : fs::path(a.db));
    if (s.mode == "slurm") {
        resubmit_to_slurm(s);
        db.record_sweep(sweep_row(s));
        std::printf("resubmitted %s: Slurm job %s; each task continues its expansion (finished ones end at once)\n",
                    s.dir.string().c_str(), s.job_id.c_str());
        return 0;
    }
    write_sweep(s);
    db.record_sweep(sweep_row(s));
    SweepArgs g = a;
    g.db = db.path();
    return run_local(s, g);
}

int run_local(Sweep& s, const SweepArgs& a) {
    const int slots = s.parallel;
    // Tasks sharing the CPU cores split them (unless MEFT_THREADS says otherwise).
    const int threads = std::getenv("MEFT_THREADS") ? 0 : std::max(1, default_thread_count() / slots);
    const int total = s.expansions();
    std::fprintf(stderr, "meft sweep: %d expansion%s of %s, %d at a time, in %s\n", total, total == 1 ? "" : "s",
                 s.source.string().c_str(), slots, s.dir.string().c_str());

    // Without SA_RESTART: a signal interrupts waitpid, so the tasks are told at once (meft sweep
    // cancel signals this process alone; Ctrl-C reaches the tasks directly too).
    struct sigaction stop = {};
    stop.sa_handler = on_stop;
    sigemptyset(&stop.sa_mask);
    sigaction(SIGINT, &stop, nullptr);
    sigaction(SIGTERM, &stop, nullptr);
    std::map<pid_t, std::pair<int, int>> running;  // pid -> (expansion, slot)
    std::vector<bool> slot_busy(static_cast<std::size_t>(slots), false);
    std::vector<int> failed;
    int next = 1, done = 0;
    bool stopping = false;
    while (done < total && !(stopping && running.empty())) {
        if (g_stop && !stopping) {  // Ctrl-C or meft sweep cancel: tasks stop after their current step (resumable)
            stopping = true;
            for (const auto& [pid, what] : running) kill(pid, SIGINT);
            std::fprintf(stderr, "meft sweep: stopping %zu running task%s after their current step\n", running.size(),
                         running.size() == 1 ? "" : "s");
        }
        while (!stopping && next <= total && running.size() < static_cast<std::size_t>(slots)) {
            int slot = 0;
            while (slot_busy[static_cast<std::size_t>(slot)]) ++slot;
            slot_busy[static_cast<std::size_t>(slot)] = true;
            const pid_t pid = spawn_task(s, next, s.gpus.empty() ? std::string() : s.gpus[static_cast<std::size_t>(slot)],
                                         s.gpus.empty() ? threads : 0);
            running[pid] = {next, slot};
            std::fprintf(stderr, "  started %d/%d: %s\n", next, total, s.labels[static_cast<std::size_t>(next - 1)].c_str());
            ++next;
        }
        int status = 0;
        const pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) continue;  // interrupted by a signal: look at g_stop
        const auto it = running.find(pid);
        if (it == running.end()) continue;
        const auto [index, slot] = it->second;
        running.erase(it);
        slot_busy[static_cast<std::size_t>(slot)] = false;
        ++done;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok) failed.push_back(index);
        // A task that exits 0 finished its run, or was stopped (Ctrl-C, meft sweep cancel): the shard says which.
        const std::optional<RunInfo> run = ok ? shard_latest_run(s.shard(index)) : std::nullopt;
        const bool stopped = run && run->status == "cancelled";
        std::fprintf(stderr, "  %s %d/%d: %s%s\n", !ok ? "FAILED" : stopped ? "stopped" : "finished", index, total,
                     s.labels[static_cast<std::size_t>(index - 1)].c_str(),
                     stopped ? (" — at step " + std::to_string(run->steps) + ", resumable (meft sweep resume)").c_str() : "");
        if (!ok) std::fprintf(stderr, "%s", indented(file_tail(s.log(index), 5)).c_str());
    }
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    if (!a.no_gather) {
        SweepArgs g = a;
        g.shards = {s.dir.string()};
        g.db = s.db.string();
        g.all = false;
        gather(g);
    }
    if (!failed.empty() || stopping) {
        std::string list;
        for (int f : failed) list += (list.empty() ? "" : ", ") + std::to_string(f);
        std::fprintf(stderr, "meft sweep: %s%s; logs in %s\n", failed.empty() ? "" : ("expansion(s) " + list + " failed").c_str(),
                     stopping ? (failed.empty() ? "stopped before every expansion finished" : ", stopped early") : "",
                     (s.dir / "logs").string().c_str());
        return 1;
    }
    return 0;
}

int submit_slurm(const SweepArgs& a) {
    ExperimentDb db(main_db(a));
    Sweep s = new_sweep(a, "slurm", db);
    s.slurm = a.request;
    if (a.show_script) {  // what would be submitted; nothing written
        std::printf("%s", sbatch_script(s).c_str());
        return 0;
    }
    submit_to_slurm(s);
    db.record_sweep(sweep_row(s));
    std::printf("submitted %s: Slurm job %s, %d array task%s (one per expansion)\n", s.dir.string().c_str(), s.job_id.c_str(),
                s.expansions(), s.expansions() == 1 ? "" : "s");
    std::printf("follow it:  meft sweep status %s\ngather it:  meft sweep gather %s --db %s\n", s.dir.string().c_str(),
                s.dir.string().c_str(), s.db.string().c_str());
    return 0;
}

int status(const SweepArgs& a) {
    const Sweep s = read_sweep(a.sweep);
    const SchedulerView view = ask_scheduler(s);
    SweepStatus st = sweep_status(s, view);
    const fs::path target = a.db.empty() ? s.db : fs::path(a.db);
    std::error_code ec;
    if (!target.empty() && fs::exists(target, ec)) {  // which of the shards' runs the database has
        ExperimentDb db(target, DbAccess::Reading);
        for (ExpansionStatus& e : st.expansions) e.gathered = !e.run_uuid.empty() && db.has_run_uuid(e.run_uuid);
    }
    if (a.json) {
        nlohmann::json j = {{"dir", s.dir.string()}, {"name", s.name}, {"mode", s.mode}, {"job_id", s.job_id},
                            {"scheduler", st.scheduler}, {"counts", st.counts()}};
        j["expansions"] = nlohmann::json::array();
        for (const ExpansionStatus& e : st.expansions)
            j["expansions"].push_back({{"index", e.index}, {"label", e.label}, {"state", e.state}, {"detail", e.detail},
                                       {"run_uuid", e.run_uuid}, {"run_status", e.run_status}, {"steps", e.steps},
                                       {"gathered", e.gathered}, {"log_tail", e.log_tail}});
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("sweep %s: %d expansion%s, %s%s\n%s\n\n", s.name.c_str(), s.expansions(), s.expansions() == 1 ? "" : "s",
                s.mode == "slurm" ? ("Slurm job " + (s.job_id.empty() ? std::string("(none)") : s.job_id)).c_str()
                                  : ("local, " + std::to_string(s.parallel) + " at a time").c_str(),
                s.cancelled_at.empty() ? "" : (", cancelled " + s.cancelled_at).c_str(), st.scheduler.c_str());
    std::printf("| # | expansion | state | detail | gathered |\n|---|---|---|---|---|\n");
    for (const ExpansionStatus& e : st.expansions)
        std::printf("| %d | %s | %s | %s | %s |\n", e.index, e.label.c_str(), e.state.c_str(), e.detail.c_str(),
                    e.gathered ? "yes" : "");
    std::string summary;
    for (const auto& [state, n] : st.counts()) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + state;
    std::printf("\n%s\n", summary.c_str());
    for (const ExpansionStatus& e : st.expansions)
        if (e.state == "failed")
            std::printf("\nexpansion %d (%s) failed: %s\n  %s, last lines:\n%s", e.index, e.label.c_str(), e.detail.c_str(),
                        s.log(e.index).string().c_str(), indented(e.log_tail.empty() ? "(empty)\n" : e.log_tail).c_str());
    return 0;
}

int cancel(const SweepArgs& a) {
    Sweep s = read_sweep(a.sweep);
    cancel_sweep(s);
    const fs::path target = a.db.empty() ? s.db : fs::path(a.db);
    std::error_code ec;
    if (!target.empty() && fs::exists(target, ec)) {
        ExperimentDb db(target);
        db.record_sweep(sweep_row(s));
    }
    std::printf("cancelled %s (%s); finished runs stay in its shards: meft sweep gather %s\n", s.dir.string().c_str(),
                s.mode == "slurm" ? ("scancel " + s.job_id).c_str() : "its tasks stop after their current step",
                s.dir.string().c_str());
    return 0;
}

int list(const SweepArgs& a) {
    ExperimentDb db(main_db(a), DbAccess::Reading);
    std::printf("| sweep | name | mode | job | expansions | created |\n|---|---|---|---|---|---|\n");
    for (const SweepRow& r : db.sweeps())
        std::printf("| %s | %s | %s | %s | %d | %s |\n", r.dir.c_str(), r.name.c_str(), r.mode.c_str(), r.job_id.c_str(),
                    r.expansions, r.created_at.c_str());
    return 0;
}

int gather(const SweepArgs& a) {
    std::vector<fs::path> files;
    for (const std::string& s : a.shards)
        for (const auto& f : shard_files(s)) files.push_back(f);
    // One sweep folder and no --db: the database the sweep was submitted into.
    fs::path target = main_db(a);
    if (a.db.empty() && a.shards.size() == 1 && fs::exists(fs::path(a.shards[0]) / "sweep.json")) {
        const Sweep s = read_sweep(a.shards[0]);
        if (!s.db.empty()) target = s.db;
    }
    ExperimentDb db(target);
    int added = 0, already = 0, left = 0;
    for (const auto& f : files) {
        const MergeReport r = merge_runs(db, f, !a.all);
        std::printf("%s: %zu run%s added%s, %d already there, %d not %s\n", f.string().c_str(), r.added.size(),
                    r.added.size() == 1 ? "" : "s",
                    r.added.empty() ? "" : (" (ids " + std::to_string(r.added.front()) + ".." + std::to_string(r.added.back()) + ")").c_str(),
                    r.already, r.not_finished, a.all ? "ended (still running)" : "finished");
        added += static_cast<int>(r.added.size());
        already += r.already;
        left += r.not_finished;
    }
    std::printf("gathered %d run%s from %zu shard%s into %s; %d already there, %d left out\n", added, added == 1 ? "" : "s",
                files.size(), files.size() == 1 ? "" : "s", target.string().c_str(), already, left);
    return 0;
}

}  // namespace

Runner add_sweep(CLI::App& app) {
    auto a = std::make_shared<SweepArgs>();
    app.require_subcommand(1);
    const char* db_help = "the experiment database (default: $MEFT_DB or ~/.local/share/meft-workbench/experiments.sqlite)";
    a->gather = app.add_subcommand("gather", "merge shard databases (files, or sweep folders with shards/) into one");
    a->gather->add_option("shards", a->shards, "shard .sqlite files or folders holding them (and their shards/)")->required();
    a->gather->add_option("--db", a->db, "the database to gather into (default: the sweep's own, else $MEFT_DB or ~/.local/share/...)");
    a->gather->add_flag("--all", a->all, "also gather failed, cancelled and interrupted runs (never a running one)");

    a->submit = app.add_subcommand("submit", "run every expansion of a grid as its own task (Slurm array or local processes), each into its own shard");
    a->submit->add_option("experiment", a->experiment, "experiment file (JSON; lists make the grid)")->required()->check(CLI::ExistingFile);
    a->submit->add_flag("--slurm", a->slurm, "submit one Slurm job array over the expansions (sbatch)");
    a->submit->add_option("--partition", a->request.partition, "Slurm partition (default: the cluster's)");
    a->submit->add_option("--time", a->request.time, "time limit per task, as sbatch takes it (HH:MM:SS, D-HH:MM)");
    a->submit->add_option("--gpus-per-run", a->request.gpus_per_run, "GPUs per task")->check(CLI::NonNegativeNumber);
    a->submit->add_option("--cpus-per-run", a->request.cpus_per_run, "CPUs per task (meft's threads)")->check(CLI::PositiveNumber);
    a->submit->add_option("--max-parallel", a->request.max_parallel, "at most K tasks at a time (--array=1-N%K)")->check(CLI::PositiveNumber);
    a->submit->add_option("--sbatch-arg", a->request.sbatch_args, "one more #SBATCH line, e.g. --sbatch-arg=--account=abc; repeatable")
        ->allow_extra_args(false);
    a->submit->add_option("--warn-seconds", a->request.warn_seconds,
                          "stop at a checkpoint and requeue this long before the time limit (SIGUSR1; default 120)")
        ->check(CLI::Range(10, 86400));
    a->submit->add_flag("--show-script", a->show_script, "print the sbatch script that --slurm would submit; write and submit nothing");
    a->submit->add_option("--local", a->local, "run the tasks here, N at a time (child processes sharing the CPU cores)")
        ->check(CLI::PositiveNumber);
    a->submit->add_option("--gpus", a->gpus, "run one task per listed GPU at a time (CUDA_VISIBLE_DEVICES), e.g. 0,1");
    a->submit->add_option("--dir", a->dir, "the sweep's folder: sweep.json, experiment.json, shards/, logs/ (default: sweeps/NAME-TIMESTAMP)");
    a->submit->add_option("--db", a->db, "the database the sweep is recorded in and gathered into (default: $MEFT_DB or ~/.local/share/...)");
    a->submit->add_option("--set", a->sets, "override a key of the file before the grid expands (as meft run); repeatable")
        ->allow_extra_args(false);
    a->submit->add_flag("--no-gather", a->no_gather, "--local: leave the shards ungathered (meft sweep gather DIR later)");

    a->status = app.add_subcommand("status", "each expansion of a sweep: queued, running, finished, failed or cancelled");
    a->status->add_option("sweep", a->sweep, "the sweep's folder")->required();
    a->status->add_option("--db", a->db, "the database whose gathered runs to mark (default: the sweep's own)");
    a->status->add_flag("--json", a->json, "print the status as JSON");

    a->cancel = app.add_subcommand("cancel", "cancel a sweep's tasks that have not ended (scancel; a local sweep: stop it)");
    a->cancel->add_option("sweep", a->sweep, "the sweep's folder")->required();
    a->cancel->add_option("--db", a->db, "the database the sweep is recorded in (default: the sweep's own)");

    a->resume = app.add_subcommand("resume", "run a stopped sweep's unfinished expansions again: a local sweep here, a "
                                             "Slurm sweep by submitting its script again (each task resumes its run)");
    a->resume->add_option("sweep", a->sweep, "the sweep's folder")->required();
    a->resume->add_option("--local", a->local, "a local sweep: N tasks at a time (default: as submitted)")->check(CLI::PositiveNumber);
    a->resume->add_option("--gpus", a->gpus, "a local sweep: one task per listed GPU");
    a->resume->add_option("--db", a->db, "the database the sweep is recorded in (default: the sweep's own)");
    a->resume->add_flag("--no-gather", a->no_gather, "a local sweep: leave the shards ungathered");

    a->list = app.add_subcommand("list", "the sweeps submitted into a database");
    a->list->add_option("--db", a->db, db_help);
    return [a] {
        if (a->submit->parsed()) {
            const bool local = a->local > 0 || !a->gpus.empty();
            if (local && a->slurm) throw Error("meft sweep submit: choose --slurm or --local N, not both");
            if (!local && !a->slurm)
                throw Error("meft sweep submit: say where the tasks run: --slurm (a Slurm job array) or --local N (processes here)");
            return a->slurm ? submit_slurm(*a) : submit_local(*a);
        }
        if (a->status->parsed()) return status(*a);
        if (a->cancel->parsed()) return cancel(*a);
        if (a->list->parsed()) return list(*a);
        if (a->resume->parsed()) return resume(*a);
        return gather(*a);
    };
}

}  // namespace meft::cli
