#include "run/sweep.h"

#include <ctime>
#include <fstream>
#include <regex>

#include "core/error.h"
#include "core/file_io.h"
#include "run/preflight.h"
#include "store/experiment.h"
#include "store/run_command.h"

namespace meft {

namespace fs = std::filesystem;

namespace {

}  // namespace

std::string utc_now() {
    char buf[32];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {

// A key of sweep.json, of the type expected; Error naming the file and key otherwise.
template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& where, const T& fallback, bool required) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        if (required) throw Error(where + ": key '" + key + "' is missing");
        return fallback;
    }
    try {
        return it->get<T>();
    } catch (const nlohmann::json::exception&) {
        throw Error(where + ": key '" + key + "' has " + std::string(it->type_name()) + " " + it->dump() + ", not the " +
                    (std::is_same_v<T, std::string> ? "string" : std::is_arithmetic_v<T> ? "number" : "list of strings") +
                    " expected");
    }
}

// One argument of a task's command as shell text; "{I}" in it becomes the array task's index.
std::string script_word(const std::string& arg) {
    const std::string mark = "{I}";
    std::string out;
    std::size_t at = 0;
    for (;;) {
        const std::size_t m = arg.find(mark, at);
        const std::string part = arg.substr(at, m == std::string::npos ? std::string::npos : m - at);
        if (!part.empty()) out += shell_quoted(part);
        if (m == std::string::npos) break;
        out += "\"$I\"";
        at = m + mark.size();
    }
    return out.empty() ? "''" : out;
}

}  // namespace

fs::path Sweep::shard(int index) const { return dir / "shards" / (std::to_string(index) + ".sqlite"); }
fs::path Sweep::log(int index) const { return dir / "logs" / (std::to_string(index) + ".log"); }

std::vector<std::string> Sweep::task_command(int index) const {
    const std::string i = index > 0 ? std::to_string(index) : "{I}";
    std::vector<std::string> argv = {meft.string(), "run", experiment_file().string(), "--only", i,
                                     "--db", (dir / "shards" / (i + ".sqlite")).string(), "--continue", "--quiet"};
    for (const std::string& o : overrides) argv.insert(argv.end(), {"--set", o});
    return argv;
}

nlohmann::json Sweep::to_json() const {
    nlohmann::json j = {{"format", 1},
                        {"name", name},
                        {"source", source.string()},
                        {"experiment", "experiment.json"},
                        {"overrides", overrides},
                        {"expansions", expansions()},
                        {"labels", labels},
                        {"mode", mode},
                        {"meft", meft.string()},
                        {"workdir", workdir.string()},
                        {"db", db.string()},
                        {"created_at", created_at}};
    if (!cancelled_at.empty()) j["cancelled_at"] = cancelled_at;
    if (mode == "slurm")
        j["slurm"] = {{"partition", slurm.partition},       {"time", slurm.time},
                      {"gpus_per_run", slurm.gpus_per_run}, {"cpus_per_run", slurm.cpus_per_run},
                      {"max_parallel", slurm.max_parallel}, {"sbatch_args", slurm.sbatch_args},
                      {"warn_seconds", slurm.warn_seconds}, {"script", "sweep.sbatch"},
                      {"job_id", job_id}};
    else
        j["local"] = {{"parallel", parallel}, {"gpus", gpus}, {"pid", pid}, {"host", host}, {"process", process}};
    return j;
}

Sweep sweep_from_json(const nlohmann::json& j, const fs::path& dir, const std::string& where) {
    if (!j.is_object()) throw Error(where + ": not a sweep record (expected a JSON object)");
    if (const int format = field<int>(j, "format", where, 0, true); format != 1)
        throw Error(where + ": sweep record format " + std::to_string(format) + " (this program reads format 1)");
    Sweep s;
    s.dir = fs::absolute(dir);
    s.name = field<std::string>(j, "name", where, "", true);
    s.source = field<std::string>(j, "source", where, "", false);
    s.overrides = field<std::vector<std::string>>(j, "overrides", where, {}, false);
    s.labels = field<std::vector<std::string>>(j, "labels", where, {}, true);
    if (const int n = field<int>(j, "expansions", where, 0, true); n != s.expansions() || n < 1)
        throw Error(where + ": key 'expansions' is " + std::to_string(n) + " but 'labels' lists " +
                    std::to_string(s.expansions()));
    s.mode = field<std::string>(j, "mode", where, "", true);
    if (s.mode != "slurm" && s.mode != "local")
        throw Error(where + ": key 'mode' is \"" + s.mode + "\", expected \"slurm\" or \"local\"");
    s.meft = field<std::string>(j, "meft", where, "", true);
    s.workdir = field<std::string>(j, "workdir", where, "", false);
    s.created_at = field<std::string>(j, "created_at", where, "", false);
    s.db = field<std::string>(j, "db", where, "", false);
    s.cancelled_at = field<std::string>(j, "cancelled_at", where, "", false);
    if (s.mode == "slurm") {
        const std::string w = where + " (slurm)";
        const nlohmann::json& sl = j.contains("slurm") && j["slurm"].is_object() ? j["slurm"] : throw Error(where + ": key 'slurm' is missing");
        s.slurm.partition = field<std::string>(sl, "partition", w, "", false);
        s.slurm.time = field<std::string>(sl, "time", w, "", false);
        s.slurm.gpus_per_run = field<int>(sl, "gpus_per_run", w, 0, false);
        s.slurm.cpus_per_run = field<int>(sl, "cpus_per_run", w, 1, false);
        s.slurm.max_parallel = field<int>(sl, "max_parallel", w, 0, false);
        s.slurm.sbatch_args = field<std::vector<std::string>>(sl, "sbatch_args", w, {}, false);
        s.slurm.warn_seconds = field<int>(sl, "warn_seconds", w, 120, false);
        s.job_id = field<std::string>(sl, "job_id", w, "", false);
    } else {
        const std::string w = where + " (local)";
        const nlohmann::json& lo = j.contains("local") && j["local"].is_object() ? j["local"] : throw Error(where + ": key 'local' is missing");
        s.parallel = field<int>(lo, "parallel", w, 1, false);
        s.gpus = field<std::vector<std::string>>(lo, "gpus", w, {}, false);
        s.pid = field<long>(lo, "pid", w, 0, false);
        s.host = field<std::string>(lo, "host", w, "", false);
        s.process = field<std::string>(lo, "process", w, "", false);
    }
    return s;
}

Sweep read_sweep(const fs::path& dir_or_record) {
    const bool is_record = dir_or_record.filename() == "sweep.json";
    const fs::path dir = is_record ? dir_or_record.parent_path() : dir_or_record;
    const fs::path file = dir / "sweep.json";
    std::error_code ec;
    if (!fs::exists(file, ec))
        throw Error(dir_or_record.string() + ": not a sweep folder (no sweep.json; `meft sweep submit` makes one)");
    std::ifstream in(file);
    if (!in) throw Error(file.string() + ": cannot be read");
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) throw Error(file.string() + ": not valid JSON");
    Sweep s = sweep_from_json(j, dir, file.string());
    s.experiment = read_experiment_json(s.experiment_file());
    return s;
}

void write_sweep(const Sweep& s) { write_file_atomically(s.record_file(), s.to_json().dump(2) + "\n"); }

fs::path default_sweep_dir(const std::string& name) {
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    return fs::absolute(fs::path("sweeps") / (name + "-" + stamp));
}

Sweep plan_sweep(const nlohmann::json& experiment, const fs::path& source, const std::vector<std::string>& overrides,
                 const fs::path& dir, const std::string& mode, const fs::path& meft) {
    // Every expansion is validated before anything is written, as --dry-run does.
    const std::vector<Experiment> exps = experiments_from_json(experiment, source, overrides);
    const std::string problems = grid_problems(exps);
    if (!problems.empty()) throw Error(source.string() + ": the sweep would fail when its tasks start:" + problems);
    Sweep s;
    s.dir = fs::absolute(dir.empty() ? default_sweep_dir(exps.front().name) : dir).lexically_normal();
    s.name = exps.front().name;
    s.source = fs::absolute(source);
    s.overrides = overrides;
    for (const Experiment& e : exps) s.labels.push_back(e.sweep_label.empty() ? e.name : e.sweep_label);
    s.mode = mode;
    s.meft = fs::absolute(meft);
    s.workdir = fs::current_path();
    s.created_at = utc_now();
    s.experiment = rebase_paths(experiment, source, s.experiment_file());
    std::error_code ec;
    if (fs::exists(s.record_file(), ec)) throw Error(s.dir.string() + ": already holds a sweep (sweep.json); choose another --dir");
    return s;
}

void create_sweep(const Sweep& s) {
    std::error_code ec;
    if (fs::exists(s.record_file(), ec)) throw Error(s.dir.string() + ": already holds a sweep (sweep.json); choose another --dir");
    fs::create_directories(s.dir / "shards");
    fs::create_directories(s.dir / "logs");
    write_file_atomically(s.experiment_file(), s.experiment.dump(2) + "\n");
    // The frozen copy must expand into the same runs; a path it could not rebase would show here.
    const std::vector<Experiment> copy = experiments_from_json(read_experiment_json(s.experiment_file()), s.experiment_file(), s.overrides);
    if (static_cast<int>(copy.size()) != s.expansions())
        throw Error(s.experiment_file().string() + ": the copied experiment expands into " + std::to_string(copy.size()) +
                    " runs, not " + std::to_string(s.expansions()));
    write_sweep(s);
}

void check_slurm_request(const SlurmRequest& r) {
    static const std::regex time_format(R"(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}|UNLIMITED|INFINITE)");
    if (!r.time.empty() && !std::regex_match(r.time, time_format))
        throw Error("time limit '" + r.time + "': Slurm takes minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (e.g. 04:00:00)");
    if (r.partition.find_first_of(" \t\n\r'\"") != std::string::npos)
        throw Error("partition '" + r.partition + "': a partition name has no spaces or quotes (several: gpu,cpu)");
    for (const std::string& a : r.sbatch_args)
        if (a.size() < 2 || a[0] != '-' || a.find_first_of("\n\r") != std::string::npos)
            throw Error("sbatch argument '" + a + "': expected one option such as --account=abc or --qos=low, on one line");
    if (r.gpus_per_run < 0) throw Error("GPUs per run: " + std::to_string(r.gpus_per_run) + " (expected 0 or more)");
    if (r.cpus_per_run < 1) throw Error("CPUs per run: " + std::to_string(r.cpus_per_run) + " (expected 1 or more)");
    if (r.max_parallel < 0) throw Error("at most in parallel: " + std::to_string(r.max_parallel) + " (expected 0 for no limit, or more)");
    if (r.warn_seconds < 10) throw Error("time-limit warning: " + std::to_string(r.warn_seconds) + " s (expected 10 s or more)");
}

std::string sbatch_script(const Sweep& s) {
    check_slurm_request(s.slurm);
    const int n = s.expansions();
    std::string t;
    auto line = [&](const std::string& l) { t += l + "\n"; };
    auto directive = [&](const std::string& d) { line("#SBATCH " + d); };
    line("#!/bin/bash");
    std::error_code ec;
    const std::string from = fs::exists(s.source, ec) ? s.source.string() : "an unsaved experiment (the workbench's form)";
    line("# MEFT Workbench sweep \"" + s.name + "\": " + std::to_string(n) + " expansion" + (n == 1 ? "" : "s") + " of " +
         from + (s.overrides.empty() ? "" : " with --set overrides") + ", one Slurm array task each.");
    line("# Written by `meft sweep submit --slurm` at " + s.created_at + "; submit it again by hand with");
    line("#   sbatch " + shell_quoted(s.script_file().string()));
    line("# Task I runs expansion I (as `meft run --dry-run` numbers them) of experiment.json, the experiment");
    line("# as submitted, into shards/I.sqlite (one SQLite file per task: SQLite must not be shared by");
    line("# writers over NFS), its checkpoint in shards/checkpoints/, its output appended to logs/I.log.");
    line("# Preempted or requeued, a task resumes its run from the checkpoint (meft run --continue).");
    line("# `meft sweep status` / `gather` / `cancel` " + shell_quoted(s.dir.string()) + " follow it.");
    directive("--job-name=" + shell_quoted("meft-" + s.name));
    directive("--array=1-" + std::to_string(n) + (s.slurm.max_parallel > 0 ? "%" + std::to_string(s.slurm.max_parallel) : ""));
    directive("--output=" + shell_quoted((s.dir / "logs" / "%a.log").string()));
    directive("--open-mode=append");
    directive("--chdir=" + shell_quoted(s.workdir.string()));
    directive("--requeue");
    directive("--signal=B:USR1@" + std::to_string(s.slurm.warn_seconds));
    directive("--cpus-per-task=" + std::to_string(s.slurm.cpus_per_run));
    if (s.slurm.gpus_per_run > 0) directive("--gpus-per-task=" + std::to_string(s.slurm.gpus_per_run));
    if (!s.slurm.partition.empty()) directive("--partition=" + shell_quoted(s.slurm.partition));
    if (!s.slurm.time.empty()) directive("--time=" + shell_quoted(s.slurm.time));
    for (const std::string& a : s.slurm.sbatch_args) directive(a);
    line("");
    line("I=$SLURM_ARRAY_TASK_ID");
    line("echo \"== expansion $I: job ${SLURM_ARRAY_JOB_ID}_$I on $(hostname), attempt $(( ${SLURM_RESTART_COUNT:-0} + 1 )), "
         "$(date -u +%FT%TZ)\"");
    line("export MEFT_THREADS=${SLURM_CPUS_PER_TASK:-1}  # meft's CPU threads: the CPUs this task was given");
    line("");
    std::string cmd;
    for (const std::string& a : s.task_command(0)) cmd += (cmd.empty() ? "" : " ") + script_word(a);
    line(cmd + " &");
    line("meft=$!");
    line("# Preemption, `scontrol requeue`, `scancel`: Slurm sends SIGTERM to meft and to this script;");
    line("# meft stops after its current step, saving its checkpoint.");
    line("trap 'kill -TERM \"$meft\" 2>/dev/null' TERM");
    line("# The time limit is near (SIGUSR1, from --signal above): stop the same way, then requeue this task.");
    line("requeue=0");
    line("trap 'requeue=1; kill -TERM \"$meft\" 2>/dev/null' USR1");
    line("while :; do");
    line("  wait \"$meft\"; status=$?");
    line("  kill -0 \"$meft\" 2>/dev/null || break  # a signal interrupted wait while meft still runs: wait again");
    line("done");
    line("if [ \"$requeue\" = 1 ]; then");
    line("  echo \"== expansion $I: time limit near; stopped at a checkpoint, requeueing\"");
    line("  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_$I\"");
    line("fi");
    line("echo \"== expansion $I: meft exited with status $status, $(date -u +%FT%TZ)\"");
    line("exit \"$status\"");
    return t;
}

std::optional<RunInfo> expansion_run(const ExperimentDb& db, const nlohmann::json& config) {
    const std::string want = config_hash(config);
    std::optional<RunInfo> found;
    for (RunInfo& r : db.runs())
        if ((!found || r.id > found->id) && config_hash(r.config) == want) found = std::move(r);
    return found;
}

}  // namespace meft
