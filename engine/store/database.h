// database.h — the experiment database (SQLite): experiments, runs and everything a run reports.
//
// WAL journal, a busy timeout, a schema version with forward migrations; every batch of writes
// is one transaction, so a reader never sees half a step. Runs whose process died while running
// are marked "interrupted" the next time the database is opened.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/step_memory.h"

struct sqlite3;

namespace meft {

struct StepRow {
    int step = 0;
    double loss = 0, learning_rate = 0, grad_norm = 0, tokens_per_s = 0, elapsed_s = 0;
    std::int64_t activation_bytes = 0;  // the step's activation peak (its largest micro-batch)
    std::int64_t resident_bytes = 0;    // weights, gradients and optimizer state
    int activation_rows = 0, activation_seq = 0;  // the micro-batch at that peak: rows x tokens
};

struct LayerMemoryRow {
    std::string kind;          // "planned" or "measured"
    int layer = 0;             // -1 embeddings, 0..L-1, L head
    std::string label;
    std::int64_t held = 0, transient = 0;
};

// A sweep submitted into this database (run/sweep.h): `record` is its sweep.json.
struct SweepRow {
    std::int64_t id = 0;
    std::string dir, name, mode, job_id;
    int expansions = 0;
    nlohmann::json record;
    std::string created_at;
};

struct EventRow {
    std::string at, kind, message;
};

struct RunInfo {
    std::int64_t id = 0;
    std::string uuid;         // the run's identity, also in its checkpoint's metadata and file name
    std::int64_t experiment_id = 0;
    std::string experiment, status, message, created_at, finished_at;
    std::string tags, notes;  // the run's own (comma-separated tags); start as its experiment's
    std::string host;         // the machine its process ran on
    nlohmann::json config, environment, final_metrics;
    int steps = 0;
};

// An experiment row to create together with its first run (ExperimentDb::add_run), so that a
// kill between the two never leaves an experiment without runs. `id` is 0 until it exists.
struct NewExperiment {
    std::string name{}, file{};
    nlohmann::json spec = nlohmann::json::object();
    std::string tags{}, notes{};
    std::int64_t id = 0;
};

enum class DbAccess {
    ReadWrite,  // create, migrate, write; marks dead "running" runs interrupted
    ReadOnly,   // never writes (works on a read-only file or folder); an older schema is an error
    Reading,    // read-write when the file and its folder are writable, else read-only
};

class ExperimentDb {
public:
    // Opens the database. ReadWrite creates and migrates it and marks dead "running" runs
    // interrupted; ReadOnly needs an existing database of this schema version and writes nothing.
    explicit ExperimentDb(const std::filesystem::path& file, DbAccess access = DbAccess::ReadWrite);
    ~ExperimentDb();
    ExperimentDb(const ExperimentDb&) = delete;
    ExperimentDb& operator=(const ExperimentDb&) = delete;

    static constexpr int kSchemaVersion = 5;
    int schema_version() const;
    bool read_only() const { return read_only_; }
    const std::string& path() const { return path_; }
    // $MEFT_DB, else $XDG_DATA_HOME/meft-workbench/experiments.sqlite, else
    // ~/.local/share/meft-workbench/experiments.sqlite.
    static std::filesystem::path default_path();
    // Where a run's training checkpoint lives: <database folder>/checkpoints/<run uuid>.safetensors
    // (named by the run's UUID, so databases sharing a folder never share a checkpoint).
    std::filesystem::path checkpoint_path(std::int64_t run) const;
    // Where schema versions before 3 kept it (checkpoints/run-<id>.safetensors): such a file cannot
    // be told apart from another database's run of the same number.
    std::filesystem::path legacy_checkpoint_path(std::int64_t run) const;
    std::string run_uuid(std::int64_t run) const;  // "" when there is no such run

    std::int64_t add_experiment(const std::string& name, const std::string& file, const nlohmann::json& spec,
                                const std::string& tags, const std::string& notes);
    // A new run (status queued, a fresh UUID, this process's pid and start time) in one
    // transaction with its experiment row when experiment.id is 0 (then set).
    std::int64_t add_run(NewExperiment& experiment, const nlohmann::json& config, const nlohmann::json& environment);
    std::int64_t add_run(std::int64_t experiment_id, const nlohmann::json& config, const nlohmann::json& environment);
    void set_status(std::int64_t run, const std::string& status, const std::string& message = {});
    void add_steps(std::int64_t run, const std::vector<StepRow>& rows);   // one transaction
    void add_eval(std::int64_t run, int step, const std::map<std::string, double>& metrics, double loss);
    void add_layer_memory(std::int64_t run, const std::string& kind, int layer, const std::string& label,
                          std::int64_t held, std::int64_t transient);
    void add_reconstruction(std::int64_t run, int step, const std::vector<double>& per_layer);
    void add_event(std::int64_t run, const std::string& kind, const std::string& message);
    void finish(std::int64_t run, const std::string& status, const nlohmann::json& final_metrics,
                const std::string& message = {});

    // The end of a run in one transaction: its per-layer memory and its step's memory parts
    // (replacing any rows an earlier, killed attempt left) and finish(). A kill leaves either all
    // of it or none.
    void finish_with_memory(std::int64_t run, const std::string& status, const nlohmann::json& final_metrics,
                            const std::string& message, const std::vector<LayerMemoryRow>& layers,
                            const std::vector<StepMemoryRow>& parts = {});

    std::vector<RunInfo> runs(const std::string& status = {}, const std::string& tag = {}) const;
    std::optional<RunInfo> run(std::int64_t id) const;
    std::vector<StepRow> steps(std::int64_t run, int after_step = 0) const;  // steps > after_step, in order
    std::vector<LayerMemoryRow> layer_memory(std::int64_t run) const;
    std::vector<StepMemoryRow> step_memory(std::int64_t run) const;  // planned and measured parts (store/step_memory.h)
    std::vector<std::pair<int, std::vector<double>>> reconstruction(std::int64_t run) const;  // step -> per layer
    std::vector<EventRow> events(std::int64_t run) const;

    // For readers that follow writers (the workbench's runs browser): data_version() changes
    // whenever another connection commits (PRAGMA data_version, no table read); runs_stamp()
    // changes when a run is added, deleted, changes status, or its tags or notes change — not when a
    // running run records steps. Both are cheap enough to poll every second.
    std::int64_t data_version() const;
    std::string runs_stamp() const;

    void set_tags(std::int64_t run, const std::vector<std::string>& tags);
    void set_notes(std::int64_t run, const std::string& notes);
    std::vector<std::pair<int, std::map<std::string, double>>> evals(std::int64_t run) const;
    void delete_run(std::int64_t run);   // also removes its checkpoint
    bool has_run_uuid(const std::string& uuid) const;

    // Sweeps: one row per sweep folder (recording one again updates it); forgetting one leaves its
    // folder and any gathered runs alone.
    void record_sweep(const SweepRow& sweep);
    std::vector<SweepRow> sweeps() const;
    void forget_sweep(const std::string& dir);
    // Removes temporary checkpoint files a killed process left for this run (not the checkpoint).
    void remove_stale_checkpoint_files(std::int64_t run) const;
    void remove_stale_checkpoint_files(const std::filesystem::path& checkpoint) const;

    sqlite3* handle() { return db_; }

private:
    void exec(const std::string& sql);
    void migrate();
    void mark_dead_runs_interrupted();
    std::int64_t insert_run(std::int64_t experiment_id, const nlohmann::json& config, const nlohmann::json& environment);
    void require_writable(const char* what) const;
    sqlite3* db_ = nullptr;
    std::string path_;
    bool read_only_ = false;
};

// A fresh random (version 4) UUID, e.g. "3f2b8c1e-9a4d-4c7e-8f10-2b3c4d5e6f70".
std::string new_uuid();
// What identifies a running process beyond its pid (which the system reuses): the boot and the
// process's start time, "<boot id>/<start ticks>"; "" when the process does not exist or is a zombie.
std::string process_identity(long pid);
// This machine's name, as runs record it.
std::string host_name();

}  // namespace meft
