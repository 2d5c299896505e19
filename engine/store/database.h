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

struct sqlite3;

namespace meft {

struct StepRow {
    int step = 0;
    double loss = 0, learning_rate = 0, grad_norm = 0, tokens_per_s = 0, elapsed_s = 0;
    std::int64_t activation_bytes = 0;
};

struct RunInfo {
    std::int64_t id = 0;
    std::int64_t experiment_id = 0;
    std::string experiment, status, message, created_at, finished_at, tags;
    nlohmann::json config, environment, final_metrics;
    int steps = 0;
};

class ExperimentDb {
public:
    // Opens (creating and migrating) the database; marks dead "running" runs interrupted.
    explicit ExperimentDb(const std::filesystem::path& file);
    ~ExperimentDb();
    ExperimentDb(const ExperimentDb&) = delete;
    ExperimentDb& operator=(const ExperimentDb&) = delete;

    static constexpr int kSchemaVersion = 1;
    int schema_version() const;
    // $MEFT_DB, else $XDG_DATA_HOME/meft-workbench/experiments.sqlite, else
    // ~/.local/share/meft-workbench/experiments.sqlite.
    static std::filesystem::path default_path();
    // Where a run's training checkpoint lives: <database folder>/checkpoints/run-<id>.safetensors
    std::filesystem::path checkpoint_path(std::int64_t run) const;

    std::int64_t add_experiment(const std::string& name, const std::string& file, const nlohmann::json& spec,
                                const std::string& tags, const std::string& notes);
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

    std::vector<RunInfo> runs(const std::string& status = {}, const std::string& tag = {}) const;
    std::optional<RunInfo> run(std::int64_t id) const;
    std::vector<StepRow> steps(std::int64_t run) const;
    std::vector<std::pair<int, std::map<std::string, double>>> evals(std::int64_t run) const;
    void delete_run(std::int64_t run);   // also removes its checkpoint

    sqlite3* handle() { return db_; }

private:
    void exec(const std::string& sql);
    void migrate();
    void mark_dead_runs_interrupted();
    sqlite3* db_ = nullptr;
    std::string path_;
};

}  // namespace meft
