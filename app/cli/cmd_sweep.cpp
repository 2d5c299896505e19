// meft sweep — a grid's expansions one per task, each into its own SQLite shard, and the shards
// gathered into one experiment database (store/merge.h; a run is known by its UUID, so gathering
// twice adds nothing). `submit --local N` runs the tasks here, N at a time, as child processes of
// `meft run --only I`.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file_io.h"
#include "store/experiment.h"

#include "cli/commands.h"
#include "store/database.h"
#include "store/merge.h"

namespace meft::cli {

namespace {

struct SweepArgs {
    std::string db;
    std::vector<std::string> shards;
    bool all = false;
    CLI::App* gather = nullptr;
    // submit
    CLI::App* submit = nullptr;
    std::string experiment, dir, gpus;
    std::vector<std::string> sets;
    int local = 0;
    bool no_gather = false;
};

int gather(const SweepArgs& a);

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop(int) { g_stop = 1; }

// The last lines of a task's log, for a failure report.
std::string tail_of(const std::filesystem::path& log, int lines) {
    std::ifstream in(log);
    std::vector<std::string> all;
    for (std::string l; std::getline(in, l);) all.push_back(l);
    std::string out;
    for (std::size_t i = all.size() > std::size_t(lines) ? all.size() - std::size_t(lines) : 0; i < all.size(); ++i)
        out += "    " + all[i] + "\n";
    return out;
}

// Runs expansion `index` as `meft run EXP --only index --db SHARD --quiet [--set ...]`, output to its log.
pid_t spawn_task(const SweepArgs& a, int index, const std::filesystem::path& shard, const std::filesystem::path& log,
                 const std::string& gpu) {
    std::vector<std::string> args = {"/proc/self/exe", "run", a.experiment, "--only", std::to_string(index), "--db",
                                     shard.string(), "--quiet"};
    for (const std::string& s : a.sets) args.insert(args.end(), {"--set", s});
    const pid_t pid = fork();
    if (pid < 0) throw Error("meft sweep: cannot start a task (fork failed)");
    if (pid == 0) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (!gpu.empty()) setenv("CUDA_VISIBLE_DEVICES", gpu.c_str(), 1);
        std::vector<char*> argv;
        for (std::string& s : args) argv.push_back(s.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        std::perror("meft sweep: exec");
        _exit(127);
    }
    return pid;
}

int submit_local(const SweepArgs& a) {
    namespace fs = std::filesystem;
    // Every expansion is validated before anything starts, as --dry-run does.
    const std::vector<Experiment> exps = load_experiments(a.experiment, a.sets);
    std::vector<std::string> gpus;
    for (std::size_t at = 0; !a.gpus.empty() && at <= a.gpus.size();) {
        const std::size_t comma = a.gpus.find(',', at);
        gpus.push_back(a.gpus.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    const int slots = gpus.empty() ? a.local : static_cast<int>(gpus.size());
    if (slots < 1) throw Error("meft sweep submit: --local N needs N >= 1 (or --gpus LIST)");
    fs::path dir = a.dir;
    if (dir.empty()) {
        char stamp[32];
        const std::time_t now = std::time(nullptr);
        std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
        dir = fs::path("sweeps") / (exps.front().name + "-" + stamp);
    }
    if (fs::exists(dir / "sweep.json")) throw Error(dir.string() + ": already holds a sweep (sweep.json); choose another --dir");
    fs::create_directories(dir / "shards");
    fs::create_directories(dir / "logs");
    nlohmann::json record = {{"experiment", fs::absolute(a.experiment).string()}, {"overrides", a.sets},
                             {"expansions", exps.size()}, {"mode", "local"}, {"parallel", slots}, {"gpus", gpus}};
    nlohmann::json labels = nlohmann::json::array();
    for (const Experiment& e : exps) labels.push_back(e.sweep_label.empty() ? e.name : e.sweep_label);
    record["labels"] = labels;
    write_file_atomically(dir / "sweep.json", record.dump(2) + "\n");
    std::fprintf(stderr, "meft sweep: %zu expansion%s of %s, %d at a time, in %s\n", exps.size(), exps.size() == 1 ? "" : "s",
                 a.experiment.c_str(), slots, dir.string().c_str());

    std::signal(SIGINT, on_stop);
    std::signal(SIGTERM, on_stop);
    std::map<pid_t, std::pair<int, int>> running;  // pid -> (expansion, slot)
    std::vector<bool> slot_busy(static_cast<std::size_t>(slots), false);
    std::vector<int> failed;
    int next = 1, done = 0;
    const int total = static_cast<int>(exps.size());
    bool stopping = false;
    while (done < total && !(stopping && running.empty())) {
        if (g_stop && !stopping) {  // Ctrl-C: the tasks stop after their current step (cancelled, resumable)
            stopping = true;
            for (const auto& [pid, what] : running) kill(pid, SIGINT);
            std::fprintf(stderr, "meft sweep: stopping %zu running task%s after their current step\n", running.size(),
                         running.size() == 1 ? "" : "s");
        }
        while (!stopping && next <= total && running.size() < static_cast<std::size_t>(slots)) {
            int slot = 0;
            while (slot_busy[static_cast<std::size_t>(slot)]) ++slot;
            slot_busy[static_cast<std::size_t>(slot)] = true;
            const std::string id = std::to_string(next);
            const pid_t pid = spawn_task(a, next, dir / "shards" / (id + ".sqlite"), dir / "logs" / (id + ".log"),
                                         gpus.empty() ? std::string() : gpus[static_cast<std::size_t>(slot)]);
            running[pid] = {next, slot};
            std::fprintf(stderr, "  started %d/%d: %s\n", next, total, labels[static_cast<std::size_t>(next - 1)].get<std::string>().c_str());
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
        std::fprintf(stderr, "  %s %d/%d: %s\n", ok ? "finished" : "FAILED", index, total,
                     labels[static_cast<std::size_t>(index - 1)].get<std::string>().c_str());
        if (!ok)
            std::fprintf(stderr, "%s", tail_of(dir / "logs" / (std::to_string(index) + ".log"), 5).c_str());
    }
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    if (!a.no_gather) {
        SweepArgs g = a;
        g.shards = {dir.string()};
        g.all = false;
        gather(g);
    }
    if (!failed.empty() || stopping) {
        std::string list;
        for (int f : failed) list += (list.empty() ? "" : ", ") + std::to_string(f);
        std::fprintf(stderr, "meft sweep: %s%s; logs in %s\n", failed.empty() ? "" : ("expansion(s) " + list + " failed").c_str(),
                     stopping ? (failed.empty() ? "stopped before every expansion ran" : ", stopped early") : "",
                     (dir / "logs").string().c_str());
        return 1;
    }
    return 0;
}

int gather(const SweepArgs& a) {
    std::vector<std::filesystem::path> files;
    for (const std::string& s : a.shards)
        for (const auto& f : shard_files(s)) files.push_back(f);
    const std::filesystem::path target = a.db.empty() ? ExperimentDb::default_path() : std::filesystem::path(a.db);
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
    a->gather = app.add_subcommand("gather", "merge shard databases (files, or sweep folders with shards/) into one");
    a->gather->add_option("shards", a->shards, "shard .sqlite files or folders holding them (and their shards/)")->required();
    a->gather->add_option("--db", a->db, "the database to gather into (default: $MEFT_DB or ~/.local/share/meft-workbench/experiments.sqlite)");
    a->gather->add_flag("--all", a->all, "also gather failed, cancelled and interrupted runs (never a running one)");
    a->submit = app.add_subcommand("submit", "run every expansion of a grid as its own task, each into its own shard, then gather");
    a->submit->add_option("experiment", a->experiment, "experiment file (JSON; lists make the grid)")->required()->check(CLI::ExistingFile);
    a->submit->add_option("--local", a->local, "run the tasks here, N at a time (child processes sharing the CPU cores)")
        ->check(CLI::PositiveNumber);
    a->submit->add_option("--gpus", a->gpus, "run one task per listed GPU at a time (CUDA_VISIBLE_DEVICES), e.g. 0,1");
    a->submit->add_option("--dir", a->dir, "the sweep's folder: sweep.json, shards/, logs/ (default: sweeps/NAME-TIMESTAMP)");
    a->submit->add_option("--db", a->db, "the database to gather into (default: $MEFT_DB or ~/.local/share/meft-workbench/experiments.sqlite)");
    a->submit->add_option("--set", a->sets, "override a key of the file before the grid expands (as meft run); repeatable")
        ->allow_extra_args(false);
    a->submit->add_flag("--no-gather", a->no_gather, "leave the shards ungathered (meft sweep gather DIR later)");
    return [a] {
        if (a->submit->parsed()) {
            if (a->local == 0 && a->gpus.empty())
                throw Error("meft sweep submit: say where the tasks run: --local N (or --gpus LIST); Slurm submission is not "
                            "available yet (docs/sweeps.md)");
            return submit_local(*a);
        }
        return gather(*a);
    };
}

}  // namespace meft::cli
