// runner.h — one experiment expansion as a recorded run, the same for the CLI and the workbench:
// check what is known to fail (run/preflight.h), build the model and the data (a failure there
// records nothing), create the run row (and its experiment's, in one transaction), train with a
// RunRecorder in front of the caller's observer, write checkpoints beside the database (named by
// the run's UUID), record the measured and planned per-layer memory and the final metrics, and
// mark the run finished, cancelled (the observer asked to stop) or failed (any exception once the
// row exists, rethrown). Resuming checks that the checkpoint is the run's own first.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "store/database.h"
#include "store/experiment.h"
#include "train/trainer.h"

namespace meft {

struct RunStart {
    std::int64_t run_id = 0;
    // Examples, or for a multiple-choice QA task questions (each of several choice rows).
    std::size_t train_examples = 0, dev_examples = 0;
    std::string unit = "examples";  // or "questions"
    int total_steps = 0, first_step = 0;   // first_step > 0 when resuming
    int steps_per_epoch = 0;
    std::int64_t trainable_parameters = 0, parameters = 0;
    std::string backend;
};

struct RunOptions {
    TrainObserver* observer = nullptr;                            // progress; its should_stop() cancels
    std::function<void(const RunStart&)> on_start;                // after the run row exists
    std::function<void(const std::string&)> notice;               // loader notices (default: stderr)
    NewExperiment* experiment = nullptr;                          // its row: made with the first run (shared by a sweep)
    std::int64_t resume_run = 0;                                  // > 0: continue that run from its checkpoint
    nlohmann::json environment_extra = nlohmann::json::object();  // merged into the recorded environment
};

struct RunOutcome {
    std::int64_t run_id = 0;
    std::string status;                                 // "finished" or "cancelled"
    TrainResult result;
    nlohmann::json metrics;                             // as recorded in runs.final_metrics
    std::unique_ptr<Model> model;               // the trained model (its backend lives below)
    std::unique_ptr<Backend> backend;
};

RunOutcome execute_run(const Experiment& e, ExperimentDb& db, const RunOptions& options);

// The run's own training checkpoint, or an Error saying why not: none at its path, another
// run's (UUID), another configuration's, or ahead of the steps the run recorded.
std::filesystem::path run_checkpoint(ExperimentDb& db, std::int64_t run);

// A stored run's model as its checkpoint left it: the experiment rebuilt from the recorded
// config (its backbone folder or preset), the trainable tensors from the checkpoint.
struct RestoredRun {
    Experiment experiment;
    std::unique_ptr<Model> model;
    int step = 0;                // the checkpoint's step
    std::string uuid;
};
RestoredRun restore_run(ExperimentDb& db, std::int64_t run, Backend& backend);

}  // namespace meft
