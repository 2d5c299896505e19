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
    std::int64_t activation_bytes = 0;  // the step's activation peak
    std::int64_t resident_bytes = 0;    // weights, gradients and optimizer state
};

struct LayerMemoryRow {
    std::string kind;          // "planned" or "measured"
    int layer = 0;             // -1 embeddings, 0..L-1, L head
    std::string label;
    std::int64_t held = 0, transient = 0;
};

struct EventRow {
    std::string at, kind, message;
};

struct RunInfo {
    std::int64_t id = 0;
    std::int64_t experiment_id = 0;
    std::string experiment, status, message, created_at, finished_at;
    std::string tags, notes;  // the run's own (comma-separated tags); start as its experiment's
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

    static constexpr int kSchemaVersion = 2;
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

    // The end of a run in one transaction: its per-layer memory (replacing any rows an earlier,
    // killed attempt left) and finish(). A kill leaves either all of it or none.
    void finish_with_memory(std::int64_t run, const std::string& status, const nlohmann::json& final_metrics,
                            const std::string& message, const std::vector<LayerMemoryRow>& layers);

    std::vector<RunInfo> runs(const std::string& status = {}, const std::string& tag = {}) const;
    std::optional<RunInfo> run(std::int64_t id) const;
    std::vector<StepRow> steps(std::int64_t run, int after_step = 0) const;  // steps > after_step, in order
    std::vector<LayerMemoryRow> layer_memory(std::int64_t run) const;
    std::vector<std::pair<int, std::vector<double>>> reconstruction(std::int64_t run) const;  // step -> per layer
    std::vector<EventRow> events(std::int64_t run) const;
    void set_tags(std::int64_t run, const std::vector<std::string>& tags);
    void set_notes(std::int64_t run, const std::string& notes);
    std::vector<std::pair<int, std::map<std::string, double>>> evals(std::int64_t run) const;
    void delete_run(std::int64_t run);   // also removes its checkpoint
    // Removes temporary checkpoint files a killed process left for this run (not the checkpoint).
    void remove_stale_checkpoint_files(std::int64_t run) const;

    sqlite3* handle() { return db_; }

private:
    void exec(const std::string& sql);
    void migrate();
    void mark_dead_runs_interrupted();
    sqlite3* db_ = nullptr;
    std::string path_;
};

}  // namespace meft
