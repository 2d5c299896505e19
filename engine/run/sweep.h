// sweep.h — a grid's expansions run as separate tasks (Slurm array tasks or local processes), each
// recording into its own SQLite shard, gathered afterwards (store/merge.h).
//
// A sweep is a folder: sweep.json (this record), experiment.json (the experiment as submitted,
// frozen: a task requeued tomorrow runs what was submitted today, whatever happens to the original
// file), shards/I.sqlite with checkpoints/ beside them, logs/I.log, and for Slurm sweep.sbatch (the
// job-array script; readable, and submittable by hand).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/database.h"

namespace meft {

// What `meft sweep submit --slurm` asks Slurm for, per array task.
struct SlurmRequest {
    std::string partition;                // "" = the cluster's default
    std::string time;                     // per task, as sbatch --time takes it ("" = the partition's default)
    int gpus_per_run = 0;                 // --gpus-per-task
    int cpus_per_run = 1;                 // --cpus-per-task; the task's meft uses that many threads
    int max_parallel = 0;                 // > 0: at most K tasks at a time (--array=1-N%K)
    std::vector<std::string> sbatch_args; // more #SBATCH lines, as given ("--account=abc", "--qos=low")
    int warn_seconds = 120;               // time-limit warning: stop, checkpoint and requeue this long before
};

// Error naming the field when a request cannot be written into a script as asked: a time Slurm
// does not read (it takes minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS), a partition with
// spaces, an sbatch argument that is not an option (--name[=value]) or holds a line break, counts
// out of range.
void check_slurm_request(const SlurmRequest& r);

struct Sweep {
    std::filesystem::path dir;           // absolute
    std::string name;                    // the experiment's name
    std::filesystem::path source;        // the experiment file it came from (absolute; may change later)
    std::vector<std::string> overrides;  // --set KEY=VALUE, applied before the grid expands
    std::vector<std::string> labels;     // one per expansion, 1-based as --dry-run numbers them
    std::string mode;                    // "slurm" or "local"
    std::filesystem::path meft;          // the meft program the tasks run
    std::filesystem::path workdir;       // the tasks' working directory (relative output.dir resolves here)
    std::string created_at;              // ISO 8601, UTC
    std::string cancelled_at;            // set by `meft sweep cancel`
    // Slurm
    SlurmRequest slurm;
    std::string job_id;                  // the array job's id once submitted
    // local
    int parallel = 0;
    std::vector<std::string> gpus;
    long pid = 0;                        // the `meft sweep submit --local` process running the tasks
    std::string host, process;           // its host and identity (store/database.h process_identity)
    std::filesystem::path db;            // the experiment database it gathers into
    nlohmann::json experiment;           // the experiment as submitted (experiment.json; not in sweep.json)

    int expansions() const { return static_cast<int>(labels.size()); }
    std::filesystem::path experiment_file() const { return dir / "experiment.json"; }
    std::filesystem::path record_file() const { return dir / "sweep.json"; }
    std::filesystem::path script_file() const { return dir / "sweep.sbatch"; }
    std::filesystem::path shard(int index) const;  // shards/I.sqlite
    std::filesystem::path log(int index) const;    // logs/I.log
    // `meft run` for expansion `index` (a Slurm script writes "$I" for it: index 0).
    std::vector<std::string> task_command(int index) const;

    nlohmann::json to_json() const;
};

// Validates every expansion of `experiment` (JSON as in the file; `source` is where it lives, for
// its relative paths and messages) with `overrides`, as `meft run --dry-run` does, and describes the
// sweep in `dir` (empty: default_sweep_dir) without writing anything. Error when `dir` already
// holds a sweep.
Sweep plan_sweep(const nlohmann::json& experiment, const std::filesystem::path& source,
                 const std::vector<std::string>& overrides, const std::filesystem::path& dir,
                 const std::string& mode, const std::filesystem::path& meft);

// Creates the sweep's folder: experiment.json (the experiment with its relative paths rewritten to
// name the same folders from there; checked to expand into the same runs), shards/ and logs/, then
// sweep.json (write_sweep). Error when the folder already holds a sweep.
void create_sweep(const Sweep& s);

// sweeps/NAME-YYYYmmdd-HHMMSS under the working directory.
std::filesystem::path default_sweep_dir(const std::string& name);

std::string utc_now();  // ISO 8601, UTC, to the second

void write_sweep(const Sweep& s);  // sweep.json, atomically
// A sweep folder (or its sweep.json): Error naming the file and key when it is not one.
Sweep read_sweep(const std::filesystem::path& dir_or_record);
Sweep sweep_from_json(const nlohmann::json& j, const std::filesystem::path& dir, const std::string& where);

// The sbatch script of a Slurm sweep: one job array over the expansions, each task running
// task_command for $SLURM_ARRAY_TASK_ID; requeued on preemption (--requeue); on the time-limit
// warning (SIGUSR1, warn_seconds before) it stops meft after its current step and requeues itself.
// A requeued task resumes its run from the checkpoint (`meft run --continue`). The request is
// checked first (check_slurm_request).
std::string sbatch_script(const Sweep& s);

// The latest run in `db` of the resolved configuration `config` (store/experiment.h config_hash:
// training.backend aside), if any: what `meft run --continue` continues, or finds finished.
std::optional<RunInfo> expansion_run(const ExperimentDb& db, const nlohmann::json& config);

}  // namespace meft
